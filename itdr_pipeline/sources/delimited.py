"""Read a delimited text file into a staging table with DuckDB, quarantining bad lines.

DuckDB's CSV reader does the parsing (fast, streaming, never the whole file in Python memory)
and its `store_rejects` mode reports each refused line with its exact line number and text.
The staging table keeps file order in its rowid, which the canonical tables keep as `src_row`.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from itdr_pipeline.errors import RawDataError
from itdr_pipeline.sources.diagnose import TRUNCATED, chunks, refuse_binary, unreadable, unterminated_tail

_REASONS = {
    "CAST": "bad_value",
    "MISSING COLUMNS": "too_few_fields",
    "TOO MANY COLUMNS": "too_many_fields",
    "INVALID ENCODING": "bad_encoding",
    "UNQUOTED VALUE": "bad_quoting",
    "LINE SIZE OVER MAXIMUM": "line_too_long",
}


# Epoch seconds a TIMESTAMP can hold (years 1-9999); beyond them the cast overflows at write time.
MIN_EPOCH_S, MAX_EPOCH_S = -62_135_596_800, 253_402_300_799


def epoch_check(column: str, per_second: int = 1) -> tuple[str, str]:
    """A `checks` entry quarantining epoch values no timestamp can hold (units of 1/`per_second` s).
    Plausible-looking but wrong times (before 1970, in the future) are the contracts' to judge."""
    lo, hi = MIN_EPOCH_S * per_second, MAX_EPOCH_S * per_second
    unit = {1: "seconds", 1000: "milliseconds"}.get(per_second, f"1/{per_second} s")
    return (f"{column} IS NOT NULL AND NOT {column} BETWEEN {lo} AND {hi}",
            f"bad_value: {column} is outside the epoch {unit} a timestamp can hold (years 1-9999)")


def required(*columns: str) -> tuple[tuple[str, str], ...]:
    """`checks` quarantining rows where a column the canonical row cannot do without is empty
    (DuckDB reads an empty field as NULL, which is no cast error)."""
    return tuple((f"{c} IS NULL", f"missing_value: {c} is empty") for c in columns)


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


