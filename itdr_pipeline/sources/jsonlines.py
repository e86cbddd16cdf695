"""Read JSON Lines (and Python-literal lines) into typed staging tables, quarantining bad lines.

DuckDB reads the file as one text column per line (gzip or plain, streaming, never whole in
Python memory); `json_transform` turns each valid line into typed columns in one parse. Lines
that are not valid UTF-8, not JSON, or not an object are quarantined with their exact 1-based
line number. Blank lines are skipped. Fields are read with the types the caller gives, and
DuckDB casts leniently ("5.0" -> 5.0 as DOUBLE, true -> 1.0, 7 -> "7" as VARCHAR): only values it
cannot cast become NULL. So read fields whose type varies as VARCHAR or JSON and check them in
SQL (see `SourceContext.reject_where` for refusing rows whose check fails).

Python-literal lines (the Steam release: `{u'id': u'1', ...}`) are parsed with `ast.literal_eval`
in chunks, re-encoded as JSON and staged the same way.
"""

import ast
import gzip
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from itdr_pipeline.errors import RawDataError
from itdr_pipeline.sources.delimited import FileReadStats, Rejected, _reason
from itdr_pipeline.sources.diagnose import TRUNCATED, first_bad_byte, refuse_binary, unreadable, unterminated_tail

_CONTROL = "\x01"  # never raw inside valid JSON (control characters must be escaped there)
_MAX_LINE = 64 * 1024 * 1024
_CHUNK_LINES = 50_000


def read_lines(con: duckdb.DuckDBPyConnection, path: Path, stage: str,
               keep_unterminated: Callable[[], bool] = lambda: False) -> FileReadStats:
    """`path` as temp table `stage` (src_row, line_no, line): one row per non-blank physical line,
    carriage returns stripped, with its exact 1-based line number (for `SourceContext.reject_where`).
    A last line without a line ending is quarantined as truncated unless `keep_unterminated()`."""
    raw = f"{stage}_raw"
    refuse_binary(path)
    con.execute(f"DROP TABLE IF EXISTS {raw}_rejects")  # DuckDB appends to an existing rejects table
    con.execute(f"DROP TABLE IF EXISTS {raw}_scans")
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {raw} AS
                SELECT * FROM read_csv($path, columns := {{'line': 'VARCHAR'}}, delim := $delim, quote := '',
                    escape := '', header := false, auto_detect := false, max_line_size := $max_line,
                    store_rejects := true, rejects_table := $rt, rejects_scan := $rs)""",
            {"path": str(path), "delim": _CONTROL, "max_line": _MAX_LINE, "rt": f"{raw}_rejects",
             "rs": f"{raw}_scans"},
        )
    except duckdb.Error as exc:
        raise RawDataError(unreadable(path, "UTF-8 text, one record per line", "utf-8", exc)) from exc
    rejected = [
        Rejected(path.name, int(line), _reason(kind, msg), text)
        for line, kind, msg, text in con.execute(
            f"""SELECT line, arg_min(error_type::VARCHAR, column_idx), arg_min(error_message, column_idx),
                       any_value(csv_line) FROM {raw}_rejects GROUP BY line ORDER BY line""").fetchall()
    ]
    # Blank lines come back as NULL rows, so rowid counts physical lines, except those the reader
    # refused (rare: bad UTF-8, stray control bytes): the k-th kept line is line
    # k + #{j : r_j - j < k}, where r_1 < r_2 < ... are the refused line numbers.
    shifts = [r.line_no - j for j, r in enumerate(rejected, start=1)]
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {stage} AS
            SELECT rowid AS src_row, rowid + 1 + len(list_filter($shifts::BIGINT[], lambda s: s < rowid + 1)) AS line_no,
                   rtrim(line, chr(13)) AS line
            FROM {raw} WHERE line IS NOT NULL AND trim(line) <> ''""",
        {"shifts": shifts},
    )
    con.execute(f"DROP TABLE {raw}")
    if (tail := unterminated_tail(path)) is not None and not keep_unterminated():
        if any(r.line_no == tail.line_no for r in rejected):
            rejected = [Rejected(r.file, r.line_no, f"{TRUNCATED}; {r.reason}", r.raw_line)
                        if r.line_no == tail.line_no else r for r in rejected]
        else:
            con.execute(f"DELETE FROM {stage} WHERE line_no = ?", [tail.line_no])
            rejected.append(Rejected(path.name, tail.line_no, TRUNCATED, tail.text))
    rows = con.execute(f"SELECT count(*) FROM {stage}").fetchone()[0]
    return FileReadStats(path.name, int(rows), rejected)


