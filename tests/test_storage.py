"""Readers are never locked out, and never see half a run: the catalog, per-partition working
files, parallel partitions, kill -9 and a second storage folder. Runs are launched out of process,
as users launch them (`itdr materialize`, `dagster job execute` with the multiprocess executor)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from assets.runner import main_ops, main_selection
from itdr_pipeline import catalog
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.hashing import sha256_file
from itdr_pipeline.warehouse import connect
from conftest import ITDR, REPO, SHARED_RAW, link_models, run_cli, shared_dataset

PAIR = ("SELECT (SELECT count(*) FROM interactions), (SELECT count(*) FROM instructions), "
        "(SELECT count(DISTINCT dataset) FROM instructions)")


def _settings(home: Path) -> Settings:
    return Settings(home=home, raw_dir=SHARED_RAW).ensure()


def _table(con: duckdb.DuckDBPyConnection, dataset: str, n: int) -> None:
    con.execute("DELETE FROM users WHERE dataset = ?", [dataset])
    con.execute("INSERT INTO users (dataset, user_id) SELECT ?, 'u' || range FROM range(?)", [dataset, n])


def test_commit_swaps_the_catalog_while_an_old_reader_keeps_its_view(tmp_path: Path):
    settings = _settings(tmp_path / "home")
    with connect(settings.work_db("a")) as con:
        _table(con, "a", 3)
        catalog.commit(settings, catalog.snapshot(con, settings, ["users"], "a"))
        old = duckdb.connect(str(settings.catalog), read_only=True)  # a reader holding the old state
        _table(con, "a", 5)
        catalog.commit(settings, catalog.snapshot(con, settings, ["users"], "a"))
    assert old.execute("SELECT count(*) FROM users").fetchone()[0] == 3
    with catalog.open_catalog(settings) as new:
        assert new.execute("SELECT count(*) FROM users").fetchone()[0] == 5
        # tables nothing was committed to exist, typed and empty
        assert new.execute("SELECT count(*) FROM interactions").fetchone()[0] == 0
        assert new.execute("SELECT count(*) FROM instructions").fetchone()[0] == 0
    old.close()
    # the replaced snapshot is kept for readers of the old catalog, then collected
    files = sorted((settings.home / "tables" / "users" / "a").glob("*.parquet"))
    assert len(files) == 2
    removed = catalog.collect_garbage(settings, catalog.read_state(settings), retain_s=0)
    assert removed == [files[0]] and files[1].is_file()


def test_a_moved_home_is_repointed_on_open(tmp_path: Path):
    settings = _settings(tmp_path / "home")
    with connect(settings.work_db("a")) as con:
        _table(con, "a", 4)
        catalog.commit(settings, catalog.snapshot(con, settings, ["users"], "a"))
    moved = tmp_path / "elsewhere"
    os.rename(settings.home, moved)
    with catalog.open_catalog(_settings(moved)) as con:
        assert con.execute("SELECT count(*) FROM users").fetchone()[0] == 4


def test_staged_snapshots_stay_invisible_until_the_run_commits(tmp_path: Path):
    settings = _settings(tmp_path / "home")
    stage = catalog.RunStage(settings, "run-1")
    with connect(settings.work_db("a")) as con:
        _table(con, "a", 2)
        stage.add(catalog.snapshot(con, settings, ["users"], "a"))
        catalog.commit(settings, {})
        with catalog.open_catalog(settings) as reader:
            assert reader.execute("SELECT count(*) FROM users").fetchone()[0] == 0
        # staged files are not collected while the run is in flight
        assert catalog.collect_garbage(settings, catalog.read_state(settings), retain_s=0) == []
        stage.commit({})
    with catalog.open_catalog(settings) as reader:
        assert reader.execute("SELECT count(*) FROM users").fetchone()[0] == 2
    assert not stage.path.exists()


def test_partition_lock_waits_for_its_holder_and_dies_with_it(tmp_path: Path):
    settings = _settings(tmp_path / "home")
    holder = subprocess.Popen([sys.executable, "-c", f"""
import time
from pathlib import Path
from itdr_pipeline.catalog import partition
from itdr_pipeline.config import Settings
with partition(Settings(home=Path({str(settings.home)!r}), raw_dir=None), "a"):
    print("held", flush=True)
    time.sleep(600)
