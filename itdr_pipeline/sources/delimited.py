"""Read a delimited text file into a staging table with DuckDB, quarantining bad lines.

DuckDB's CSV reader does the parsing (fast, streaming, never the whole file in Python memory)
and its `store_rejects` mode reports each refused line with its exact line number and text.
The staging table keeps file order in its rowid, which the canonical tables keep as `src_row`.
"""

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from itdr_pipeline.errors import RawDataError

_REASONS = {
    "CAST": "bad_value",
    "MISSING COLUMNS": "too_few_fields",
    "TOO MANY COLUMNS": "too_many_fields",
    "INVALID ENCODING": "bad_encoding",
    "UNQUOTED VALUE": "bad_quoting",
    "LINE SIZE OVER MAXIMUM": "line_too_long",
}


@dataclass(frozen=True)
class Rejected:
    file: str
    line_no: int
    reason: str
    raw_line: str | None


@dataclass
class FileReadStats:
    file: str
    rows: int
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return self.rows + len(self.rejected)

    @property
    def reject_share(self) -> float:
        return len(self.rejected) / self.lines if self.lines else 0.0


def read_delimited(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    stage: str,
    columns: dict[str, str],
    *,
    delim: str,
    encoding: str = "utf-8",
    header: bool = False,
    quote: str = "",
    dateformat: str | None = None,
) -> FileReadStats:
    """Load `path` into temp table `stage` with typed `columns`; return counts and rejects."""
    options = {
        "delim": delim,
        "header": header,
        "columns": columns,
        "encoding": encoding,
        "quote": quote,
        "escape": quote,
        "auto_detect": False,
        "store_rejects": True,
        "rejects_table": f"{stage}_rejects",
        "rejects_scan": f"{stage}_scans",
    }
    if dateformat:
        options["dateformat"] = dateformat
    named = ", ".join(f"{k} := ${k}" for k in options)
    # DuckDB appends to an existing rejects table: start clean, or an earlier read's rejects repeat.
    con.execute(f"DROP TABLE IF EXISTS {stage}_rejects")
    con.execute(f"DROP TABLE IF EXISTS {stage}_scans")
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT * FROM read_csv($path, {named})",
            {"path": str(path), **options},
        )
    except duckdb.Error as exc:
        raise RawDataError(f"{path}: unreadable as {encoding} text delimited by {delim!r}: {exc}") from exc
    rows = con.execute(f"SELECT count(*) FROM {stage}").fetchone()[0]
    found = con.execute(
        f"""SELECT line, min(line_byte_position), arg_min(error_type::VARCHAR, column_idx),
                   arg_min(error_message, column_idx), any_value(csv_line)
            FROM {stage}_rejects GROUP BY line ORDER BY line"""
    ).fetchall()
    # DuckDB numbers records, not physical lines: a quoted field with line breaks shifts them.
    lines = _physical_lines(path, [pos for _, pos, *_ in found]) if quote and found else [r[0] for r in found]
    rejected = [
        Rejected(path.name, int(line), _REASONS.get(kind, "malformed") + f": {msg}",
                 raw.strip("\r\n") if raw is not None else None)
        for line, (_, _, kind, msg, raw) in zip(lines, found, strict=True)
    ]
    return FileReadStats(path.name, int(rows), rejected)


def _physical_lines(path: Path, byte_positions: list[int]) -> list[int]:
    """1-based line numbers of the given byte offsets (of the decompressed text), counting newlines."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    seen, offset = 0, 0
    targets = sorted(set(byte_positions))
    found: dict[int, int] = {}
    with opener(path, "rb") as handle:
        for target in targets:
            while offset < target:
                chunk = handle.read(min(1 << 20, target - offset))
                if not chunk:
                    break
                seen += chunk.count(b"\n")
                offset += len(chunk)
            found[target] = seen + 1
    return [found[p] for p in byte_positions]


def check_reject_share(stats: FileReadStats, dataset: str, max_share: float) -> None:
    """Fail naming the file when more than `max_share` of its lines were refused."""
    if stats.lines == 0:
        raise RawDataError(f"{dataset}: {stats.file} has no data lines")
    if stats.reject_share > max_share:
        first = stats.rejected[0]
        raise RawDataError(
            f"{dataset}: {stats.file}: {len(stats.rejected)} of {stats.lines} lines "
            f"({stats.reject_share:.1%}) are malformed, over the {max_share:.1%} limit; "
            f"first at line {first.line_no}: {first.reason}"
        )
