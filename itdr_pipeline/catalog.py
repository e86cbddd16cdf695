"""Where state lives, so that a writer never blocks a reader (docs/design.md, "Storage").

- Each dataset partition has a private working DuckDB file, `work/<dataset>.duckdb`, opened only
  by the run working on that partition, under an OS file lock (`partition`). The kernel drops the
  lock when the process dies, so a crash (kill -9, OOM) never blocks the next run, and two
  partitions are written in parallel without contention.
- A finished step exports what it wrote as immutable Parquet snapshots (`tables/<table>/<key>/<id>.parquet`,
  written under a temporary name and renamed). The run's last step commits them.
- What readers open is `catalog.duckdb`: typed views over the committed snapshots and over each
  dataset's current published version. A commit builds a new catalog file beside the old one and
  renames it into place, so a reader (read-only, no lock contention: nobody ever writes that
  inode after the rename) sees either the previous or the new complete state, never a mix.
  The catalog's own `_catalog` table is the state; paths in it are relative to ITDR_HOME, so a
  copied or moved home is re-pointed on open (`open_catalog`).
"""

import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError

# Canonical and bookkeeping tables that have a snapshot per key (a dataset, or a report for the
# model tables). The key column selects a partition's rows in the working file.
SNAPSHOT_KEYS: dict[str, str] = {
    "users": "dataset", "items": "dataset", "interactions": "dataset", "reviews": "dataset",
    "rejected_rows": "dataset", "source_files": "dataset", "filtered_interactions": "dataset",
    "filter_runs": "dataset", "instruction_records": "dataset", "render_runs": "dataset",
    "publications": "dataset", "evaluation_results": "report", "model_lineage": "report",
}
INSTRUCTIONS = "instructions"  # the view over each dataset's current published version
# Snapshots no longer referenced are kept this long, so a reader that opened an older catalog
# can finish its query; crash leftovers (temporary files) are removed after the same delay.
RETAIN_S = 3600.0
# A run's staged snapshots are dropped once this old: its later step failed or it was killed.
STAGE_MAX_AGE_S = 2 * 86400.0
_STATE_DDL = "CREATE TABLE _catalog (tbl VARCHAR NOT NULL, key VARCHAR NOT NULL, path VARCHAR NOT NULL)"
_META_DDL = "CREATE TABLE _catalog_meta (home VARCHAR NOT NULL, committed_at TIMESTAMP NOT NULL)"

State = dict[tuple[str, str], str]  # (table, key) -> path relative to ITDR_HOME


@contextmanager
def _flock(path: Path, what: str, wait_s: float, log: Callable[[str], None] | None) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline, said = time.monotonic() + wait_s, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ItdrError(f"{what} is still held by another run after {wait_s:.0f} s ({path}); "
                                    "it is released when that run ends or dies") from None
                if log and not said:
                    log(f"waiting for {what}: another run holds it")
                    said = True
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock, as a dying process does


@contextmanager
def partition(settings: Settings, dataset: str, wait_s: float = 6 * 3600,
              log: Callable[[str], None] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """The dataset's working connection, held exclusively (other runs of the same partition wait)."""
    from itdr_pipeline.warehouse import connect

    with _flock(settings.work / f"{dataset}.lock", f"the {dataset} partition", wait_s, log), \
            connect(settings.work_db(dataset)) as con:
        yield con


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _write_atomic_parquet(con: duckdb.DuckDBPyConnection, select: str, params: list[object], final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{final.name}")
    con.execute(f"COPY ({select}) TO {_sql_str(str(tmp))} (FORMAT parquet, COMPRESSION zstd)", params)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def snapshot(con: duckdb.DuckDBPyConnection, settings: Settings, tables: list[str], key: str) -> State:
    """Export each table's rows for `key` to a new immutable Parquet file; returns the entries to commit."""
    entries: State = {}
    for table in tables:
        column = SNAPSHOT_KEYS[table]  # table and column names come from this module, never from input
        rel = Path("tables") / table / key / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        _write_atomic_parquet(con, f"SELECT * FROM {table} WHERE {column} = $1", [key], settings.home / rel)
        entries[(table, key)] = rel.as_posix()
    return entries


def published_entry(settings: Settings, dataset: str, version: str) -> State:
    """The catalog entry that makes `version` the dataset's current one in the `instructions` view."""
    return {(INSTRUCTIONS, dataset): settings.published.joinpath(version).relative_to(settings.home).as_posix()}


def read_state(settings: Settings) -> State:
    if not settings.catalog.is_file():
        return {}
    with duckdb.connect(":memory:") as con:  # not connect(path): see open_catalog
        con.execute(f"ATTACH {_sql_str(str(settings.catalog))} AS catalog (READ_ONLY)")
        return {(t, k): p for t, k, p in con.execute("SELECT tbl, key, path FROM catalog._catalog").fetchall()}


def build(con: duckdb.DuckDBPyConnection, settings: Settings, state: State) -> None:
    """Create every reader-facing table (typed and empty) or view (over the state's files) on `con`."""
    from itdr_pipeline.publish import COLUMNS, MANIFEST
    from itdr_pipeline.warehouse import ensure_schema, record_ddl

    ensure_schema(con)
    for table in SNAPSHOT_KEYS:
        files = sorted(str(settings.home / p) for (t, _), p in state.items() if t == table)
        if files:  # paths are ours (validated ids, generated names); view DDL takes no parameters
            con.execute(f"DROP TABLE {table}")
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{', '.join(map(_sql_str, files))}], "
                        "union_by_name = true)")
    files = []
    for (t, _), folder in sorted(state.items()):
        if t == INSTRUCTIONS:
            manifest = json.loads((settings.home / folder / MANIFEST).read_text())
            files += [str(settings.home / folder / f["path"]) for f in manifest["files"]]
    if files:
        con.execute(f"CREATE OR REPLACE VIEW {INSTRUCTIONS} AS SELECT * FROM read_parquet("
                    f"[{', '.join(map(_sql_str, sorted(files)))}], union_by_name = true)")
    else:
        con.execute(f"CREATE OR REPLACE TABLE {INSTRUCTIONS} ({record_ddl(COLUMNS)})")


