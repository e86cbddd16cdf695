"""What every source parser returns, and the one idempotent write of a dataset partition."""

from collections import Counter
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from itdr_pipeline.sources.delimited import Rejected

CANONICAL = ("users", "items", "interactions")


@dataclass(frozen=True)
class IngestResult:
    dataset: str
    row_counts: dict[str, int]  # canonical table -> rows written
    file_rows: dict[str, int]  # raw file -> rows parsed
    rejected: list[Rejected]

    @property
    def dropped(self) -> dict[str, int]:
        """datatrove-style `dropped_<reason>` counts for asset metadata."""
        counts = Counter(f"dropped_{r.reason.split(':', 1)[0]}" for r in self.rejected)
        return dict(sorted(counts.items()))


def replace_partition(
    con: duckdb.DuckDBPyConnection, dataset: str, rejected: list[Rejected], file_rows: dict[str, int]
) -> IngestResult:
    """Swap the dataset's rows in every canonical table for the `new_<table>` staging views
    (canonical columns less `dataset`), atomically.

    The views read the staging tables directly, so each row is written once, in file order.

    Re-materializing a partition therefore replaces it; a failure rolls back to the old rows.
    """
    counts = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for table in CANONICAL:
            con.execute(f"DELETE FROM {table} WHERE dataset = ?", [dataset])
            con.execute(f"INSERT INTO {table} BY NAME SELECT ?::VARCHAR AS dataset, * FROM new_{table}", [dataset])
            counts[table] = con.execute(f"SELECT count(*) FROM new_{table}").fetchone()[0]
        con.execute("DELETE FROM rejected_rows WHERE dataset = ?", [dataset])
        if rejected:
            quarantine = pa.table({
                "dataset": [dataset] * len(rejected),
                "file": [r.file for r in rejected],
                "line_no": pa.array([r.line_no for r in rejected], pa.int64()),
                "reason": [r.reason for r in rejected],
                "raw_line": [r.raw_line for r in rejected],
            })
            con.execute("INSERT INTO rejected_rows BY NAME SELECT * FROM quarantine")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    for table in CANONICAL:
        con.execute(f"DROP VIEW IF EXISTS new_{table}")
    return IngestResult(dataset, counts, file_rows, rejected)
