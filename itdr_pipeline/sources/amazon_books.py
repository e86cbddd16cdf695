"""Amazon Books Reviews (Kaggle: mohamedbakhet/amazon-books-reviews), from its two CSV files to canonical tables.

Layout (ITDR_RAW_DIR/amazon-books-reviews/), both files written by pandas: UTF-8, ',' separated,
a header row, '"' quoting only where needed with doubled quotes inside, quoted fields may span lines.
- Books_rating.csv (3,000,000 rows): Id, Title, Price, User_id, profileName, review/helpfulness,
  review/score, review/time, review/summary, review/text. The rows are the Books reviews of SNAP's
  web-Amazon release (McAuley & Leskovec 2013, whose field names they keep): Id is the product id
  (ISBN or ASIN), Price is empty where SNAP said "unknown", User_id and profileName are empty for
  anonymous reviews, review/score is 1.0-5.0, review/time is Unix seconds at day resolution (-1 on a
  few rows: unknown), and text carries HTML entities (`&quot;`).
- books_data.csv (212,404 titles, Google Books API; optional): Title, description, authors, image,
  previewLink, publisher, publishedDate, infoLink, categories, ratingsCount. authors and categories
  are Python list literals (`['Julie Strain']`; a name with an apostrophe in double quotes);
  publishedDate is `1996`, `2005-02` or `2005-02-14`; other forms give no date.

Canonical rows:
- interactions and reviews: one per review with a reviewer, in file order (src_row): event
  'review', rating = review/score, ts = review/time (NULL unless positive); reviews add summary and
  text. Rows without User_id are DROPPED, not quarantined: the line is well formed, the reviewer is
  just unknown, and neither table can hold a review without a user (the count dropped is
  file_rows['Books_rating.csv'] - row_counts['interactions']). Lines the CSV reader refuses (a score
  or time that is not a number, a wrong field count) are quarantined.
- items: one per Id of the review file (anonymous reviews included): title = the Id's first
  non-empty Title in file order, price = its first numeric Price. Joined by exact Title to
  books_data (first line of a repeated title): description, creator = authors joined with ', ',
  categories, publisher, release_date (a bare year -> 1 January, year-month -> the 1st), url =
  infoLink. Text fields have the common HTML entities decoded and blank values NULL.
- users: derived from the interactions (ids only: the release has no demographics, and
  profileName is a changeable display name, not kept).

Label rule `rating_above` with like_threshold 3: 4 and 5 stars are liked (TALLRec's rule).
"""

from itdr_pipeline.sources.base import IngestResult, SourceContext
from itdr_pipeline.sources.delimited import epoch_check
from itdr_pipeline.sources.text import sql_str, unescape_html

REVIEWS = "Books_rating.csv"
BOOKS = "books_data.csv"

_CSV = {"delim": ",", "header": True, "quote": '"', "encoding": "utf-8"}
_REVIEW_COLUMNS = {
    "item_id": "VARCHAR", "title": "VARCHAR", "price": "VARCHAR", "user_id": "VARCHAR", "profile_name": "VARCHAR",
    "helpfulness": "VARCHAR", "score": "DOUBLE", "time": "BIGINT", "summary": "VARCHAR", "text": "VARCHAR",
}
_BOOK_COLUMNS = dict.fromkeys(
    ("title", "description", "authors", "image", "preview_link", "publisher", "published_date", "info_link",
     "categories", "ratings_count"), "VARCHAR")
# One element of a Python list literal: a '...' or "..." string with backslash escapes.
_LIST_ITEM = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\""""


def _python_list(column: str) -> str:
    """SQL turning a Python list literal into VARCHAR[] (escapes undone; `[]` or blank -> NULL);
    a value that is not a list becomes a one-element list."""
    items = (f"list_transform(regexp_extract_all({column}, {sql_str(_LIST_ITEM)}), "
             r"lambda x: regexp_replace(x[2:-2], '\\(.)', '\1', 'g'))")
    return (f"CASE WHEN starts_with(trim({column}), '[') THEN nullif({items}, []) "
            f"WHEN nullif(trim({column}), '') IS NOT NULL THEN [trim({column})] END")


def _published(column: str) -> str:
    return f"""CASE WHEN regexp_matches({column}, '^\\d{{4}}-\\d{{2}}-\\d{{2}}') THEN TRY_CAST(left({column}, 10) AS DATE)
                    WHEN regexp_full_match({column}, '\\d{{4}}-\\d{{2}}') THEN TRY_CAST({column} || '-01' AS DATE)
                    WHEN regexp_full_match({column}, '\\d{{4}}') THEN TRY_CAST({column} || '-01-01' AS DATE) END"""


def _stage_items(ctx: SourceContext) -> None:
    con = ctx.con
    # The Id's catalogue facts from the review file, first non-empty value in file order.
    con.execute(
        """CREATE OR REPLACE TEMP VIEW ab_items AS
           SELECT item_id,
                  first(title ORDER BY rowid) FILTER (WHERE nullif(trim(title), '') IS NOT NULL) AS title,
                  first(TRY_CAST(price AS DOUBLE) ORDER BY rowid)
                      FILTER (WHERE TRY_CAST(price AS DOUBLE) IS NOT NULL) AS price
           FROM stg_review WHERE item_id IS NOT NULL GROUP BY item_id"""
    )
    details = ("NULL::VARCHAR AS description, NULL::VARCHAR AS creator, NULL::VARCHAR[] AS categories, "
               "NULL::VARCHAR AS publisher, NULL::DATE AS release_date, NULL::VARCHAR AS url")
    join = ""
    if ctx.path(BOOKS) is None:
        ctx.note_absent(BOOKS, "items keep the review file's titles and prices only (no authors, "
                               "categories, descriptions or dates)")
    else:
        ctx.read_delimited(BOOKS, "stg_book", _BOOK_COLUMNS, **_CSV)
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW ab_books AS
                SELECT title, {unescape_html('description')} AS description,
                       nullif(array_to_string({_python_list('authors')}, ', '), '') AS creator,
                       {_python_list('categories')} AS categories, {unescape_html('publisher')} AS publisher,
                       {_published('trim(published_date)')} AS release_date, nullif(trim(info_link), '') AS url
                FROM stg_book WHERE title IS NOT NULL
                QUALIFY row_number() OVER (PARTITION BY title ORDER BY rowid) = 1"""
        )
        details = "b.description, b.creator, b.categories, b.publisher, b.release_date, b.url"
        join = "LEFT JOIN ab_books b ON b.title = i.title"
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_items AS
            SELECT i.item_id, {unescape_html('i.title')} AS title, i.price, {details}
            FROM ab_items i {join}"""
    )


def ingest(ctx: SourceContext) -> IngestResult:
    ctx.read_delimited(REVIEWS, "stg_review", _REVIEW_COLUMNS, checks=(epoch_check("time"),), **_CSV)
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW ab_reviews AS
           SELECT user_id, item_id, score AS rating,
                  CASE WHEN time > 0 THEN make_timestamp(time * 1000000) END AS ts,
                  summary, text, rowid AS src_row
           FROM stg_review
           WHERE nullif(trim(user_id), '') IS NOT NULL AND item_id IS NOT NULL"""
    )
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_interactions AS
           SELECT user_id, item_id, rating, ts, 'review' AS event, src_row FROM ab_reviews"""
    )
    ctx.con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_reviews AS
            SELECT user_id, item_id, ts, rating, {unescape_html('text')} AS text,
                   {unescape_html('summary')} AS summary, src_row
            FROM ab_reviews"""
    )
    _stage_items(ctx)
    return ctx.finish()
