"""Amazon Reviews 2018 and 2023, one category per partition, from the official JSON Lines files.

2018 (Ni, Li & McAuley; ../shared/data/raw/amazon-reviews-2018/SOURCE.md): gzip'd strict JSON Lines.
- Reviews `<Cat>_5.json.gz` (5-core, preferred) or `<Cat>.json.gz` (full): `reviewerID`, `asin`,
  `overall` (1-5), `unixReviewTime` (seconds), `reviewText`, `summary` (either may be absent).
- Metadata `meta_<Cat>.json.gz` (optional): `asin`, `title`, `brand`, `category` (list),
  `description` (list), `price` ("$12.99", "" or scraped CSS), `date`, and images as `imageURL`/
  `imageURLHighRes` (2021 release) or `image` (2020 release); images are not read, so both parse.
2023 (Hou et al.): `<Cat>.jsonl.gz` / `meta_<Cat>.jsonl.gz` (or uncompressed `.jsonl`, as on Hugging Face).
- Reviews: `user_id`, `parent_asin`, `rating` (1.0-5.0), `timestamp` (MILLISECONDS), `title`, `text`.
  The item id is `parent_asin`: the card says variants share it and metadata is keyed by it
  (the 2018 `asin` was already a parent id). The variant `asin` is not kept.
- Metadata: `parent_asin`, `title`, `main_category`, `store` (-> brand), `categories` (list),
  `description` (list), `price` (number, null, or a string such as "None" or "—"), `details` (an
  object, or that object serialized as a string), `author` (an object with `name`, books only).

Mapping: every review line is one interaction (event 'review', rating = stars, ts = review time, UTC)
and one `reviews` row (text, summary = the review's summary/title; blank -> NULL). There is no user
file: users are derived from the reviews. Items come from the metadata (every product in it, with
`url` https://www.amazon.com/dp/<id>); reviewed products without metadata get NULL attributes.

Quirks handled:
- Scraper debris in metadata: titles, brands and category entries that are HTML fragments
  (`<span class="a-size-medium a-color-secondary"`, ` Magazines" />`, `</span></span>`) become NULL
  or are dropped; HTML entities there (&amp;, &#39;, &ntilde;) are decoded and surrounding whitespace
  is trimmed. Descriptions are kept as in the source (they hold real HTML markup).
- price: "$1,299.00" -> 1299.0; ranges ("$1.00 - $5.00"), CSS, "", "None", "—" -> NULL.
- release_date: 2018 `date` / 2023 details "Date First Available" or "Release date" when they parse
  as "March 7, 2019", "Mar 7, 2019" or ISO; other text (HTML in 2018) -> NULL.
- Duplicate metadata lines (meta_Magazine_Subscriptions 2018: 3,385 lines, 2,320 asins): the first
  line of each id wins; the count is reported as `dropped_duplicate_item` (not quarantined: the
  lines are well-formed repeats; `ctx.skip`). Metadata lines without an id are quarantined.
- 2023 products with an empty `categories` list (all of All_Beauty) get `[main_category]` instead.
- Review lines without user or item id, with a rating outside 1-5 whole stars (a 0.0 rating exists in
  2023 Grocery) or without a usable timestamp are quarantined with their line numbers.
- Repeated review lines are kept as published (5-core counts include them): Magazine_Subscriptions_5
  has 42 identical lines, All_Beauty_5 1,027; the contracts flag them (WARN, user_item_unique).
Label rule (`rating_above`, like_threshold 3): 4-5 stars liked, 1-3 not.
"""

import html

import pyarrow as pa

from itdr_pipeline.sources.base import IngestResult, SourceContext
from itdr_pipeline.sources.delimited import MAX_EPOCH_S

