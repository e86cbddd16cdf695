"""A hostile-input corpus for the parsers, generated here from small slices of the real files.

Every case ends in one of two outcomes, asserted exactly: a refusal (RawDataError naming the
dataset, the file and a line or byte offset, or the contract that failed) or a quarantine that is
counted (rows in `rejected_rows` with file, line and reason, and one row fewer parsed). Never a
silent result. Slices of ../shared/data/raw are copied into tmp_path at test time (never committed);
ml-1m's ratings.dat is missing from the shared copy, so a few lines are written here in its format.
"""

import gzip
import os
import random
import re
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from data_contracts import load_contract
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import RawDataError
from itdr_pipeline.hashing import sha256_file
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import RawFile, get_dataset
from itdr_pipeline.sources.delimited import MAX_EPOCH_S, MIN_EPOCH_S, read_delimited
from itdr_pipeline.sources.movielens import RATING_CHECKS
from itdr_pipeline.sources.diagnose import TRUNCATED, first_bad_byte, unterminated_tail
from itdr_pipeline.validation import validate_table
from itdr_pipeline.warehouse import connect
from conftest import shared_dataset

GIFT = "amazon-reviews-2018.gift-cards"
DATA_LINES = 1000  # u.data slice: 1% reject budget = 10 lines


# --- building raw folders from slices of the real files -----------------------------------------

def _lines(data: bytes, n: int) -> bytes:
    return b"".join(data.splitlines(keepends=True)[:n])


def _ml100k(raw: Path) -> Path:
    folder = raw / "ml-100k"
    folder.mkdir(parents=True)
    real = shared_dataset("ml-100k")
    for name in ("u.item", "u.user", "u.genre"):
        shutil.copy(real / name, folder / name)
    (folder / "u.data").write_bytes(_lines((real / "u.data").read_bytes(), DATA_LINES))
    return folder


def _ml1m(raw: Path) -> Path:
    folder = raw / "ml-1m"
    folder.mkdir(parents=True)
    real = shared_dataset("ml-1m")
    for name in ("users.dat", "movies.dat"):
        shutil.copy(real / name, folder / name)
    # ratings.dat's official format (README: UserID::MovieID::Rating::Timestamp), ids from the real files.
    rng = random.Random(7)
    rows = [f"{rng.randint(1, 6040)}::{rng.choice([1, 2, 10, 1193, 3408])}::{rng.randint(1, 5)}::"
            f"{rng.randint(956703932, 1046454590)}\n" for _ in range(400)]
    (folder / "ratings.dat").write_text("".join(rows))
    return folder


def _latest_members(n_ratings: int = 1000) -> dict[str, bytes]:
    with zipfile.ZipFile(shared_dataset("ml-latest-small") / "ml-latest-small.zip") as z:
        return {"movies.csv": z.read("ml-latest-small/movies.csv"),
                "ratings.csv": _lines(z.read("ml-latest-small/ratings.csv"), n_ratings + 1)}


def _latest(raw: Path) -> Path:
    folder = raw / "ml-latest-small"
    folder.mkdir(parents=True)
    for name, data in _latest_members().items():
        (folder / name).write_bytes(data)
    return folder


def _gift(raw: Path) -> Path:
    folder = raw / "amazon-reviews-2018"
    folder.mkdir(parents=True)
    text = gzip.decompress((shared_dataset("amazon-reviews-2018") / "Gift_Cards_5.json.gz").read_bytes())
    (folder / "Gift_Cards_5.json.gz").write_bytes(gzip.compress(_lines(text, 500), mtime=0))
    return folder


def _steam(raw: Path) -> Path:
    folder = raw / "steam"
    folder.mkdir(parents=True)
    text = gzip.decompress((shared_dataset("steam") / "steam_games.json.gz").read_bytes())
    lines = text.splitlines(keepends=True)[:300]
    del lines[74]  # line 75 has no id (quarantined by design): the slice starts clean
    (folder / "steam_games.json.gz").write_bytes(gzip.compress(b"".join(lines), mtime=0))
    return folder


@dataclass(frozen=True)
class Source:
    dataset: str
    build: Callable[[Path], Path]
    file: str  # the file the cases mutate
    table: str  # where its rows land
    good_line: bytes  # a well-formed line in the file's format, to vary
    header: bool = False


SOURCES = {
    "ml-100k": Source("ml-100k", _ml100k, "u.data", "interactions", b"196\t242\t3\t881250949\n"),
    "ml-1m": Source("ml-1m", _ml1m, "ratings.dat", "interactions", b"1::1193::5::978300760\n"),
    "ml-latest-small": Source("ml-latest-small", _latest, "ratings.csv", "interactions", b"1,1,4.0,964982703\r\n",
                              header=True),
    GIFT: Source(GIFT, _gift, "Gift_Cards_5.json.gz", "interactions",
                 b'{"overall": 5.0, "verified": true, "reviewTime": "01 31, 2012", "reviewerID": "AHOSTILE1", '
                 b'"asin": "B001GXRQW0", "reviewerName": "X", "reviewText": "ok", "summary": "ok", '
                 b'"unixReviewTime": 1327968000}\n'),
    "steam": Source("steam", _steam, "steam_games.json.gz", "items",
                    b"{u'id': u'999001', u'app_name': u'Hostile Test', u'genres': [u'Action'], u'price': 4.99}\n"),
}


def _read(folder: Path, name: str) -> bytes:
    data = (folder / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


def _write(folder: Path, name: str, text: bytes) -> None:
    (folder / name).write_bytes(gzip.compress(text, mtime=0) if name.endswith(".gz") else text)


def _ingest(raw: Path, tmp_path: Path, dataset: str, spec=None):
    settings = Settings(home=tmp_path / "home", raw_dir=raw).ensure()
    with connect(settings.warehouse) as con:
        report = ingest_dataset(con, spec or get_dataset(dataset), settings)
        rejected = con.execute("SELECT file, line_no, reason FROM rejected_rows WHERE dataset = ? ORDER BY line_no",
                               [dataset]).fetchall()
        errors = {o.expectation.id for t in ("users", "items", "interactions", "reviews")
                  for o in validate_table(con, load_contract(t), spec or get_dataset(dataset), engine="duckdb")
                  if not o.success and o.severity == "ERROR"}
    return report.result, rejected, errors


def _baseline(source: Source, tmp_path: Path) -> int:
    raw = tmp_path / "base"
    source.build(raw)
    result, rejected, errors = _ingest(raw, tmp_path / "b", source.dataset)
    assert rejected == [] and errors == set(), (rejected, errors)
    return result.row_counts[source.table]


# --- mutations: each returns the new text of the file and the expected outcome ------------------

@dataclass(frozen=True)
class Quarantined:
    line: int | str  # a line number, or "last"
    reason: str | tuple[str, ...]  # the reason's prefix (or one of several), e.g. "truncated"


@dataclass(frozen=True)
class Refused:
    parts: tuple[str, ...]  # each must be in the message (besides the dataset and the file)


@dataclass(frozen=True)
class Same:
    """Parsed as the unmutated file: the change is not a data change (line endings, a BOM)."""


def _insert(text: bytes, at: int, line: bytes) -> bytes:
    lines = text.splitlines(keepends=True)
    return b"".join([*lines[:at], line, *lines[at:]])


def _ending(text: bytes) -> bytes:
    return b"\r\n" if b"\r\n" in text[:4096] else b"\n"


def _swap(line: bytes, old: bytes, new: bytes) -> bytes:
    assert old in line, (line, old)
    return line.replace(old, new, 1)


def _cut_last(text: bytes) -> bytes:
    body = text.rstrip(b"\r\n")
    return body[: body.rfind(b"\n") + 1 + 12]  # 12 bytes of the last line: cut mid-line


def _bad_values(s: Source) -> dict[str, tuple[bytes, str] | None]:
    """Per source: each case's line and the reason it is quarantined with (None: no such case)."""
    cases = {
        "ml-100k": lambda: {"wrong_type": (b"196\tabc\t3\t881250949\n", "bad_value"),
                    "out_of_range": (b"196\t242\t3\t99999999999999\n", "bad_value"),
                    "missing_column": (b"196\t242\t3\n", "too_few_fields"),
                    "extra_column": (b"196\t242\t3\t881250949\t7\n", "too_many_fields")},
        "ml-1m": lambda: {"wrong_type": (b"1::1193::five::978300760\n", "bad_value"),
                  "out_of_range": (b"1::1193::5::99999999999999\n", "bad_value"),
                  "missing_column": (b"1::1193::5\n", "too_few_fields"),
                  "extra_column": (b"1::1193::5::978300760::9\n", "too_many_fields")},
        "ml-latest-small": lambda: {"wrong_type": (b"1,1,four,964982703\r\n", "bad_value"),
                            "out_of_range": (b"1,1,4.0,99999999999999\r\n", "bad_value"),
                            "missing_column": (b"1,1,4.0\r\n", "too_few_fields"),
                            "extra_column": (b"1,1,4.0,964982703,x\r\n", "too_many_fields")},
        GIFT: lambda: {"wrong_type": (_swap(s.good_line, b'"overall": 5.0', b'"overall": "five"'), "bad_rating"),
               "out_of_range": (_swap(s.good_line, b"1327968000", b"99999999999999"), "bad_value"),
               "missing_column": (_swap(s.good_line, b'"reviewerID": "AHOSTILE1", ', b""), "missing_id"),
               "extra_column": None},  # an extra key is no error in JSON: it is ignored by design
        "steam": lambda: {"wrong_type": (b"{u'id': u'999002', u'app_name': [1, 2]}\n", "bad_type"),
                  "out_of_range": None,  # steam games carry no value with a range
                  "missing_column": (b"{u'app_name': u'No id'}\n", "missing_id"),
                  "extra_column": None},
    }
    return cases[s.dataset]()


CASES = ["truncated", "empty", "binary", "wrong_encoding", "crlf", "bom", "huge_line", "missing_column",
         "extra_column", "wrong_type", "out_of_range", "duplicate_key", "blank_lines"]


def _mutate(s: Source, case: str, text: bytes) -> tuple[bytes, object] | None:
    nl = _ending(text)
    at = 5 + int(s.header)  # physical line number of an inserted line is at + 1
    good = s.good_line.rstrip(b"\r\n") + nl
    line_no = at + 1
    if case == "truncated":
        return _cut_last(text), Quarantined("last", "truncated")
    if case == "empty":
        return b"", Refused(("no data lines",))
    if case == "binary":
        return random.Random(3).randbytes(4096), Refused(("byte offset",))
    if case == "wrong_encoding":
        bad = good.replace(b"1", b"\xff\xfe", 1)
        if s.dataset == "steam":  # the literal reader decodes strictly: the whole file is refused
            return _insert(text, at, bad), Refused((f"line {line_no}", "not valid utf-8"))
        # DuckDB reports the field's failed cast (as "??96") or, in a text field, the encoding.
        return _insert(text, at, bad), Quarantined(line_no, ("bad_encoding", "bad_value"))
    if case == "crlf":
        return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), Same()
    if case == "bom":
        return b"\xef\xbb\xbf" + text, Same()
    if case == "huge_line":
        if s.dataset in (GIFT, "steam"):  # 3 MB of garbage on one line (JSON lines may be 64 MB long)
            return _insert(text, at, b"{" + b"x" * 3_000_000 + nl), Quarantined(line_no, "bad_")
        return _insert(text, at, b"9" * 3_000_000 + good), Quarantined(line_no, "")
    if case == "duplicate_key":
        if s.dataset == GIFT:
            return _insert(text, at, _swap(good, b'"overall": 5.0', b'"overall": 5.0, "overall": 1.0')), \
                Quarantined(line_no, "duplicate_key")
        if s.dataset == "steam":
            return _insert(text, at, _swap(good, b"u'price': 4.99", b"u'price': 4.99, u'id': u'999003'")), \
                Quarantined(line_no, "duplicate_key")
        return None  # delimited files: a repeated key is a contract matter (tested below)
    if case == "blank_lines":  # empty lines carry nothing: skipped (a line of spaces is a malformed record)
        return _insert(text, at, nl + nl), Same()
    value = _bad_values(s)[case]
    if value is None:
        return None
    line, reason = value
    return _insert(text, at, line.rstrip(b"\r\n") + nl), Quarantined(line_no, reason)


