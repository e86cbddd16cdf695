"""Book-Crossing (Ziegler et al., WWW 2005), from either official layout to canonical tables.

One registry id serves two layouts of ITDR_RAW_DIR/bookcrossing/ (RawFile alternatives; the
layout is told per file by its name):
- The original BX-CSV-Dump (BX-Book-Ratings.csv, BX-Books.csv, BX-Users.csv): ';'-separated,
  every field in '"', a header row, CRLF, latin-1 bytes; Age is an unquoted `NULL` where unknown.
  Quotes inside a field are backslash-escaped (`\\"`), which the CSV dialect does not know, so:
  (a) a title with `\\"...\\"` inside (e.g. `"The Real \\"X\\" &amp; Co"`; pandas refuses such lines
  with "expected 8 fields, saw 9", which is why the Kaggle copy has 19 books fewer than the 271,379
  the dump announces) is quarantined with its line number; (b) a title that ends in `\\"`
  followed by the author (`"Readers (Level 4)\\";Author Name";"2000";...`, corrupt records whose
  author was merged into the title) splits into a title ending in `\\` and an author ending in
  `"`: both stray characters are removed. Double-encoded text (`LÃ\\x83Â¼bbe`, shown as
  `LÃ?Â¼bbe` by notebooks reading the dump) puts bytes 0x80-0x9F in a file, which DuckDB's
  latin-1 decoder refuses: such a file is first transcoded latin-1 -> UTF-8 into a temporary
  copy (the same lines, so line numbers hold), giving the same text pandas' latin-1 gives.
- The Kaggle re-release ITDR used (arashnic/book-recommendation-dataset: Ratings.csv, Books.csv,
  Users.csv): the dump as pandas read it (latin-1, the lines above dropped: 271,360 books) written
  back as UTF-8 CSV with ',' and RFC 4180 quoting; Age is a float (`18.0`) or empty. The merged
  records of (b) are shifted one column left (author "2000", year "DK Publishing Inc", publisher
  = the small image URL, Image-URL-L empty): they are shifted back and split the same way.

Canonical rows:
- interactions: Book-Rating 1-10 -> event 'rating'; 0 (an implicit interaction, no score) ->
  event 'interaction' with rating NULL. No timestamps exist (ts NULL); src_row is file order.
  Ratings reference ISBNs missing from the books file and users missing from the users file;
  both get rows with NULL attributes. ISBNs are kept exactly as written (case, stray bytes).
- items: title, creator = Book-Author, publisher (HTML entities such as `&amp;` decoded; blank
  -> NULL), release_date = 1 January of Year-Of-Publication where it is 1000-2005 (the crawl
  ended in September 2004; 0 means unknown and later years are typos), url = Image-URL-L
  (the large cover image). A repeated ISBN keeps its first line.
- users: location as written (trimmed), country = the last comma-separated part of the location unless
  blank or 'n/a', age where it is a whole number from 1 to 120 (0, 244 and the like are noise
  in this free-text field and become NULL, so UAP never learns them). A repeated id keeps its
  first line.

Label rule `rating_above` with like_threshold 5: an explicit rating of 6-10 is liked (TALLRec's
book rule); implicit rows (rating NULL) carry no label.
"""

import re
import tempfile
from pathlib import Path

from itdr_pipeline.sources.base import IngestResult, SourceContext
from itdr_pipeline.sources.text import unescape_html
from itdr_pipeline.sources.delimited import FileReadStats

RATINGS = "BX-Book-Ratings.csv"
BOOKS = "BX-Books.csv"
USERS = "BX-Users.csv"

_ORIGINAL = {"delim": ";", "header": True, "quote": '"', "encoding": "latin-1"}
_KAGGLE = {"delim": ",", "header": True, "quote": '"', "encoding": "utf-8"}
_C1 = re.compile(rb"[\x80-\x9f]")
_CHUNK = 1 << 20
# The crawl ran August-September 2004; a plausible publication year is no later than 2005.
_YEARS = (1000, 2005)


def _has_c1_bytes(path: Path) -> bool:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            if _C1.search(chunk):
                return True
    return False


def _latin1_to_utf8(src: Path, dest: Path) -> None:
    # latin-1 maps every byte to one code point, so chunks can be cut anywhere.
    with src.open("rb") as reader, dest.open("wb") as writer:
        while chunk := reader.read(_CHUNK):
            writer.write(chunk.decode("latin-1").encode("utf-8"))


