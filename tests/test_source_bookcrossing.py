"""Book-Crossing on hand-written fixtures in both official layouts (tests/fixtures/bookcrossing-*/FIXTURE.md)."""

import shutil
from pathlib import Path

import pytest

from data_contracts import load_contract
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import RawDataError
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.sources.bookcrossing import _has_c1_bytes
from itdr_pipeline.validation import validate_table
from itdr_pipeline.warehouse import connect

FIXTURES = Path(__file__).parent / "fixtures"
ORIGINAL = FIXTURES / "bookcrossing-original"
KAGGLE = FIXTURES / "bookcrossing-kaggle"
SPEC = get_dataset("bookcrossing")
LOOSE = 0.25  # the fixtures are tiny: one bad line is over the default 1% limit


def _ingest(con, raw_dir: Path, home: Path, max_reject_share: float = LOOSE):
    settings = Settings(home=home, raw_dir=raw_dir).ensure()
    return ingest_dataset(con, SPEC, settings, max_reject_share=max_reject_share)


def _warehouse(home: Path):
    return connect(Settings(home=home, raw_dir=None).ensure().warehouse)


def _ingested(raw_dir: Path, home: Path):
    with _warehouse(home) as con:
        yield _ingest(con, raw_dir, home), con


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    yield from _ingested(ORIGINAL, tmp_path_factory.mktemp("original"))


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    yield from _ingested(KAGGLE, tmp_path_factory.mktemp("kaggle"))


@pytest.fixture(params=["original", "kaggle"])
def layout(request):
    """Each layout-independent test runs on both layouts: the same canonical rows must come out."""
    report, con = request.getfixturevalue(request.param)
    return request.param, report, con


def _rows(con, sql: str) -> list[tuple]:
    return con.execute(sql.replace("$ds", "'bookcrossing'")).fetchall()


def test_original_layout_counts_and_quarantined_lines(original):
    report, _ = original
    assert report.result.row_counts == {"users": 7, "items": 9, "interactions": 8, "reviews": 0}
    assert report.result.file_rows == {"BX-Book-Ratings.csv": 8, "BX-Books.csv": 8, "BX-Users.csv": 7}
    got = [(r.file, r.line_no, r.reason.split(":")[0]) for r in report.result.rejected]
    assert got == [
        ("BX-Book-Ratings.csv", 8, "too_few_fields"),  # "4";"0000000051"
        ("BX-Book-Ratings.csv", 9, "bad_value"),  # user id "x5"
        ("BX-Books.csv", 3, "bad_quoting"),  # the backslash-escaped quotes inside a title
        ("BX-Users.csv", 7, "too_few_fields"),  # no Age field
    ]
    assert report.result.rejected[2].raw_line.strip().startswith('"0000000027";"The Case of the \\"Blue\\"')
    assert report.result.dropped == {"dropped_bad_quoting": 1, "dropped_bad_value": 1, "dropped_too_few_fields": 2}
    assert {f.file: f.status for f in report.files} == dict.fromkeys(
        ["BX-Book-Ratings.csv", "BX-Books.csv", "BX-Users.csv"], "unverified")


def test_kaggle_layout_counts_and_quarantined_lines(kaggle):
    report, _ = kaggle
    assert report.result.row_counts == {"users": 8, "items": 9, "interactions": 8, "reviews": 0}
    assert report.result.file_rows == {"Ratings.csv": 8, "Books.csv": 8, "Users.csv": 8}
    got = [(r.file, r.line_no, r.reason.split(":")[0], r.raw_line) for r in report.result.rejected]
    assert got == [("Ratings.csv", 8, "too_many_fields", "4,0000000051,7,7"),
                   ("Ratings.csv", 9, "bad_value", "x5,0000000078,3")]


def test_ratings_zero_is_an_implicit_interaction(layout):
    _, _, con = layout
    rows = _rows(con, "SELECT user_id, item_id, rating, event, ts, src_row FROM interactions WHERE dataset = $ds "
                      "ORDER BY src_row")
    assert rows == [
        ("1", "0000000019", 8.0, "rating", None, 0), ("1", "0000000035", None, "interaction", None, 1),
        ("2", "0000000043", 5.0, "rating", None, 2), ("2", "0000000019", 10.0, "rating", None, 3),
        ("99", "9999999999", 7.0, "rating", None, 4), ("3", "000000011\u00b4", 6.0, "rating", None, 5),
        ("5", "0000000078", None, "interaction", None, 6), ("7", "0000000086", 9.0, "rating", None, 7),
    ]


