"""PixelRec (Cheng et al. SDM 2024), from the Westlake releases to canonical tables.

Two files per release, both UTF-8 CSV with a header row (a UTF-8 byte-order mark is tolerated):
- interactions: `item_id,user_id,timestamp`, ids spelt `i<n>` / `u<n>`, Unix SECONDS (UTC); one
  positive implicit interaction a line: event `interaction`, label rule `positive_only`.
- item information: `item_id`, seven popularity counters (view_number ... barrage_number, floats
  such as `799668.0`, not read), `title`, `tag` (one category label), `description`. Free text is
  CSV-quoted; titles, tags and descriptions may be empty (about a quarter of descriptions are).
Columns are matched by header name, not position, since the releases' column orders differ.
An item listed twice keeps its first line; lines that are not valid UTF-8 or have another field
count are quarantined with their line numbers; a row without an id fails the file (see `_refuse_empty`).

Layouts (the registry's first file is the interactions, the second the item information):
PixelRec50K ships `interaction.csv` and `item_info.csv`; Pixel200K/1M/8M ship two files named alike,
`Pixel200K.csv`, in the `pixelrec_interaction/` and `pixelrec_iteminfo/` folders, so rejected
lines are named by registry path (`pixelrec_interaction/Pixel200K.csv`).
"""

import csv

from itdr_pipeline.errors import RawDataError
from itdr_pipeline.sources.base import IngestResult, SourceContext
from itdr_pipeline.sources.delimited import epoch_check

INTERACTION_COLUMNS = {"item_id": "VARCHAR", "user_id": "VARCHAR", "timestamp": "BIGINT"}
ITEM_COLUMNS = ("item_id", "title", "tag", "description")


def ingest(ctx: SourceContext) -> IngestResult:
    interactions, info = (f.name for f in ctx.spec.files)
    _read(ctx, interactions, "stg_interactions", INTERACTION_COLUMNS, checks=(epoch_check('"timestamp"'),))
    _refuse_empty(ctx, interactions, "stg_interactions", ("item_id", "user_id", "timestamp"))
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_interactions AS
           SELECT user_id, item_id, make_timestamp("timestamp" * 1000000) AS ts, 'interaction' AS event,
                  rowid AS src_row
           FROM stg_interactions"""
    )
    if ctx.path(info) is None:
        ctx.note_absent(info, "items have no title, tag or description")
        return ctx.finish()
    _read(ctx, info, "stg_items", dict.fromkeys(ITEM_COLUMNS, "VARCHAR"))
    _refuse_empty(ctx, info, "stg_items", ("item_id",))
    ctx.con.execute(
        """CREATE OR REPLACE TEMP VIEW new_items AS
           SELECT item_id, CASE WHEN trim(title) <> '' THEN title END AS title,
                  CASE WHEN trim(tag) <> '' THEN [tag] END AS categories,
                  CASE WHEN trim(description) <> '' THEN description END AS description
           FROM stg_items
           QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY rowid) = 1"""
    )
    return ctx.finish()


def _header(ctx: SourceContext, name: str) -> list[str]:
    with ctx.files[name].open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        return next(csv.reader([handle.readline()]), [])


def _read(ctx: SourceContext, name: str, stage: str, wanted: dict[str, str],
          checks: tuple[tuple[str, str], ...] = ()) -> None:
    """Stage `name` with every header column (the wanted ones typed, the rest text)."""
    header = _header(ctx, name)
    if missing := [c for c in wanted if c not in header]:
        raise RawDataError(f"{ctx.dataset}: {name} lacks the column(s) {missing}; its header is {header}")
    if len(set(header)) != len(header):
        raise RawDataError(f"{ctx.dataset}: {name} repeats a column name in its header {header}")
    columns = {c: wanted.get(c, "VARCHAR") for c in header}
    # Rejects are labelled by path inside the folder (SourceContext.label): Pixel200K.csv names two files.
    ctx.read_delimited(name, stage, columns, delim=",", quote='"', header=True, checks=checks)


def _refuse_empty(ctx: SourceContext, name: str, stage: str, columns: tuple[str, ...]) -> None:
    """An empty id or time reads as NULL (not a cast error, so not quarantined): fail, naming the row."""
    condition = " OR ".join(f'"{c}" IS NULL' for c in columns)
    count, first = ctx.con.execute(f"SELECT count(*), min(rowid) + 1 FROM {stage} WHERE {condition}").fetchone()
    if count:
        raise RawDataError(
            f"{ctx.dataset}: {name}: {count} data row(s) have an empty {' / '.join(columns)}, "
            f"the first is data row {first}")
