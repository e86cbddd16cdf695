"""`ir`, interest recognition: from the items a user liked and disliked (with their reviews where
the source has review text), summarise what the user is interested in.

Users: those with at least `ir_min_liked` (a render setting, default 2) liked items under the source's
label rule (tasks.grounded); disliked items are shown when there are any. Input: at most
`profile_len` items, at most half of them disliked when there are enough liked ones to fill the
rest; within each group items with review text first, then the most recent. Each item shows its
facet values (up to 3) and, when the user reviewed it, an excerpt of the first non-blank review
(`review_chars`, cut at a word boundary).

Reference ("grounded-v1"), computed over the items shown, so every fact can be checked against
the input: how many were liked and disliked; the facet values (genres, else categories, else tags)
over-represented among the liked items vs the disliked ones, with counts; and the review words
(stopwords removed, each counted once per review) that set the two groups apart, kept when at
least 2 reviews use them. An optional teacher model rewrites it (itdr_pipeline.teacher).
"""

import json
from typing import Any

import duckdb
import pyarrow as pa

from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.tasks.base import (RecordBuilder, RenderSettings, cap_entities, choose_template, domain_vars,
                                      item_label, require_filtered, task_templates)
from itdr_pipeline.tasks.grounded import (REFERENCE_GENERATOR, build_facets, build_labeled, contrast, excerpt,
                                          facets_of, join_words, terms)
from itdr_pipeline.teacher import apply_teacher

TASK = "ir"
MIN_TERM_REVIEWS = 2  # a review word must occur in this many reviews of its group
MIN_SHARED = 2  # with nothing disliked, a facet value must be shared by this many liked items
TOP = 3  # facet values / words per side in the reference
MAX_FACETS = 3  # facet values shown per item


def _candidates(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, settings: RenderSettings) -> list[dict[str, Any]]:
    """Per capped user: up to profile_len liked and disliked items each, best first, with review text."""
    min_liked = settings.ir_min_liked
    con.execute("""CREATE OR REPLACE TEMP TABLE ir_users AS
                   SELECT user_id, count(*) FILTER (liked) AS n_liked, count(*) FILTER (NOT liked) AS n_disliked
                   FROM ir_labeled GROUP BY user_id HAVING count(*) FILTER (liked) >= ?""", [min_liked])
    cap_entities(con, table="ir_users", key="user_id", dataset=spec.id, task=TASK, settings=settings,
                 out="ir_capped")
    return con.sql(
        """WITH r AS (SELECT user_id, item_id, first(text ORDER BY ts NULLS LAST, src_row) AS text FROM reviews
                      SEMI JOIN ir_capped USING (user_id)
                      WHERE dataset = $d AND trim(coalesce(text, '')) <> '' GROUP BY user_id, item_id),
           l AS (SELECT l.user_id, l.item_id, l.liked, r.text,
                        row_number() OVER (PARTITION BY l.user_id, l.liked
                                           ORDER BY r.text IS NULL, l.ts DESC NULLS LAST, l.src_row DESC) AS k
                 FROM ir_labeled l SEMI JOIN ir_capped USING (user_id) LEFT JOIN r USING (user_id, item_id)
                 WHERE l.liked IS NOT NULL QUALIFY k <= $n)
           SELECT c.user_id, c.split, c.record_idx, c.n_liked, c.n_disliked,
                  list(struct_pack(item_id := l.item_id, liked := l.liked, title := i.title, text := l.text)
                       ORDER BY l.liked DESC, l.k) AS items
           FROM ir_capped c JOIN l USING (user_id) LEFT JOIN items i ON i.dataset = $d AND i.item_id = l.item_id
           GROUP BY ALL ORDER BY c.record_idx""",
        params={"d": spec.id, "n": settings.profile_len},
    ).to_arrow_table().to_pylist()


