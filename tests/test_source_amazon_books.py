"""Amazon Books Reviews (Kaggle) on hand-written fixtures (tests/fixtures/amazon-books-reviews/FIXTURE.md)."""

import shutil
from datetime import date, datetime
from pathlib import Path

import pytest

from data_contracts import load_contract
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import RawDataError
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.validation import validate_table
from itdr_pipeline.warehouse import connect

RAW = Path(__file__).parent / "fixtures" / "amazon-books-reviews"
SPEC = get_dataset("amazon-books-reviews")
LOOSE = 0.25  # the fixture is tiny: its one bad line is over the default 1% limit


def _ingest(con, raw_dir: Path, home: Path, max_reject_share: float = LOOSE):
    return ingest_dataset(con, SPEC, Settings(home=home, raw_dir=raw_dir).ensure(), max_reject_share=max_reject_share)


def _warehouse(home: Path):
    return connect(Settings(home=home, raw_dir=None).ensure().warehouse)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    home = tmp_path_factory.mktemp("amazon-books")
    with _warehouse(home) as con:
        yield _ingest(con, RAW, home), con


def _rows(con, sql: str) -> list[tuple]:
    return con.execute(sql.replace("$ds", "'amazon-books-reviews'")).fetchall()


def test_counts_quarantine_and_dropped_anonymous_reviews(ingested):
    report, _ = ingested
    assert report.result.row_counts == {"users": 4, "items": 5, "interactions": 7, "reviews": 7}
    # 9 records (one spans two lines): line 3 quarantined, 8 parsed, the anonymous one (line 4) dropped.
    assert report.result.file_rows == {"Books_rating.csv": 8, "books_data.csv": 6}
    assert report.result.file_rows["Books_rating.csv"] - report.result.row_counts["interactions"] == 1
    [bad] = report.result.rejected
    assert (bad.file, bad.line_no, bad.reason.split(":")[0]) == ("Books_rating.csv", 3, "bad_value")
    assert bad.raw_line.startswith("B000000004,Notes on Rivers,,AQX1RVZ0003,Zed,0/1,five,")
    assert report.result.absent == []


def test_reviews_and_interactions(ingested):
    _, con = ingested
    reviews = _rows(con, "SELECT user_id, item_id, ts, rating, summary, text, src_row FROM reviews WHERE dataset = $ds "
                         "ORDER BY src_row")
    assert reviews[0] == ("AQX1RVZ0001", "B000000001", datetime(2004, 9, 21), 5.0, "Lovely & calm",
                          'A gentle novel; I read it twice. "Highly" recommended.', 0)
    assert reviews[1] == ("AQX1RVZ0002", "B000000001", datetime(2005, 2, 10), 2.0, "Too slow",
                          "First line of a review\nthat spans two lines, with a comma.", 2)
    assert reviews[2][2] is None and reviews[2][4:] == ("Undated", "The time is -1 here.", 3)  # time -1
    assert reviews[5][4] is None  # empty summary
    assert [r[6] for r in reviews] == [0, 2, 3, 4, 5, 6, 7]  # src_row 1 was the anonymous review
    interactions = _rows(con, "SELECT user_id, item_id, rating, ts, event, weight, src_row FROM interactions "
                              "WHERE dataset = $ds ORDER BY src_row")
    assert [(i[0], i[1], i[2], i[3], i[6]) for i in interactions] == [(r[0], r[1], r[3], r[2], r[6]) for r in reviews]
    assert {(i[4], i[5]) for i in interactions} == {("review", None)}


