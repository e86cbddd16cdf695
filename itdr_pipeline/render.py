"""Render every applicable task/profile of a dataset into `instruction_records`, and check them."""

from dataclasses import dataclass

import duckdb

from itdr_pipeline.errors import ItdrError
from itdr_pipeline.hashing import canonical_json
from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.tasks.preference import PreferenceConfig, render_preference
from itdr_pipeline.templates import templates_sha256

TASKS = ("preference",)
# Profiles whose splits must be leakage-free (tallrec reproduces a published design as it is).
CLEAN_PROFILES = ("temporal",)


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str  # ERROR blocks publishing, WARN is reported
    passed: bool
    detail: str


def applicable_tasks(spec: DatasetSpec, requested: list[str] | None) -> list[str]:
    if not requested:
        return [t for t in TASKS if t in spec.tasks]
    unknown = [t for t in requested if t not in TASKS]
    if unknown:
        raise ItdrError(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    missing = [t for t in requested if t not in spec.tasks]
    if missing:
        raise ItdrError(f"{spec.id} does not feed task(s) {missing}; it feeds {', '.join(spec.tasks)}")
    return list(requested)


def render_dataset(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, tasks: list[str], cfg: PreferenceConfig
) -> dict[tuple[str, str, str], int]:
    """Replace the dataset's records; returns row counts per (task, profile, split)."""
    tables = [render_preference(con, spec, p, cfg) for p in spec.preference_profiles] if "preference" in tasks else []
    config = {"tasks": tasks, "profiles": list(spec.preference_profiles), "preference": cfg.as_dict()}
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM instruction_records WHERE dataset = ?", [spec.id])
        for records in tables:
            con.execute("INSERT INTO instruction_records BY NAME SELECT * FROM records")
        con.execute("DELETE FROM render_runs WHERE dataset = ?", [spec.id])
        con.execute("INSERT INTO render_runs VALUES (?, ?, ?)", [spec.id, canonical_json(config), templates_sha256(tasks)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    rows = con.execute(
        """SELECT task, profile, split, count(*) FROM instruction_records WHERE dataset = ?
           GROUP BY ALL ORDER BY ALL""", [spec.id]).fetchall()
    return {(t, p, s): n for t, p, s, n in rows}


def check_records(con: duckdb.DuckDBPyConnection, dataset: str) -> list[Finding]:
    """Leakage and soundness checks over the rendered records of one dataset."""
    findings = []
    for profile in con.execute(
        "SELECT DISTINCT profile FROM instruction_records WHERE dataset = ? ORDER BY 1", [dataset]
    ).fetchall():
        profile = profile[0]
        severity = "ERROR" if profile in CLEAN_PROFILES else "WARN"
        late_train = con.execute(
            """SELECT count(DISTINCT user_id) FROM (
                   SELECT user_id, max(target_ts) FILTER (split = 'train') AS last_train,
                          min(target_ts) FILTER (split = 'test') AS first_test
                   FROM instruction_records WHERE dataset = ? AND profile = ? GROUP BY user_id)
               WHERE last_train > first_test""", [dataset, profile]).fetchone()[0]
        findings.append(Finding(f"{profile}_test_after_train", severity, late_train == 0,
                                f"{late_train} user(s) have a train target later than one of their test targets"))
        dupes = con.execute(
            """SELECT count(*) FROM (
                   SELECT user_id, target_item_id, history_item_ids FROM instruction_records
                   WHERE dataset = ? AND profile = ? GROUP BY ALL HAVING count(DISTINCT split) > 1)""",
            [dataset, profile]).fetchone()[0]
        findings.append(Finding(f"{profile}_no_cross_split_duplicates", severity, dupes == 0,
                                f"{dupes} record(s) appear in more than one split"))
    return findings
