"""Render every applicable task and profile of a dataset into `instruction_records` (the
leakage and soundness checks over them: itdr_pipeline.checks, re-exported here)."""

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from itdr_pipeline.errors import ItdrError
from itdr_pipeline.hashing import canonical_json
from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.tasks.base import ROOTS, SEQUENCE_TASKS, TASKS, RenderSettings, build_sequence, require_filtered
from itdr_pipeline.taskspec import task_spec
from itdr_pipeline.templates import templates_sha256
from itdr_pipeline.transactions import rollback
from itdr_pipeline.checks import Finding, check_records  # noqa: F401 (re-exported)

def applicable_tasks(spec: DatasetSpec, requested: list[str] | None, root: str | None = None) -> list[str]:
    """The tasks to render: the requested ones (each must be fed by the dataset), else all it feeds;
    `root` (ablation) keeps one root task's subtasks."""
    if requested:
        unknown = [t for t in requested if t not in TASKS]
        if unknown:
            raise ItdrError(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
        missing = [t for t in requested if t not in spec.tasks]
        if missing:
            raise ItdrError(f"{spec.id} does not feed task(s) {missing}; it feeds {', '.join(spec.tasks)}")
        tasks = list(requested)
    else:
        tasks = [t for t in TASKS if t in spec.tasks]
    if root is not None:
        if root not in ROOTS:
            raise ItdrError(f"unknown root task {root!r}; known: {', '.join(ROOTS)}")
        tasks = [t for t in tasks if t in ROOTS[root]]
    return tasks


def renderer(task: str) -> Callable[..., pa.Table]:
    """The task's render function (TaskSpec.renderer), imported on use."""
    module, name = task_spec(task).renderer.split(":")
    return getattr(importlib.import_module(f"itdr_pipeline.tasks.{module}"), name)


def task_profiles(spec: DatasetSpec, task: str, settings: RenderSettings) -> list[str]:
    profiles = list(settings.profiles)
    if task_spec(task).kind == "windows" and "tallrec" in spec.preference_profiles:
        profiles.append("tallrec")
    return profiles


def cdr_source(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, settings: RenderSettings) -> str | None:
    """The source domain cdr would use, or None when there is none ready in this warehouse."""
    source = settings.cdr_source or spec.extra.get("cdr_partner")
    if source is None or source == spec.id:
        return None
    ready = con.execute("SELECT count(*) FROM filter_runs WHERE dataset = ?", [source]).fetchall()[0][0]
    return source if ready else None


@dataclass(frozen=True)
class RenderOutcome:
    counts: dict[tuple[str, str, str], int]  # (task, profile, split) -> records, for the rendered tasks
    skipped: dict[str, str]  # task -> why it has no records (not fed, no source domain, no eligible targets)
    dropped: dict[str, int]  # reason -> candidates/targets left out while rendering (datatrove-style)


def render_dataset(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, tasks: list[str],
                   settings: RenderSettings, progress: Callable[[str], None] | None = None,
                   explicit: bool = True) -> dict[tuple[str, str, str], int]:
    """Replace the dataset's records of `tasks` (other tasks' records stay); returns row counts per
    (task, profile, split) of those tasks. See render_tasks for `explicit`."""
    return render_tasks(con, spec, tasks, settings, progress, explicit).counts


def render_tasks(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, tasks: list[str],
                 settings: RenderSettings, progress: Callable[[str], None] | None = None,
                 explicit: bool = True) -> RenderOutcome:
    """Replace the dataset's records of `tasks`, in one transaction; a task that yields no record is
    reported as skipped with the reason.

    With `explicit=False` (the task list is the dataset's default), cdr is skipped, with a note,
    when no source domain is configured and ingested; asked for by name, it fails instead."""
    require_filtered(con, spec.id)
    skipped: dict[str, str] = {}
    if not explicit and "cdr" in tasks and cdr_source(con, spec, settings) is None:
        tasks = [t for t in tasks if t != "cdr"]
        skipped["cdr"] = ("no source domain ready (set cdr_source to an ingested dataset, e.g. another category "
                          "of the same source)")
        if progress:
            progress(f"{spec.id}: cdr skipped: {skipped['cdr']}")
    tables: dict[str, list[pa.Table]] = {}
    sequences: dict[bool, str] = {}
    for task in tasks:
        for profile in task_profiles(spec, task, settings):
            if progress:
                progress(f"{spec.id}: rendering {task}/{profile}")
            fn = renderer(task)
            if task in SEQUENCE_TASKS:
                rated = task == "rp"
                if rated not in sequences:
                    sequences[rated] = build_sequence(con, spec.id, rated=rated,
                                                      name="seq_rated" if rated else "seq_all")
                tables.setdefault(task, []).append(fn(con, spec, profile, settings, sequences[rated]))
            else:
                tables.setdefault(task, []).append(fn(con, spec, profile, settings))
    dropped: dict[str, int] = {}
    for table in (t for group in tables.values() for t in group):
        for reason, n in json.loads((table.schema.metadata or {}).get(b"dropped", b"{}")).items():
            dropped[reason] = dropped.get(reason, 0) + n
    empty = [t for t in tasks if sum(r.num_rows for r in tables.get(t, [])) == 0]
    for task in empty:
        kept = con.execute("SELECT kept FROM filter_runs WHERE dataset = ?", [spec.id]).fetchone()[0]
        no_metadata = any(b"no_item_metadata" in (r.schema.metadata or {}).get(b"dropped", b"") for r in tables.get(task, []))
        skipped[task] = ("no interactions to render from (the filtered table is empty; a ratings file may be absent)"
                         if kept == 0 else
                         "no item has the categories or genres an intention is stated from (no item metadata)"
                         if no_metadata else "no eligible targets under these settings (e.g. min_history, cap)")
        if progress:
            progress(f"{spec.id}: {task} skipped: {skipped[task]}")
    config = {"settings": settings.as_dict()}
    con.execute("BEGIN TRANSACTION")
    try:
        for task in dict.fromkeys([*tasks, *skipped]):
            con.execute("DELETE FROM instruction_records WHERE dataset = ? AND task = ?", [spec.id, task])
            con.execute("DELETE FROM render_runs WHERE dataset = ? AND task = ?", [spec.id, task])
        for task in tasks:
            if task in skipped:
                continue
            for records in tables[task]:
                con.execute("INSERT INTO instruction_records BY NAME SELECT * FROM records")
            con.execute("INSERT INTO render_runs VALUES (?, ?, ?, ?)",
                        [spec.id, task, canonical_json(config), templates_sha256([task])])
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    rows = con.execute(
        """SELECT task, profile, split, count(*) FROM instruction_records WHERE dataset = ?
           AND list_contains(?, task) GROUP BY ALL ORDER BY ALL""", [spec.id, tasks]).fetchall()
    return RenderOutcome({(t, p, s): n for t, p, s, n in rows}, skipped, dropped)