_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT"}


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
    checks: tuple[tuple[str, str], ...] = (),
    keep_unterminated: Callable[[], bool] = lambda: False,
) -> FileReadStats:
    """Load `path` into temp table `stage` with typed `columns`; return counts and rejects.

    `checks` are (SQL condition over the columns, true for a bad row; reason): such rows are
    quarantined with their line numbers too (e.g. an epoch too large for a timestamp, which would
    otherwise fail the whole write with no line named). A last line without a line ending is
    quarantined as truncated unless `keep_unterminated()` says the file is the official one.
    """
    # DuckDB's integer parser rounds ".196" or "3.5" to a whole number in silence: integer columns
    # are read as text, lines that are not plain integers quarantined, the rest cast exactly.
    integers = [name for name, kind in columns.items() if kind.upper() in _INTEGER_TYPES]
    # (The checks see each as its exact cast, NULL when out of the type's range, and as read in `<name>__text`.)
    checks = (*((f"{name}__text IS NOT NULL AND (NOT regexp_full_match(trim({name}__text), '[+-]?[0-9]+') OR {name} IS NULL)",
                 f"bad_value: {name} is not a whole number that {columns[name].upper()} can hold")
                for name in integers), *checks)
    typed = {name: columns[name] for name in integers}
    options = {
        "delim": delim,
        "header": header,
        "columns": {name: "VARCHAR" if name in integers else kind for name, kind in columns.items()},
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
    refuse_binary(path)
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
        fields = ", ".join(f"{name} {kind}" for name, kind in columns.items())
        expected = (f"{encoding} text, {len(columns)} fields delimited by {delim!r}"
                    f"{' after a header line' if header else ''} ({fields})")
        raise RawDataError(unreadable(path, expected, encoding, exc)) from exc
    found = con.execute(
        f"""SELECT line, min(line_byte_position), arg_min(error_type::VARCHAR, column_idx),
                   arg_min(error_message, column_idx), any_value(csv_line)
            FROM {stage}_rejects GROUP BY line ORDER BY line"""
    ).fetchall()
    # DuckDB numbers records, not physical lines: a quoted field with line breaks shifts them.
    lines = _physical_lines(path, [pos for _, pos, *_ in found]) if quote and found else [r[0] for r in found]
    rejected = [
        Rejected(path.name, int(line), _reason(kind, msg),
                 raw.strip("\r\n") if raw is not None else None)
        for line, (_, _, kind, msg, raw) in zip(lines, found, strict=True)
    ]
    refused = {r.line_no for r in rejected}  # lines that are no record of the stage
    # The cut last line first: it is the stage's last record only until checks delete rows.
    if (tail := unterminated_tail(path, encoding)) is not None and not keep_unterminated():
        rejected = _reject_tail(con, stage, path, tail, rejected, header)
    if checks:  # never empty when a column is an integer
        rejected += _reject_checked(con, path, stage, checks, header, refused, typed, quote)
    if integers:  # a new table, not ALTER: DuckDB's ALTER also casts the rows the checks deleted
        casts = ", ".join(f"CAST(trim({name}) AS {columns[name]}) AS {name}" for name in integers)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT * REPLACE ({casts}) FROM {stage}")
    rows = con.execute(f"SELECT count(*) FROM {stage}").fetchone()[0]
    rejected.sort(key=lambda r: r.line_no)
    return FileReadStats(path.name, int(rows), rejected)


def _reason(kind: str, message: str) -> str:
    """A reject's reason: our category, then DuckDB's words (cut: they quote the whole bad value)."""
    text = f"{_REASONS.get(kind, 'malformed')}: {message}"
    return text if len(text) <= 300 else text[:297] + "..."


def _reject_tail(con: duckdb.DuckDBPyConnection, stage: str, path: Path, tail, rejected: list[Rejected],
                 header: bool) -> list[Rejected]:
    """Quarantine the unterminated last line: relabel DuckDB's reject of it, or take its row
    (the last record, as the file's last line is not blank) out of the stage."""
    if any(r.line_no == tail.line_no for r in rejected):
        return [Rejected(r.file, r.line_no, f"{TRUNCATED}; {r.reason}", r.raw_line) if r.line_no == tail.line_no
                else r for r in rejected]
    if tail.line_no > int(header):  # a cut header leaves no data rows: the file then has no data lines
        con.execute(f"DELETE FROM {stage} WHERE rowid = (SELECT max(rowid) FROM {stage})")
    return [*rejected, Rejected(path.name, tail.line_no, TRUNCATED, tail.text)]


def _reject_checked(con: duckdb.DuckDBPyConnection, path: Path, stage: str, checks: tuple[tuple[str, str], ...],
                    header: bool, refused: set[int], typed: dict[str, str] | None = None,
                    quote: str = "") -> list[Rejected]:
    """Quarantine the staged rows failing a check, each once (first failing check's reason). Columns
    staged as text for `typed` are seen by the checks cast (and as `<name>__text` as read)."""
    reason_sql = " ".join(f"WHEN {cond} THEN $r{i}" for i, (cond, _) in enumerate(checks))
    params = {f"r{i}": reason for i, (_, reason) in enumerate(checks)}
    view = f"SELECT rowid AS r, *" if not typed else (
        f"SELECT rowid AS r, * REPLACE ({', '.join(f'TRY_CAST(trim({c}) AS {t}) AS {c}' for c, t in typed.items())}), "
        + ", ".join(f"{c} AS {c}__text" for c in typed))
    bad = con.execute(f"SELECT * FROM (SELECT r, CASE {reason_sql} END AS why FROM ({view} FROM {stage})) "
                      "WHERE why IS NOT NULL ORDER BY r", params).fetchall()
    if not bad:
        return []
    con.execute(f"DELETE FROM {stage} WHERE rowid IN (SELECT unnest($ids::BIGINT[]))", {"ids": [r for r, _ in bad]})
    located = _record_lines(path, [r for r, _ in bad], header, refused, quote)
    return [Rejected(path.name, located[r][0], why, located[r][1]) for r, why in bad]


def _record_lines(path: Path, record_ids: list[int], header: bool, refused: set[int],
                  quote: str = "") -> dict[int, tuple[int, str]]:
    """Physical line number (of its first line) and text of the given 0-based staged records, in
    one streaming pass: DuckDB skips empty lines and the header and leaves out the lines it refused;
    with a quote character, a line break inside a quoted field continues the record (an odd count
    of quotes on a line opens or closes a field; an escaped quote is doubled, so counts stay even)."""
    wanted, out = set(record_ids), {}
    record, line_no, pending, quoted = -1, 0, b"", False
    mark = quote.encode() if quote else b""
    for data in chunks(path):
        parts = (pending + data).split(b"\n")
        pending = parts.pop()
        for raw in parts:
            line_no += 1
            continued = quoted
            if mark and raw.count(mark) % 2:
                quoted = not quoted
            if continued or (header and line_no == 1) or not raw.strip(b"\r") or line_no in refused:
                continue
            record += 1
            if record in wanted:
                out[record] = (line_no, raw.rstrip(b"\r").decode("utf-8", "replace"))
                if len(out) == len(wanted):
                    return out
    if pending.strip(b"\r"):
        out.setdefault(record + 1, (line_no + 1, pending.decode("utf-8", "replace")))
    return out


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
        raise RawDataError(f"{dataset}: {stats.file} has no data lines; expected at least one record")
    if stats.reject_share > max_share:
        first = stats.rejected[0]
        reasons = Counter(r.reason.split(":", 1)[0] for r in stats.rejected)
        by_reason = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
        raise RawDataError(
            f"{dataset}: {stats.file}: {len(stats.rejected)} of {stats.lines} lines "
            f"({stats.reject_share:.1%}) are malformed ({by_reason}), over the {max_share:.1%} limit; "
            f"first at line {first.line_no}: {first.reason}"
        )
