"""Yelp Open Dataset, from its official JSON Lines files to canonical tables.

Layout (https://business.yelp.com/data/resources/open-dataset/; the download is a zip holding a
gzip'd tar of plain, uncompressed `yelp_academic_dataset_<kind>.json` files, one JSON object per
line, UTF-8):
- business: business_id, name, address, city, state, postal_code, latitude, longitude, stars,
  review_count, is_open, attributes (object of strings, or null), categories (ONE string
  "Restaurants, Pizza", or null), hours (object or null). Items: title = name, categories = the
  string split on ',' and trimmed, in the source's order; description = the location as one line,
  "address, city, STATE postal_code", leaving out empty parts (address and postal_code are often
  ""): the business file has no prose, and where a business is matters for whom it suits.
  Attributes, hours, stars and coordinates have no canonical column and are not carried.
- review: review_id, user_id, business_id, stars (1-5, written 4.0 in recent releases), useful,
  funny, cool, text, date ('YYYY-MM-DD HH:MM:SS', no time zone: kept as is). One interaction
  (event 'review', rating = stars, ts = date) and one review (with the text) per line; a user may
  review the same business again on another date, and both rows are kept.
- user (optional): user_id, name (first name only), review_count, yelping_since, useful, funny,
  cool, elite ("2018,2019"), friends ("id, id" or "None"), fans, average_stars, compliment_*.
  Nothing demographic: it only lists the user ids (users without it come from the reviews).

Lines that are not JSON objects are quarantined by the reader; rows without an id, with stars
outside 1-5 or with a date that does not parse are quarantined here; a repeated business or user
id keeps its first line (file order), later ones are quarantined (`duplicate_id`).
Label rule `rating_above` with like_threshold 3: 4 and 5 stars are liked.
"""

from itdr_pipeline.sources.base import IngestResult, SourceContext

BUSINESS = "yelp_academic_dataset_business.json"
REVIEW = "yelp_academic_dataset_review.json"
USER = "yelp_academic_dataset_user.json"


def _blank(column: str) -> str:
    return f"({column} IS NULL OR trim({column}) = '')"


def _first_by_id(ctx: SourceContext, stage: str, name: str, key: str) -> None:
    ctx.reject_where(stage, name, _blank(key), f"missing_id: the line has no '{key}'")
    ctx.reject_where(
        stage, name,
        f"src_row IN (SELECT src_row FROM (SELECT src_row, row_number() OVER (PARTITION BY {key} ORDER BY src_row) "
        f"AS k FROM {stage}) WHERE k > 1)",
        "duplicate_id: the id is on an earlier line, which is kept")


def _stage_business(ctx: SourceContext) -> None:
    ctx.read_json_lines(BUSINESS, "stg_business", {
        "business_id": "VARCHAR", "name": "VARCHAR", "address": "VARCHAR", "city": "VARCHAR", "state": "VARCHAR",
        "postal_code": "VARCHAR", "categories": "VARCHAR"})
    _first_by_id(ctx, "stg_business", BUSINESS, "business_id")
    ctx.con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_items AS
            SELECT business_id AS item_id,
                   CASE WHEN NOT {_blank('name')} THEN name END AS title,
                   CASE WHEN categories IS NOT NULL THEN
                        list_filter(list_transform(string_split(categories, ','), lambda c: trim(c)),
                                    lambda c: c <> '') END AS categories,
                   nullif(concat_ws(', ', nullif(trim(address), ''), nullif(trim(city), ''),
                                    nullif(concat_ws(' ', nullif(trim(state), ''), nullif(trim(postal_code), '')), '')),
                          '') AS description
            FROM stg_business""")


def _stage_reviews(ctx: SourceContext) -> None:
    ctx.read_json_lines(REVIEW, "stg_review", {
        "review_id": "VARCHAR", "user_id": "VARCHAR", "business_id": "VARCHAR", "stars": "DOUBLE",
        "date": "VARCHAR", "text": "VARCHAR"})
    ctx.reject_where("stg_review", REVIEW, _blank("user_id"), "missing_user: the line has no 'user_id'")
    ctx.reject_where("stg_review", REVIEW, _blank("business_id"), "missing_item: the line has no 'business_id'")
    ctx.reject_where("stg_review", REVIEW, "stars IS NULL OR stars NOT IN (1, 2, 3, 4, 5)",
                     "bad_value: 'stars' is not a whole number of stars from 1 to 5")
    ctx.reject_where("stg_review", REVIEW, "date IS NOT NULL AND TRY_CAST(date AS TIMESTAMP) IS NULL",
                     "bad_value: 'date' is not a 'YYYY-MM-DD HH:MM:SS' time")
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_interactions AS
           SELECT user_id, business_id AS item_id, stars AS rating, CAST(date AS TIMESTAMP) AS ts,
                  'review' AS event, src_row
           FROM stg_review""")
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_reviews AS
           SELECT user_id, business_id AS item_id, CAST(date AS TIMESTAMP) AS ts, stars AS rating, text, src_row
           FROM stg_review""")


def ingest_yelp(ctx: SourceContext) -> IngestResult:
    _stage_business(ctx)
    _stage_reviews(ctx)
    if ctx.path(USER) is None:
        ctx.note_absent(USER, "users listed from the reviews only")
    else:
        ctx.read_json_lines(USER, "stg_user", {"user_id": "VARCHAR"})
        _first_by_id(ctx, "stg_user", USER, "user_id")
        ctx.con.execute("CREATE OR REPLACE TEMP VIEW new_users AS SELECT user_id FROM stg_user")
    return ctx.finish()
