"""Cheap byte-level checks on raw files that DuckDB's readers cannot make or do not report.

- `unterminated_tail`: whether the last line lacks a line ending (a file cut mid-line by an
  interrupted copy). A plain file is checked by one seek; a gzip'd file has to be decompressed to
  its end (streaming, ~0.5 GB/s of text on one core), since gzip keeps no index to its last byte.
- `first_bad_byte`: where a file stops being text in a given encoding, so an error such as
  DuckDB's "File is not latin-1 encoded" can name the byte offset and line.
"""

import codecs
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from itdr_pipeline.errors import RawDataError

TRUNCATED = "truncated: last line has no line ending (cut mid-line?)"
_CHUNK = 1 << 22
_LINE_ENDINGS = (b"\n", b"\r")  # CR alone ends lines in some old exports (DuckDB detects it too)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_LATIN1 = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x80-\x9f]")


@dataclass(frozen=True)
class Tail:
    line_no: int  # 1-based physical line number of the unterminated last line
    text: str  # that line, decoded leniently (for the quarantine)


def _is_gzip(path: Path) -> bool:
    return path.suffix == ".gz"  # as DuckDB's readers decide (compression 'auto' goes by the name)


def _gzip_chunks(path: Path):
    """Decompressed chunks of a (possibly multi-member) gzip file; a corrupt or cut file raises EOFError."""
    with path.open("rb") as handle:
        inflate, fed = zlib.decompressobj(wbits=47), False
        while data := handle.read(_CHUNK):
            while data:
                fed = True
                yield inflate.decompress(data)
                data = b""
                if inflate.eof:  # another member may follow
                    data, inflate, fed = inflate.unused_data, zlib.decompressobj(wbits=47), False
        if fed and not inflate.eof:
            raise EOFError("the gzip stream ends before its end marker (cut short?)")


def chunks(path: Path):
    """The file's text bytes in chunks: decompressed if it is gzip'd (by its magic bytes)."""
    if _is_gzip(path):
        yield from _gzip_chunks(path)
        return
    with path.open("rb") as handle:
        while data := handle.read(_CHUNK):
            yield data


def unterminated_tail(path: Path, encoding: str = "utf-8") -> Tail | None:
    """The last line when it has no line ending and is not blank; None when the file ends with
    one, is empty, or ends in spaces only (no data can have been cut there)."""
    if not _is_gzip(path):
        size = path.stat().st_size
        if size == 0:
            return None
        with path.open("rb") as handle:
            handle.seek(size - 1)
            if handle.read(1) in _LINE_ENDINGS:
                return None
    lines, tail, after_cr = 0, b"", False
    try:
        for data in chunks(path):
            # Line breaks as DuckDB counts them: LF, CRLF, and a CR alone (so the tail's number
            # matches the line numbers of its rejects).
            lines += data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n") - (after_cr and data[:1] == b"\n")
            after_cr = data.endswith(b"\r")
            cut = max(data.rfind(b"\n"), data.rfind(b"\r"))
            tail = data[cut + 1:] if cut >= 0 else tail + data
            if len(tail) > 1 << 20:  # a huge unterminated line: keep its start only
                tail = tail[:1 << 20]
    except (EOFError, zlib.error, OSError):
        return None  # an unreadable gzip stream is the reader's error to report, with its own message
    if not tail.strip():
        return None
    return Tail(lines + 1, tail.decode(encoding, "replace")[:10_000])


@dataclass(frozen=True)
class BadByte:
    offset: int  # 0-based byte offset in the (decompressed) text
    line_no: int
    value: int
    what: str

    def describe(self) -> str:
        return f"byte offset {self.offset} (line {self.line_no}): {self.what} (byte 0x{self.value:02x})"


