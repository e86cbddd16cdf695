"""Export a dataset's filtered interactions, users and items as RecBole atomic files.

    <out>/<dataset>/<dataset>.inter   user_id:token  item_id:token  rating:float  timestamp:float [weight:float]
    <out>/<dataset>/<dataset>.user    user_id:token  <the demographics the source has>
    <out>/<dataset>/<dataset>.item    item_id:token  title:token_seq  genres:token_seq ...

The rows are the ones every instruction task renders from (`filtered_interactions`), so classic
recommenders trained with RecBole see the same data. Tab-separated, one header of `name:type`;
tabs and line breaks inside values become spaces; list values are space-joined tokens (spaces
inside a token become '_', RecBole's default `seq_separator` being a space). Columns that are
NULL for every row are left out. Rows are in a fixed order, so the same data gives the same bytes;
the folder is written under a temporary name and renamed into place.
"""

from pathlib import Path

import duckdb

from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.folders import replacing_folder

_TEXT = "regexp_replace(CAST({c} AS VARCHAR), '[\\t\\r\\n]+', ' ', 'g')"
_SEQ = "array_to_string(list_transform({c}, lambda t: regexp_replace(trim(t), '\\s+', '_', 'g')), ' ')"
# canonical column -> (RecBole field, RecBole type, SQL rendering)
_USER = (("age", "age", "float", "{c}"), ("age_group", "age_group", "token", _TEXT),
         ("gender", "gender", "token", _TEXT), ("occupation", "occupation", "token", _TEXT),
         ("zip_code", "zip_code", "token", _TEXT), ("location", "location", "token", _TEXT),
         ("country", "country", "token", _TEXT), ("birth_date", "birth_year", "float", "year({c})"))
_ITEM = (("title", "title", "token_seq", _TEXT), ("genres", "genres", "token_seq", _SEQ),
         ("categories", "categories", "token_seq", _SEQ), ("tags", "tags", "token_seq", _SEQ),
         ("brand", "brand", "token", _TEXT), ("creator", "creator", "token", _TEXT),
         ("publisher", "publisher", "token", _TEXT), ("release_date", "release_year", "float", "year({c})"),
         ("price", "price", "float", "{c}"))


def _present(con: duckdb.DuckDBPyConnection, table: str, dataset: str, columns: list[str]) -> set[str]:
    counts = con.execute(f"SELECT {', '.join(f'count({c})' for c in columns)} FROM {table} WHERE dataset = ?",
                         [dataset]).fetchone()
    return {c for c, n in zip(columns, counts, strict=True) if n}


def _copy(con: duckdb.DuckDBPyConnection, select: str, params: list, path: Path) -> int:
    rows = con.execute(f"SELECT count(*) FROM ({select})", params).fetchone()[0]
    target = str(path).replace("'", "''")  # COPY takes no bound file name: quote it as a SQL literal
    con.execute(f"COPY ({select}) TO '{target}' (FORMAT csv, DELIMITER '\\t', HEADER true, QUOTE '', ESCAPE '')",
                params)
    return int(rows)


def _fields(spec: tuple, present: set[str]) -> list[str]:
    return [f'{sql.format(c=c)} AS "{name}:{kind}"' for c, name, kind, sql in spec if c in present]


def export_recbole(settings: Settings, dataset: str, out: Path, force: bool = False) -> dict[str, int]:
    """Write the three atomic files for `dataset` under out/<dataset>/ from the last committed
    state (the read-only catalog); return rows per file. out/<dataset> must be new or empty
    unless `force`, and never inside what ITDR_HOME manages."""
    from itdr_pipeline.catalog import open_catalog
    from itdr_pipeline.export import check_export_target

    final = check_export_target(settings, out / dataset, force)
    with open_catalog(settings) as con:
        return write_recbole(con, dataset, final.parent)


def write_recbole(con: duckdb.DuckDBPyConnection, dataset: str, out: Path) -> dict[str, int]:
    """`export_recbole` on an open warehouse connection."""
    final = out / dataset
    if con.execute("SELECT count(*) FROM filter_runs WHERE dataset = ?", [dataset]).fetchone()[0] == 0:
        raise ItdrError(f"{dataset} has not been filtered yet; run `itdr materialize --datasets {dataset}` first")
    with replacing_folder(final) as tmp:
        weight = ', weight AS "weight:float"' if _present(con, "filtered_interactions", dataset, ["weight"]) else ""
        kept = "FROM filtered_interactions WHERE dataset = $d"
        counts = {"inter": _copy(con, f"""
            SELECT user_id AS "user_id:token", item_id AS "item_id:token", rating AS "rating:float",
                   epoch(ts)::BIGINT AS "timestamp:float"{weight} {kept} ORDER BY src_row""",
            {"d": dataset}, tmp / f"{dataset}.inter")}
        users = _fields(_USER, _present(con, "users", dataset, [c for c, *_ in _USER]))
        counts["user"] = _copy(con, f"""
            SELECT user_id AS "user_id:token"{''.join(', ' + f for f in users)} FROM users
            WHERE dataset = $d AND user_id IN (SELECT user_id {kept}) ORDER BY user_id""",
            {"d": dataset}, tmp / f"{dataset}.user")
        items = _fields(_ITEM, _present(con, "items", dataset, [c for c, *_ in _ITEM]))
        counts["item"] = _copy(con, f"""
            SELECT item_id AS "item_id:token"{''.join(', ' + f for f in items)} FROM items
            WHERE dataset = $d AND item_id IN (SELECT item_id {kept}) ORDER BY item_id""",
            {"d": dataset}, tmp / f"{dataset}.item")
    return counts
