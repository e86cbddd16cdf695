"""`tkr`, top-K recommendation: the user's last interactions (oldest first) and K candidates
(10 by default); the answer lists every candidate once, in the true order.

Candidates: the positives are the target and the user's next interactions (up to
`tkr_positives` in all) that the split profile puts in the target's own split, so a train record
never shows an item the user meets in valid or test; the rest are negatives the user never
interacted with (`NegativeSampler`, uniform or by popularity). The prompt order is a seeded
shuffle. The true order: the positives by time, then the negatives, most popular first.

Which split a following position belongs to is read from every eligible position's split before
any cap (`assign_splits(every=...)`), not from the capped targets, so a next interaction dropped
by a cap still counts as a positive of its own split.
"""

import duckdb
import pyarrow as pa

from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.tasks.base import RenderSettings, assign_splits
from itdr_pipeline.tasks.candidates import build_records, fetch_targets, ranked_context

TASK = "tkr"


def render_tkr(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str, settings: RenderSettings,
               seq: str) -> pa.Table:
    """Records for one profile; `seq` holds every positive interaction (build_sequence(rated=False))."""
    targets = assign_splits(con, seq=seq, dataset=spec.id, task=TASK, profile=profile, settings=settings,
                            out="tkr_targets", every="tkr_every_split")
    rows = fetch_targets(con, seq=seq, targets=targets, history_len=settings.seq_history_len,
                         later=("tkr_every_split", settings.tkr_positives - 1))
    return build_records(con, spec, TASK, profile, settings, rows, size=settings.tkr_candidates, ranked=True,
                         context=ranked_context)