def test_books_quirks_are_repaired_the_same_in_both_layouts(layout):
    _, _, con = layout
    items = {r[0]: r[1:] for r in _rows(
        con, "SELECT item_id, title, creator, publisher, release_date::VARCHAR, url FROM items WHERE dataset = $ds")}
    cover = "http://images.amazon.com/images/P/{}.01.LZZZZZZZ.jpg"
    # First line of a repeated ISBN wins; &amp; decoded; year -> 1 January.
    assert items["0000000019"] == ("A Garden of Small Hours", "Nora Fielding", "Lantern & Quill", "1998-01-01",
                                   cover.format("0000000019"))
    # The record whose author was merged into the title: split back (original) / shifted back (Kaggle).
    assert items["0000000035"] == ("Starter Readers: Comets (Level 2)", "Lea Ortmann", "Kite Books", "2000-01-01",
                                   cover.format("0000000035"))
    assert items["0000000043"][3] is None  # year 0 = unknown
    assert items["0000000051"] == ("Stars Over Quebec", "L\u00e9a Tremblay", "\u00c9ditions du Nord", None,
                                   cover.format("0000000051"))  # 2030 is after the crawl
    assert items["0000000078"][0] == "Der Weg nach L\u00c3\u0083\u00c2\u00bcbeck"  # the dump's double encoding, kept
    assert items["0000000086"] == ('<Markup> for "Everyone"', "Dee Quinn", None, "1999-01-01", None)
    assert items["0000000094"][0] is None  # blank title
    # Rated but not in the books file: a row with NULL attributes; the quarantined book has none.
    assert items["9999999999"] == (None,) * 5 and "0000000027" not in items


def test_users_age_location_country(layout):
    name, _, con = layout
    users = {r[0]: r[1:] for r in _rows(con, "SELECT user_id, age, location, country FROM users WHERE dataset = $ds")}
    assert users["1"] == (None, "springfield, oregon, usa", "usa")  # Age NULL / empty
    assert users["2"] == (34, "lyon, rh\u00f4ne-alpes, france", "france")  # latin-1 (original) / UTF-8 (Kaggle)
    assert users["3"] == (None, "timbuktu, n/a, n/a", None)  # age 0 and country 'n/a'
    assert users["4"] == (None, "nowhere,", None)  # age 244, empty last part
    assert users["5"] == (27, "kyoto, kyoto, japan", "japan")  # the repeated id's later line is dropped
    assert users["7"] == (19, None, None)
    assert users["99"] == (None, None, None)  # rated, not in the users file
    assert ("6" in users) == (name == "kaggle")  # the original's line 7 lacks the Age field


def test_contracts_pass(layout):
    _, _, con = layout
    for table in ("users", "items", "interactions", "reviews"):
        outcomes = validate_table(con, load_contract(table), SPEC)
        assert [o.message for o in outcomes if not o.success and o.severity == "ERROR"] == []
    failed_warn = {o.expectation.id for t in ("users", "items") for o in validate_table(con, load_contract(t), SPEC)
                   if not o.success}
    assert failed_warn == {"title_present"}  # the derived and blank-titled books


def test_c1_bytes_force_the_utf8_copy_only_where_present():
    assert _has_c1_bytes(ORIGINAL / "bookcrossing" / "BX-Books.csv")  # 0x83 in a double-encoded title
    assert not _has_c1_bytes(ORIGINAL / "bookcrossing" / "BX-Book-Ratings.csv")  # 0xB4 only: read directly


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src / "bookcrossing", dest / "bookcrossing")
    return dest


def test_missing_ratings_file_is_named(tmp_path):
    raw = _copy(ORIGINAL, tmp_path / "raw")
    (raw / "bookcrossing" / "BX-Book-Ratings.csv").unlink()
    with _warehouse(tmp_path / "home") as con, pytest.raises(
            RawDataError, match=r"required file BX-Book-Ratings.csv is missing from .*raw/bookcrossing"):
        _ingest(con, raw, tmp_path / "home")


def test_books_and_users_files_are_optional(tmp_path):
    raw = _copy(KAGGLE, tmp_path / "raw")
    (raw / "bookcrossing" / "Books.csv").unlink()
    (raw / "bookcrossing" / "Users.csv").unlink()
    with _warehouse(tmp_path / "home") as con:
        report = _ingest(con, raw, tmp_path / "home")
        assert report.result.row_counts == {"users": 6, "items": 7, "interactions": 8, "reviews": 0}
        assert [a.split(" not found")[0] for a in report.result.absent] == ["BX-Books.csv", "BX-Users.csv"]
        assert _rows(con, "SELECT count(*) FROM items WHERE dataset = $ds AND title IS NULL") == [(7,)]


def test_default_reject_limit_fails_naming_the_file(tmp_path):
    with _warehouse(tmp_path / "home") as con, pytest.raises(
            RawDataError, match=r"BX-Book-Ratings.csv: 2 of 10 lines \(20.0%\).*first at line 8"):
        _ingest(con, ORIGINAL, tmp_path / "home", max_reject_share=0.01)


def test_registry_entry():
    assert SPEC.file("Ratings.csv").name == "BX-Book-Ratings.csv" and not SPEC.file("Users.csv").required
    assert (SPEC.rating_min, SPEC.rating_max, SPEC.like_threshold, SPEC.label_rule) == (1.0, 10.0, 5.0,
                                                                                        "rating_above")
    assert set(SPEC.tasks) == {"preference", "rp", "uap", "tui", "seqrec", "search", "psearch"}
    assert SPEC.user_attributes == ("age", "location", "country")
    assert SPEC.downloads[0].md5 == "37d647ee9e18ba134ea6d78ee4fe5292" and SPEC.downloads[0].sha256 is None
