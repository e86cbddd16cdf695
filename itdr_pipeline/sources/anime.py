"""Anime Dataset 2023 (MyAnimeList via Kaggle, dbdmobile/myanimelist-dataset) to canonical tables.

Layout: UTF-8 CSV files with a header row, ',' separated, '"' quoting with '""' for a quote, LF
line endings. The parser checks each header against the expected one (a re-exported or older
file fails by name instead of being misread).
- anime-dataset-2023.csv (24,905 anime): anime_id, Name, English name, Other name, Score, Genres,
  Synopsis, Type, Episodes, Aired, Premiered, Status, Producers, Licensors, Studios, Source,
  Duration, Rating, Rank, Popularity, Favorites, Scored By, Members, Image URL. Synopses hold
  quoted line breaks (a line count gives about 40,800 lines). Missing values are the literal
  'UNKNOWN'; a missing synopsis is "No description available for this anime.": both become NULL.
  Items: title = Name (MyAnimeList's main, usually romanised, title; the one the score file
  repeats), genres = Genres split on ', ', description = Synopsis, publisher = Studios (the
  contract's "publisher or studio"; several studios stay one ', '-joined string), release_date =
  the start of Aired where it is a full date ("Apr 3, 1998 to Apr 24, 1999", "Oct 20, 1999 to ?",
  "Sep 1, 2001"; "Apr 2012", "2005" or "Not available" give NULL), url = the MyAnimeList page.
  English/Other name, Type, Episodes, Producers, Licensors, Source and the score statistics have
  no canonical column and are not carried.
- users-details-2023.csv (731,290 users): Mal ID, Username, Gender, Birthday, Location, Joined,
  Days Watched, Mean Score, Watching, Completed, On Hold, Dropped, Plan to Watch, Total Entries,
  Rewatched, Episodes Watched. Users: user_id = Mal ID, gender ('Male', 'Female', 'Non-Binary';
  empty = NULL), birth_date = the date of Birthday ('1985-03-04T00:00:00+00:00'), location = the
  free text as typed (HTML entities such as '&aring;' are kept as in the source).
- users-score-2023.csv (24,325,191 scores): user_id (= Mal ID), Username (empty on a few hundred
  rows; unused), anime_id, Anime Title, rating (1-10). Interactions: event 'rating', no
  timestamp in this release (ts NULL; file order is kept in src_row). No review text: `reviews`
  stays empty.
Rows whose ids or score do not parse are quarantined by the CSV reader with their line numbers; a
repeated anime or user id keeps its first row.
Label rule `rating_above` with like_threshold 6: 7 ("Good") to 10 ("Masterpiece") are liked.
"""

from itdr_pipeline.errors import RawDataError
from itdr_pipeline.sources.base import IngestResult, SourceContext

ANIME = "anime-dataset-2023.csv"
USERS = "users-details-2023.csv"
SCORES = "users-score-2023.csv"

# Official header -> the staging column name and type (headers are checked, then replaced by these).
_ANIME_COLUMNS = {
    "anime_id": "BIGINT", "Name": "VARCHAR", "English name": "VARCHAR", "Other name": "VARCHAR",
    "Score": "VARCHAR", "Genres": "VARCHAR", "Synopsis": "VARCHAR", "Type": "VARCHAR", "Episodes": "VARCHAR",
    "Aired": "VARCHAR", "Premiered": "VARCHAR", "Status": "VARCHAR", "Producers": "VARCHAR",
    "Licensors": "VARCHAR", "Studios": "VARCHAR", "Source": "VARCHAR", "Duration": "VARCHAR",
    "Rating": "VARCHAR", "Rank": "VARCHAR", "Popularity": "VARCHAR", "Favorites": "VARCHAR",
    "Scored By": "VARCHAR", "Members": "VARCHAR", "Image URL": "VARCHAR",
}
_USER_COLUMNS = {
    "Mal ID": "BIGINT", "Username": "VARCHAR", "Gender": "VARCHAR", "Birthday": "VARCHAR", "Location": "VARCHAR",
    "Joined": "VARCHAR", "Days Watched": "VARCHAR", "Mean Score": "VARCHAR", "Watching": "VARCHAR",
    "Completed": "VARCHAR", "On Hold": "VARCHAR", "Dropped": "VARCHAR", "Plan to Watch": "VARCHAR",
    "Total Entries": "VARCHAR", "Rewatched": "VARCHAR", "Episodes Watched": "VARCHAR",
}
_SCORE_COLUMNS = {"user_id": "BIGINT", "Username": "VARCHAR", "anime_id": "BIGINT", "Anime Title": "VARCHAR",
                  "rating": "INTEGER"}
_CSV = {"delim": ",", "header": True, "quote": '"'}
_NO_SYNOPSIS = "No description available for this anime."


def _snake(name: str) -> str:
    return name.lower().replace(" ", "_")


def _read(ctx: SourceContext, name: str, stage: str, columns: dict[str, str]) -> None:
    path = ctx.files[name]
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = handle.readline().rstrip("\r\n")
    if header != ",".join(columns):
        raise RawDataError(f"{ctx.dataset}: {path.name}: header is {header[:300]!r}, expected {','.join(columns)!r}")
    ctx.read_delimited(name, stage, {_snake(c): t for c, t in columns.items()}, **_CSV)


def _known(column: str) -> str:
    """The value, NULL where the source wrote 'UNKNOWN' or nothing."""
    return f"CASE WHEN trim({column}) NOT IN ('', 'UNKNOWN') THEN {column} END"


def _items(ctx: SourceContext) -> None:
    _read(ctx, ANIME, "stg_anime", _ANIME_COLUMNS)
    start = "split_part(aired, ' to ', 1)"
    ctx.con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_items AS
            SELECT anime_id::VARCHAR AS item_id, {_known('name')} AS title,
                   CASE WHEN {_known('genres')} IS NOT NULL THEN string_split(genres, ', ') END AS genres,
                   CASE WHEN synopsis <> '{_NO_SYNOPSIS}' THEN {_known('synopsis')} END AS description,
                   {_known('studios')} AS publisher,
                   TRY_STRPTIME({start}, '%b %d, %Y')::DATE AS release_date,
                   'https://myanimelist.net/anime/' || anime_id AS url
            FROM stg_anime QUALIFY row_number() OVER (PARTITION BY anime_id ORDER BY rowid) = 1""")


def _users(ctx: SourceContext) -> None:
    _read(ctx, USERS, "stg_users", _USER_COLUMNS)
    ctx.con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_users AS
            SELECT mal_id::VARCHAR AS user_id, {_known('gender')} AS gender,
                   CASE WHEN regexp_matches(birthday, '^\\d{{4}}-\\d{{2}}-\\d{{2}}')
                        THEN TRY_CAST(left(birthday, 10) AS DATE) END AS birth_date,
                   {_known('location')} AS location
            FROM stg_users QUALIFY row_number() OVER (PARTITION BY mal_id ORDER BY rowid) = 1""")


def ingest_anime_2023(ctx: SourceContext) -> IngestResult:
    _items(ctx)
    _users(ctx)
    _read(ctx, SCORES, "stg_scores", _SCORE_COLUMNS)
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_interactions AS
           SELECT user_id::VARCHAR AS user_id, anime_id::VARCHAR AS item_id, rating::DOUBLE AS rating,
                  NULL::TIMESTAMP AS ts, 'rating' AS event, rowid AS src_row
           FROM stg_scores""")
    return ctx.finish()