"""], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ItdrError, match="the a partition is still held by another run"):
            with catalog.partition(settings, "a", wait_s=0.5):
                pass
        with catalog.partition(settings, "b", wait_s=0.5) as con:  # another partition is free
            assert con.execute("SELECT 1").fetchone() == (1,)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        started = time.monotonic()
        with catalog.partition(settings, "a", wait_s=10) as con:
            assert con.execute("SELECT count(*) FROM users").fetchone() == (0,)
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()


class _Readers:
    """Query the catalog in a loop from another thread (CLI and a read-only DuckDB connection)."""

    def __init__(self, settings: Settings, env: dict[str, str]):
        self.settings, self.env = settings, env
        self.seen: set[tuple[int, ...]] = set()
        self.failures: list[str] = []
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with duckdb.connect(str(self.settings.catalog), read_only=True) as con:
                    self.seen.add(tuple(con.execute(PAIR).fetchone()))
                result = run_cli("query", PAIR, env=self.env)
                if result.returncode != 0:
                    self.failures.append(result.stderr.strip())
                else:
                    self.seen.add(tuple(int(v) for v in result.stdout.splitlines()[1].split("\t")))
                self.reads += 1
            except duckdb.Error as exc:
                self.failures.append(str(exc))

    def __enter__(self) -> "_Readers":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


def _wait_until_held(lock: Path, timeout: float = 120) -> None:
    """Until another process holds the partition lock (the file itself outlives its holders)."""
    import fcntl

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.exists():
            with open(lock) as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fh, fcntl.LOCK_UN)
                except BlockingIOError:
                    return
        time.sleep(0.1)
    raise AssertionError(f"nobody took {lock} within {timeout} s")


def _env(home: Path) -> dict[str, str]:
    return {"ITDR_HOME": str(home), "ITDR_RAW_DIR": str(SHARED_RAW), "DAGSTER_HOME": str(home / "dagster")}


def _published_hashes(settings: Settings) -> dict[str, str]:
    return {str(p.relative_to(settings.home)): sha256_file(p) for p in sorted(settings.published.rglob("*"))
            if p.is_file()}


@pytest.mark.slow
def test_readers_during_a_run_see_the_previous_or_the_new_state_and_a_kill_breaks_nothing(
        tmp_path: Path, models_dir: Path):
    shared_dataset("ml-100k")
    settings = _settings(tmp_path / "home")
    link_models(settings.home, models_dir)
    env = _env(settings.home)
    run_cli("materialize", "--datasets", "demo", "--tasks", "preference", env=env, check=True)
    with duckdb.connect(str(settings.catalog), read_only=True) as con:
        before = tuple(con.execute(PAIR).fetchone())
    published = _published_hashes(settings)

    # 1. kill -9 in the middle of a run: readers keep working, nothing published changes.
    victim = subprocess.Popen([str(ITDR), "materialize", "--datasets", "ml-100k", "--tasks", "preference"],
                              env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    _wait_until_held(settings.work / "ml-100k.lock")
    time.sleep(2)  # inside ingest or later: the partition lock and a working file are held
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert _published_hashes(settings) == published
    with duckdb.connect(str(settings.catalog), read_only=True) as con:
        assert tuple(con.execute(PAIR).fetchone()) == before

    # 2. the next run is not blocked by the dead one, and readers poll all through it.
    with _Readers(settings, env) as readers:
        started = time.monotonic()
        run_cli("materialize", "--datasets", "ml-100k", "--tasks", "preference", env=env, check=True)
        took = time.monotonic() - started
        time.sleep(1)
    assert took < 300, f"re-run after kill -9 took {took:.0f} s"
    assert readers.failures == []
    assert readers.reads >= 3
    with duckdb.connect(str(settings.catalog), read_only=True) as con:
        after = tuple(con.execute(PAIR).fetchone())
    assert after[0] == before[0] + 100_000 and after[2] == 2
    # every read saw one complete state: the one before the run or the one after it
    assert readers.seen <= {before, after}, readers.seen
    assert after in readers.seen
    # old published bytes untouched; the killed run left no temporary folder behind in published/
    assert {k: v for k, v in _published_hashes(settings).items() if k in published} == published
    assert not [p for p in settings.published.iterdir() if p.name.startswith(".tmp")]
    # a runaway query is stopped by the time limit, with a message that says so
    slow = run_cli("query", "--timeout", "1", "SELECT count(*) FROM range(100000000000000)", env=env)
    assert slow.returncode == 1 and "stopped after the 1 s time limit" in slow.stderr


# Ingest, filter, two tasks both datasets feed, publish: the lock paths of a whole run, in fewer
# of the multiprocess executor's one-process-per-step launches.
# Ingest, filter, two of the twelve tasks and publish: what a user picking assets in the UI runs.
TWO_TASKS = ["preference", "rp"]


def _main_job(home: Path):
    from assets.runner import load_job

    return load_job(_settings(home), "main")


@pytest.mark.slow
def test_two_partitions_in_parallel_with_the_multiprocess_executor(tmp_path: Path, models_dir: Path):
    """What the UI does: `dagster job execute` runs the main job with its default multiprocess
    executor (one process per step); two partitions at once, no lock errors, both committed."""
    shared_dataset("amazon-reviews-2018")
    home = tmp_path / "home"
    settings = _settings(home)
    link_models(home, models_dir)
    env = {**os.environ, **_env(home)}
    (home / "dagster").mkdir(exist_ok=True)
    from assets.runner import _INSTANCE_YAML

    (home / "dagster" / "dagster.yaml").write_text(_INSTANCE_YAML)
    # Prepare the instance as `itdr ui` does before any launch: its storage created once (two fresh
    # processes migrating one new SQLite instance at the same moment race in alembic) and a
    # partition for each dataset whose files are there.
    subprocess.run([sys.executable, "-c", "from assets.runner import prepare_instance; "
                    "from itdr_pipeline.config import Settings; prepare_instance(Settings.from_env())"],
                   env=env, cwd=REPO, check=True)
    dagster = Path(sys.executable).with_name("dagster")
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({"ops": {"preference_records": {"config": {"profiles": ["temporal"]}}}}))
    runs = [subprocess.Popen([str(dagster), "job", "execute", "-m", "assets.definitions", "-j", "main",
                              "--tags", json.dumps({"dagster/partition": key}), "-c", str(config),
                              "--op-selection", ",".join(main_ops(_main_job(home), TWO_TASKS))],
                             env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for key in ("ml-100k", "amazon-reviews-2018.gift-cards")]
    outputs = [r.communicate(timeout=600)[0] for r in runs]
    for run, out in zip(runs, outputs):
        assert run.returncode == 0, out[-3000:]
        assert "Conflicting lock" not in out and "multiprocess" in out
    with catalog.open_catalog(settings) as con:
        rows = dict(con.execute("SELECT dataset, count(*) FROM interactions GROUP BY ALL").fetchall())
        versions = con.execute("SELECT count(DISTINCT version) FROM instructions").fetchone()[0]
    assert rows == {"ml-100k": 100_000, "amazon-reviews-2018.gift-cards": 2_972}
    assert versions == 2


def test_the_storage_layout_written_to_a_second_folder_reads_the_same(tmp_path: Path, models_dir: Path):
    """A stand-in for object storage: the home synced elsewhere (no working files, no locks) answers
    the same queries, because the catalog keeps paths relative to the home."""
    import shutil

    settings = _settings(tmp_path / "home")
    link_models(settings.home, models_dir)
    run_cli("materialize", "--datasets", "demo", "--tasks", "preference,rp", env=_env(settings.home), check=True)
    bucket = tmp_path / "bucket"
    shutil.copytree(settings.home, bucket, ignore=shutil.ignore_patterns("work", "dagster", "models", "*.lock"),
                    symlinks=True)
    sql = "SELECT task, split, count(*) FROM instructions GROUP BY ALL ORDER BY ALL"
    here = run_cli("query", sql, env=_env(settings.home), check=True).stdout
    there = run_cli("query", sql, env=_env(bucket), check=True).stdout
    assert here == there and "rp\ttest" in there


def test_sensor_requests_a_run_when_a_raw_folder_appears_or_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import shutil

    import dagster as dg

    from assets.definitions import raw_files_changed

    raw = tmp_path / "raw"
    raw.mkdir()
    monkeypatch.setenv("ITDR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ITDR_RAW_DIR", str(raw))

    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
        result = raw_files_changed(dg.build_sensor_context(cursor=cursor, instance=instance))
        for request in result.dynamic_partitions_requests:  # what the daemon does with them
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return list(result.run_requests), result.cursor

    requests, cursor = tick(None)
    assert requests == []  # nothing there yet (the synthetic demo is never requested)...
    assert instance.get_dynamic_partitions("datasets") == ["demo"]  # ... but offered in the UI
    folder = raw / "ml-100k"
    folder.mkdir()
    for name in ("u.data", "u.item", "u.user", "u.genre"):
        shutil.copy(shared_dataset("ml-100k") / name, folder / name)
    requests, cursor = tick(cursor)
    assert [r.partition_key for r in requests] == ["ml-100k"]
    assert instance.get_dynamic_partitions("datasets") == ["demo", "ml-100k"]  # the new folder's partition
    first_key = requests[0].run_key
    assert tick(cursor)[0] == []  # unchanged: no new request
    with open(folder / "u.data", "a") as fh:
        fh.write("1\t1\t5\t881250949\n")
    requests, cursor = tick(cursor)
    assert [r.partition_key for r in requests] == ["ml-100k"] and requests[0].run_key != first_key


@pytest.mark.slow
def test_a_ui_launched_run_with_readers_querying_all_through_it(tmp_path: Path, models_dir: Path):
    """`dagster dev` on 127.0.0.1, a run launched over GraphQL (queued, started by the daemon, run
    with the default multiprocess executor), `itdr query` polling meanwhile."""
    import socket

    from dagster_graphql import DagsterGraphQLClient

    settings = _settings(tmp_path / "home")
    link_models(settings.home, models_dir)
    env = _env(settings.home)
    run_cli("materialize", "--datasets", "demo", "--tasks", "preference", env=env, check=True)  # also writes dagster.yaml
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dagster = Path(sys.executable).with_name("dagster")
    server = subprocess.Popen([str(dagster), "dev", "-m", "assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
                              cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # the webserver binds its port (loopback only) once its app has started
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                pass
            assert server.poll() is None, "dagster dev exited"
            assert time.monotonic() < deadline, "dagster dev did not come up"
            time.sleep(1)
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        with _Readers(settings, env) as readers:
            # Two of the twelve tasks, as a user picking assets in the UI does: each step of the
            # multiprocess executor is a fresh process (~5 s of imports on 2 cores).
            run_id = client.submit_job_execution(
                "main", run_config={"ops": {"rp_records": {"config": {"cap": 500}}}},
                tags={"dagster/partition": "demo"},
                asset_selection=[key.to_user_string() for key in main_selection(_main_job(settings.home), TWO_TASKS)])
            deadline = time.monotonic() + 480
            while (status := client.get_run_status(run_id).value) not in ("SUCCESS", "FAILURE", "CANCELED"):
                assert time.monotonic() < deadline, f"run still {status}"
                time.sleep(2)
        assert status == "SUCCESS"
        assert readers.failures == [] and readers.reads >= 2
        tasks = run_cli("query", "SELECT DISTINCT task FROM instructions ORDER BY 1", env=env, check=True).stdout
        assert "rp" in tasks.split() and "preference" in tasks.split()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:  # dagster dev's own shutdown, under CI load, is not under test here
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.slow
def test_sigterm_and_ctrl_c_stop_a_run_cleanly_and_a_killed_run_is_marked_failed(tmp_path: Path, models_dir: Path,
                                                                                 sig: signal.Signals):
    import dagster as dg

    settings = _settings(tmp_path / "home")
    link_models(settings.home, models_dir)
    env = {**os.environ, **_env(settings.home)}

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([str(ITDR), "materialize", "--datasets", "ml-100k", "--tasks", "preference"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_until_held(settings.work / "ml-100k.lock")
        time.sleep(1)
        return proc

    proc = start()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "interrupted (Ctrl-C or SIGTERM)" in err
    victim = start()
    victim.kill()  # kill -9: the run is left STARTED in the instance ...
    victim.wait(timeout=30)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(settings.home / "dagster"))
        with dg.DagsterInstance.get() as instance:
            statuses = [r.status for r in instance.get_runs()]
            assert statuses.count(dg.DagsterRunStatus.STARTED) == 1 and dg.DagsterRunStatus.FAILURE in statuses
            from assets.runner import fail_dead_runs

            dead = fail_dead_runs(instance)  # ... until the next command marks it failed, with the reason
            assert len(dead) == 1
            run = instance.get_run_by_id(dead[0])
            assert run.status == dg.DagsterRunStatus.FAILURE
    # nothing was committed by any of them, and the partition is free
    with catalog.partition(settings, "ml-100k", wait_s=1):
        pass
    assert not settings.catalog.exists()
