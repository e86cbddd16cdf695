"""MovieLens, from GroupLens' official files to canonical tables.

- 100K (u.data, u.item, u.user, u.genre; ../shared/data/raw/ml-100k/SOURCE.md): no header, LF;
  u.data tab-separated; the others '|'-separated; u.item is latin-1 with 5 fields plus one 0/1
  flag per genre of u.genre; dates look like 01-Jan-1995.
- 1M (ratings.dat, movies.dat, users.dat): '::'-separated, latin-1, no header; genres '|'-joined;
  user age and occupation are codes decoded with the README's tables. Without ratings.dat
  (often missing from copies) users and items still ingest and the absence is reported.
- ml-latest layout (ml-latest-small, ml-20m, ml-25m, ml-32m): UTF-8 CSV with a header and '"'
  quoting (CRLF in ml-latest-small); ratings 0.5-5; tags.csv gives each movie's tags (most applied
  first) and links.csv its IMDb link. No user file: users come from the ratings.
"""

from itdr_pipeline.errors import RawDataError
from itdr_pipeline.sources.base import IngestResult, SourceContext
from itdr_pipeline.sources.delimited import epoch_check, required

# Every rating needs its four fields, and a time a timestamp can hold.
RATING_CHECKS = (*required("user_id", "item_id", "rating", "ts"), epoch_check("ts"))

# From the ml-1m README ("USERS FILE DESCRIPTION").
ML1M_AGE_GROUPS = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}
ML1M_OCCUPATIONS = (
    "other or not specified", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student",
    "lawyer", "programmer", "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer",
    "tradesman/craftsman", "unemployed", "writer",
)


def _genres(ctx: SourceContext) -> list[str]:
    stats = ctx.read_delimited("u.genre", "stg_genre", {"name": "VARCHAR", "idx": "INTEGER"}, delim="|")
    if stats.rejected:
        bad = stats.rejected[0]
        raise RawDataError(f"{ctx.dataset}: u.genre line {bad.line_no}: {bad.reason}")
    rows = ctx.con.execute("SELECT idx, name FROM stg_genre ORDER BY idx").fetchall()
    if [idx for idx, _ in rows] != list(range(len(rows))):
        raise RawDataError(f"{ctx.dataset}: u.genre indexes must run 0..{len(rows) - 1}, got {[i for i, _ in rows]}")
    return [name for _, name in rows]


