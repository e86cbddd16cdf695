"""What every task shares. This module holds template choice and the record builder, and
re-exports the rest so a renderer imports one place: settings (tasks.settings), interaction
sequences, split profiles and caps (tasks.splits) and negative sampling (tasks.sampling).

Sequence tasks (preference, rp, tkr, nir, cdr) turn one interaction of a user into one record:
the *target*, with the user's earlier interactions as history. Which targets go to which split is
the split profile's job (`assign_splits`):

- `temporal` (default): per user, the latest targets go to test, the ones before to valid, the
  rest to train, so every test target comes after all of that user's train targets.
- `leave_one_out`: per user, the last target to test, the one before to valid (P5, RecBole).
- `random_user`: users split 8:1:1 by a stable hash of (seed, dataset, user).
- `global_temporal`: one pair of cut points in time for everyone (the 80th and 90th percentile of
  target times): train before, valid between, test after.

InstructRec's seqrec and psearch are sequence tasks too; its product search (`search`) makes one
record per item and splits items like an entity task.

Entity tasks (uap and ir per user, tui per item) make one record per user or item; whatever the
profile, they split entities 8:1:1 by the same stable hash, so under `random_user` a user's
records of every task land in the same split.

Every sampling decision (per-user train cap, the per-cell cap, the data fraction, negatives,
template choice) is a pure function of the seed and the record's key, so the same inputs give the
same bytes and changing one record never reshuffles another.
"""

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml

from itdr_pipeline.errors import ItdrError
from itdr_pipeline.records import RECORD_SCHEMA, SPLITS  # noqa: F401 (SPLITS: re-exported)
from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.taskspec import TASKS  # noqa: F401 (re-exported)
from itdr_pipeline.tasks.sampling import NegativeSampler  # noqa: F401 (re-exported)
from itdr_pipeline.tasks.settings import (  # noqa: F401 (re-exported)
    _POSITIVE, ENTITY_TASKS, INSTRUCTREC_NEGATIVES, INSTRUCTREC_TASKS, NEGATIVE_MODES, PROFILES, ROOTS,
    SEQUENCE_TASKS, STAGE_SLOT, TEMPORAL_PROFILES, RenderSettings)
from itdr_pipeline.tasks.splits import (  # noqa: F401 (re-exported)
    _used, assign_splits, build_sequence, cap_entities, entity_split, install_macros, require_filtered,
    split_caps, stable_int)
from itdr_pipeline.templates import TEMPLATE_DIR, Template, templates_for

@cache
def _domains() -> dict[str, dict[str, str]]:
    return yaml.safe_load((TEMPLATE_DIR / "domains.yaml").read_text(encoding="utf-8"))["domains"]


def domain_vars(spec: DatasetSpec) -> dict[str, str]:
    """Domain wording for templates (noun, nouns, domain, verb, verb_past), keyed by the item noun."""
    domains = _domains()
    if spec.item_noun not in domains:
        raise ItdrError(f"templates/domains.yaml has no wording for item noun {spec.item_noun!r} ({spec.id})")
    return dict(domains[spec.item_noun])


def item_label(title: str | None, item_id: str, noun: str) -> str:
    """What a prompt calls an item: its title, or (no title in the source) the noun and its id."""
    return title if title else f"{noun} {item_id}"


def format_rating(value: float) -> str:
    """A rating in the source's own scale: 4 -> "4", 3.5 -> "3.5"."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def choose_template(templates: list[Template], held_out: Template | None, settings: RenderSettings,
                    dataset: str, task: str, split: str, key: object) -> Template:
    if split == "test" and settings.unseen_template_test:
        if held_out is None:
            raise ItdrError(f"unseen_template_test: task {task!r} has no held-out template")
        return held_out
    if len(templates) == 1:
        return templates[0]
    return templates[stable_int(settings.seed, dataset, task, "template", key) % len(templates)]


def task_templates(task: str, profile: str) -> tuple[list[Template], Template | None]:
    """The templates used for rendering and the task's held-out one (or None)."""
    seen = templates_for(task, profile)
    held = [t for t in templates_for(task, profile, include_held_out=True) if t.held_out]
    return seen, (held[0] if held else None)


class RecordBuilder:
    """Collects one cell's records and renders its templates (the description is left empty
    when the `descriptions` ablation is off)."""

    def __init__(self, spec: DatasetSpec, task: str, profile: str, settings: RenderSettings):
        self.spec, self.task, self.profile, self.settings = spec, task, profile, settings
        self.rows: list[dict[str, Any]] = []
        self.dropped: dict[str, int] = {}

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def add(self, *, template: Template, context: dict[str, Any], split: str, record_idx: int,
            reference_generator: str = "data", **columns: Any) -> None:
        description, text_in, text_out = template.render(context)
        self.rows.append({
            "dataset": self.spec.id, "task": self.task, "profile": self.profile, "split": split,
            "record_idx": record_idx, "template_id": template.id,
            "instruction": description if self.settings.descriptions else "",
            "input": text_in, "output": text_out, "reference_generator": reference_generator, **columns,
        })

    def table(self) -> pa.Table:
        defaults = {"candidate_item_ids": [], "candidate_texts": [], "history_labels": [], "ranking_item_ids": [], "history_item_ids": [],
                    "source_history_item_ids": []}
        rows = [{**defaults, **r} for r in self.rows]
        rows.sort(key=lambda r: r["record_idx"])
        unknown = {k for r in rows for k in r} - set(RECORD_SCHEMA.names)
        if unknown:
            raise ValueError(f"{self.task}: unknown record columns {sorted(unknown)}")
        table = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
        # Why candidates left the cell travels with the table, for the render asset's metadata.
        return table.replace_schema_metadata({"dropped": json.dumps(self.dropped, sort_keys=True)})


def load_items(con: duckdb.DuckDBPyConnection, dataset: str, item_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Item rows (every column of `items`) for these ids, keyed by id."""
    wanted = pa.table({"item_id": sorted(set(item_ids))})
    rows = con.sql("SELECT i.* EXCLUDE (dataset) FROM items i JOIN wanted USING (item_id) WHERE i.dataset = ?",
                   params=[dataset]).to_arrow_table().to_pylist()
    return {r["item_id"]: r for r in rows}


def template_path(task: str) -> Path:
    return TEMPLATE_DIR / f"{task}.yaml"