def read_json_lines(con: duckdb.DuckDBPyConnection, path: Path, stage: str, fields: dict[str, str],
                    keep_unterminated: Callable[[], bool] = lambda: False, checked: tuple[str, ...] = ()) -> FileReadStats:
    """Stage `path` as temp table `stage`: `src_row`, `line_no`, then one column per field.
    A value of a type its field cannot take is quarantined (`bad_type`), except in the `checked`
    fields, which the caller checks itself with a more specific reason (they stage as NULL)."""
    lines = read_lines(con, path, f"{stage}_lines", keep_unterminated)
    return _stage_lines(con, path, stage, f"{stage}_lines", fields, lines.rejected, checked)


def _stage_lines(con: duckdb.DuckDBPyConnection, path: Path, stage: str, lines: str, fields: dict[str, str],
                 rejected: list[Rejected], checked: tuple[str, ...] = ()) -> FileReadStats:
    """`lines` (src_row, line_no, line) -> typed `stage`; lines that are invalid, not an object, or
    repeat a top-level key (`json_transform` would silently keep the first value) are quarantined."""
    bad = con.execute(
        f"""SELECT line_no, reason, line FROM (
                SELECT src_row, line_no, line,
                       CASE WHEN NOT ok THEN 'bad_json: not valid JSON'
                            WHEN kind <> 'OBJECT' THEN 'not_an_object: valid JSON but not an object'
                            WHEN len(k) <> len(list_distinct(k))
                            THEN 'duplicate_key: the object repeats the key '
                                 || to_json(list_filter(k, lambda x, i: list_position(k, x) < i)[1])
                       END AS reason
                FROM (SELECT *, CASE WHEN ok THEN json_type(line) END AS kind,
                             CASE WHEN ok AND json_type(line) = 'OBJECT' THEN json_keys(line) END AS k
                      FROM (SELECT *, json_valid(line) AS ok FROM {lines})))
            WHERE reason IS NOT NULL ORDER BY src_row"""
    ).fetchall()
    rejected += [Rejected(path.name, int(n), reason, text) for n, reason, text in bad]
    if bad:
        con.execute(f"DELETE FROM {lines} WHERE line_no IN (SELECT unnest($n::BIGINT[]))", {"n": [n for n, *_ in bad]})
    mistyped = _mistyped(con, lines, fields, checked)
    rejected += [Rejected(path.name, int(n), reason, text) for n, reason, text in mistyped]
    if mistyped:
        con.execute(f"DELETE FROM {lines} WHERE line_no IN (SELECT unnest($n::BIGINT[]))",
                    {"n": [n for n, *_ in mistyped]})
    cols = ", ".join(f's."{name}" AS "{name}"' for name in fields)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {stage} AS
            SELECT src_row, line_no, {cols} FROM (
                SELECT src_row, line_no, json_transform(line, $structure) AS s FROM {lines})
            ORDER BY src_row""",
        {"structure": json.dumps(fields)},
    )
    rows = con.execute(f"SELECT count(*) FROM {stage}").fetchone()[0]
    con.execute(f"DROP TABLE {lines}")
    rejected.sort(key=lambda r: r.line_no)
    return FileReadStats(path.name, int(rows), rejected)


def _mistyped(con: duckdb.DuckDBPyConnection, lines: str, fields: dict[str, str],
              checked: tuple[str, ...] = ()) -> list[tuple[int, str, str]]:
    """Lines where a field holds a value its declared type cannot take: `json_transform` would
    make it NULL (a string for a number or a list) or, for text, the JSON of an array or object,
    with no sign. Fields declared JSON take anything: that is how a varying type is read."""
    checks = []
    for name, kind in fields.items():
        if kind == "JSON" or name in checked:
            continue
        raw, typed = f'r."{name}"', f's."{name}"'
        if kind == "VARCHAR":
            cond = f"json_type({raw}) IN ('ARRAY', 'OBJECT')"
        else:
            cond = f"{raw} IS NOT NULL AND json_type({raw}) <> 'NULL' AND {typed} IS NULL"
        reason = f"'bad_type: \"{name}\" holds a JSON ' || json_type({raw}) || ' where {kind} was expected'"
        checks.append(f"WHEN {cond} THEN {reason}")
    if not checks:
        return []
    raw_structure = json.dumps({name: "JSON" for name, kind in fields.items() if kind != "JSON" and name not in checked})
    return con.execute(
        f"""SELECT line_no, reason, line FROM (
                SELECT line_no, line, CASE {' '.join(checks)} END AS reason
                FROM (SELECT line_no, line, json_transform(line, $typed) AS s, json_transform(line, $raw) AS r
                      FROM {lines}))
            WHERE reason IS NOT NULL ORDER BY line_no""",
        {"typed": json.dumps(fields), "raw": raw_structure},
    ).fetchall()


def lines_at(path: Path, numbers: list[int]) -> dict[int, str]:
    """The text of the given 1-based lines of a (gzip'd) text file, read in one streaming pass."""
    opener = gzip.open if path.suffix == ".gz" else open
    wanted, out = set(numbers), {}
    last = max(wanted, default=0)
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
        for n, text in enumerate(handle, start=1):
            if n in wanted:
                out[n] = text.rstrip("\r\n")
            if n >= last:
                break
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, complex):
        return str(value)
    return value