# Cases with no meaning for a format (see _bad_values/_mutate): MovieLens has no key a file could
# repeat within one line's reach, the JSON/literal records take no extra column, Steam has no range.
NOT_APPLICABLE = {("ml-100k", "duplicate_key"), ("ml-1m", "duplicate_key"), ("ml-latest-small", "duplicate_key"),
                  ("amazon-reviews-2018.gift-cards", "extra_column"), ("steam", "extra_column"),
                  ("steam", "out_of_range")}
PARAMS = [(d, c) for d in SOURCES for c in CASES if (d, c) not in NOT_APPLICABLE]


@pytest.mark.parametrize(("dataset", "case"), PARAMS, ids=[f"{d}-{c}" for d, c in PARAMS])
def test_hostile_input(dataset, case, tmp_path):
    source = SOURCES[dataset]
    raw = tmp_path / "raw"
    folder = source.build(raw)
    text = _read(folder, source.file)
    mutated = _mutate(source, case, text)
    assert mutated is not None, f"{case} has no meaning for {dataset}: add it to NOT_APPLICABLE"
    new, expected = mutated
    _write(folder, source.file, new)
    if isinstance(expected, Refused):
        with pytest.raises(RawDataError) as err:
            _ingest(raw, tmp_path, dataset)
        message = str(err.value)
        assert message.startswith(f"{dataset}: "), message
        assert source.file in message, message
        for part in expected.parts:
            assert part in message, (part, message)
        assert "Traceback" not in message and "\n" not in message
        return
    rows = _baseline(source, tmp_path)
    result, rejected, errors = _ingest(raw, tmp_path, dataset)
    if isinstance(expected, Same):
        assert rejected == [] and result.row_counts[source.table] == rows
        return
    last = len(new.rstrip(b"\r\n").split(b"\n"))
    line = last if expected.line == "last" else expected.line
    assert [(f, n) for f, n, _ in rejected] == [(source.file, line)], rejected
    assert rejected[0][2].startswith(expected.reason), rejected
    assert len(result.rejected) == 1 and result.dropped.get(f"dropped_{rejected[0][2].split(':')[0]}") == 1
    # One row fewer than the file has lines of data: a cut line is gone, an inserted bad one never arrived.
    assert result.row_counts[source.table] == rows - (1 if case == "truncated" else 0)


def test_truncated_file_over_the_budget_is_refused_naming_file_and_share(tmp_path):
    raw = tmp_path / "raw"
    folder = _ml100k(raw)
    (folder / "u.genre").write_bytes(_cut_last((folder / "u.genre").read_bytes()))  # 19 lines: 1 is 5.3%
    with pytest.raises(RawDataError) as err:
        _ingest(raw, tmp_path, "ml-100k")
    assert str(err.value) == (
        "ml-100k: u.genre: 1 of 19 lines (5.3%) are malformed (truncated 1), over the 1.0% limit; "
        f"first at line 19: {TRUNCATED}")


def test_truncated_zip_member_is_quarantined(tmp_path):
    """ml-latest-small as its official archive, with ratings.csv cut mid-line inside the zip."""
    members = _latest_members()
    members["ratings.csv"] = _cut_last(members["ratings.csv"])
    folder = tmp_path / "raw" / "ml-latest-small"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "ml-latest-small.zip", "w") as z:
        for name, data in members.items():
            z.writestr(f"ml-latest-small/{name}", data)
    result, rejected, _ = _ingest(folder.parent, tmp_path, "ml-latest-small")
    assert rejected == [("ratings.csv", 1001, TRUNCATED)]
    assert result.row_counts["interactions"] == 999


