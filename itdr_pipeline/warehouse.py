"""The DuckDB warehouse: canonical tables (DDL from the contracts) and pipeline bookkeeping."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from data_contracts import CONTRACT_NAMES, Contract, load_contract
from itdr_pipeline.records import CONTRACT as _RECORDS

# The record layout, loaded once in records.py (RECORD_SCHEMA is built from the same contract).
_RECORD_TYPES = {c.name: c.type + ("" if c.nullable else " NOT NULL") for c in _RECORDS.columns}


def record_ddl(columns: tuple[str, ...]) -> str:
    """Column DDL for a table of published records (`version` plus the record layout)."""
    return ", ".join(f"{c} {_RECORD_TYPES.get(c, 'VARCHAR NOT NULL')}" for c in columns)


# Bookkeeping tables that are not user-facing canonical data, so they carry no contract.
_INTERNAL_DDL = (
    """CREATE TABLE IF NOT EXISTS source_files (
        dataset VARCHAR NOT NULL, file VARCHAR NOT NULL, path VARCHAR NOT NULL, bytes BIGINT NOT NULL,
        sha256 VARCHAR NOT NULL, official_sha256 VARCHAR, status VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS filter_runs (
        dataset VARCHAR NOT NULL, config_json VARCHAR NOT NULL, kept BIGINT NOT NULL, dropped_json VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS publications (
        version VARCHAR NOT NULL, dataset VARCHAR NOT NULL, path VARCHAR NOT NULL,
        published_at TIMESTAMP NOT NULL)""",
    # Model side: which report came from which adapter, split version and raw files, and its metrics.
    """CREATE TABLE IF NOT EXISTS model_lineage (
        report VARCHAR NOT NULL, adapter_id VARCHAR, adapter_dir VARCHAR, split_version VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL, task VARCHAR NOT NULL, profile VARCHAR NOT NULL, raw_file VARCHAR NOT NULL,
        raw_sha256 VARCHAR NOT NULL, raw_status VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS evaluation_results (
        report VARCHAR NOT NULL, task VARCHAR NOT NULL, dataset VARCHAR NOT NULL, model VARCHAR NOT NULL,
        metric VARCHAR NOT NULL, value DOUBLE NOT NULL, n BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS render_runs (
        dataset VARCHAR NOT NULL, task VARCHAR NOT NULL, config_json VARCHAR NOT NULL, templates_sha256 VARCHAR NOT NULL)""",
)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for name in CONTRACT_NAMES:
        contract = load_contract(name)
        con.execute(contract.ddl())
        _reconcile(con, contract, contract.table)
    # The filtered interactions every task renders from have the interactions contract's shape.
    con.execute(load_contract("interactions").ddl("filtered_interactions"))
    _reconcile(con, load_contract("interactions"), "filtered_interactions")
    # Rendered records are derived data: a table from an older layout is dropped and rendered again.
    have = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'instruction_records' "
        "AND table_schema = current_schema() ORDER BY ordinal_position").fetchall()]
    if have and have != _RECORDS.column_names:
        con.execute("DROP TABLE instruction_records")
        if _exists(con, "render_runs"):
            con.execute("DELETE FROM render_runs")
    con.execute(_RECORDS.ddl())
    for ddl in _INTERNAL_DDL:
        con.execute(ddl)


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                       "AND table_schema = current_schema()", [table]).fetchone()[0] > 0


def _reconcile(con: duckdb.DuckDBPyConnection, contract: Contract, table: str) -> None:
    """Bring a warehouse made by an older version up to the contract: add missing columns (as
    nullable; the contract's not-null checks still gate the data) and relax dropped NOT NULLs."""
    have = {
        name: nullable == "YES"
        for name, nullable in con.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = ? "
            "AND table_schema = current_schema()", [table]).fetchall()
    }
    for col in contract.columns:  # identifiers and types come from the validated contract YAML
        if col.name not in have:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {col.name} {col.type}")
        elif col.nullable and not have[col.name]:
            con.execute(f"ALTER TABLE {table} ALTER COLUMN {col.name} DROP NOT NULL")


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file, schema ensured for writers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        if not read_only:
            ensure_schema(con)
        yield con
    finally:
        con.close()
