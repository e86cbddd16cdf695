"""Versioned, immutable publishing through the real Dagster job (in-process, temp ITDR_HOME)."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from assets.runner import materialize
from data_contracts import load_contract
from itdr_pipeline import publish as publish_mod
from itdr_pipeline.config import Settings
from itdr_pipeline.hashing import sha256_file
from itdr_pipeline.query import run_query
from conftest import link_models


ONE_TASK = ("preference",)


@pytest.fixture(autouse=True)
def _shared_tokenizer(tmp_path, models_dir):
    """Every home these tests publish into reuses the session's converted tokenizer."""
    for name in ("home", "other"):
        link_models(tmp_path / name, models_dir)


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _run(settings: Settings, *datasets: str, tasks: tuple[str, ...] = ()):
    """Every task by default; the version rules under test hold for any task set, so the reruns
    below render one task (a full ml-100k pipeline is ~30 s, and same-bytes covers every task)."""
    outcomes = materialize(settings, list(datasets), list(tasks))
    assert all(o.success for o in outcomes), [o.reason for o in outcomes]
    return outcomes


@pytest.mark.slow
def test_same_input_same_version_same_bytes(tmp_path, home):
    first = _run(home, "ml-100k")[0].metadata["published_splits"]
    other = Settings(home=tmp_path / "other", raw_dir=home.raw_dir).ensure()
    second = _run(other, "ml-100k")[0].metadata["published_splits"]
    assert first["version"] == second["version"] and first["version"].startswith("ml-100k-")
    assert _tree(home.published / first["version"]) == _tree(other.published / second["version"])
    manifest = json.loads((home.published / first["version"] / "manifest.json").read_text())
    assert {s["file"]: s["status"] for s in manifest["sources"]}["u.data"] == "official"
    rows = {(f["profile"], f["split"]): f["rows"] for f in manifest["files"]}
    assert rows[("tallrec", "train")] == 8000 and rows[("tallrec", "test")] == 1000
    table = pq.read_table(home.published / first["version"] / "data/preference-tallrec/test-00000-of-00001.parquet")
    assert table.column_names[:5] == ["version", "dataset", "task", "profile", "split"]
    assert table.column("version").to_pylist() == [first["version"]] * 1000
    # Statistics reach the asset's metadata: a Markdown table and per-cell JSON, as in the manifest.
    assert first["stats"].startswith("| dataset | task | profile | train | valid | test | avg input tokens |")
    assert "| ml-100k | preference | tallrec | 8,000 | 1,000 | 1,000 |" in first["stats"]
    cells = {c["config"]: c for c in manifest["stats"]["cells"]}
    assert first["stats_per_cell"]["preference-tallrec"]["instances"] == {"train": 8000, "valid": 1000, "test": 1000}
    tallrec = first["stats_per_cell"]["preference-tallrec"]
    assert tallrec["avg_input_tokens"] == cells["preference-tallrec"]["avg_input_tokens"] > 100
    assert first["stats_tokenizer"] == "SmolLM2-135M-Instruct"


@pytest.mark.slow
def test_rerun_is_a_noop_and_changed_input_is_a_new_version(raw_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("ITDR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ITDR_RAW_DIR", str(raw_copy))
    settings = Settings.from_env().ensure()
    v1 = _run(settings, "ml-100k", tasks=ONE_TASK)[0].metadata["published_splits"]
    before = _tree(settings.published)
    again = _run(settings, "ml-100k", tasks=ONE_TASK)[0].metadata["published_splits"]
    assert again["version"] == v1["version"] and again["newly_written"] is False
    assert _tree(settings.published) == before
    data = raw_copy / "ml-100k" / "u.data"
    data.write_text(data.read_text().replace("196\t242\t3\t881250949", "196\t242\t4\t881250949", 1))
    v2 = _run(settings, "ml-100k", tasks=ONE_TASK)[0].metadata["published_splits"]
    assert v2["version"] != v1["version"]
    after = _tree(settings.published)
    assert {k: v for k, v in after.items() if k.startswith(v1["version"])} == before  # old version untouched
    latest = run_query(settings, "SELECT DISTINCT version FROM instructions")[1]
    assert latest == [(v2["version"],)]


def test_failed_run_leaves_published_versions_untouched(raw_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("ITDR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ITDR_RAW_DIR", str(raw_copy))
    settings = Settings.from_env().ensure()
    good = _run(settings, "ml-100k", tasks=ONE_TASK)[0].metadata["published_splits"]["version"]
    before = _tree(settings.published)
    data = raw_copy / "ml-100k" / "u.data"
    data.write_text(data.read_text().replace("196\t242\t3\t881250949", "196\t242\t9\t881250949", 1))
    [outcome] = materialize(settings, ["ml-100k"], list(ONE_TASK))
    assert not outcome.success
    assert "check interactions:contract failed" in outcome.reason and "rating_in_scale" in outcome.reason
    assert "9.0" in outcome.reason
    assert _tree(settings.published) == before
    assert run_query(settings, "SELECT DISTINCT version FROM instructions")[1] == [(good,)]
    # The rows that failed sit in the working file: a UI run of the steps after ingest alone (no
    # canonical_tables in its selection) must refuse them, not filter, render and publish them.
    import dagster as dg

    from assets.runner import load_job

    job = load_job(settings, "main")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(partition_key="ml-100k", instance=instance, raise_on_error=False,
                                        asset_selection=[dg.AssetKey("filtered_interactions")])
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    while error.cause is not None:
        error = error.cause
    assert "the canonical tables of the last ingest failed their contracts (interactions: " in error.message
    assert _tree(settings.published) == before


def test_a_crash_mid_publish_leaves_no_half_version(home, monkeypatch):
    calls = {"n": 0}
    real = publish_mod._write_config

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(publish_mod, "_write_config", crash_on_second)
    [outcome] = materialize(home, ["demo"], [])
    assert not outcome.success and "disk full (simulated)" in outcome.reason
    assert list(home.published.iterdir()) == []


def test_asset_metadata_reports_rows_schema_preview(demo_home, monkeypatch):
    from dagster import AssetKey, DagsterInstance

    monkeypatch.setenv("DAGSTER_HOME", str(demo_home.dagster_home))  # the session's published demo
    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(AssetKey("interactions"))
        # Render and publish report the record contract's layout, descriptions included.
        records = {name: instance.get_latest_materialization_event(AssetKey(name)).asset_materialization
                   .metadata["dagster/column_schema"].schema.columns for name in ("rp_records", "published_splits")}
    label = next(c for c in load_contract("instruction_records").columns if c.name == "label")
    for name, columns in records.items():
        assert next(c.description for c in columns if c.name == "label") == label.description, name
    assert [c.name for c in records["published_splits"]] == ["version", *[c.name for c in records["rp_records"]]]
    meta = event.asset_materialization.metadata
    assert meta["dagster/row_count"].value == 13986
    assert [c.name for c in meta["dagster/column_schema"].schema.columns][:3] == ["dataset", "user_id", "item_id"]
    assert meta["preview"].value.startswith("| user_id | item_id |")
    assert meta["source/u.data"].value.endswith("(unverified)")


@pytest.mark.parametrize("sql", ["COPY (SELECT 1) TO '/tmp/x.csv'", "DELETE FROM users", "ATTACH 'x.db'",
                                 "SELECT 1; SELECT 2", "SELECT * FROM read_csv('/etc/passwd')"])
def test_query_is_read_only(demo_home, sql):
    before = run_query(demo_home, "SELECT count(*) FROM instructions")
    with pytest.raises(Exception, match="read-only|exactly one|query failed"):
        run_query(demo_home, sql)
    assert run_query(demo_home, "SELECT count(*) FROM instructions") == before