def test_cut_gzip_stream_is_refused_with_its_offset(tmp_path):
    raw = tmp_path / "raw"
    folder = _gift(raw)
    data = (folder / "Gift_Cards_5.json.gz").read_bytes()
    (folder / "Gift_Cards_5.json.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(RawDataError) as err:
        _ingest(raw, tmp_path, GIFT)
    message = str(err.value)
    assert message.startswith(f"{GIFT}: ") and "Gift_Cards_5.json.gz: byte offset " in message
    assert "compressed stream is corrupt or cut short" in message


def test_steam_cut_gzip_stream_is_refused(tmp_path):
    raw = tmp_path / "raw"
    folder = _steam(raw)
    data = (folder / "steam_games.json.gz").read_bytes()
    (folder / "steam_games.json.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(RawDataError, match=r"^steam: .*steam_games.json.gz: byte offset \d+ \(line \d+\): the "
                                           r"compressed stream is corrupt or cut short"):
        _ingest(raw, tmp_path, "steam")


def test_latin1_file_with_invalid_bytes_names_offset_and_line(tmp_path):
    """DuckDB says only "File is not latin-1 encoded"; the error says where."""
    raw = tmp_path / "raw"
    folder = _ml100k(raw)
    item = (folder / "u.item").read_bytes()
    at = item.index(b"\n", 5000) + 3  # three bytes into line 39
    (folder / "u.item").write_bytes(item[:at] + b"\x85" + item[at:])
    with pytest.raises(RawDataError) as err:
        _ingest(raw, tmp_path, "ml-100k")
    message = str(err.value)
    assert message.startswith("ml-100k: ") and f"u.item: byte offset {at} (line 39)" in message
    assert "expected latin-1 text, 24 fields delimited by '|'" in message
    assert "(DuckDB: Invalid Input Error: File is not latin-1 encoded)" in message


def test_binary_u_data_names_offset_and_expected_layout(tmp_path):
    raw = tmp_path / "raw"
    folder = _ml100k(raw)
    (folder / "u.data").write_bytes(b"\x00\x01\x02" * 1000)
    with pytest.raises(RawDataError) as err:
        _ingest(raw, tmp_path, "ml-100k")
    message = str(err.value)
    assert message.startswith("ml-100k: ") and message.endswith(
        "u.data: byte offset 0 (line 1): a NUL byte: binary data (or UTF-16 text) where text was expected")

    # Random bytes without a NUL in the first 64 KiB: DuckDB's own refusal, located and explained.
    (folder / "u.data").write_bytes(bytes(b for b in random.Random(5).randbytes(8192) if b))
    with pytest.raises(RawDataError) as err:
        _ingest(raw, tmp_path / "b", "ml-100k")
    message = str(err.value)
    assert re.search(r"u\.data: byte offset \d+ \(line 1\): not valid utf-8 text \(byte 0x[0-9a-f]{2}\); expected", message)
    assert "expected utf-8 text, 4 fields delimited by '\\t' (user_id BIGINT, item_id BIGINT, rating INTEGER, " \
           "ts BIGINT)" in message


def test_official_file_without_final_newline_is_kept(tmp_path):
    """The rule: a missing last line ending is a cut only when the file is not the official one.
    A registry entry whose checksum is that of such a file keeps its last line."""
    raw = tmp_path / "raw"
    folder = _ml100k(raw)
    data = (folder / "u.data").read_bytes().rstrip(b"\n")  # whole lines, only the final LF missing
    (folder / "u.data").write_bytes(data)
    spec = get_dataset("ml-100k")
    pinned = replace(spec, files=tuple(RawFile(f.name, sha256_file(folder / f.name)) for f in spec.files))
    result, rejected, _ = _ingest(raw, tmp_path / "pinned", "ml-100k", spec=pinned)
    assert rejected == [] and result.row_counts["interactions"] == DATA_LINES
    # The same bytes judged against the real registry (another checksum): the last line is quarantined.
    result, rejected, _ = _ingest(raw, tmp_path / "registry", "ml-100k")
    assert rejected == [("u.data", DATA_LINES, TRUNCATED)] and result.row_counts["interactions"] == DATA_LINES - 1


@pytest.mark.parametrize(("name", "contract"), [("u.user", "user_id_unique"), ("u.item", "item_id_unique")])
def test_duplicate_keys_in_delimited_files_fail_the_contract(name, contract, tmp_path):
    raw = tmp_path / "raw"
    folder = _ml100k(raw)
    text = (folder / name).read_bytes()
    (folder / name).write_bytes(text + text.splitlines(keepends=True)[0])
    _, rejected, errors = _ingest(raw, tmp_path, "ml-100k")
    assert rejected == [] and errors == {contract}


@pytest.mark.parametrize(("line", "contract"), [(b"1\t1\t4\t-86400\n", "ts_not_before_1970"),
                                                (b"1\t1\t4\t4102444800\n", "ts_not_in_future"),
                                                (b"1\t1\t9\t881250949\n", "rating_in_scale")])
def test_implausible_values_fail_the_contract(line, contract, tmp_path):
    raw = tmp_path / "raw"
    folder = _ml100k(raw)
    (folder / "u.data").write_bytes((folder / "u.data").read_bytes() + line)
    _, rejected, errors = _ingest(raw, tmp_path, "ml-100k")
    assert rejected == [] and errors == {contract}


# --- property-based: the shared delimited reader accounts for every line ------------------------

_COLUMNS = {"user_id": "BIGINT", "item_id": "BIGINT", "rating": "INTEGER", "ts": "BIGINT"}
_BASE = [f"{u}\t{i}\t{r}\t{t}\n".encode() for u, i, r, t in
         [(196, 242, 3, 881250949), (186, 302, 3, 891717742), (22, 377, 1, 878887116), (244, 51, 2, 880606923),
          (166, 346, 1, 886397596), (298, 474, 4, 884182806), (115, 265, 2, 881171488), (253, 465, 5, 891628467)]]
_EDIT = st.one_of(
    st.tuples(st.just("cut"), st.integers(0, 10_000)),
    st.tuples(st.just("byte"), st.integers(0, 10_000), st.sampled_from(b"\x00\t\n\r x-9\xff\xc3.")),
    st.tuples(st.just("drop"), st.integers(0, 10_000)),
)


def _apply(data: bytes, edits: list[tuple]) -> bytes:
    for edit in edits:
        kind, pos = edit[0], edit[1] % (len(data) + 1)
        if kind == "cut":
            data = data[:pos]
        elif kind == "byte":
            data = data[:pos] + bytes([edit[2]]) + data[pos:]
        else:
            data = data[:pos] + data[pos + 1:]
    return data


def _reference(line: bytes) -> tuple[int, ...] | None:
    """What a correct reader must make of one line: four whole numbers separated by tabs, or nothing.
    DuckDB's one leniency: a delimiter ending the line (an empty fifth field) is accepted, no value lost."""
    try:
        fields = line.decode("utf-8").split("\t")
    except UnicodeDecodeError:
        return None
    if len(fields) == 5 and fields[4] == "":
        fields = fields[:4]
    if len(fields) != 4 or not all(f.strip().lstrip("+-").isdigit() and f.isascii() for f in fields):
        return None
    values = tuple(int(f) for f in fields)
    return values if MIN_EPOCH_S <= values[3] <= MAX_EPOCH_S else None


@hsettings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(_EDIT, min_size=1, max_size=4))
def test_every_line_is_parsed_exactly_or_quarantined(edits, tmp_path):
    """Random cuts, inserted and dropped bytes: each non-blank line is either a row equal to what the
    line says, or quarantined with its number; a line with no line ending is never parsed; a file
    refused as a whole names the file and a byte offset or line. Nothing else."""
    data = _apply(b"".join(_BASE), edits)
    path = tmp_path / "u.data"
    path.write_bytes(data)
    con = duckdb.connect()
    try:
        stats = read_delimited(con, path, "stg", _COLUMNS, delim="\t", checks=RATING_CHECKS)  # as ml-100k reads u.data
    except RawDataError as exc:
        assert str(exc).startswith(f"{path}: ") and ("byte offset" in str(exc) or "line" in str(exc)), str(exc)
        return
    rows = con.execute("SELECT user_id, item_id, rating, ts FROM stg ORDER BY rowid").fetchall()
    lines = re.split(rb"\r\n|\n|\r", data)  # line breaks as DuckDB reads them: LF, CRLF, a lone CR
    ended = data.endswith((b"\n", b"\r"))
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip(b"\r")]
    quarantined = {r.line_no: r.reason for r in stats.rejected}
    assert stats.rows == len(rows) and len(rows) + len(quarantined) == len(numbered), (rows, quarantined, data)
    kept = [(n, line) for n, line in numbered if n not in quarantined]
    for (n, line), row in zip(kept, rows, strict=True):
        assert _reference(line.rstrip(b"\r")) == row, (n, line, row)
        assert ended or n < len(lines), "an unterminated last line was parsed"
    if not ended and lines[-1].strip():  # a cut last line with content (spaces alone carry none)
        assert quarantined[len(lines)].startswith("truncated"), quarantined


