"""The `preference` task (TALLRec's): will the user like the target item? ("Yes." / "No.")
and `preference_hints`, the same windows whose input also states collaborative hints.

Label: rating > the source's like threshold (TALLRec's rule: > 3 on 1-5 stars). Profiles:

- `tallrec` reproduces TALLRec's released movie data record for record: users in order of first
  appearance in the file, every window with 10 prior items, the LAST 10,000 windows overall, split
  by position 8:1:1. Its test set covers only a handful of users (16 on ml-100k).
- every split profile of `tasks.base` (temporal by default): the clean designs, with per-user
  caps (train sampled by a seeded hash) so heavy users do not dominate.

`preference_hints` (its own config, so the plain TALLRec data stays exact) renders the same
records, labels and splits and adds what a classic recommender reads: the user's like ratio, the
target's like rate and its number of raters. They are counted over the train split only (every
(user, item, liked) a train record shows, as target or in its history), always leaving out the
record's own target interaction, so a train record's hint never contains its own label.
"""

from collections import defaultdict
from typing import Any

import duckdb
import pyarrow as pa

from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.tasks.base import (PROFILES, RecordBuilder, RenderSettings, assign_splits, build_sequence,
                                      choose_template, domain_vars, item_label, require_filtered, task_templates)

TASK = "preference"
ALL_PROFILES = (*PROFILES, "tallrec")


def _tallrec_users(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, cfg: RenderSettings) -> None:
    # Only users whose windows reach the last N matter; per-user counts find them with one
    # GROUP BY, so the sequence (a sort of every interaction) is built for a handful of users.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE pref_users AS
           WITH u AS (SELECT user_id, greatest(count(*) - $h, 0) AS windows, min(src_row) AS first_row
                      FROM filtered_interactions WHERE dataset = $dataset AND rating IS NOT NULL GROUP BY user_id),
           w AS (SELECT *, sum(windows) OVER (ORDER BY first_row DESC ROWS UNBOUNDED PRECEDING) AS from_end FROM u)
           SELECT user_id FROM w WHERE windows > 0 AND from_end - windows < $n""",
        {"h": cfg.history_len, "dataset": spec.id, "n": cfg.tallrec_records},
    )


def _sequence(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, only_selected_users: bool = False) -> None:
    user_filter = "AND i.user_id IN (SELECT user_id FROM pref_users)" if only_selected_users else ""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE pref_seq AS
           SELECT i.user_id, i.item_id, i.ts, i.rating > ? AS liked,
                  row_number() OVER (PARTITION BY i.user_id ORDER BY i.ts, i.src_row) - 1 AS pos,
                  count(*) OVER (PARTITION BY i.user_id) AS n,
                  min(i.src_row) OVER (PARTITION BY i.user_id) AS first_row
           FROM filtered_interactions i WHERE i.dataset = ? AND i.rating IS NOT NULL {user_filter}""",
        [spec.like_threshold, spec.id],
    )


def _tallrec_targets(con: duckdb.DuckDBPyConnection, cfg: RenderSettings) -> None:
    # TALLRec: windows of exactly `history_len` priors, users in order of first appearance,
    # keep the last N windows, split by position with int(n*0.8) / int(n*0.9) cut points.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE pref_targets AS
           WITH w AS (
               SELECT *, row_number() OVER (ORDER BY first_row, pos) AS g, count(*) OVER () AS total
               FROM pref_seq WHERE pos >= $h),
           kept AS (SELECT *, g - greatest(total - $n, 0) - 1 AS k, least(total, $n) AS m
                    FROM w WHERE g > total - $n)
           SELECT user_id, item_id, ts, liked, pos, k AS record_idx,
                  CASE WHEN k < floor(m * 0.8) THEN 'train' WHEN k < floor(m * 0.9) THEN 'valid'
                       ELSE 'test' END AS split
           FROM kept""",
        {"h": cfg.history_len, "n": cfg.tallrec_records},
    )


def _windows(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, history_len: int) -> pa.Table:
    return con.sql(
        """SELECT t.split, t.record_idx, t.user_id, t.item_id AS target_item_id, t.ts AS target_ts,
                  t.liked::INTEGER AS label, any_value(ti.title) AS target_title,
                  list(h.item_id ORDER BY h.pos) AS history_item_ids,
                  list(hi.title ORDER BY h.pos) AS history_titles,
                  list(h.liked ORDER BY h.pos) AS history_liked
           FROM pref_targets t
           JOIN pref_seq h ON h.user_id = t.user_id AND h.pos BETWEEN t.pos - ? AND t.pos - 1
           LEFT JOIN items ti ON ti.dataset = ? AND ti.item_id = t.item_id
           LEFT JOIN items hi ON hi.dataset = ? AND hi.item_id = h.item_id
           GROUP BY ALL ORDER BY t.record_idx""",
        params=[history_len, spec.id, spec.id],
    ).to_arrow_table()


class TrainHints:
    """Like counts over the train split's distinct (user, item) interactions, for the hint lines."""

    def __init__(self, windows: list[dict[str, Any]]) -> None:
        seen: dict[tuple[str, str], bool] = {}
        for w in windows:
            if w["split"] != "train":
                continue
            seen[(w["user_id"], w["target_item_id"])] = bool(w["label"])
            for item, liked in zip(w["history_item_ids"], w["history_liked"]):
                seen.setdefault((w["user_id"], item), bool(liked))
        self.seen = seen
        self.users: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # id -> [rated, liked]
        self.items: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (user, item), liked in seen.items():
            for counts in (self.users[user], self.items[item]):
                counts[0] += 1
                counts[1] += liked

    def context(self, user: str, item: str) -> dict[str, Any]:
        """Template variables for one record; its own (user, target) interaction is left out."""
        own = self.seen.get((user, item))
        out: dict[str, Any] = {}
        for name, counts in (("user", self.users.get(user, [0, 0])), ("item", self.items.get(item, [0, 0]))):
            rated, liked = counts[0] - (own is not None), counts[1] - bool(own)
            out[f"{name}_rated"] = rated
            out[f"{name}_like_pct"] = round(100 * liked / rated) if rated else None
        return out


