"""Ingest one dataset: locate and hash its raw files, parse them, replace its canonical partition."""

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from itdr_pipeline.config import Settings
from itdr_pipeline.raw import SourceFile, locate
from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.sources import IngestResult, SourceContext, get_parser

DEFAULT_MAX_REJECT_SHARE = 0.01


@dataclass(frozen=True)
class IngestReport:
    result: IngestResult
    files: list[SourceFile]

    @property
    def modified_files(self) -> list[SourceFile]:
        return [f for f in self.files if f.status == "modified"]


def record_source_files(con: duckdb.DuckDBPyConnection, dataset: str, files: list[SourceFile]) -> None:
    lineage = pa.table({
        "dataset": [dataset] * len(files),
        "file": [f.file for f in files],
        "path": [str(f.path) for f in files],
        "bytes": pa.array([f.bytes for f in files], pa.int64()),
        "sha256": [f.sha256 for f in files],
        "official_sha256": [f.official_sha256 for f in files],
        "status": [f.status for f in files],
    })
    con.execute("DELETE FROM source_files WHERE dataset = ?", [dataset])
    con.execute("INSERT INTO source_files BY NAME SELECT * FROM lineage")


def ingest_dataset(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    settings: Settings,
    max_reject_share: float = DEFAULT_MAX_REJECT_SHARE,
) -> IngestReport:
    located = locate(spec, settings)
    ctx = SourceContext(con, spec, located.folder, located.files, max_reject_share)
    result = get_parser(spec.format)(ctx)
    record_source_files(con, spec.id, located.inspected)
    # What was derived from the previous canonical tables is stale: filter and render anew.
    for table in ("filtered_interactions", "filter_runs", "instruction_records", "render_runs"):
        con.execute(f"DELETE FROM {table} WHERE dataset = ?", [spec.id])
    return IngestReport(result, located.inspected)


def source_hashes(con: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, str]:
    """file -> sha256 of the raw files behind the dataset's current partition (for versions)."""
    rows = con.execute("SELECT file, sha256 FROM source_files WHERE dataset = ? ORDER BY file", [dataset]).fetchall()
    return dict(rows)