@hsettings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000), encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_first_bad_byte_is_exact(data, encoding, tmp_path):
    """The diagnosis DuckDB's encoding errors lack: the first offending byte, found exactly."""
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    bad = first_bad_byte(path, encoding)
    text = data.decode("latin-1")
    if encoding == "utf-8":
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            clean_to = exc.start
            decoded = data[:clean_to].decode("utf-8")
        else:
            clean_to = None
        control = next((i for i, ch in enumerate(decoded) if ord(ch) < 0x20 and ch not in "\t\r\n"), None)
        expected = len(decoded[:control].encode("utf-8")) if control is not None else clean_to
    else:
        expected = next((i for i, ch in enumerate(text) if (ord(ch) < 0x20 and ch not in "\t\r\n")
                         or 0x80 <= ord(ch) <= 0x9F), None)
    if expected is None:
        assert bad is None
    else:
        assert bad is not None and bad.offset == expected and bad.value == data[expected]
        assert bad.line_no == data.count(b"\n", 0, expected) + 1


@hsettings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000), gz=st.booleans())
def test_unterminated_tail_is_exact(data, gz, tmp_path):
    path = tmp_path / ("f.gz" if gz else "f.txt")
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    tail = unterminated_tail(path)
    cut = max(data.rfind(b"\n"), data.rfind(b"\r"))
    last = data[cut + 1:]
    if not last.strip():
        assert tail is None
    else:
        # Line breaks as DuckDB counts them: LF, CRLF and a lone CR.
        assert tail is not None and tail.line_no == len(re.split(rb"\r\n|\n|\r", data))
        assert tail.text == last.decode("utf-8", "replace")[:10_000]


def test_gzip_members_are_all_read(tmp_path):
    """bgzip-style multi-member gzip: the tail is that of the last member."""
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(b"a\nb\n", mtime=0) + gzip.compress(b"c\nd", mtime=0))
    tail = unterminated_tail(path)
    assert tail is not None and (tail.line_no, tail.text) == (4, "d")


def test_os_level_file_errors_are_not_hidden(tmp_path):
    """A file that vanished between listing and reading: the OS error is the reader's, named."""
    path = tmp_path / "gone.tsv"
    with pytest.raises(RawDataError, match=r"gone.tsv"):
        read_delimited(duckdb.connect(), path, "stg", _COLUMNS, delim="\t")
    assert not os.path.exists(path)