def _shown(items: list[dict[str, Any]], profile_len: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    liked = [i for i in items if i["liked"]]
    disliked = [i for i in items if not i["liked"]]
    k_dis = min(len(disliked), max(profile_len // 2, profile_len - len(liked)))
    return liked[:profile_len - k_dis], disliked[:k_dis]


def _facet_sentences(liked: list[list[str]], disliked: list[list[str]], facet: str) -> tuple[list[str], dict]:
    pro, con = contrast(liked, disliked, len(liked) + len(disliked) + 1)
    nl, nd = len(liked), len(disliked)
    if not nd:  # nothing disliked to contrast with: only values several liked items share say something
        pro = [p for p in pro if p[1] >= MIN_SHARED]
    pro, con = pro[:TOP], con[:TOP]
    out = []
    if pro and nd:
        out.append(f"{facet.capitalize()} more common among the liked ones: "
                   + join_words([f"{v} ({a} of {nl} liked vs {b} of {nd} disliked)" for v, a, b in pro]) + ".")
    elif pro:
        out.append(f"Most frequent {facet} among them: " + join_words([f"{v} ({a} of {nl})" for v, a, _ in pro]) + ".")
    if con:
        out.append(f"{facet.capitalize()} more common among the disliked ones: "
                   + join_words([f"{v} ({b} of {nd} disliked vs {a} of {nl} liked)" for v, a, b in con]) + ".")
    return out, {"liked_facets": [list(p) for p in pro], "disliked_facets": [list(c) for c in con]}


def _term_sentences(liked: list[str | None], disliked: list[str | None], nouns: str) -> tuple[list[str], dict]:
    lt = [terms(t) for t in liked if t]
    dt = [terms(t) for t in disliked if t]
    pro, con = contrast(lt, dt, len(lt) + len(dt) + 1)
    pro = [p for p in pro if p[1] >= MIN_TERM_REVIEWS][:TOP]
    con = [c for c in con if c[2] >= MIN_TERM_REVIEWS][:TOP]
    out = []
    if pro:
        lead = f"Words that set the user's reviews of liked {nouns} apart" if dt else \
            f"Words the user's reviews of liked {nouns} use most"
        out.append(f"{lead}: " + join_words([f"{v} ({a} of {len(lt)} reviews)" for v, a, _ in pro]) + ".")
    if con:
        out.append(f"Words typical of the reviews of disliked {nouns}: "
                   + join_words([f"{v} ({b} of {len(dt)} reviews)" for v, _, b in con]) + ".")
    return out, {"liked_terms": [list(p) for p in pro], "disliked_terms": [list(c) for c in con]}


def reference(liked: list[dict[str, Any]], disliked: list[dict[str, Any]], facet: str | None,
              words: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The grounded summary of one user's shown items, and its facts as a dict."""
    nouns = words["nouns"]
    n = len(liked) + len(disliked)
    if disliked:
        parts = [f"Of the {n} {nouns} shown, the user liked {len(liked)} and disliked {len(disliked)}."]
    else:
        parts = [f"The user liked all {n} {nouns} shown."]
    facts: dict[str, Any] = {"liked": len(liked), "disliked": len(disliked), "facet": facet}
    if facet:
        text, found = _facet_sentences([i["tags"] for i in liked], [i["tags"] for i in disliked], facet)
        parts += text
        facts.update(found)
    text, found = _term_sentences([i["text"] for i in liked], [i["text"] for i in disliked], nouns)
    return " ".join(parts + text), {**facts, **found}


def render_ir(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str, settings: RenderSettings) -> pa.Table:
    """One record per user with enough liked items (split by the stable user hash whatever the profile)."""
    require_filtered(con, spec.id)
    build_labeled(con, spec, "ir_labeled")
    facet = build_facets(con, spec.id, "ir_facets")
    rows = _candidates(con, spec, settings)
    facets = facets_of(con, "ir_facets", [i["item_id"] for r in rows for i in r["items"]])
    templates, held_out = task_templates(TASK, profile)
    words = domain_vars(spec)
    out = RecordBuilder(spec, TASK, profile, settings)
    descriptions: dict[int, str] = {}
    for r in rows:
        liked, disliked = _shown(r["items"], settings.profile_len)
        for i in liked + disliked:
            i["tags"] = facets.get(i["item_id"], [])
            i["label"] = item_label(i["title"], i["item_id"], words["noun"])
        text, facts = reference(liked, disliked, facet, words)
        view = [{"title": i["label"], "tags": i["tags"][:MAX_FACETS], "review": excerpt(i["text"], settings.review_chars)}
                for i in liked + disliked]
        context = {**words, "liked": view[:len(liked)], "disliked": view[len(liked):], "reference": text}
        template = choose_template(templates, held_out, settings, spec.id, TASK, r["split"], (profile, r["user_id"]))
        descriptions[r["record_idx"]] = template.description.render(context)
        out.add(template=template, split=r["split"], record_idx=r["record_idx"], context=context,
                reference_generator=REFERENCE_GENERATOR, user_id=r["user_id"],
                answer_json=json.dumps(facts, ensure_ascii=False),
                history_item_ids=[i["item_id"] for i in liked + disliked])
    apply_teacher(con, settings, out, descriptions)
    return out.table()