def _literal_chunks(path: Path, rejected: list[Rejected], keep_unterminated: Callable[[], bool]) -> Iterator[pa.Table]:
    opener = gzip.open if path.suffix == ".gz" else open
    src_row, lines, numbers = 0, [], []
    try:
        # utf-8-sig: a BOM at the start is an encoding mark, not data (DuckDB's readers drop it too).
        with opener(path, "rt", encoding="utf-8-sig", errors="strict", newline=None) as handle:
            for line_no, text in enumerate(handle, start=1):
                ended = text.endswith("\n")  # only the last line can lack it (CR endings read as LF)
                text = text.strip()
                if not text:
                    continue
                if not ended and not keep_unterminated():
                    rejected.append(Rejected(path.name, line_no, TRUNCATED, text[:10_000]))
                    continue
                try:
                    node = ast.parse(text, mode="eval").body
                    if not isinstance(node, ast.Dict):
                        raise ValueError("not a dict")
                    keys = [ast.literal_eval(k) if k is not None else None for k in node.keys]
                    obj = ast.literal_eval(node)
                    if len(obj) != len(keys):  # a literal keeps the last of repeated keys, silently
                        first = next(k for i, k in enumerate(keys) if k in keys[:i])
                        rejected.append(Rejected(path.name, line_no, f"duplicate_key: the dict repeats the key {first!r}",
                                                 text[:10_000]))
                        continue
                    lines.append(json.dumps(_jsonable(obj), ensure_ascii=False))
                    numbers.append(line_no)
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
                    rejected.append(Rejected(path.name, line_no, f"bad_literal: {type(exc).__name__}: {exc}"[:300],
                                             text[:10_000]))
                    continue
                if len(lines) >= _CHUNK_LINES:
                    yield _chunk(src_row, numbers, lines)
                    src_row, lines, numbers = src_row + len(lines), [], []
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        bad = first_bad_byte(path, "utf-8")
        where = bad.describe() if bad is not None else f"after line {len(numbers) and numbers[-1]}"
        raise RawDataError(f"{path}: {where}; expected UTF-8 text with one Python dict literal per line "
                           f"({type(exc).__name__}: {exc})") from exc
    if lines:
        yield _chunk(src_row, numbers, lines)


def _chunk(start: int, numbers: list[int], lines: list[str]) -> pa.Table:
    return pa.table({
        "src_row": pa.array(range(start, start + len(lines)), pa.int64()),
        "line_no": pa.array(numbers, pa.int64()),
        "line": pa.array(lines, pa.string()),
    })


def read_python_literals(con: duckdb.DuckDBPyConnection, path: Path, stage: str, fields: dict[str, str],
                         keep_unterminated: Callable[[], bool] = lambda: False) -> FileReadStats:
    """Stage a file of Python dict literals, one per line, as `read_json_lines` stages JSON."""
    lines = f"{stage}_lines"
    rejected: list[Rejected] = []
    refuse_binary(path)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {lines} (src_row BIGINT, line_no BIGINT, line VARCHAR)")
    for chunk in _literal_chunks(path, rejected, keep_unterminated):
        con.execute(f"INSERT INTO {lines} SELECT * FROM chunk")
    return _stage_lines(con, path, stage, lines, fields, rejected)
