"""Ending a failed DuckDB transaction without hiding why it failed."""

import duckdb


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """ROLLBACK in an `except` block. A COMMIT that failed (disk full, file size limit) has already
    rolled back, and a second ROLLBACK would raise "no transaction is active" over the real error."""
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass
