"""What the user-item-understanding tasks (uap, ir, tui) share: who liked what, item facets, text
excerpts and the counting behind the deterministic "grounded-v1" references.

Liked (per user and item, one row per pair; repeats merged: the first rating, the summed weight,
the latest time) follows the source's label rule (registry LABEL_RULES):
- `rating_above`: liked when rating > like_threshold, disliked otherwise; no rating: no label.
- `weight_above_user_median`: liked when the weight (plays, hours) is above the user's median
  weight, disliked otherwise; no weight: no label.
- `clicked`: liked when clicked (weight > 0), disliked when only shown.
- `positive_only`: every interaction is liked; nothing is disliked.

Facet: the item field that says what an item is about: genres where the dataset's items have
any, else categories, else tags. Values found on at least half of the dataset's interacted items
("Magazine Subscriptions", "Gift Cards") say nothing about a taste and are left out.
"""

import html
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import duckdb

from itdr_pipeline.registry import DatasetSpec

REFERENCE_GENERATOR = "grounded-v1"
FACETS = ("genres", "categories", "tags")
UBIQUITOUS_SHARE = 0.5  # facet values on at least this share of interacted items are dropped
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
# Function words and review boilerplate: they say nothing about what a user likes.
STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
even ever few for from further get gets got had hadn't has hasn't have haven't having he he'd he'll he's her
here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself
just let's like me more most much mustn't my myself no nor not now of off on once one only or other ought our
ours ourselves out over own really same shan't she she'd she'll she's should shouldn't so some still such than
that that's the their theirs them themselves then there there's these they they'd they'll they're they've this
those through thing things to too under until up upon us use used very was wasn't way we we'd we'll we're
we've well were weren't what what's when when's where where's which while who who's whom why why's will with
won't would wouldn't yet you you'd you'll you're you've your yours yourself yourselves item product
""".split())


def liked_expr(spec: DatasetSpec) -> str:
    """SQL for the liked flag (TRUE/FALSE/NULL) over columns rating and weight of one (user, item)."""
    if spec.label_rule == "rating_above":
        return f"rating > {float(spec.like_threshold)!r}"
    if spec.label_rule == "weight_above_user_median":
        return "weight > median(weight) OVER (PARTITION BY user_id)"
    if spec.label_rule == "clicked":
        return "coalesce(weight, 0) > 0"
    return "TRUE"


def build_labeled(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, name: str) -> str:
    """Temp table `name`: one row per (user, item) of filtered_interactions with its liked flag."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name} AS
            WITH p AS (
                SELECT user_id, item_id,
                       first(rating ORDER BY ts NULLS LAST, src_row) FILTER (WHERE rating IS NOT NULL) AS rating,
                       sum(weight) AS weight, max(ts) AS ts, min(src_row) AS src_row
                FROM filtered_interactions WHERE dataset = ? GROUP BY user_id, item_id)
            SELECT *, {liked_expr(spec)} AS liked FROM p""",
        [spec.id],
    )
    return name


def facet_column(con: duckdb.DuckDBPyConnection, dataset: str) -> str | None:
    """The first of genres, categories, tags that any interacted item of the dataset fills."""
    for column in FACETS:
        found = con.execute(
            f"""SELECT count(*) FROM items i SEMI JOIN filtered_interactions f
                ON f.dataset = i.dataset AND f.item_id = i.item_id
                WHERE i.dataset = ? AND len(i.{column}) > 0 LIMIT 1""", [dataset]).fetchone()[0]
        if found:
            return column
    return None


def build_facets(con: duckdb.DuckDBPyConnection, dataset: str, name: str) -> str | None:
    """Temp table `name` (item_id, value): each interacted item's informative facet values, once
    each. Returns the facet column used, or None (the table is then empty)."""
    column = facet_column(con, dataset)
    source = "SELECT NULL::VARCHAR AS item_id, NULL::VARCHAR AS value, 0 AS pos WHERE FALSE"
    if column:
        source = f"""SELECT i.item_id, trim(u.value) AS value, u.pos FROM items i
                     SEMI JOIN filtered_interactions f ON f.dataset = i.dataset AND f.item_id = i.item_id,
                     unnest(i.{column}) WITH ORDINALITY AS u(value, pos)
                     WHERE i.dataset = $d AND trim(u.value) <> ''"""
    sql = f"""CREATE OR REPLACE TEMP TABLE {name} AS
        WITH v AS (SELECT item_id, value, min(pos) AS pos FROM ({source}) GROUP BY item_id, value),
        n AS (SELECT count(DISTINCT item_id) AS items FROM v),
        keep AS (SELECT value FROM v, n GROUP BY value, n.items HAVING count(*) < $share * n.items)
        SELECT item_id, value, pos FROM v SEMI JOIN keep USING (value)"""
    params = {"share": UBIQUITOUS_SHARE, **({"d": dataset} if column else {})}
    con.execute(sql, params)
    return column


def facets_of(con: duckdb.DuckDBPyConnection, table: str, item_ids: Iterable[str]) -> dict[str, list[str]]:
    """Facet values of these items (source order), from a build_facets table."""
    import pyarrow as pa

    wanted = pa.table({"item_id": sorted(set(item_ids))})
    rows = con.sql(f"""SELECT item_id, list(value ORDER BY pos, value) FROM {table}
                       SEMI JOIN wanted USING (item_id) GROUP BY item_id""").fetchall()
    return dict(rows)


def excerpt(text: str | None, chars: int) -> str:
    """Markup stripped, whitespace collapsed, cut at a word boundary near `chars` ("..." marks a cut)."""
    if not text:
        return ""
    clean = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()
    if len(clean) <= chars:
        return clean
    cut = clean[:chars + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > chars // 2 else clean[:chars]
    return cut.rstrip(" ,;:.-") + "..."


def terms(text: str | None) -> set[str]:
    """The distinct content words of a text (lower case, letters only, >= 3 letters, no stopwords)."""
    if not text:
        return set()
    words = (w.lower() for w in _WORD.findall(html.unescape(_TAG.sub(" ", text))))
    return {w for w in words if len(w) >= 3 and w not in STOPWORDS}


def contrast(liked: Sequence[Iterable[str]], disliked: Sequence[Iterable[str]], k: int
             ) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """Values over-represented among liked vs disliked members (each member counts a value once):
    (value, liked count, disliked count), ranked by the gap in shares, then count, then value.
    The second list leans to the disliked side (empty when nothing was disliked)."""
    n_l, n_d = len(liked), len(disliked)
    a = Counter(v for m in liked for v in set(m))
    b = Counter(v for m in disliked for v in set(m))

    def gap(v: str) -> float:
        return (a[v] / n_l if n_l else 0.0) - (b[v] / n_d if n_d else 0.0)

    pro = sorted((v for v in a if gap(v) > 0), key=lambda v: (-gap(v), -a[v], v))[:k]
    con = sorted((v for v in b if gap(v) < 0), key=lambda v: (gap(v), -b[v], v))[:k]
    return [(v, a[v], b[v]) for v in pro], [(v, a[v], b[v]) for v in con]


def percent(part: float, whole: float) -> int:
    return round(100 * part / whole) if whole else 0


def join_words(parts: Sequence[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"
