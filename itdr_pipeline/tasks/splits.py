"""Interaction sequences, split profiles and caps (see tasks.base for the profiles' rules): every
choice a pure function of the seed and the record's key."""

import hashlib
import re
from typing import Any

import duckdb

from itdr_pipeline.errors import ItdrError
from itdr_pipeline.tasks.settings import _POSITIVE, PROFILES, RenderSettings

def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """DuckDB refuses named parameters a statement does not use: keep the ones it does."""
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}


def split_caps(cap: int) -> dict[str, int]:
    """The 8:1:1 share of a cell cap per split (0 = uncapped)."""
    if cap == 0:
        return {"train": 0, "valid": 0, "test": 0}
    held = max(1, round(cap * 0.1))
    return {"train": cap - 2 * held, "valid": held, "test": held}


def stable_int(*parts: object) -> int:
    """A 64-bit integer from the parts: the seed of every per-record random choice."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def entity_split(seed: int, dataset: str, entity: str) -> str:
    """8:1:1 by a stable hash; the SQL twin is the `itdr_bucket` macro (same md5 prefix)."""
    bucket = int(hashlib.md5(f"{seed}:{dataset}:{entity}".encode()).hexdigest()[:8], 16) % 10
    return "test" if bucket == 9 else "valid" if bucket == 8 else "train"


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE OR REPLACE TEMP MACRO itdr_bucket(key) AS ('0x' || substr(md5(key), 1, 8))::BIGINT % 10")
    con.execute("""CREATE OR REPLACE TEMP MACRO itdr_split(key) AS
                   CASE itdr_bucket(key) WHEN 9 THEN 'test' WHEN 8 THEN 'valid' ELSE 'train' END""")


def require_filtered(con: duckdb.DuckDBPyConnection, dataset: str) -> None:
    if con.execute("SELECT count(*) FROM filter_runs WHERE dataset = ?", [dataset]).fetchall()[0][0] == 0:
        raise ItdrError(f"{dataset}: interactions not filtered yet (filtered_interactions is what tasks read); "
                        "run itdr_pipeline.filters.apply_filters or `itdr materialize`")


def build_sequence(con: duckdb.DuckDBPyConnection, dataset: str, *, rated: bool, name: str) -> str:
    """A temp table of each user's interactions in time order (ties: file order; no timestamp:
    file order), one row per (user, item): the first time the user met the item, so a target can
    never repeat an item of the user's history. `rated` keeps explicit ratings only, else every
    positive interaction (an unclicked impression is not one)."""
    where = "rating IS NOT NULL" if rated else _POSITIVE
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name} AS
            WITH f AS (
                SELECT user_id, item_id, ts, rating, weight, event, src_row FROM filtered_interactions
                WHERE dataset = ? AND {where}
                QUALIFY row_number() OVER (PARTITION BY user_id, item_id ORDER BY ts NULLS LAST, src_row) = 1)
            SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY ts NULLS LAST, src_row) - 1 AS pos,
                   count(*) OVER (PARTITION BY user_id) AS n,
                   min(src_row) OVER (PARTITION BY user_id) AS first_row
            FROM f""",
        [dataset],
    )
    return name


