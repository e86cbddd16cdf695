"""`nir`, next item recommendation: the user's last interactions, oldest first, each shown as
`title:category` (the first genre, else the first category; nothing where the item has
neither), and N candidates (5 by default): the actual next item and negatives the user never
interacted with, in a seeded shuffle. The answer is the next item's title."""

from typing import Any

import duckdb
import pyarrow as pa

from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.tasks.base import RenderSettings, assign_splits
from itdr_pipeline.tasks.candidates import Candidates, Catalogue, build_records, fetch_targets

TASK = "nir"


def _context(r: dict[str, Any], c: Candidates, catalogue: Catalogue) -> dict[str, Any]:
    labels = catalogue.distinct_labels(c.shown)
    history = [{"title": catalogue.label(i), "category": catalogue.category(i)} for i in r["history"]]
    return {"history": history, "candidates": [labels[i] for i in c.shown], "answer": labels[r["item_id"]],
            "k": len(c.shown)}


def render_nir(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str, settings: RenderSettings,
               seq: str) -> pa.Table:
    """Records for one profile; `seq` holds every positive interaction (build_sequence(rated=False))."""
    targets = assign_splits(con, seq=seq, dataset=spec.id, task=TASK, profile=profile, settings=settings,
                            out="nir_targets")
    rows = fetch_targets(con, seq=seq, targets=targets, history_len=settings.seq_history_len)
    return build_records(con, spec, TASK, profile, settings, rows, size=settings.nir_candidates, ranked=False,
                         context=_context)
