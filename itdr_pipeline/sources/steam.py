"""Steam, the SASRec release (Kang & McAuley, ICDM 2018), from its official files to canonical tables.

Layout (https://cseweb.ucsd.edu/~jmcauley/datasets.html#steam_data, "Version 2"): two gzip'd
files with one Python dict literal per line (`{u'id': u'761140', ..., u'early_access': False}`),
so `json.loads` fails; they are read with `ast.literal_eval` (SourceContext.read_python_literals).

- steam_games.json.gz: keys url, id, app_name, title, genres, tags, specs, price, discount_price,
  release_date, developer, publisher, reviews_url, sentiment, metascore, early_access; any may be
  missing. Measured quirks of the real file (32,135 lines): lines 75 and 30962 have no `id` (the
  first is a bare store link; the second a full game) and are quarantined (`missing_id`), since an
  id guessed from the URL would be invented; id 612880 appears twice (lines 13895, 14574): the
  first line is kept, the later one quarantined (`duplicate_id`); line 2581 has neither app_name
  nor title (title NULL). `price` is a float, a string ("Free", "Free To Play", "Install Now",
  "Starting at $449.00", ...) or missing: only numbers become `price`. `release_date` is
  'YYYY-MM-DD' or free text ("Coming Soon", "Q1 2018", "Dec 2017"): only full dates are kept.
  Items: title = app_name (else title), genres, tags, creator = developer, publisher,
  release_date, price, url (specs, sentiment, metascore, discount_price have no canonical column).
- steam_reviews.json.gz: keys username, hours, products, product_id, page_order, date
  ('YYYY-MM-DD'), text, early_access, page; found_funny, compensation and user_id only on some
  lines. The user key is `username`, as SASRec used it: a display name (the numeric Steam
  `user_id` is on about 41% of lines only). Interactions: event 'review', weight = hours on record
  at review time (NULL where missing), ts = the date at 00:00 UTC; reviews get the text (no rating).
  Lines without username or product_id, or with a date or hours that do not parse, are quarantined.
  Without this file (it is often missing from copies) the games still ingest and `absent` says so.

Label rule `weight_above_user_median`: the release has no recommend flag, so a review counts as
liked when its hours exceed the median hours of that user's reviews; a user's only review, and
reviews at the median, are not liked; reviews without hours get no label.
"""

from itdr_pipeline.sources.base import IngestResult, SourceContext

GAMES = "steam_games.json.gz"
REVIEWS = "steam_reviews.json.gz"

_GAME_FIELDS = {
    "id": "VARCHAR", "app_name": "VARCHAR", "title": "VARCHAR", "genres": "VARCHAR[]", "tags": "VARCHAR[]",
    "developer": "VARCHAR", "publisher": "VARCHAR", "release_date": "VARCHAR", "price": "JSON", "url": "VARCHAR",
}
_REVIEW_FIELDS = {"username": "VARCHAR", "product_id": "VARCHAR", "hours": "JSON", "date": "VARCHAR",
                  "text": "VARCHAR"}
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


def _blank(column: str) -> str:
    return f"({column} IS NULL OR trim({column}) = '')"


def _stage_games(ctx: SourceContext) -> None:
    ctx.read_python_literals(GAMES, "stg_games", _GAME_FIELDS)
    ctx.reject_where("stg_games", GAMES, _blank("id"), "missing_id: the line has no 'id'")
    # Keep the first line of a repeated id (file order), quarantine the later ones.
    ctx.reject_where(
        "stg_games", GAMES,
        "src_row IN (SELECT src_row FROM (SELECT src_row, row_number() OVER (PARTITION BY id ORDER BY src_row) AS k "
        "FROM stg_games) WHERE k > 1)",
        "duplicate_id: the id is on an earlier line, which is kept")
    ctx.con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_items AS
            SELECT id AS item_id,
                   CASE WHEN NOT {_blank('app_name')} THEN app_name WHEN NOT {_blank('title')} THEN title END AS title,
                   genres, tags,
                   nullif(trim(developer), '') AS creator, nullif(trim(publisher), '') AS publisher,
                   CASE WHEN regexp_matches(release_date, '{_ISO_DATE}') THEN TRY_CAST(release_date AS DATE)
                        END AS release_date,
                   CASE WHEN json_type(price) IN ('DOUBLE', 'BIGINT', 'UBIGINT') THEN price::DOUBLE END AS price,
                   nullif(trim(url), '') AS url
            FROM stg_games""")


def _stage_reviews(ctx: SourceContext) -> None:
    ctx.read_python_literals(REVIEWS, "stg_reviews", _REVIEW_FIELDS)
    ctx.reject_where("stg_reviews", REVIEWS, _blank("username"), "missing_user: the line has no 'username'")
    ctx.reject_where("stg_reviews", REVIEWS, _blank("product_id"), "missing_item: the line has no 'product_id'")
    ctx.reject_where("stg_reviews", REVIEWS,
                     f"date IS NOT NULL AND NOT (regexp_matches(date, '{_ISO_DATE}') "
                     "AND TRY_CAST(date AS DATE) IS NOT NULL)",
                     "bad_value: 'date' is not a YYYY-MM-DD date")
    ctx.reject_where("stg_reviews", REVIEWS,
                     "hours IS NOT NULL AND json_type(hours) NOT IN ('DOUBLE', 'BIGINT', 'UBIGINT', 'NULL')",
                     "bad_value: 'hours' is not a number")
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_interactions AS
           SELECT username AS user_id, product_id AS item_id, NULL::DOUBLE AS rating,
                  CAST(date AS DATE)::TIMESTAMP AS ts, 'review' AS event, hours::DOUBLE AS weight, src_row
           FROM stg_reviews""")
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_reviews AS
           SELECT username AS user_id, product_id AS item_id, CAST(date AS DATE)::TIMESTAMP AS ts,
                  NULL::DOUBLE AS rating, text, src_row
           FROM stg_reviews""")


def ingest_steam(ctx: SourceContext) -> IngestResult:
    _stage_games(ctx)
    if ctx.path(REVIEWS) is None:
        ctx.note_absent(REVIEWS, "games ingested as items; no users, interactions or reviews")
    else:
        _stage_reviews(ctx)
    return ctx.finish()