def ingest_ml100k(ctx: SourceContext) -> IngestResult:
    con = ctx.con
    genres = _genres(ctx)
    flags = {f"g{i}": "BOOLEAN" for i in range(len(genres))}
    ctx.read_delimited("u.user", "stg_user", {"user_id": "BIGINT", "age": "INTEGER", "gender": "VARCHAR",
                                              "occupation": "VARCHAR", "zip_code": "VARCHAR"}, delim="|",
                       checks=required("user_id"))
    ctx.read_delimited("u.item", "stg_item", {"item_id": "BIGINT", "title": "VARCHAR", "release_date": "DATE",
                                              "video_date": "VARCHAR", "url": "VARCHAR", **flags},
                       delim="|", encoding="latin-1", dateformat="%d-%b-%Y", checks=required("item_id"))
    ctx.read_delimited("u.data", "stg_data", {"user_id": "BIGINT", "item_id": "BIGINT", "rating": "INTEGER",
                                              "ts": "BIGINT"}, delim="\t",
                       checks=RATING_CHECKS)
    # Staging views (no copies): the dataset id is bound when the partition is replaced.
    genre_list = ", ".join(f"CASE WHEN g{i} THEN (SELECT name FROM stg_genre WHERE idx = {i}) END"
                           for i in range(len(genres)))
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_items AS
            SELECT item_id::VARCHAR AS item_id, title,
                   list_filter([{genre_list}], lambda g: g IS NOT NULL)::VARCHAR[] AS genres,
                   release_date, nullif(url, '') AS url
            FROM stg_item"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP VIEW new_users AS
           SELECT user_id::VARCHAR AS user_id, age, gender, occupation, zip_code FROM stg_user"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP VIEW new_interactions AS
           SELECT user_id::VARCHAR AS user_id, item_id::VARCHAR AS item_id, rating::DOUBLE AS rating,
                  make_timestamp(ts * 1000000) AS ts, 'rating' AS event, rowid AS src_row
           FROM stg_data"""
    )
    return ctx.finish(authoritative=("users", "items"))


def ingest_ml1m(ctx: SourceContext) -> IngestResult:
    con = ctx.con
    ctx.read_delimited("users.dat", "stg_user", {"user_id": "BIGINT", "gender": "VARCHAR", "age": "INTEGER",
                                                 "occupation": "INTEGER", "zip_code": "VARCHAR"}, delim="::",
                       checks=required("user_id"))
    ctx.read_delimited("movies.dat", "stg_item", {"item_id": "BIGINT", "title": "VARCHAR", "genres": "VARCHAR"},
                       delim="::", encoding="latin-1", checks=required("item_id"))
    con.execute(
        """CREATE OR REPLACE TEMP VIEW new_users AS
           SELECT user_id::VARCHAR AS user_id, map_extract_value($ages, age) AS age_group, gender,
                  $occupations[occupation + 1] AS occupation, zip_code
           FROM stg_user""".replace("$ages", _sql_map(ML1M_AGE_GROUPS)).replace(
            "$occupations", _sql_list(ML1M_OCCUPATIONS))
    )
    con.execute(
        """CREATE OR REPLACE TEMP VIEW new_items AS
           SELECT item_id::VARCHAR AS item_id, title, string_split(genres, '|') AS genres FROM stg_item"""
    )
    if ctx.path("ratings.dat") is None:
        ctx.note_absent("ratings.dat", "users and movies ingested, no ratings (interactions is empty)")
    else:
        ctx.read_delimited("ratings.dat", "stg_data", {"user_id": "BIGINT", "item_id": "BIGINT",
                                                       "rating": "INTEGER", "ts": "BIGINT"}, delim="::",
                           checks=RATING_CHECKS)
        con.execute(
            """CREATE OR REPLACE TEMP VIEW new_interactions AS
               SELECT user_id::VARCHAR AS user_id, item_id::VARCHAR AS item_id, rating::DOUBLE AS rating,
                      make_timestamp(ts * 1000000) AS ts, 'rating' AS event, rowid AS src_row
               FROM stg_data"""
        )
    return ctx.finish(authoritative=("users", "items"))


def _sql_map(mapping: dict[int, str]) -> str:
    # Constants from this module (never user input), spelled as a SQL MAP literal.
    pairs = ", ".join(f"{k}: '{v}'" for k, v in mapping.items())
    return "MAP {" + pairs + "}"


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def ingest_latest(ctx: SourceContext) -> IngestResult:
    con = ctx.con
    csv = {"delim": ",", "header": True, "quote": '"'}
    ctx.read_delimited("movies.csv", "stg_item", {"item_id": "BIGINT", "title": "VARCHAR", "genres": "VARCHAR"},
                       checks=required("item_id"), **csv)
    ctx.read_delimited("ratings.csv", "stg_data", {"user_id": "BIGINT", "item_id": "BIGINT", "rating": "DOUBLE",
                                                   "ts": "BIGINT"}, checks=RATING_CHECKS, **csv)
    tags = "SELECT NULL::BIGINT AS item_id, NULL::VARCHAR[] AS tags WHERE false"
    if ctx.path("tags.csv") is not None:
        ctx.read_delimited("tags.csv", "stg_tag", {"user_id": "BIGINT", "item_id": "BIGINT", "tag": "VARCHAR",
                                                   "ts": "BIGINT"}, **csv)
        # Distinct tags per movie, most applied first (ties alphabetical): a stable, useful order.
        tags = """SELECT item_id, list(tag ORDER BY n DESC, tag) AS tags
                  FROM (SELECT item_id, tag, count(*) AS n FROM stg_tag WHERE trim(tag) <> '' GROUP BY ALL)
                  GROUP BY item_id"""
    links = "SELECT NULL::BIGINT AS item_id, NULL::VARCHAR AS imdb WHERE false"
    if ctx.path("links.csv") is not None:
        ctx.read_delimited("links.csv", "stg_link", {"item_id": "BIGINT", "imdb": "VARCHAR", "tmdb": "VARCHAR"},
                           **csv)
        links = "SELECT item_id, imdb FROM stg_link"
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_items AS
            SELECT m.item_id::VARCHAR AS item_id, m.title,
                   CASE WHEN m.genres = '(no genres listed)' THEN []::VARCHAR[]
                        ELSE string_split(m.genres, '|') END AS genres,
                   t.tags,
                   CASE WHEN l.imdb IS NOT NULL THEN 'https://www.imdb.com/title/tt' || l.imdb || '/' END AS url
            FROM stg_item m LEFT JOIN ({tags}) t USING (item_id) LEFT JOIN ({links}) l USING (item_id)"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP VIEW new_interactions AS
           SELECT user_id::VARCHAR AS user_id, item_id::VARCHAR AS item_id, rating,
                  make_timestamp(ts * 1000000) AS ts, 'rating' AS event, rowid AS src_row
           FROM stg_data"""
    )
    return ctx.finish(authoritative=("items",))  # no user file: users come from the ratings
