"""MovieLens 100K, from its official files (u.data, u.item, u.user, u.genre) to canonical tables.

Format facts (../shared/data/raw/ml-100k/SOURCE.md): no header, LF line endings; u.data is
tab-separated; the others are '|'-separated; u.item is ISO-8859-1 with 5 fields plus one 0/1 flag
per genre listed in u.genre; release dates look like 01-Jan-1995.
"""

from pathlib import Path

import duckdb

from itdr_pipeline.errors import RawDataError
from itdr_pipeline.sources.base import IngestResult, replace_partition
from itdr_pipeline.sources.delimited import check_reject_share, read_delimited


def _genres(con: duckdb.DuckDBPyConnection, folder: Path, dataset: str) -> list[str]:
    stats = read_delimited(con, folder / "u.genre", "stg_genre", {"name": "VARCHAR", "idx": "INTEGER"}, delim="|")
    if stats.rejected:
        bad = stats.rejected[0]
        raise RawDataError(f"{dataset}: u.genre line {bad.line_no}: {bad.reason}")
    rows = con.execute("SELECT idx, name FROM stg_genre ORDER BY idx").fetchall()
    if [idx for idx, _ in rows] != list(range(len(rows))):
        raise RawDataError(f"{dataset}: u.genre indexes must run 0..{len(rows) - 1}, got {[i for i, _ in rows]}")
    return [name for _, name in rows]


def ingest_ml100k(
    con: duckdb.DuckDBPyConnection, dataset: str, folder: Path, max_reject_share: float
) -> IngestResult:
    genres = _genres(con, folder, dataset)
    flags = {f"g{i}": "BOOLEAN" for i in range(len(genres))}
    item_cols = {"item_id": "BIGINT", "title": "VARCHAR", "release_date": "DATE", "video_date": "VARCHAR",
                 "url": "VARCHAR", **flags}
    reads = [
        read_delimited(con, folder / "u.user", "stg_user",
                       {"user_id": "BIGINT", "age": "INTEGER", "gender": "VARCHAR", "occupation": "VARCHAR",
                        "zip_code": "VARCHAR"}, delim="|"),
        read_delimited(con, folder / "u.item", "stg_item", item_cols, delim="|", encoding="latin-1",
                       dateformat="%d-%b-%Y"),
        read_delimited(con, folder / "u.data", "stg_data",
                       {"user_id": "BIGINT", "item_id": "BIGINT", "rating": "INTEGER", "ts": "BIGINT"},
                       delim="\t"),
    ]
    for stats in reads:
        check_reject_share(stats, dataset, max_reject_share)

    # Staging views (no copies): the dataset id is bound when replace_partition inserts them.
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
                  make_timestamp(ts * 1000000) AS ts, rowid AS src_row
           FROM stg_data"""
    )
    rejected = [r for stats in reads for r in stats.rejected]
    return replace_partition(con, dataset, rejected, {s.file: s.rows for s in reads})

