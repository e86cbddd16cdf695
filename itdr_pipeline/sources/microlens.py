"""MicroLens (Ni et al. 2023), the micro-video releases of recsys.westlake.edu.cn, to canonical tables.

Interactions, all releases: `MicroLens-<size>_pairs.csv`, one positive user-video interaction a
line: user, item, timestamp in Unix MILLISECONDS (UTC). The 50k and 100k files start with the
header `user,item,timestamp` (the readme calls the columns userID, videoID, timestamp); the
header is detected rather than assumed, because the 1M file is not documented. Event
`interaction`, no weight: label rule `positive_only`. The `_pairs.tsv` files (user, then the
same items in time order without times) duplicate the CSV and are not read.

Item text:
- 50k: `MicroLens-50k_titles.csv`, header `item,title`, CSV quoting (titles with commas quoted).
- 100k: `MicroLens-100k_title_en.csv` (item, English title) and `tags_to_summary.csv` (item, one
  category label): no header, CSV quoting.
- 1M: `MicroLens-1M_title.csv` (item, Chinese title): no header, and titles hold unbalanced
  double quotes, so it is read line by line and split at the first comma; a title that is one
  well-formed CSV quoted field is unquoted.
Titles that are empty become NULL; an item listed twice keeps its first line.

Comments (100k): `MicroLens-100k_comment_en.txt`, user, video, comment text, tab-separated, no
header (one is skipped if present). Read line by line: the text keeps any further tabs; a line
whose first two fields are not numeric ids (e.g. the rest of a comment broken over two lines) is
quarantined with its line number. Comments become `reviews` (no time, no rating).
"""

from itdr_pipeline.errors import RawDataError
from itdr_pipeline.sources.base import IngestResult, SourceContext
from itdr_pipeline.sources.delimited import epoch_check

_NO_ROWS = "SELECT NULL::BIGINT AS item_id, NULL::VARCHAR AS {col}, NULL::BIGINT AS row_idx WHERE false"


def ingest_50k(ctx: SourceContext) -> IngestResult:
    _pairs(ctx, "MicroLens-50k_pairs.csv")
    titles = _id_text_csv(ctx, "MicroLens-50k_titles.csv", "title", "stg_titles")
    _items_view(ctx, titles, None)
    return ctx.finish()


def ingest_100k(ctx: SourceContext) -> IngestResult:
    _pairs(ctx, "MicroLens-100k_pairs.csv")
    titles = _id_text_csv(ctx, "MicroLens-100k_title_en.csv", "title", "stg_titles")
    categories = _id_text_csv(ctx, "tags_to_summary.csv", "category", "stg_categories")
    _items_view(ctx, titles, categories)
    _comments(ctx, "MicroLens-100k_comment_en.txt")
    return ctx.finish()


def ingest_1m(ctx: SourceContext) -> IngestResult:
    _pairs(ctx, "MicroLens-1M_pairs.csv")
    _items_view(ctx, _line_titles(ctx, "MicroLens-1M_title.csv"), None)
    return ctx.finish()


def _has_header(ctx: SourceContext, name: str, delim: str) -> bool:
    """True when the first line's first field is not a numeric id (a header such as `user,item,...`)."""
    with ctx.files[name].open("rb") as handle:
        first = handle.readline(65536).decode("utf-8-sig", errors="replace")
    field = first.split(delim, 1)[0].strip().strip('"')
    return bool(first.strip()) and not field.isdigit()