# Text cleaning for short metadata fields (titles, brands, categories), as DuckDB macros.
_MACROS = (
    r"""amz_trim(s) AS regexp_replace(s, '^\s+|\s+$', '', 'g')""",
    # The common entities in SQL (&amp; last, so "&amp;lt;" decodes once); Python only for the rare rest.
    """amz_unescape(s) AS CASE
           WHEN NOT contains(s, '&') THEN s
           WHEN regexp_matches(regexp_replace(s, '&(amp|quot|lt|gt|#39|nbsp);', '', 'g'), '&#?[A-Za-z0-9]+;')
           THEN amz_html_unescape(s)
           ELSE replace(replace(replace(replace(replace(replace(s, '&quot;', '"'), '&#39;', ''''), '&lt;', '<'),
                                        '&gt;', '>'), '&nbsp;', chr(160)), '&amp;', '&') END""",
    # Scraped markup (`<span class=...`, ` Magazines" />`) is no title: NULL.
    """amz_short(s) AS CASE WHEN NOT regexp_matches(s, '<[A-Za-z/!]|/>')
                            THEN nullif(amz_unescape(amz_trim(s)), '') END""",
    """amz_list(l) AS nullif(list_filter(list_transform(l, lambda c: amz_short(c)), lambda c: c IS NOT NULL), [])""",
    # A JSON list of paragraphs (or one string) -> the non-blank ones joined by newlines.
    r"""amz_paragraphs(j) AS CASE json_type(j)
           WHEN 'ARRAY' THEN nullif(array_to_string(list_filter(from_json(j, '["VARCHAR"]'),
                                                                lambda d: regexp_matches(d, '\S')), chr(10)), '')
           WHEN 'VARCHAR' THEN CASE WHEN regexp_matches(j ->> '$', '\S') THEN j ->> '$' END END""",
    r"""amz_price_text(s) AS CASE WHEN regexp_full_match(amz_trim(s), '\$?\s*[0-9][0-9,]*(\.[0-9]+)?')
           THEN TRY_CAST(replace(replace(amz_trim(s), '$', ''), ',', '') AS DOUBLE) END""",
    """amz_date(s) AS CAST(try_strptime(amz_trim(s), ['%B %d, %Y', '%b %d, %Y', '%Y-%m-%d']) AS DATE)""",
    r"""amz_text(s) AS CASE WHEN regexp_matches(s, '\S') THEN s END""",
)


def _html_unescape(values: pa.Array) -> pa.Array:
    return pa.array([None if v is None else html.unescape(v) for v in values.to_pylist()], pa.string())


def _macros(ctx: SourceContext) -> None:
    # DuckDB has no HTML entity decoder; Python's knows every named and numeric entity (&ntilde;, &#39;).
    known = ctx.con.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'amz_html_unescape'").fetchall()[0][0]
    if not known:
        ctx.con.create_function("amz_html_unescape", _html_unescape, ["VARCHAR"], "VARCHAR", type="arrow")
    for macro in _MACROS:
        ctx.con.execute(f"CREATE OR REPLACE TEMP MACRO {macro}")


def _stage_reviews(ctx: SourceContext, name: str, fields_: dict[str, str], user: str, item: str, rating: str,
                   ts: str, per_second: int = 1) -> None:
    """Stage the review file as `stg_reviews`, quarantining lines no interaction can be made of."""
    ctx.read_json_lines(name, "stg_reviews", fields_, checked=(rating,))  # bad_rating below says more
    ctx.reject_where("stg_reviews", name, f"coalesce(amz_trim({user}), '') = '' OR coalesce(amz_trim({item}), '') = ''",
                     f"missing_id: {user} or {item} is missing or empty")
    ctx.reject_where("stg_reviews", name, f"{rating} IS NULL OR {rating} NOT IN (1, 2, 3, 4, 5)",
                     f"bad_rating: {rating} is missing or not 1-5 whole stars")
    ctx.reject_where("stg_reviews", name, f"{ts} IS NULL OR {ts} < 0 OR {ts} > {MAX_EPOCH_S * per_second}",
                     f"bad_value: {ts} is missing or not a non-negative integer a timestamp can hold")


def _events(ctx: SourceContext, user: str, item: str, rating: str, ts_us: str, text: str, summary: str) -> None:
    """`new_interactions` and `new_reviews` from `stg_reviews` (one row per review line, file order)."""
    cols = f"{user} AS user_id, {item} AS item_id, {rating} AS rating, make_timestamp({ts_us}) AS ts"
    ctx.con.execute(f"""CREATE OR REPLACE TEMP VIEW new_interactions AS
                        SELECT {cols}, 'review' AS event, src_row FROM stg_reviews""")
    ctx.con.execute(f"""CREATE OR REPLACE TEMP VIEW new_reviews AS
                        SELECT {cols}, amz_text({text}) AS text, amz_text({summary}) AS summary, src_row
                        FROM stg_reviews""")


def _stage_meta(ctx: SourceContext, name: str, fields_: dict[str, str], key: str) -> None:
    """Stage the metadata file as `stg_meta`, one line per id (the first); repeats count as duplicate_item."""
    ctx.read_json_lines(name, "stg_meta_all", fields_)
    ctx.reject_where("stg_meta_all", name, f"coalesce(amz_trim({key}), '') = ''",
                     f"missing_id: {key} is missing or empty")
    ctx.con.execute(f"""CREATE OR REPLACE TEMP TABLE stg_meta AS SELECT * FROM stg_meta_all
                        QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY src_row) = 1""")
    (total, kept), = ctx.con.execute(
        "SELECT (SELECT count(*) FROM stg_meta_all), (SELECT count(*) FROM stg_meta)").fetchall()
    ctx.con.execute("DROP TABLE stg_meta_all")
    ctx.skip("duplicate_item", int(total - kept))


