"""Metadata every table asset reports: row count, column schema, a Markdown preview, drop counts."""

from typing import Any

import dagster as dg
import duckdb

from data_contracts import Contract


def _cell(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def preview(con: duckdb.DuckDBPyConnection, table: str, dataset: str, columns: list[str], order: str,
            limit: int = 5) -> dg.MarkdownMetadataValue:
    rows = con.execute(
        f"SELECT {', '.join(columns)} FROM {table} WHERE dataset = ? ORDER BY {order} LIMIT {int(limit)}", [dataset]
    ).fetchall()
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def table_metadata(con: duckdb.DuckDBPyConnection, contract: Contract, dataset: str, order: str,
                   dropped: dict[str, int] | None = None, table: str | None = None) -> dict[str, Any]:
    """`table` defaults to the contract's; pass another for a table of the same shape."""
    table = table or contract.table
    count = con.execute(f"SELECT count(*) FROM {table} WHERE dataset = ?", [dataset]).fetchone()[0]
    return {
        "dagster/row_count": int(count),
        "dagster/column_schema": contract.dagster_schema(),
        "preview": preview(con, table, dataset, contract.column_names[1:], order),
        **{k: int(v) for k, v in (dropped or {}).items()},
    }


def cell_preview(con: duckdb.DuckDBPyConnection, dataset: str, task: str, profile: str,
                 limit: int = 3) -> dg.MarkdownMetadataValue:
    """A few records of one (task, profile) cell, one per template where possible, in full."""
    rows = con.execute(
        """SELECT split, template_id, instruction, input, output FROM instruction_records
           WHERE dataset = ? AND task = ? AND profile = ?
           QUALIFY row_number() OVER (PARTITION BY template_id ORDER BY record_idx) = 1
           ORDER BY record_idx LIMIT ?""", [dataset, task, profile, limit]).fetchall()
    blocks = []
    for split, template_id, instruction, text_in, text_out in rows:
        blocks.append(f"**{split} / `{template_id}`**\n\n*Instruction:* {instruction or '(none)'}\n\n"
                      f"```text\n{text_in}\n```\n\n*Output:*\n\n```text\n{text_out}\n```")
    return dg.MetadataValue.md("\n\n---\n\n".join(blocks) or "(no records)")
