"""`cdr`, cross-domain recommendation: a user's recent interactions in a source domain (another
dataset, e.g. another Amazon category) and in the target domain (this dataset), and K
target-domain candidates (10 by default) to re-rank; the answer lists them all, the actual next
target-domain item first, then the negatives, most popular first.

Users: those with positive interactions in both domains under the same user_id (Amazon reviewer
ids are shared across categories). Targets: target-domain interactions of those users, chosen and
split by the profile (`base.assign_splits`) among the positions that have at least
`cdr_min_source_history` source-domain interactions before the target's time (a NULL time on
either side counts as before) and at least `cdr_min_history` target-domain ones. Few users
overlap across domains, so the target-domain requirement is lower than the other tasks'
`min_history`: one earlier target-domain interaction is enough.

Negatives come from the target domain and were never interacted with by the user there.
"""

from typing import Any

import duckdb
import pyarrow as pa

from itdr_pipeline.errors import ItdrError
from itdr_pipeline.registry import DatasetSpec, get_dataset
from itdr_pipeline.tasks.base import RenderSettings, assign_splits, build_sequence, domain_vars
from itdr_pipeline.tasks.candidates import (Candidates, Catalogue, build_records, fetch_targets,
                                            ranked_context)

TASK = "cdr"


def source_domain(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, settings: RenderSettings) -> DatasetSpec:
    """The source-domain dataset: the render settings' `cdr_source`, else the registry's partner."""
    source = settings.cdr_source or spec.extra.get("cdr_partner")
    if not source:
        raise ItdrError(f"{spec.id}: cdr needs a source domain: set cdr_source in the render settings "
                        "(e.g. another category of the same source)")
    if source == spec.id:
        raise ItdrError(f"{spec.id}: cdr source domain must be another dataset, not {source} itself")
    source_spec = get_dataset(source)
    if con.execute("SELECT count(*) FROM filter_runs WHERE dataset = ?", [source]).fetchall()[0][0] == 0:
        raise ItdrError(f"{spec.id}: cdr source domain {source} has no filtered_interactions in this warehouse; "
                        f"ingest it first: itdr materialize --datasets {source}")
    return source_spec


def domain_name(spec: DatasetSpec) -> str:
    return spec.category.replace("_", " ") if spec.category else spec.name


def _eligible_sequence(con: duckdb.DuckDBPyConnection, seq: str, source_seq: str, settings: RenderSettings) -> str:
    """The target-domain sequence of overlapping users, cut so that exactly the positions with
    enough source history (and cdr_min_history earlier target ones) have pos >= min_history:
    a user's first `shift` rows are dropped and pos, n renumbered, so assign_splits (which reads
    pos and n) splits among the eligible targets only. `orig_pos` keeps the real position."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE cdr_seq AS
            WITH kth AS (SELECT user_id, ts AS kth_ts FROM {source_seq}
                         WHERE user_id IN (SELECT user_id FROM {seq})
                         QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY ts NULLS FIRST, src_row)
                                 = greatest($k, 1)),
            q AS (SELECT s.*, k.kth_ts FROM {seq} s JOIN kth k USING (user_id)),
            f AS (SELECT user_id, greatest(0, min(pos) - $min_h) AS shift FROM q
                  WHERE $k = 0 OR ts IS NULL OR kth_ts IS NULL OR kth_ts < ts GROUP BY user_id)
            SELECT q.* EXCLUDE (pos, n, kth_ts), q.pos - f.shift AS pos, q.n - f.shift AS n, q.pos AS orig_pos
            FROM q JOIN f USING (user_id) WHERE q.pos >= f.shift""",
        {"k": settings.cdr_min_source_history, "min_h": settings.cdr_min_history},
    )
    return "cdr_seq"


def _source_histories(con: duckdb.DuckDBPyConnection, targets: str, source_seq: str, n: int) -> dict[int, list[str]]:
    """Per record: the user's last `n` source-domain interactions before the target's time."""
    rows = con.execute(
        f"""SELECT record_idx, list(item_id ORDER BY pos) FROM (
                SELECT t.record_idx, s.item_id, s.pos FROM {targets} t JOIN {source_seq} s
                ON s.user_id = t.user_id AND (t.ts IS NULL OR s.ts IS NULL OR s.ts < t.ts)
                QUALIFY row_number() OVER (PARTITION BY t.record_idx ORDER BY s.pos DESC) <= ?)
            GROUP BY record_idx""", [n]).fetchall()
    return dict(rows)


def render_cdr(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str, settings: RenderSettings,
               seq: str) -> pa.Table:
    """Records for one profile; `seq` holds every positive target-domain interaction."""
    source = source_domain(con, spec, settings)
    source_seq = build_sequence(con, source.id, rated=False, name="cdr_source_seq")
    eligible = _eligible_sequence(con, seq, source_seq, settings)
    assign_splits(con, seq=eligible, dataset=spec.id, task=TASK, profile=profile,
                  settings=settings.with_(min_history=settings.cdr_min_history), out="cdr_assigned")
    con.execute("""CREATE OR REPLACE TEMP TABLE cdr_targets AS
                   SELECT t.* REPLACE (s.orig_pos AS pos) FROM cdr_assigned t
                   JOIN cdr_seq s ON s.user_id = t.user_id AND s.pos = t.pos""")
    rows = fetch_targets(con, seq=seq, targets="cdr_targets", history_len=settings.seq_history_len)
    histories = _source_histories(con, "cdr_targets", source_seq, settings.seq_history_len)
    for r in rows:
        r["source_history"] = histories.get(r["record_idx"], [])
    words = domain_vars(source)
    source_items = Catalogue(con, source.id, words["noun"], sorted({i for r in rows for i in r["source_history"]}))
    domains = {"source_domain": domain_name(source), "target_domain": domain_name(spec),
               "source_noun": words["noun"], "source_nouns": words["nouns"]}

    def context(r: dict[str, Any], c: Candidates, catalogue: Catalogue) -> dict[str, Any]:
        return {**ranked_context(r, c, catalogue), **domains,
                "source_history": [source_items.label(i) for i in r["source_history"]]}

    return build_records(con, spec, TASK, profile, settings, rows, size=settings.cdr_candidates, ranked=True,
                         context=context, columns=lambda r: {"source_dataset": source.id,
                                                             "source_history_item_ids": r["source_history"]})
