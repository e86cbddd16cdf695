"""`tui`, target user identification: from an item's attributes (and a few customer reviews),
say which users it suits.

Items: those with at least `tui_min_likers` (a render setting, default 3) users who liked them under
the source's label rule (tasks.grounded: rating above the like threshold for explicit sources).
Input: title, facet values (genres, else categories, else tags), brand, creator, release date, a
description excerpt, and up to `tui_reviews` customer review excerpts (non-blank texts, a seeded
sample per item) where the source has reviews.

Reference ("grounded-v1"): who actually liked the item.
- Demographics, where the source has them: for each of age group (numeric ages bucketed as in
  MovieLens 1M), birth decade, gender, occupation, country (location when there is no country),
  the most common value among the item's likers with its share, next to that value's share among
  all the dataset's users with a known value; said only when at least 2 likers share the value.
- Taste: the facet values most frequent among the likers' other liked items (each liked item
  counted once per liker; the item itself excluded), with their share of those items; where the
  facets say nothing about the item's likers (Gift Cards), the items most of them also liked
  (at least 2 likers each).
"""

import json
from typing import Any

import duckdb
import pyarrow as pa

from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.tasks.base import (RecordBuilder, RenderSettings, cap_entities, choose_template, domain_vars,
                                      format_rating, item_label, require_filtered, task_templates)
from itdr_pipeline.tasks.grounded import (REFERENCE_GENERATOR, build_facets, build_labeled, excerpt, join_words,
                                          percent)
from itdr_pipeline.teacher import apply_teacher

TASK = "tui"
MIN_SHARED = 2  # a demographic value is reported when this many likers share it
TOP = 3  # facet values in the taste sentence
MAX_FACETS = 5  # facet values shown with the item
_AGE_GROUP = """CASE WHEN u.age < 18 THEN 'Under 18' WHEN u.age <= 24 THEN '18-24' WHEN u.age <= 34 THEN '25-34'
                     WHEN u.age <= 44 THEN '35-44' WHEN u.age <= 49 THEN '45-49' WHEN u.age <= 55 THEN '50-55'
                     ELSE '56+' END"""
# users column -> (name in the reference, SQL value), in reference order.
DEMOGRAPHICS = {
    "age_group": ("age group", "nullif(trim(u.age_group), '')"),
    "age": ("age group", _AGE_GROUP),
    "birth_date": ("birth decade", "(year(u.birth_date) // 10 * 10)::VARCHAR || 's'"),
    "gender": ("gender", "nullif(trim(u.gender), '')"),
    "occupation": ("occupation", "nullif(trim(u.occupation), '')"),
    "country": ("country", "nullif(trim(u.country), '')"),
    "location": ("location", "nullif(trim(u.location), '')"),
}


def _demographic_columns(spec: DatasetSpec) -> list[str]:
    cols = [c for c in DEMOGRAPHICS if c in spec.user_attributes]
    if "age_group" in cols and "age" in cols:
        cols.remove("age")
    if "country" in cols and "location" in cols:
        cols.remove("location")
    return cols