def render_preference_hints(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str,
                            settings: RenderSettings) -> pa.Table:
    """preference's records with collaborative hints from the train split (see the module doc)."""
    return render_preference(con, spec, profile, settings, task="preference_hints")


def render_preference(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str,
                      settings: RenderSettings, task: str = TASK) -> pa.Table:
    """Records for one profile, ordered by record_idx, in the instruction_records layout."""
    if profile not in ALL_PROFILES:
        raise ValueError(f"unknown preference profile {profile!r}; known: {ALL_PROFILES}")
    require_filtered(con, spec.id)
    if profile == "tallrec":
        _tallrec_users(con, spec, settings)
        _sequence(con, spec, only_selected_users=True)
        _tallrec_targets(con, settings)
    else:
        # The shared rated sequence, with TALLRec's label; the profile chooses targets and splits.
        build_sequence(con, spec.id, rated=True, name="pref_rated")
        con.execute("CREATE OR REPLACE TEMP TABLE pref_seq AS SELECT *, rating > ? AS liked FROM pref_rated",
                    [spec.like_threshold])
        assign_splits(con, seq="pref_seq", dataset=spec.id, task=TASK, profile=profile, settings=settings,
                      out="pref_assigned")
        con.execute("""CREATE OR REPLACE TEMP TABLE pref_targets AS
                       SELECT a.*, s.liked FROM pref_assigned a JOIN pref_seq s USING (user_id, pos)""")
    windows = _windows(con, spec, settings.history_len).to_pylist()
    templates, held_out = task_templates(task, profile)
    words = domain_vars(spec)
    hints = TrainHints(windows) if task == "preference_hints" else None
    out = RecordBuilder(spec, task, profile, settings)
    for w in windows:
        titles = [item_label(t, i, words["noun"]) for t, i in zip(w["history_titles"], w["history_item_ids"])]
        history = [{"title": t, "liked": bool(v)} for t, v in zip(titles, w["history_liked"])]
        # Template choice keys on "preference" for both tasks: a hints record words its question
        # like its plain twin, so the two configs differ by the hint lines alone.
        template = choose_template(templates, held_out, settings, spec.id, TASK, w["split"],
                                   (w["user_id"], w["target_item_id"], w["record_idx"]))
        out.add(template=template, split=w["split"], record_idx=w["record_idx"], context={
            **words, "history": history, "target": item_label(w["target_title"], w["target_item_id"], words["noun"]),
            "label": w["label"], "liked": [h["title"] for h in history if h["liked"]],
            "disliked": [h["title"] for h in history if not h["liked"]],
            **(hints.context(w["user_id"], w["target_item_id"]) if hints else {}),
        }, user_id=w["user_id"], target_item_id=w["target_item_id"], label=float(w["label"]),
            answer_json='{"liked": %s}' % ("true" if w["label"] else "false"),
            history_item_ids=w["history_item_ids"],
            history_labels=[float(v) for v in w["history_liked"]], target_ts=w["target_ts"])
    return out.table()