def _read(ctx: SourceContext, name: str, stage: str, columns: dict[str, str]) -> FileReadStats:
    """Stage one file in its layout's dialect (the original dump's names start with 'BX-')."""
    path = ctx.files[name]
    options = _ORIGINAL if path.name.startswith("BX-") else _KAGGLE
    if options["encoding"] != "latin-1" or not _has_c1_bytes(path):
        return ctx.read_delimited(name, stage, columns, **options)
    with tempfile.TemporaryDirectory(prefix="itdr-bx-") as tmp:
        copy = Path(tmp) / path.name  # same name: rejected lines still name the raw file
        _latin1_to_utf8(path, copy)
        ctx.files[name] = copy
        try:
            return ctx.read_delimited(name, stage, columns, **{**options, "encoding": "utf-8"})
        finally:
            ctx.files[name] = path


def _stage_items(ctx: SourceContext) -> None:
    cols = ("isbn", "title", "author", "year", "publisher", "url_s", "url_m", "url_l")
    _read(ctx, BOOKS, "stg_book", dict.fromkeys(cols, "VARCHAR"))
    # `shifted`: a Kaggle row moved one column left; `split`: the same record as DuckDB splits it.
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW bx_books AS
            WITH flagged AS (
                SELECT rowid AS r, *, url_l IS NULL AND publisher LIKE 'http%' AS shifted,
                       ends_with(title, '\\') AND ends_with(author, '"') AS split
                FROM stg_book WHERE isbn IS NOT NULL),
            fixed AS (
                SELECT r, isbn,
                       CASE WHEN shifted THEN split_part(title, '\\";', 1)
                            WHEN split THEN rtrim(title, '\\') ELSE title END AS title,
                       CASE WHEN shifted THEN rtrim(split_part(title, '\\";', 2), '"')
                            WHEN split THEN rtrim(author, '"') ELSE author END AS author,
                       CASE WHEN shifted THEN author ELSE year END AS year,
                       CASE WHEN shifted THEN year ELSE publisher END AS publisher,
                       CASE WHEN shifted THEN url_m ELSE url_l END AS url
                FROM flagged)
            SELECT *, TRY_CAST(TRY_CAST(trim(year) AS DOUBLE) AS INTEGER) AS year_int FROM fixed
            QUALIFY row_number() OVER (PARTITION BY isbn ORDER BY r) = 1"""
    )
    ctx.con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_items AS
            SELECT isbn AS item_id, {unescape_html('title')} AS title, {unescape_html('author')} AS creator,
                   {unescape_html('publisher')} AS publisher,
                   CASE WHEN year_int BETWEEN {_YEARS[0]} AND {_YEARS[1]} THEN make_date(year_int, 1, 1)
                   END AS release_date,
                   nullif(trim(url), '') AS url
            FROM bx_books"""
    )


def _stage_users(ctx: SourceContext) -> None:
    _read(ctx, USERS, "stg_user", {"user_id": "BIGINT", "location": "VARCHAR", "age": "VARCHAR"})
    # Age: 'NULL' (original), '' (Kaggle), '\N' (some copies) or a number such as '18' / '18.0'.
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_users AS
           WITH u AS (
               SELECT user_id::VARCHAR AS user_id, nullif(trim(location), '') AS location,
                      TRY_CAST(trim(age) AS DOUBLE) AS age_num,
                      nullif(trim(list_last(string_split(location, ','))), '') AS last_part
               FROM stg_user WHERE user_id IS NOT NULL
               QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY rowid) = 1)
           SELECT user_id, location,
                  CASE WHEN last_part <> 'n/a' THEN last_part END AS country,
                  CASE WHEN age_num = floor(age_num) AND age_num BETWEEN 1 AND 120 THEN age_num::INTEGER
                  END AS age
           FROM u"""
    )


def ingest(ctx: SourceContext) -> IngestResult:
    _read(ctx, RATINGS, "stg_rating", {"user_id": "BIGINT", "isbn": "VARCHAR", "rating": "INTEGER"})
    # A row without user, ISBN or rating cannot be an interaction (none is known in either release).
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_interactions AS
           SELECT user_id::VARCHAR AS user_id, isbn AS item_id,
                  CASE WHEN rating <> 0 THEN rating::DOUBLE END AS rating,
                  CASE WHEN rating <> 0 THEN 'rating' ELSE 'interaction' END AS event,
                  NULL::TIMESTAMP AS ts, rowid AS src_row
           FROM stg_rating WHERE user_id IS NOT NULL AND isbn IS NOT NULL AND rating IS NOT NULL"""
    )
    if ctx.path(BOOKS) is None:
        ctx.note_absent(BOOKS, "books get rows with NULL titles (no title, author, year or publisher)")
    else:
        _stage_items(ctx)
    if ctx.path(USERS) is None:
        ctx.note_absent(USERS, "users get rows with NULL location, country and age")
    else:
        _stage_users(ctx)
    return ctx.finish()