def _demographics(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> dict[str, list[dict[str, Any]]]:
    """Per capped item: the top value of each attribute among its likers, with the dataset share."""
    cols = _demographic_columns(spec)
    if not cols:
        return {}
    unions = " UNION ALL ".join(f"SELECT u.user_id, '{DEMOGRAPHICS[c][0]}' AS attr, {k} AS ord, {DEMOGRAPHICS[c][1]} AS value "
                                f"FROM users u WHERE u.dataset = $d AND u.{c} IS NOT NULL" for k, c in enumerate(cols))
    rows = con.sql(
        f"""WITH a AS (SELECT * FROM ({unions}) SEMI JOIN tui_labeled USING (user_id) WHERE value IS NOT NULL),
            base AS (SELECT attr, value, count(*) / sum(count(*)) OVER (PARTITION BY attr) AS share FROM a GROUP BY attr, value),
            l AS (SELECT l.item_id, a.attr, a.ord, a.value FROM tui_labeled l SEMI JOIN tui_capped USING (item_id)
                  JOIN a USING (user_id) WHERE l.liked),
            c AS (SELECT item_id, attr, ord, value, count(*) AS n, sum(count(*)) OVER (PARTITION BY item_id, attr) AS known
                  FROM l GROUP BY item_id, attr, ord, value QUALIFY row_number() OVER (PARTITION BY item_id, attr ORDER BY n DESC, value) = 1)
            SELECT c.item_id, list(struct_pack(attribute := c.attr, value := c.value, count := c.n, known := c.known,
                                               overall_share := b.share) ORDER BY c.ord)
            FROM c JOIN base b USING (attr, value) WHERE c.n >= $min GROUP BY c.item_id""",
        params={"d": spec.id, "min": MIN_SHARED}).fetchall()
    return {item: [{**d, "overall_share": round(d["overall_share"], 4)} for d in values] for item, values in rows}


def _taste(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    """Per capped item: facet values of its likers' other liked items (sum over likers of the
    liker's per-value counts, minus the item's own values once per liker)."""
    rows = con.sql(
        f"""WITH liked AS (SELECT user_id, item_id FROM tui_labeled WHERE liked),
            per_user AS (SELECT user_id, count(*) AS n FROM liked GROUP BY user_id),
            ug AS (SELECT l.user_id, f.value, count(*) AS n FROM liked l JOIN tui_facets f USING (item_id) GROUP BY ALL),
            likers AS (SELECT l.item_id, l.user_id FROM liked l SEMI JOIN tui_capped USING (item_id)),
            totals AS (SELECT k.item_id, sum(p.n - 1) AS other FROM likers k JOIN per_user p USING (user_id) GROUP BY ALL),
            g AS (SELECT k.item_id, ug.value, sum(ug.n) AS n, count(*) AS users FROM likers k JOIN ug USING (user_id) GROUP BY ALL),
            t AS (SELECT g.item_id, g.value, g.n - CASE WHEN f.value IS NULL THEN 0 ELSE g.users END AS n
                  FROM g LEFT JOIN tui_facets f ON f.item_id = g.item_id AND f.value = g.value)
            SELECT t.item_id, any_value(totals.other),
                   list(struct_pack(value := t.value, count := t.n) ORDER BY t.n DESC, t.value)[1:{TOP}]
            FROM t JOIN totals USING (item_id) WHERE t.n > 0 GROUP BY t.item_id""").fetchall()
    return {item: [{**v, "share": round(v["count"] / other, 4)} for v in values] for item, other, values in rows if other}


def _co_liked(con: duckdb.DuckDBPyConnection, dataset: str, item_ids: list[str], noun: str) -> dict[str, list[dict[str, Any]]]:
    """Fallback taste where facets say nothing: the items most of these items' likers also liked."""
    wanted = pa.table({"item_id": sorted(item_ids)})
    rows = con.sql(
        f"""WITH liked AS (SELECT user_id, item_id FROM tui_labeled WHERE liked),
            k AS (SELECT l.item_id AS target, l.user_id FROM liked l SEMI JOIN wanted USING (item_id)),
            o AS (SELECT k.target, l.item_id, count(*) AS n FROM k JOIN liked l USING (user_id)
                  WHERE l.item_id <> k.target GROUP BY k.target, l.item_id)
            SELECT o.target, list(struct_pack(item_id := o.item_id, title := i.title, count := o.n)
                                  ORDER BY o.n DESC, o.item_id)[1:{TOP}]
            FROM o LEFT JOIN items i ON i.dataset = ? AND i.item_id = o.item_id
            WHERE o.n >= {MIN_SHARED} GROUP BY o.target""", params=[dataset]).fetchall()
    return {t: [{"item_id": v["item_id"], "title": item_label(v["title"], v["item_id"], noun), "count": v["count"]}
                for v in values] for t, values in rows}


def _items(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, settings: RenderSettings) -> list[dict[str, Any]]:
    min_likers = settings.tui_min_likers
    con.execute("""CREATE OR REPLACE TEMP TABLE tui_items AS
                   SELECT item_id, count(*) AS n_raters, count(*) FILTER (liked) AS n_likers FROM tui_labeled
                   GROUP BY item_id HAVING count(*) FILTER (liked) >= ?""", [min_likers])
    cap_entities(con, table="tui_items", key="item_id", dataset=spec.id, task=TASK, settings=settings, out="tui_capped")
    return con.sql(
        """WITH r AS (SELECT item_id, list(text ORDER BY md5(concat_ws(':', $key, item_id, user_id, src_row)))[1:$k] AS reviews
                      FROM reviews SEMI JOIN tui_capped USING (item_id)
                      WHERE dataset = $d AND trim(coalesce(text, '')) <> '' GROUP BY item_id),
           f AS (SELECT item_id, list(value ORDER BY pos, value) AS tags FROM tui_facets SEMI JOIN tui_capped USING (item_id)
                 GROUP BY item_id)
           SELECT c.*, i.title, i.brand, i.creator, i.release_date, i.description,
                  coalesce(f.tags, []) AS tags, coalesce(r.reviews, []) AS reviews
           FROM tui_capped c LEFT JOIN items i ON i.dataset = $d AND i.item_id = c.item_id
           LEFT JOIN f ON f.item_id = c.item_id LEFT JOIN r ON r.item_id = c.item_id ORDER BY c.record_idx""",
        params={"d": spec.id, "k": settings.tui_reviews, "key": f"{settings.seed}:{spec.id}:{TASK}"},
    ).to_arrow_table().to_pylist()


def high_raters_phrase(spec: DatasetSpec, words: dict[str, str]) -> str:
    """How the reference names the item's likers under the source's label rule."""
    if spec.label_rule == "rating_above":
        return f"rated it above {format_rating(spec.like_threshold)}"
    if spec.label_rule == "weight_above_user_median":
        return f"spent more on it than on their typical {words['noun']}"
    if spec.label_rule == "clicked":
        return "clicked it"
    return f"{words['verb_past']} it"


def reference(label: str, n_likers: int, phrase: str, facts: dict[str, Any], words: dict[str, str]) -> str:
    parts = [f"{label} suits {words['audience']} like the {n_likers} users who {phrase}."]
    if facts["demographics"]:
        parts.append("Among them, the most common " + join_words([
            f"{d['attribute']} is {d['value']} ({percent(d['count'], d['known'])}% of those with a known "
            f"{d['attribute']}, vs {percent(d['overall_share'], 1)}% of all users)" for d in facts["demographics"]]) + ".")
    if facts["taste"]:
        parts.append(f"In their other liked {words['nouns']}, the most frequent {facts['facet']} are " + join_words([
            f"{t['value']} ({percent(t['share'], 1)}%)" for t in facts["taste"]]) + ".")
    elif facts["also_liked"]:
        parts.append("Many of them also liked " + join_words([
            f"{t['title']} ({t['count']} of them)" for t in facts["also_liked"]]) + ".")
    return " ".join(parts)


def render_tui(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str, settings: RenderSettings) -> pa.Table:
    """One record per item with enough likers (split by the stable item hash whatever the profile)."""
    require_filtered(con, spec.id)
    build_labeled(con, spec, "tui_labeled")
    facet = build_facets(con, spec.id, "tui_facets")
    rows = _items(con, spec, settings)
    demographics, taste = _demographics(con, spec), _taste(con)
    words = domain_vars(spec)
    bare = [r["item_id"] for r in rows if r["item_id"] not in taste]
    also = _co_liked(con, spec.id, bare, words["noun"]) if bare else {}
    templates, held_out = task_templates(TASK, profile)
    phrase = high_raters_phrase(spec, words)
    out = RecordBuilder(spec, TASK, profile, settings)
    descriptions: dict[int, str] = {}
    for r in rows:
        label = item_label(r["title"], r["item_id"], words["noun"])
        facts = {"likers": r["n_likers"], "raters": r["n_raters"], "demographics": demographics.get(r["item_id"], []),
                 "facet": facet, "taste": taste.get(r["item_id"], []), "also_liked": also.get(r["item_id"], [])}
        context = {**words, "title": label, "tags": r["tags"][:MAX_FACETS], "brand": r["brand"] or "",
                   "creator": r["creator"] or "", "release_date": str(r["release_date"] or ""),
                   "description_text": excerpt(r["description"], settings.review_chars),
                   "reviews": [excerpt(t, settings.review_chars) for t in r["reviews"]],
                   "reference": reference(label, r["n_likers"], phrase, facts, words)}
        template = choose_template(templates, held_out, settings, spec.id, TASK, r["split"], (profile, r["item_id"]))
        descriptions[r["record_idx"]] = template.description.render(context)
        out.add(template=template, split=r["split"], record_idx=r["record_idx"], context=context,
                reference_generator=REFERENCE_GENERATOR, target_item_id=r["item_id"],
                answer_json=json.dumps(facts, ensure_ascii=False, sort_keys=True))
    apply_teacher(con, settings, out, descriptions)
    return out.table()
