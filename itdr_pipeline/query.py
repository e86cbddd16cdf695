"""Read-only SQL over the catalog (canonical tables, records and the published `instructions` view).

Defence in depth: a read-only connection to the catalog file, which no writer ever holds (so a
running materialization never locks a reader out); only SELECT/EXPLAIN statements; file access
limited to the snapshot and published folders (what the views read) with the configuration then
locked; a time limit (DuckDB interrupts the query) and a memory limit.
"""

import threading
from typing import Any

import duckdb

from itdr_pipeline.catalog import open_catalog
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError

_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MEMORY_LIMIT = "4GB"


def run_query(settings: Settings, sql: str, timeout_s: float = DEFAULT_TIMEOUT_S,
              memory_limit: str = DEFAULT_MEMORY_LIMIT) -> tuple[list[str], list[tuple[Any, ...]]]:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ItdrError(f"SQL does not parse: {exc}") from exc
    if len(statements) != 1:
        raise ItdrError(f"give exactly one statement (got {len(statements)})")
    if statements[0].type not in _ALLOWED:
        raise ItdrError(f"read-only: {statements[0].type.name} statements are not allowed, only SELECT")
    with open_catalog(settings) as con:
        try:
            con.execute("SET memory_limit = ?", [memory_limit])
        except duckdb.Error as exc:
            raise ItdrError(f"memory limit {memory_limit!r} not understood: {str(exc).splitlines()[0]}") from exc
        con.execute("SET allowed_directories = ?", [[str(settings.published), str(settings.home / "tables")]])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        timer = threading.Timer(timeout_s, con.interrupt) if timeout_s > 0 else None
        try:
            if timer:
                timer.start()
            cursor = con.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            return columns, cursor.fetchall()
        except duckdb.InterruptException as exc:
            raise ItdrError(f"query stopped after the {timeout_s:g} s time limit (--timeout to change it)") from exc
        except duckdb.OutOfMemoryException as exc:
            raise ItdrError(f"query needs more than the {memory_limit} memory limit (--memory-limit to change it): "
                            f"{str(exc).splitlines()[0]}") from exc
        except duckdb.Error as exc:
            raise ItdrError(f"query failed: {str(exc).splitlines()[0]}") from exc
        finally:
            if timer:
                timer.cancel()
