"""The `itdr` console script, run as a user runs it (subprocess, temp ITDR_HOME)."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, SHARED_RAW, run_cli


def test_datasets_lists_ids_first(home):
    out = run_cli("datasets", check=True).stdout.splitlines()
    ids = [line.split("\t")[0] for line in out]
    assert ids[:4] == ["demo", "ml-100k", "ml-1m", "ml-latest-small"] and len(ids) == len(set(ids))
    assert "synthetic" in out[0].lower() and f"present: {SHARED_RAW / 'ml-100k'}" in out[1]
    assert "missing (set ITDR_RAW_DIR or run `itdr fetch ml-32m`)" in out[ids.index("ml-32m")]
    # Per-category sources share a folder: a category whose files are not there is not "present".
    assert f"present: {SHARED_RAW / 'amazon-reviews-2018'}" in out[ids.index("amazon-reviews-2018.gift-cards")]
    assert "\tincomplete: " in out[ids.index("amazon-reviews-2018.software")]


def test_weekly_refresh_requests_only_datasets_that_are_there(home):
    import datetime

    import dagster as dg

    from assets.definitions import weekly_refresh

    there = ["demo", "ml-100k", "ml-1m", "ml-latest-small", "amazon-reviews-2018.gift-cards",
             "amazon-reviews-2018.magazine-subscriptions", "steam"]
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(scheduled_execution_time=datetime.datetime(2026, 11, 23, 3),
                                        instance=instance)
        assert [r.partition_key for r in weekly_refresh(ctx)] == there
        assert instance.get_dynamic_partitions("datasets") == there  # each requested key is a partition


def test_datasets_shows_one_dataset_in_detail(home):
    rows = [line.split("\t", 1) for line in run_cli("datasets", "ml-1m", check=True).stdout.splitlines()]
    detail = {}
    for key, value in rows:
        detail.setdefault(key, []).append(value)
    assert detail["terms"][0].startswith("Research use only") and "Harper" in detail["citation"][0]
    assert detail["file"][0] == ("ratings.dat (optional, absent; "
                                 "sha256 506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f)")
    assert detail["file"][1].startswith("movies.dat (required, present;")
    assert detail["download"] == ["https://files.grouplens.org/datasets/movielens/ml-1m.zip "
                                  "(md5 c4d9eecfca2ab87c1945afe126590906)"]


def test_materialize_demo_then_query_and_export(home, tmp_path):
    done = run_cli("materialize", check=True)
    assert "demo [SYNTHETIC demo data]: published demo-" in done.stdout and "itdr ui" in done.stdout
    q = run_cli("query", "SELECT task, profile, split, count(*) AS n FROM instructions GROUP BY ALL ORDER BY ALL",
                check=True)
    lines = q.stdout.splitlines()
    assert lines[0] == "task\tprofile\tsplit\tn" and "preference\ttallrec\ttrain\t8000" in lines
    # Every task the demo feeds, in its default profile; cells capped at 6,250 (5,000 / 625 / 625).
    assert {tuple(line.split("\t")[:2]) for line in lines[1:]} == {
        ("preference", "tallrec"), *((t, "temporal") for t in ("preference", "rp", "tkr", "nir", "uap", "tui"))}
    assert "rp\ttemporal\ttest\t625" in lines and "tkr\ttemporal\ttrain\t5000" in lines
    assert "uap\ttemporal\ttest\t20" in lines and "tui\ttemporal\ttrain\t245" in lines  # one record per user / item
    out = tmp_path / "alpaca"
    run_cli("export", "--dataset", "demo", "--task", "preference", "--profile", "tallrec", "--format", "alpaca",
            "--out", str(out), check=True)
    train = json.loads((out / "train.json").read_text())
    assert len(train) == 8000 and set(train[0]) == {"instruction", "input", "output"}
    assert [len(json.loads((out / f"{s}.json").read_text())) for s in ("valid", "test")] == [1000, 1000]


def _one_line_failure(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_failures_are_one_line_and_non_zero(home, tmp_path):
    assert "invalid dataset id '../x'" in _one_line_failure(run_cli("materialize", "--datasets", "../x"))
    assert "unknown task(s) ['xyz']" in _one_line_failure(run_cli("materialize", "--tasks", "xyz"))
    assert "demo does not feed task(s) ['ir']" in _one_line_failure(run_cli("materialize", "--tasks", "ir"))
    assert "unknown split profile(s) ['weekly']" in _one_line_failure(run_cli("materialize", "--profiles", "weekly"))
    assert "fraction must be in (0, 1]" in _one_line_failure(run_cli("materialize", "--fraction", "1.5"))
    assert "read-only" in _one_line_failure(run_cli("query", "DROP TABLE users"))
    assert "nothing committed yet" in _one_line_failure(run_cli("query", "SELECT 1"))
    assert "nothing published yet" in _one_line_failure(
        run_cli("export", "--dataset", "demo", "--task", "preference", "--out", str(tmp_path / "x")))


def test_materialize_reports_a_contract_failure(raw_copy, tmp_path):
    data = raw_copy / "ml-100k" / "u.data"
    data.write_text(data.read_text().replace("196\t242\t3\t881250949", "196\t242\t9\t881250949", 1))
    env = {"ITDR_HOME": str(tmp_path / "home"), "ITDR_RAW_DIR": str(raw_copy)}
    line = _one_line_failure(run_cli("materialize", "--datasets", "ml-100k", env=env))
    assert line.startswith("error: ml-100k: check interactions:contract failed")
    assert "rating_in_scale" in line and "offending values: 9.0" in line


def test_dagster_definitions_validate(home):
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "All code locations passed validation" in result.stderr + result.stdout


def test_tasks_matrix_and_templates_listing(home):
    rows = {line.split()[0]: line.split()[1:] for line in run_cli("tasks", check=True).stdout.splitlines() if line.strip()}
    header = rows["dataset"]
    assert header == ["preference", "preference_hints", "rp", "tkr", "cdr", "nir", "uap", "ir", "tui", "seqrec",
                      "search", "psearch"]
    assert dict(zip(header, rows["ml-100k"])) == {"preference": "x", "preference_hints": "x", "rp": "x", "tkr": "x",
                                                   "cdr": ".", "nir": "x", "uap": "x", "ir": ".", "tui": "x",
                                                   "seqrec": "x", "search": "x", "psearch": "x"}
    assert dict(zip(header, rows["lastfm-1k"]))["uap"] == "x" and rows["lastfm-1k"].count("x") == 1
    assert dict(zip(header, rows["ml-1m"]))["preference_hints"] == "."  # ml-100k alone feeds it (TALLRec's)
    listing = [line.split("\t") for line in run_cli("templates", check=True).stdout.splitlines()]
    per_task = {}
    for template_id, task, axes, flag, *_ in listing:
        per_task.setdefault(task, []).append(flag)
    assert set(per_task) == set(header)
    assert all(flags.count("seen") >= 3 and flags.count("held-out") <= 1 for flags in per_task.values())
    full = run_cli("templates", "--task", "nir", "--full", check=True).stdout
    assert "  input:" in full and "{{" in full
    # InstructRec axes: every template has them; --axes filters (P1 and I2: personalized search only).
    assert {axes for _, _, axes, *_ in listing} >= {"P1I0T0", "P1I0T3", "P0I2T3", "P0I1T3", "P1I2T3", "P2I2T3"}
    chosen = [line.split("\t") for line in run_cli("templates", "--axes", "P1,I2", check=True).stdout.splitlines()]
    main = [(task, axes) for _, task, axes, flag, *_ in chosen if not flag.startswith("augment:")]
    assert set(main) == {("psearch", "P1I2T3")} and len(main) == 9
    # The train-only augmentation templates list with their kind: flips generate (T2), consistency is yes/no (T0).
    assert sorted((axes, flag) for _, _, axes, flag, *_ in chosen if flag.startswith("augment:")) == [
        ("P1I2T0", "augment:consistency")] * 3 + [("P1I2T2", "augment:flip")] * 3
    bad = run_cli("templates", "--axes", "P7")
    assert bad.returncode == 1 and "unknown axis value(s) ['P7']" in bad.stderr


def test_materialize_with_profiles_and_ablations(home):
    run_cli("materialize", "--tasks", "rp,uap", "--profiles", "random_user,leave_one_out", "--fraction", "0.5",
            "--no-descriptions", check=True)
    q = run_cli("query", "SELECT task, profile, split, count(*), max(length(instruction)) FROM instructions "
                         "GROUP BY ALL ORDER BY ALL", check=True)
    rows = [line.split("\t") for line in q.stdout.splitlines()[1:]]
    assert {(r[0], r[1]) for r in rows} == {("rp", "random_user"), ("rp", "leave_one_out"),
                                              ("uap", "random_user"), ("uap", "leave_one_out")}
    assert {r[4] for r in rows} == {"0"}  # no task descriptions
    loo = {r[2]: int(r[3]) for r in rows if r[:2] == ["rp", "leave_one_out"]}
    assert loo["valid"] == loo["test"] == 200  # one per demo user


def test_a_config_file_gives_options_and_flags_override_it(home, tmp_path):
    def said(result) -> str:  # typer's error box: one wide line (COLUMNS), its frame dropped
        return " ".join(result.stderr.replace("│", " ").split())

    wide = {"COLUMNS": "1000"}  # a long tmp path would be folded mid-name in an 80-column box

    run = tmp_path / "run.yaml"
    run.write_text("dataset: nosuch-a\nmax-steps: 300\nvalid_every: 100\n")
    assert "unknown dataset 'nosuch-a'" in run_cli("train", "--config", str(run)).stderr
    assert "unknown dataset 'nosuch-b'" in run_cli("train", "--config", str(run), "--dataset", "nosuch-b").stderr
    # a flag from the file: without skip-tuned, evaluate would stop at "give --adapter"
    run.write_text("skip-tuned: true\ndataset: nosuch-c\n")
    assert "unknown dataset 'nosuch-c'" in run_cli("evaluate", "--config", str(run)).stderr
    run.write_text("datasets: [nosuch-d, ml-100k]\n")  # a list for a comma-separated option
    assert "unknown dataset 'nosuch-d'" in run_cli("materialize", "--config", str(run)).stderr

    run.write_text("steps: 300\n")
    bad = run_cli("train", "--config", str(run), env=wide)
    assert bad.returncode == 2
    assert f"{run}: unknown option(s) steps; this command takes:" in said(bad) and "max-steps" in said(bad)
    run.write_text("max-steps: [1\n")
    bad = run_cli("train", "--config", str(run), env=wide)
    assert bad.returncode == 2 and f"{run}: line 2, column 1: expected ',' or ']'" in said(bad)
    run.write_text("- max-steps\n")
    assert "expected a mapping of option names to values, got list" in said(run_cli("train", "--config", str(run), env=wide))
