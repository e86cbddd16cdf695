"""The `preference` task: will the user like the target item? ("Yes." / "No.")

Two profiles share one sequence table (each user's interactions ordered by time, ties broken by
file order) and differ in which windows they keep and how they split them:

- `tallrec` reproduces TALLRec's released movie data record for record: users in order of first
  appearance in the file, every window with 10 prior items, the LAST 10,000 windows overall, split
  by position 8:1:1. Its test set covers only a handful of users (16 on ml-100k).
- `temporal` (default) is the clean profile: per user, targets ordered by time; the user's latest
  targets go to test, the ones before to valid, the rest to train, so every test target comes
  after all of that user's train targets. Every user with enough history is in every split;
  per-user caps (train sampled by a seeded hash) stop heavy users from dominating.
"""

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import pyarrow as pa

from itdr_pipeline.errors import ItdrError
from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.templates import templates_for

TASK = "preference"
PROFILES = ("temporal", "tallrec")


@dataclass(frozen=True)
class PreferenceConfig:
    history_len: int = 10  # prior interactions shown per record
    min_history: int = 5  # temporal: first target needs this many prior interactions
    max_eval_per_user: int = 5  # temporal: cap on a user's valid (and test) targets
    max_train_per_user: int = 40  # temporal: cap on a user's train targets, seeded sample
    tallrec_records: int = 10_000  # tallrec: keep the last N windows
    seed: int = 42

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tallrec_users(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, cfg: PreferenceConfig) -> None:
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


def _tallrec_targets(con: duckdb.DuckDBPyConnection, cfg: PreferenceConfig) -> None:
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


def _temporal_targets(con: duckdb.DuckDBPyConnection, cfg: PreferenceConfig, dataset: str) -> None:
    con.execute(
        """CREATE OR REPLACE TEMP TABLE pref_targets AS
           WITH t AS (
               SELECT *, n - $min_h AS n_targets, pos - $min_h AS tpos,
                      least($max_eval, greatest(1, floor((n - $min_h) * 0.1)))::BIGINT AS n_eval
               FROM pref_seq WHERE pos >= $min_h AND n - $min_h >= 3),
           s AS (
               SELECT *, CASE WHEN tpos >= n_targets - n_eval THEN 'test'
                              WHEN tpos >= n_targets - 2 * n_eval THEN 'valid' ELSE 'train' END AS split,
                      md5(concat_ws(':', $seed, $dataset, user_id, pos)) AS draw
               FROM t),
           capped AS (
               SELECT *, row_number() OVER (PARTITION BY user_id, split ORDER BY draw, pos) AS r FROM s)
           SELECT user_id, item_id, ts, liked, pos, split,
                  row_number() OVER (ORDER BY CASE split WHEN 'train' THEN 0 WHEN 'valid' THEN 1 ELSE 2 END,
                                              first_row, pos) - 1 AS record_idx
           FROM capped WHERE split <> 'train' OR r <= $max_train""",
        {"min_h": cfg.min_history, "max_eval": cfg.max_eval_per_user, "max_train": cfg.max_train_per_user,
         "seed": str(cfg.seed), "dataset": dataset},
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
           JOIN items ti ON ti.dataset = ? AND ti.item_id = t.item_id
           JOIN items hi ON hi.dataset = ? AND hi.item_id = h.item_id
           GROUP BY ALL ORDER BY t.record_idx""",
        params=[history_len, spec.id, spec.id],
    ).to_arrow_table()


def _pick(templates: list, seed: int, dataset: str, user_id: str, item_id: str, idx: int) -> Any:
    if len(templates) == 1:
        return templates[0]
    key = f"{seed}:{dataset}:{user_id}:{item_id}:{idx}".encode()
    return templates[int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % len(templates)]


def render_preference(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str, cfg: PreferenceConfig
) -> pa.Table:
    """Records for one profile, ordered by record_idx, in the instruction_records layout."""
    if profile not in PROFILES:
        raise ValueError(f"unknown preference profile {profile!r}; known: {PROFILES}")
    if con.execute("SELECT count(*) FROM filter_runs WHERE dataset = ?", [spec.id]).fetchone()[0] == 0:
        raise ItdrError(f"{spec.id}: interactions not filtered yet (filtered_interactions is what tasks read); "
                        "run itdr_pipeline.filters.apply_filters or `itdr materialize`")
    if profile == "tallrec":
        _tallrec_users(con, spec, cfg)
        _sequence(con, spec, only_selected_users=True)
        _tallrec_targets(con, cfg)
    else:
        _sequence(con, spec)
        _temporal_targets(con, cfg, spec.id)
    windows = _windows(con, spec, cfg.history_len).to_pylist()
    templates = templates_for(TASK, profile)
    noun = {"noun": spec.item_noun, "nouns": spec.item_noun + "s"}
    out: dict[str, list] = {k: [] for k in ("template_id", "instruction", "input", "output")}
    for w in windows:
        history = [{"title": t, "liked": bool(v)} for t, v in zip(w["history_titles"], w["history_liked"])]
        template = _pick(templates, cfg.seed, spec.id, w["user_id"], w["target_item_id"], w["record_idx"])
        text = template.render({
            **noun, "history": history, "target": w["target_title"], "label": w["label"],
            "liked": [h["title"] for h in history if h["liked"]],
            "disliked": [h["title"] for h in history if not h["liked"]],
        })
        out["template_id"].append(template.id)
        for key, value in zip(("instruction", "input", "output"), text):
            out[key].append(value)
    n = len(windows)
    return pa.table({
        "dataset": [spec.id] * n, "task": [TASK] * n, "profile": [profile] * n,
        "split": [w["split"] for w in windows],
        "record_idx": pa.array([w["record_idx"] for w in windows], pa.int64()),
        **out,
        "user_id": [w["user_id"] for w in windows],
        "target_item_id": [w["target_item_id"] for w in windows],
        "candidate_item_ids": pa.array([[] for _ in windows], pa.list_(pa.string())),
        "label": pa.array([float(w["label"]) for w in windows], pa.float64()),
        "history_item_ids": pa.array([w["history_item_ids"] for w in windows], pa.list_(pa.string())),
        "target_ts": pa.array([w["target_ts"] for w in windows], pa.timestamp("us")),
    })
