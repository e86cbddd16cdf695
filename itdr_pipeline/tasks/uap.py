"""`uap`, user attribute prediction: from the items a user liked, predict the user's demographics.

Input: up to `profile_len` liked items, each with its facet values (genres, else categories, else
tags; see tasks.grounded) or, where the item has none, its creator (Last.fm songs: the artist).
Explicit sources: items rated above the like threshold, highest rating first, then most recent.
Implicit sources: every positive interaction (tasks.grounded's liked flag), most weight first
(plays add up over repeats), then most recent.

Output: `attr:value` pairs joined with ",", in the fixed order of ATTRIBUTES, for the attributes
the source fills (spec.user_attributes) that the user has: e.g. `age:24,gender:M,occupation:
programmer` (ml-100k), `age group:25-34,gender:M,...` (ml-1m), `birth year:1990,gender:Male,
location:California` (anime). zip_code is left out: ITDR predicts age / age group, gender,
occupation, location, country and birth year, and a postal code is an identifier more than a
trait. Free-text values may hold commas ("Oslo, Norway"): split an answer with `parse_attributes`,
which only splits before a known attribute name. answer_json holds the same values typed
(age and birth year as integers) under snake_case keys. Users with none of the attributes, or no
liked item, get no record.
"""

import json
import re
from typing import Any

import duckdb
import pyarrow as pa

from itdr_pipeline.records import UAP_ATTRIBUTES, parse_attributes  # noqa: F401 (parse_attributes: re-exported)
from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.tasks.base import (RecordBuilder, RenderSettings, cap_entities, choose_template, domain_vars,
                                      item_label, require_filtered, task_templates)
from itdr_pipeline.tasks.grounded import build_facets, build_labeled, facets_of

TASK = "uap"
MAX_FACETS = 3  # facet values shown per item
_VALUE_SQL = {"age_group": "nullif(trim(u.age_group), '')", "age": "u.age", "birth_date": "year(u.birth_date)",
              "gender": "nullif(trim(u.gender), '')", "occupation": "nullif(trim(u.occupation), '')",
              "location": "nullif(trim(u.location), '')", "country": "nullif(trim(u.country), '')"}
# users column -> (name in the output, answer_json key, SQL for the value), in the output's fixed
# order (records.UAP_ATTRIBUTES: the answer format the evaluator reads).
ATTRIBUTES = {column: (*names, _VALUE_SQL[column]) for column, names in UAP_ATTRIBUTES.items()}


def predicted_attributes(spec: DatasetSpec) -> list[str]:
    """The users columns this source's uap records predict, in output order."""
    return [c for c in ATTRIBUTES if c in spec.user_attributes]


def _users(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, columns: list[str]) -> str:
    """Temp table uap_users: users with a liked item and at least one attribute, their values."""
    values = ", ".join(f"{ATTRIBUTES[c][2]} AS {ATTRIBUTES[c][1]}" for c in columns)
    any_value = " OR ".join(f"{ATTRIBUTES[c][2]} IS NOT NULL" for c in columns) or "FALSE"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE uap_users AS
            SELECT u.user_id, {values or 'NULL AS none'} FROM users u
            WHERE u.dataset = ? AND ({any_value})
              AND u.user_id IN (SELECT user_id FROM uap_labeled WHERE liked)""",
        [spec.id],
    )
    return "uap_users"


def _profiles(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, settings: RenderSettings) -> list[dict[str, Any]]:
    order = ("l.rating DESC, l.ts DESC NULLS LAST, l.src_row DESC" if spec.feedback == "explicit"
             else "l.weight DESC NULLS LAST, l.ts DESC NULLS LAST, l.src_row DESC")
    return con.sql(
        f"""SELECT c.*, list(l.item_id ORDER BY l.k) AS item_ids, list(i.title ORDER BY l.k) AS titles,
                   list(i.creator ORDER BY l.k) AS creators
            FROM uap_capped c
            JOIN (SELECT l.*, row_number() OVER (PARTITION BY l.user_id ORDER BY {order}) AS k
                  FROM uap_labeled l SEMI JOIN uap_capped USING (user_id) WHERE l.liked
                  QUALIFY k <= ?) l USING (user_id)
            LEFT JOIN items i ON i.dataset = ? AND i.item_id = l.item_id
            GROUP BY ALL ORDER BY c.record_idx""",
        params=[settings.profile_len, spec.id],
    ).to_arrow_table().to_pylist()


def render_uap(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str, settings: RenderSettings) -> pa.Table:
    """One record per user with demographics (split by the stable user hash whatever the profile)."""
    require_filtered(con, spec.id)
    out = RecordBuilder(spec, TASK, profile, settings)
    columns = predicted_attributes(spec)
    if not columns:
        return out.table()
    build_labeled(con, spec, "uap_labeled")
    build_facets(con, spec.id, "uap_facets")
    _users(con, spec, columns)
    cap_entities(con, table="uap_users", key="user_id", dataset=spec.id, task=TASK, settings=settings,
                 out="uap_capped")
    rows = _profiles(con, spec, settings)
    facets = facets_of(con, "uap_facets", [i for r in rows for i in r["item_ids"]])
    templates, held_out = task_templates(TASK, profile)
    words = domain_vars(spec)
    for r in rows:
        known = [c for c in columns if r[ATTRIBUTES[c][1]] is not None]
        items = [{"title": item_label(t, i, words["noun"]), "tags": facets.get(i, [])[:MAX_FACETS],
                  "creator": c or ""} for i, t, c in zip(r["item_ids"], r["titles"], r["creators"])]
        answer = {ATTRIBUTES[c][1]: r[ATTRIBUTES[c][1]] for c in known}
        template = choose_template(templates, held_out, settings, spec.id, TASK, r["split"], (profile, r["user_id"]))
        out.add(template=template, split=r["split"], record_idx=r["record_idx"], context={
            **words, "items": items, "attribute_names": [ATTRIBUTES[c][0] for c in known],
            "attributes": ",".join(f"{ATTRIBUTES[c][0]}:{r[ATTRIBUTES[c][1]]}" for c in known),
        }, user_id=r["user_id"], answer_json=json.dumps(answer, ensure_ascii=False), history_item_ids=r["item_ids"])
    return out.table()