def first_bad_byte(path: Path, encoding: str) -> BadByte | None:
    """The first byte that cannot be text in `encoding`: an invalid sequence, a NUL or another
    control character (other than tab, CR, LF), or, for latin-1, a C1 control (0x80-0x9f), which
    DuckDB's latin-1 reader refuses. None when the whole file is clean text."""
    latin1 = encoding.lower().replace("_", "-") in ("latin-1", "latin1", "iso-8859-1")
    decoder = codecs.getincrementaldecoder("latin-1" if latin1 else "utf-8")()
    control = _CONTROL_LATIN1 if latin1 else _CONTROL
    offset, lines = 0, 0
    try:
        for data in chunks(path):
            pending = decoder.getstate()[0]  # bytes of a character split across chunks
            start = offset - len(pending)
            invalid = None
            try:
                text = decoder.decode(data)
            except UnicodeDecodeError as exc:  # a control character before it still comes first
                invalid = exc.start
                text = (pending + data)[:exc.start].decode("utf-8")
            if hit := control.search(text):
                joined = pending + data
                at = hit.start() if latin1 else len(text[:hit.start()].encode("utf-8"))
                code = ord(hit.group())
                kind = "a NUL byte" if code == 0 else f"a control character (not text in {encoding})"
                return BadByte(start + at, lines + joined.count(b"\n", 0, at) + 1, code,
                               f"{kind}: binary data where text was expected")
            if invalid is not None:
                joined = pending + data
                return BadByte(start + invalid, lines + joined.count(b"\n", 0, invalid) + 1, joined[invalid],
                               f"not valid {encoding} text")
            lines += data.count(b"\n")
            offset += len(data)
        pending = decoder.getstate()[0]
        if pending:  # the file ends inside a multi-byte character
            return BadByte(offset - len(pending), lines + 1, pending[0], f"not valid {encoding} text (cut character)")
    except (EOFError, zlib.error) as exc:
        return BadByte(offset, lines + 1, 0, f"the compressed stream is corrupt or cut short ({exc})")
    return None


_SNIFF = 1 << 16


def refuse_binary(path: Path) -> None:
    """Raise when the file's first 64 KiB hold a NUL byte: no text format here has one, and DuckDB
    would read such a file as text lines of garbage (or fail with no position)."""
    head = b""
    try:
        for data in chunks(path):
            head += data
            if len(head) >= _SNIFF:
                break
    except (EOFError, zlib.error):
        pass  # a corrupt stream is reported by the reader, with the offset where it breaks
    except OSError as err:
        raise RawDataError(f"{path}: cannot be read ({err.strerror or err})") from err
    at = head.find(b"\x00", 0, _SNIFF)
    if at >= 0:
        line = head.count(b"\n", 0, at) + 1
        raise RawDataError(f"{path}: byte offset {at} (line {line}): a NUL byte: binary data (or UTF-16 text) "
                           "where text was expected")


def _line_of(data: bytes, index: int) -> int:
    return data.count(b"\n", 0, max(index, 0)) + 1


def line_at_offset(path: Path, offset: int) -> int:
    """1-based line number of a byte offset of the (decompressed) text."""
    seen, lines = 0, 0
    for data in chunks(path):
        if seen + len(data) > offset:
            return lines + data.count(b"\n", 0, offset - seen) + 1
        lines += data.count(b"\n")
        seen += len(data)
    return lines + 1


_DUCK_LINE = re.compile(r"\bline[: ]+(\d+)", re.IGNORECASE)


def unreadable(path: Path, expected: str, encoding: str, exc: Exception) -> str:
    """The one-line reason for a file DuckDB refused as a whole: where it stops being what was
    expected (found here: DuckDB's messages on encoding and binary input name no position)."""
    duck = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    try:
        bad = first_bad_byte(path, encoding)
    except OSError as err:  # gone, a folder, no permission: the OS says which
        return f"{path}: cannot be read ({err.strerror or err}); expected {expected} (DuckDB: {duck})"
    if bad is not None:
        where = bad.describe()
    elif m := _DUCK_LINE.search(str(exc)):
        where = f"line {m.group(1)}"
    else:
        where = "no single bad byte found (the layout does not match)"
    return f"{path}: {where}; expected {expected} (DuckDB: {duck})"