def assign_splits(con: duckdb.DuckDBPyConnection, *, seq: str, dataset: str, task: str, profile: str,
                  settings: RenderSettings, out: str, every: str | None = None) -> str:
    """Choose the targets of a sequence task and their splits into temp table `out`:
    (user_id, item_id, ts, rating, pos, split, record_idx), ordered train, valid, test.

    Steps: eligible targets (pos >= min_history) -> profile's split -> per-user train cap
    -> the cell cap (8:1:1 shares) -> the data fraction of train. Each sample takes the records
    with the smallest seeded md5 of their key, so smaller samples nest inside larger ones.
    `every`, when given, names a temp table that also receives every eligible position with its
    split before any cap (tkr reads the split of a target's next interactions there)."""
    if profile not in PROFILES:
        raise ItdrError(f"unknown split profile {profile!r}; known: {', '.join(PROFILES)}")
    s = settings
    caps = split_caps(s.cap)
    params = {"min_h": s.min_history, "max_eval": s.max_eval_per_user, "max_train": s.max_train_per_user,
              "key": f"{s.seed}:{dataset}:{task}", "user_key": f"{s.seed}:{dataset}",
              "cap_train": caps["train"], "cap_valid": caps["valid"], "cap_test": caps["test"],
              "fraction": s.fraction}
    if profile == "temporal":
        n_eval = "least($max_eval, greatest(1, floor((n - $min_h) * 0.1)))::BIGINT"
    else:
        n_eval = "1"
    if profile in ("temporal", "leave_one_out"):
        eligible = "pos >= $min_h AND n - $min_h >= 3"
        split = f"""CASE WHEN pos - $min_h >= n - $min_h - {n_eval} THEN 'test'
                         WHEN pos - $min_h >= n - $min_h - 2 * {n_eval} THEN 'valid' ELSE 'train' END"""
        cuts = ""
    elif profile == "random_user":
        install_macros(con)
        eligible = "pos >= $min_h"
        split = "itdr_split(concat_ws(':', $user_key, user_id))"
        cuts = ""
    else:  # global_temporal
        if con.execute(f"SELECT count(*) FILTER (ts IS NULL) FROM {seq}").fetchall()[0][0]:
            raise ItdrError(f"{dataset} has interactions without timestamps: the global_temporal profile needs "
                            "them (use temporal, leave_one_out or random_user)")
        eligible = "pos >= $min_h"
        split = "CASE WHEN ts < c.t80 THEN 'train' WHEN ts < c.t90 THEN 'valid' ELSE 'test' END"
        cuts = (f", (SELECT quantile_disc(ts, 0.8) AS t80, quantile_disc(ts, 0.9) AS t90 "
                f"FROM {seq} WHERE pos >= $min_h) c")
    cap_clause = ("(split = 'train' AND ($cap_train = 0 OR r_cell <= $cap_train)) OR "
                  "(split = 'valid' AND ($cap_valid = 0 OR r_cell <= $cap_valid)) OR "
                  "(split = 'test' AND ($cap_test = 0 OR r_cell <= $cap_test))")
    eligible_sql = (f"SELECT {seq}.*, {split} AS split, md5(concat_ws(':', $key, user_id, pos)) AS draw "
                    f"FROM {seq}{cuts} WHERE {eligible}")
    if every is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {every} AS {eligible_sql}", _used(eligible_sql, params))
        eligible_sql = f"SELECT * FROM {every}"
    sql = f"""CREATE OR REPLACE TEMP TABLE {out} AS
            WITH e AS ({eligible_sql}),
            u AS (SELECT * FROM e QUALIFY split <> 'train' OR
                      row_number() OVER (PARTITION BY user_id, split ORDER BY draw, pos) <= $max_train),
            c AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY split ORDER BY md5(draw || ':cap'), user_id, pos) AS r_cell FROM u)
                  WHERE {cap_clause}),
            f AS (SELECT * FROM c QUALIFY split <> 'train' OR
                      row_number() OVER (PARTITION BY split ORDER BY md5(draw || ':fraction'), user_id, pos)
                      <= greatest(1, floor(count(*) OVER (PARTITION BY split) * $fraction)))
            SELECT user_id, item_id, ts, rating, pos, split, first_row,
                   row_number() OVER (ORDER BY CASE split WHEN 'train' THEN 0 WHEN 'valid' THEN 1 ELSE 2 END,
                                               first_row, user_id, pos) - 1 AS record_idx
            FROM f"""
    con.execute(sql, _used(sql, params))
    return out


def cap_entities(con: duckdb.DuckDBPyConnection, *, table: str, key: str, dataset: str, task: str,
                 settings: RenderSettings, out: str) -> str:
    """Entity tasks: split the rows of `table` (one per entity, identified by column `key`) 8:1:1
    by the stable hash, then apply the cell cap and the data fraction; adds split and record_idx."""
    install_macros(con)
    caps = split_caps(settings.cap)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {out} AS
            WITH e AS (SELECT t.*, itdr_split(concat_ws(':', $user_key, t.{key})) AS split,
                              md5(concat_ws(':', $key, t.{key})) AS draw FROM {table} t),
            c AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY split ORDER BY draw, {key}) AS r_cell FROM e)
                  WHERE (split = 'train' AND ($cap_train = 0 OR r_cell <= $cap_train))
                     OR (split = 'valid' AND ($cap_valid = 0 OR r_cell <= $cap_valid))
                     OR (split = 'test' AND ($cap_test = 0 OR r_cell <= $cap_test))),
            f AS (SELECT * FROM c QUALIFY split <> 'train' OR
                      row_number() OVER (PARTITION BY split ORDER BY md5(draw || ':fraction'), {key})
                      <= greatest(1, floor(count(*) OVER (PARTITION BY split) * $fraction)))
            SELECT * EXCLUDE (draw, r_cell),
                   row_number() OVER (ORDER BY CASE split WHEN 'train' THEN 0 WHEN 'valid' THEN 1 ELSE 2 END,
                                               {key}) - 1 AS record_idx
            FROM f""",
        {"user_key": f"{settings.seed}:{dataset}", "key": f"{settings.seed}:{dataset}:{task}",
         "cap_train": caps["train"], "cap_valid": caps["valid"], "cap_test": caps["test"],
         "fraction": settings.fraction},
    )
    return out
