"""Ingest one dataset: locate and hash its raw files, parse them, replace its canonical partition."""

import os
from collections import Counter
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from itdr_pipeline.config import Settings
from itdr_pipeline.errors import RawDataError
from itdr_pipeline.raw import SourceFile, locate
from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.sources import IngestResult, SourceContext, get_parser

DEFAULT_MAX_REJECT_SHARE = 0.01  # the bad-row budget: a file with a larger share of malformed lines fails


def strict_default() -> bool:
    """`ITDR_STRICT=1` makes a raw file that differs from its official checksum fatal by default
    (for schedules and sensors, whose runs take no CLI flag)."""
    return os.environ.get("ITDR_STRICT", "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class IngestReport:
    result: IngestResult
    files: list[SourceFile]

    @property
    def modified_files(self) -> list[SourceFile]:
        return [f for f in self.files if f.status == "modified"]

    def rejected_by_file(self) -> dict[str, dict[str, int]]:
        """file -> reason -> quarantined lines, in file and reason order (for the CLI and the UI)."""
        counts = Counter((r.file, r.reason.split(":", 1)[0]) for r in self.result.rejected)
        out: dict[str, dict[str, int]] = {}
        for (file, reason), n in sorted(counts.items()):
            out.setdefault(file, {})[reason] = n
        return out


def checksum_note(f: SourceFile) -> str:
    official = f.official_sha256 or f.official_md5
    return (f"{f.file} differs from the official file (sha256 {f.sha256[:16]}..., official "
            f"{'sha256' if f.official_sha256 else 'md5'} {official[:16]}...)" if official else f.file)


def refuse_modified(spec: DatasetSpec, files: list[SourceFile]) -> None:
    if modified := [f for f in files if f.status == "modified"]:
        raise RawDataError(f"{spec.id}: strict mode: " + "; ".join(checksum_note(f) for f in modified)
                           + " (an interrupted copy or a local edit? restore the official file, or run without "
                             "--strict / ITDR_STRICT to accept it with a warning)")


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
    strict: bool = False,
) -> IngestReport:
    """Parse the dataset into its canonical tables. `strict` refuses, before anything is parsed, a
    raw file whose checksum differs from the registry's official one (otherwise a warning)."""
    if not 0 <= max_reject_share <= 1:
        raise ValueError(f"max_reject_share must be between 0 and 1, got {max_reject_share}")
    located = locate(spec, settings)
    if strict:
        refuse_modified(spec, located.inspected)
    ctx = SourceContext(con, spec, located.folder, located.files, max_reject_share)
    result = get_parser(spec.format)(ctx)
    record_source_files(con, spec.id, located.inspected)
    # What was derived from the previous canonical tables is stale: filter and render anew.
    for table in ("filtered_interactions", "filter_runs", "instruction_records", "render_runs"):
        con.execute(f"DELETE FROM {table} WHERE dataset = ?", [spec.id])
    return IngestReport(result, located.inspected)


# Write-audit-publish inside the working file: the canonical tables are written before their
# contracts run, so a step that reads them later (a UI run of `filtered_interactions` alone, after
# an ingest whose checks failed) must know whether they passed.
_AUDITS = "CREATE TABLE IF NOT EXISTS ingest_audits (dataset VARCHAR PRIMARY KEY, passed BOOLEAN, detail VARCHAR)"


def mark_audit(con: duckdb.DuckDBPyConnection, dataset: str, passed: bool | None, detail: str = "") -> None:
    """Record the outcome of the dataset's contracts; None = ingest started, checks not yet run."""
    con.execute(_AUDITS)
    con.execute("INSERT OR REPLACE INTO ingest_audits VALUES (?, ?, ?)", [dataset, passed, detail])


def require_audited(con: duckdb.DuckDBPyConnection, dataset: str) -> None:
    """Refuse to derive anything from canonical tables that failed (or never finished) their checks.
    A working file from before audits has no row: its tables passed, or they were never committed."""
    con.execute(_AUDITS)
    row = con.execute("SELECT passed, detail FROM ingest_audits WHERE dataset = ?", [dataset]).fetchone()
    if row is not None and row[0] is not True:
        why = f"failed their contracts ({row[1]})" if row[0] is False else "were never validated (the ingest stopped)"
        raise RawDataError(f"{dataset}: the canonical tables of the last ingest {why}; fix the raw files and "
                           "materialize canonical_tables again before filtering or rendering")


def source_hashes(con: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, str]:
    """file -> sha256 of the raw files behind the dataset's current partition (for versions)."""
    rows = con.execute("SELECT file, sha256 FROM source_files WHERE dataset = ? ORDER BY file", [dataset]).fetchall()
    return dict(rows)