def commit(settings: Settings, entries: State) -> Path:
    """Make `entries` visible to readers at once: a new catalog file, renamed over the old one."""
    with _flock(settings.home / "catalog.lock", "the catalog", 600, None):
        state = {**read_state(settings), **entries}
        tmp = settings.home / f".tmp-catalog-{uuid.uuid4().hex[:12]}.duckdb"
        try:
            with duckdb.connect(str(tmp)) as con:
                build(con, settings, state)
                con.execute(_STATE_DDL)
                if state:
                    con.executemany("INSERT INTO _catalog VALUES (?, ?, ?)",
                                    [[t, k, p] for (t, k), p in sorted(state.items())])
                con.execute(_META_DDL)
                con.execute("INSERT INTO _catalog_meta VALUES (?, current_timestamp)", [str(settings.home)])
                con.execute("CHECKPOINT")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, settings.catalog)
        finally:
            tmp.unlink(missing_ok=True)
        collect_garbage(settings, state)
    return settings.catalog


def collect_garbage(settings: Settings, state: State, retain_s: float = RETAIN_S) -> list[Path]:
    """Remove snapshots the state no longer references and crash leftovers, once older than retain_s."""
    keep = {settings.home / p for p in state.values()}
    for staged in (settings.home / "staging").glob("*.json"):  # runs still in flight
        try:
            if staged.stat().st_mtime < time.time() - STAGE_MAX_AGE_S:  # a run that failed half-way
                staged.unlink()
                continue
            keep |= {settings.home / p for _, _, p in json.loads(staged.read_text())}
        except (FileNotFoundError, ValueError):
            pass
    cutoff, removed = time.time() - retain_s, []
    candidates = list((settings.home / "tables").rglob("*.parquet")) + list(settings.home.glob(".tmp-catalog-*"))
    candidates += list((settings.home / "tables").rglob(".tmp-*"))
    for path in candidates:
        try:
            if path not in keep and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            pass
    return removed


@contextmanager
def open_catalog(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only view of the last committed state. A catalog built for another path (a copied or
    moved ITDR_HOME) is rebuilt in memory over this home's files."""
    if not settings.catalog.is_file():
        raise ItdrError(f"nothing committed yet under {settings.home}; run `itdr materialize` first")
    # ATTACH from a fresh in-memory database, not duckdb.connect(path): DuckDB caches one
    # database instance per path and process, so a second connect while an older connection is
    # open would reuse the old (renamed-over) file and miss every later commit.
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {_sql_str(str(settings.catalog))} AS catalog (READ_ONLY)")
        home = con.execute("SELECT home FROM catalog._catalog_meta").fetchone()[0]
        if home != str(settings.home):
            state = {(t, k): p for t, k, p in con.execute("SELECT tbl, key, path FROM catalog._catalog").fetchall()}
            con.execute("DETACH catalog")
            build(con, settings, state)
        else:
            con.execute("USE catalog")
        yield con
    finally:
        con.close()


def import_partition(con: duckdb.DuckDBPyConnection, settings: Settings, dataset: str, tables: list[str]) -> bool:
    """Copy another dataset's committed rows into this working file (cdr reads its source domain);
    False when that dataset has nothing committed."""
    state = read_state(settings)
    if any((t, dataset) not in state for t in tables):
        return False
    for table in tables:
        path = settings.home / state[(table, dataset)]
        con.execute(f"DELETE FROM {table} WHERE {SNAPSHOT_KEYS[table]} = ?", [dataset])
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet({_sql_str(str(path))})")
    return True


@dataclass
class RunStage:
    """Snapshots of one run's finished steps, kept aside until the run's last step commits them
    (a run that fails half-way leaves the catalog as it was: readers see the last green run)."""

    settings: Settings
    run_id: str

    @property
    def path(self) -> Path:
        return self.settings.home / "staging" / f"{self.run_id}.json"

    def add(self, entries: State) -> None:
        with _flock(self.settings.home / "staging" / ".lock", "the staging area", 600, None):
            staged = self._read()
            staged.update(entries)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps([[t, k, p] for (t, k), p in sorted(staged.items())]))
            os.replace(tmp, self.path)

    def _read(self) -> State:
        if not self.path.is_file():
            return {}
        return {(t, k): p for t, k, p in json.loads(self.path.read_text())}

    def commit(self, entries: State) -> None:
        self.add(entries)
        commit(self.settings, self._read())
        self.path.unlink(missing_ok=True)
