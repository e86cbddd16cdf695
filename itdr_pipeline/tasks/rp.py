"""`rp`, rating prediction: the user's earlier ratings (`Title (rating)`) and a target title; the
answer is the user's actual rating of the target, in the source's own scale (half stars where the
source has them)."""

import json

import duckdb
import pyarrow as pa

from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.tasks.base import (RecordBuilder, RenderSettings, assign_splits, choose_template, domain_vars,
                                      format_rating, item_label, task_templates)

TASK = "rp"


def render_rp(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str, settings: RenderSettings,
              seq: str) -> pa.Table:
    """Records for one profile; `seq` is the rated sequence table (base.build_sequence(rated=True))."""
    targets = assign_splits(con, seq=seq, dataset=spec.id, task=TASK, profile=profile, settings=settings,
                            out="rp_targets")
    rows = con.sql(
        f"""SELECT t.split, t.record_idx, t.user_id, t.item_id, t.ts, t.rating, ti.title AS target_title,
                   list(h.item_id ORDER BY h.pos) AS history_ids, list(hi.title ORDER BY h.pos) AS history_titles,
                   list(h.rating ORDER BY h.pos) AS history_ratings
            FROM {targets} t
            JOIN {seq} h ON h.user_id = t.user_id AND h.pos BETWEEN t.pos - ? AND t.pos - 1
            LEFT JOIN items ti ON ti.dataset = ? AND ti.item_id = t.item_id
            LEFT JOIN items hi ON hi.dataset = ? AND hi.item_id = h.item_id
            GROUP BY ALL ORDER BY t.record_idx""",
        params=[settings.history_len, spec.id, spec.id],
    ).to_arrow_table().to_pylist()
    templates, held_out = task_templates(TASK, profile)
    words = domain_vars(spec)
    scale = {"rating_min": format_rating(spec.rating_min), "rating_max": format_rating(spec.rating_max),
             "half_stars": any(e.get("id") == "half_star_steps" for _, e in spec.expectations)}
    out = RecordBuilder(spec, TASK, profile, settings)
    for r in rows:
        noun = words["noun"]
        history = [{"title": item_label(t, i, noun), "rating": format_rating(v)}
                   for i, t, v in zip(r["history_ids"], r["history_titles"], r["history_ratings"])]
        rating = format_rating(r["rating"])
        template = choose_template(templates, held_out, settings, spec.id, TASK, r["split"],
                                   (profile, r["user_id"], r["item_id"]))
        out.add(template=template, split=r["split"], record_idx=r["record_idx"],
                context={**words, **scale, "history": history, "target": item_label(r["target_title"], r["item_id"], noun),
                         "rating": rating},
                user_id=r["user_id"], target_item_id=r["item_id"], label=float(r["rating"]),
                answer_json=json.dumps({"rating": r["rating"]}), history_item_ids=r["history_ids"],
                history_labels=[float(v) for v in r["history_ratings"]], target_ts=r["ts"])
    return out.table()