def _items(ctx: SourceContext, select: str) -> None:
    """`new_items` from `select` over `stg_meta`, computed once: the derivation of unlisted items reads it twice."""
    ctx.con.execute(f"CREATE OR REPLACE TEMP TABLE stg_items AS {select}")
    ctx.con.execute("DROP TABLE stg_meta")
    ctx.con.execute("CREATE OR REPLACE TEMP VIEW new_items AS SELECT * FROM stg_items")


def _meta_or_absent(ctx: SourceContext, name: str) -> bool:
    if ctx.path(name) is None:
        ctx.note_absent(name, "reviewed products get rows with NULL attributes (no titles, categories or prices)")
        return False
    return True


# Fields read from each file (a value of another JSON type reads as NULL; varying ones as JSON).
_REVIEWS_2018 = {"reviewerID": "VARCHAR", "asin": "VARCHAR", "overall": "DOUBLE", "unixReviewTime": "BIGINT",
                 "reviewText": "VARCHAR", "summary": "VARCHAR"}
_META_2018 = {"asin": "VARCHAR", "title": "VARCHAR", "brand": "VARCHAR", "category": "VARCHAR[]",
              "description": "JSON", "price": "VARCHAR", "date": "VARCHAR"}
_ITEMS_2018 = """
    SELECT asin AS item_id, amz_short(title) AS title, amz_list(category) AS categories,
           amz_paragraphs(description) AS description, amz_short(brand) AS brand,
           amz_date(date) AS release_date, amz_price_text(price) AS price, 'https://www.amazon.com/dp/' || asin AS url
    FROM stg_meta"""

_REVIEWS_2023 = {"user_id": "VARCHAR", "parent_asin": "VARCHAR", "rating": "DOUBLE", "timestamp": "BIGINT",
                 "title": "VARCHAR", "text": "VARCHAR"}
_META_2023 = {"parent_asin": "VARCHAR", "title": "VARCHAR", "main_category": "VARCHAR", "store": "VARCHAR",
              "categories": "VARCHAR[]", "description": "JSON", "price": "JSON", "details": "JSON", "author": "JSON"}
# `details` keys that give a date, in order of preference.
_DATE_KEYS = ("Date First Available", "Release date", "Publication date")
_DATES = ", ".join(f"amz_date(json_extract_string(d, '$.\"{k}\"'))" for k in _DATE_KEYS)
_ITEMS_2023 = f"""
    WITH m AS (
        SELECT *, CASE json_type(details) WHEN 'OBJECT' THEN details
                      WHEN 'VARCHAR' THEN CASE WHEN json_valid(details ->> '$')
                                               THEN CAST(details ->> '$' AS JSON) END END AS d
        FROM stg_meta)
    SELECT parent_asin AS item_id, amz_short(title) AS title,
           coalesce(amz_list(categories), amz_list([main_category])) AS categories,
           amz_paragraphs(description) AS description, amz_short(store) AS brand,
           CASE json_type(author) WHEN 'OBJECT' THEN amz_short(author ->> 'name')
                                  WHEN 'VARCHAR' THEN amz_short(author ->> '$') END AS creator,
           CASE WHEN json_type(d, '$.Publisher') = 'VARCHAR'
                THEN amz_short(json_extract_string(d, '$.Publisher')) END AS publisher,
           coalesce({_DATES}) AS release_date,
           CASE WHEN json_type(price) IN ('DOUBLE', 'BIGINT', 'UBIGINT') THEN CAST(price AS DOUBLE)
                WHEN json_type(price) = 'VARCHAR' THEN amz_price_text(price ->> '$') END AS price,
           'https://www.amazon.com/dp/' || parent_asin AS url
    FROM m"""


def ingest_2018(ctx: SourceContext) -> IngestResult:
    cat = ctx.spec.category
    _macros(ctx)
    _stage_reviews(ctx, f"{cat}_5.json.gz", _REVIEWS_2018, "reviewerID", "asin", "overall", "unixReviewTime")
    _events(ctx, "reviewerID", "asin", "overall", "unixReviewTime * 1000000", "reviewText", "summary")
    if _meta_or_absent(ctx, meta := f"meta_{cat}.json.gz"):
        _stage_meta(ctx, meta, _META_2018, "asin")
        _items(ctx, _ITEMS_2018)
    return ctx.finish()


def ingest_2023(ctx: SourceContext) -> IngestResult:
    cat = ctx.spec.category
    _macros(ctx)
    _stage_reviews(ctx, f"{cat}.jsonl.gz", _REVIEWS_2023, "user_id", "parent_asin", "rating", "timestamp",
                   per_second=1000)
    _events(ctx, "user_id", "parent_asin", "rating", "timestamp * 1000", "text", "title")  # milliseconds
    if _meta_or_absent(ctx, meta := f"meta_{cat}.jsonl.gz"):
        _stage_meta(ctx, meta, _META_2023, "parent_asin")
        _items(ctx, _ITEMS_2023)
    return ctx.finish()
