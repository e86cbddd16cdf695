"""Read-only SQL over the warehouse and the published views.

Defence in depth: a read-only connection; only SELECT/EXPLAIN statements; file access limited to
the published folder (what the views read) with the configuration then locked.
"""

from typing import Any

import duckdb

from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError

_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def run_query(settings: Settings, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ItdrError(f"SQL does not parse: {exc}") from exc
    if len(statements) != 1:
        raise ItdrError(f"give exactly one statement (got {len(statements)})")
    if statements[0].type not in _ALLOWED:
        raise ItdrError(f"read-only: {statements[0].type.name} statements are not allowed, only SELECT")
    if not settings.warehouse.is_file():
        raise ItdrError(f"no warehouse at {settings.warehouse}; run `itdr materialize` first")
    try:
        con = duckdb.connect(str(settings.warehouse), read_only=True)
    except duckdb.IOException as exc:
        raise ItdrError(f"warehouse is locked by a running writer ({exc}); retry when it finishes") from exc
    try:
        con.execute("SET allowed_directories = ?", [[str(settings.published)]])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()
    except duckdb.Error as exc:
        raise ItdrError(f"query failed: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