def test_items_join_the_details_by_title(ingested):
    _, con = ingested
    items = {r[0]: r[1:] for r in _rows(
        con, "SELECT item_id, title, creator, categories, publisher, release_date, price, description, url "
             "FROM items WHERE dataset = $ds")}
    assert set(items) == {"B000000001", "B000000002", "B000000003", "B000000005", "B000000006"}
    orchard = items["B000000001"]  # the details file's first line for the title wins over its later duplicate
    assert orchard[:7] == ("The Quiet Orchard", "Ada Finch", ["Fiction"], "Hearth House", date(1996, 1, 1), 12.5,
                           "A novel about an orchard, and quiet.")
    assert orchard[7].startswith("http://books.google.nl/books?id=AAAAAAAAAAA1&dq=The+Quiet+Orchard")
    maps = items["B000000002"]  # a name with an apostrophe (double-quoted in the list literal), year-month date
    assert maps[1:5] == ("Jo Park, Liam O'Neil", ["History", "Maps & Atlases"], None, date(2005, 2, 1))
    late = items["B000000003"]  # first non-empty title in file order; `[]` authors; multi-line description
    assert late[:7] == ("Late Title", None, None, "Dawn & Dusk Press", date(2005, 2, 14), None,
                        "Line one of a description\nand its second line.")
    assert items["B000000005"] == ("Pocket Atlas",) + (None,) * 7  # no details for this title
    quoted = items["B000000006"]  # doubled quotes in both files; '19th century' is no date
    assert quoted[:6] == ('The "Quoted" Title', "Q. Writer", ["Poetry"], None, None, 9.99)


def test_contracts_pass(ingested):
    _, con = ingested
    for table in ("users", "items", "interactions", "reviews"):
        outcomes = validate_table(con, load_contract(table), SPEC)
        assert [o.message for o in outcomes if not o.success and o.severity == "ERROR"] == []


def _copy(dest: Path) -> Path:
    shutil.copytree(RAW / "amazon-books-reviews", dest / "amazon-books-reviews")
    return dest


def test_missing_reviews_file_is_named(tmp_path):
    raw = _copy(tmp_path / "raw")
    (raw / "amazon-books-reviews" / "Books_rating.csv").unlink()
    with _warehouse(tmp_path / "home") as con, pytest.raises(
            RawDataError, match=r"required file Books_rating.csv is missing from .*raw/amazon-books-reviews"):
        _ingest(con, raw, tmp_path / "home")


def test_details_file_is_optional(tmp_path):
    raw = _copy(tmp_path / "raw")
    (raw / "amazon-books-reviews" / "books_data.csv").unlink()
    with _warehouse(tmp_path / "home") as con:
        report = _ingest(con, raw, tmp_path / "home")
        assert report.result.row_counts == {"users": 4, "items": 5, "interactions": 7, "reviews": 7}
        assert report.result.absent[0].startswith("books_data.csv not found in ")
        rows = _rows(con, "SELECT item_id, title, creator, price FROM items WHERE dataset = $ds ORDER BY item_id")
        assert rows[0] == ("B000000001", "The Quiet Orchard", None, 12.5)


def test_default_reject_limit_fails_naming_the_file(tmp_path):
    with _warehouse(tmp_path / "home") as con, pytest.raises(
            RawDataError, match=r"Books_rating.csv: 1 of 9 lines \(11.1%\).*first at line 3: bad_value"):
        _ingest(con, RAW, tmp_path / "home", max_reject_share=0.01)


def test_line_numbers_after_a_multi_line_review_are_physical(tmp_path):
    raw = _copy(tmp_path / "raw")
    reviews = raw / "amazon-books-reviews" / "Books_rating.csv"
    reviews.write_text(reviews.read_text() + "B000000009,Bad Time,,AQX1RVZ0009,X,0/0,3.0,yesterday,S,T\n")
    with _warehouse(tmp_path / "home") as con:
        report = _ingest(con, raw, tmp_path / "home")
    assert [r.line_no for r in report.result.rejected] == [3, 12]  # physical line 12; DuckDB says 11


def test_registry_entry():
    assert [(f.name, f.required) for f in SPEC.files] == [("Books_rating.csv", True), ("books_data.csv", False)]
    assert (SPEC.rating_min, SPEC.rating_max, SPEC.like_threshold, SPEC.item_noun) == (1.0, 5.0, 3.0, "book")
    assert set(SPEC.tasks) == {"preference", "tkr", "ir", "seqrec", "search", "psearch"} and SPEC.downloads == ()