def _pairs(ctx: SourceContext, name: str) -> None:
    ctx.read_delimited(name, "stg_pairs", {"user_id": "BIGINT", "item_id": "BIGINT", "ts": "BIGINT"},
                       delim=",", header=_has_header(ctx, name, ","), checks=(epoch_check("ts", 1000),))
    _refuse_empty(ctx, name, "stg_pairs", ("user_id", "item_id", "ts"))
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_interactions AS
           SELECT user_id::VARCHAR AS user_id, item_id::VARCHAR AS item_id, make_timestamp(ts * 1000) AS ts,
                  'interaction' AS event, rowid AS src_row
           FROM stg_pairs"""
    )


def _id_text_csv(ctx: SourceContext, name: str, col: str, stage: str) -> str | None:
    """A two-column CSV (numeric item id, text) staged as `stage`; None when the optional file is absent."""
    if ctx.path(name) is None:
        ctx.note_absent(name, f"videos have no {col}")
        return None
    ctx.read_delimited(name, stage, {"item_id": "BIGINT", col: "VARCHAR"}, delim=",", quote='"',
                       header=_has_header(ctx, name, ","))
    _refuse_empty(ctx, name, stage, ("item_id",))
    return f"SELECT item_id, {col}, rowid AS row_idx FROM {stage}"


def _refuse_empty(ctx: SourceContext, name: str, stage: str, columns: tuple[str, ...]) -> None:
    """An empty field reads as NULL, which the reader does not refuse: fail rather than drop it unseen."""
    condition = " OR ".join(f"{c} IS NULL" for c in columns)
    count, first = ctx.con.execute(f"SELECT count(*), min(rowid) + 1 FROM {stage} WHERE {condition}").fetchone()
    if count:
        raise RawDataError(f"{ctx.dataset}: {name}: {count} data row(s) have an empty {' / '.join(columns)}, "
                           f"the first is data row {first}")


def _line_titles(ctx: SourceContext, name: str) -> str | None:
    """`id,title` lines split at the first comma (quotes in titles are not CSV quoting)."""
    if ctx.path(name) is None:
        ctx.note_absent(name, "videos have no title")
        return None
    _stage_lines(ctx, name, "stg_title_lines", skip_header=_has_header(ctx, name, ","))
    ctx.reject_where("stg_title_lines", name, "NOT regexp_full_match(split_part(line, ',', 1), '[0-9]+')",
                     "bad_value: no numeric video id before the first comma")
    rest = "substr(line, strpos(line, ',') + 1)"
    return f"""SELECT split_part(line, ',', 1)::BIGINT AS item_id,
                      CASE WHEN regexp_full_match({rest}, '"([^"]|"")*"')
                           THEN replace({rest}[2:-2], '""', '"') ELSE {rest} END AS title,
                      line_no AS row_idx
               FROM stg_title_lines"""


def _items_view(ctx: SourceContext, titles: str | None, categories: str | None) -> None:
    if titles is None and categories is None:
        return  # items are derived from the interactions, titles NULL
    first = "QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY row_idx) = 1"
    ctx.con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_items AS
            SELECT item_id::VARCHAR AS item_id, CASE WHEN trim(t.title) <> '' THEN t.title END AS title,
                   CASE WHEN trim(c.category) <> '' THEN [c.category] END AS categories
            FROM (SELECT item_id, title FROM ({titles or _NO_ROWS.format(col='title')}) {first}) t
            FULL JOIN (SELECT item_id, category FROM ({categories or _NO_ROWS.format(col='category')}) {first}) c
            USING (item_id)"""
    )


def _comments(ctx: SourceContext, name: str) -> None:
    if ctx.path(name) is None:
        ctx.note_absent(name, "no comments (reviews is empty)")
        return
    _stage_lines(ctx, name, "stg_comment_lines", skip_header=_has_header(ctx, name, "\t"))
    ctx.reject_where("stg_comment_lines", name, "len(string_split(line, chr(9))) < 3",
                     "too_few_fields: expected user, video and comment separated by tabs")
    ctx.reject_where("stg_comment_lines", name,
                     "NOT regexp_full_match(split_part(line, chr(9), 1), '[0-9]+') "
                     "OR NOT regexp_full_match(split_part(line, chr(9), 2), '[0-9]+')",
                     "bad_value: user and video ids must be numbers")
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_reviews AS
           SELECT split_part(line, chr(9), 1) AS user_id, split_part(line, chr(9), 2) AS item_id,
                  CASE WHEN trim(text) <> '' THEN text END AS text,
                  row_number() OVER (ORDER BY line_no) - 1 AS src_row
           FROM (SELECT line_no, line, array_to_string(string_split(line, chr(9))[3:], chr(9)) AS text
                 FROM stg_comment_lines)
           ORDER BY src_row"""
    )


def _stage_lines(ctx: SourceContext, name: str, stage: str, *, skip_header: bool) -> None:
    """`name` as one text row per physical line with its `line_no` (for reject_where), header dropped."""
    ctx.read_lines(name, stage)
    if skip_header:
        ctx.con.execute(f"DELETE FROM {stage} WHERE line_no = 1")
