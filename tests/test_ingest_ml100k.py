"""Real data: the official ml-100k files from ../shared/data/raw."""

import pytest

from itdr_pipeline.config import Settings
from itdr_pipeline.errors import RawDataError
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.warehouse import connect


def test_official_counts(ml100k):
    con, report = ml100k
    assert report.result.row_counts == {"users": 943, "items": 1682, "interactions": 100000, "reviews": 0}
    assert report.result.rejected == []
    assert {f.file: f.status for f in report.files} == dict.fromkeys(["u.data", "u.item", "u.user", "u.genre"], "official")
    dist = dict(con.execute("SELECT rating, count(*) FROM interactions WHERE dataset='ml-100k' GROUP BY 1").fetchall())
    assert dist == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}
    assert con.execute("SELECT min(epoch(ts)), max(epoch(ts)) FROM interactions").fetchone() == (874724710, 893286638)


def test_latin1_titles_genres_and_quirks(ml100k):
    con, _ = ml100k
    rows = dict(con.execute(
        "SELECT item_id, (title, genres, release_date) FROM items WHERE item_id IN ('1', '267', '543')").fetchall())
    assert rows["543"][0] == "Misérables, Les (1995)"
    assert rows["1"][1] == ["Animation", "Children's", "Comedy"]
    assert rows["267"][0] == "unknown" and rows["267"][2] is None  # the known quirk: no release date
    user = con.execute("SELECT age, gender, occupation, zip_code FROM users WHERE user_id = '1'").fetchone()
    assert user == (24, "M", "technician", "85711")


def test_file_order_is_kept_for_tie_breaking(ml100k):
    con, _ = ml100k
    first = con.execute("SELECT user_id, item_id, src_row FROM interactions ORDER BY src_row LIMIT 2").fetchall()
    assert first == [("196", "242", 0), ("186", "302", 1)]  # the first two lines of u.data


def test_reingest_replaces_the_partition(tmp_path):
    settings = Settings(home=tmp_path, raw_dir=None).ensure()
    with connect(settings.warehouse) as con:
        for _ in range(2):
            ingest_dataset(con, get_dataset("demo"), settings)
        counts = con.execute("SELECT (SELECT count(*) FROM interactions), (SELECT count(*) FROM users)").fetchone()
    assert counts == (13986, 200)


def _ingest(raw_dir, tmp_path, **kw):
    settings = Settings(home=tmp_path / "home", raw_dir=raw_dir).ensure()
    with connect(settings.warehouse) as con:
        return ingest_dataset(con, get_dataset("ml-100k"), settings, **kw), con.execute(
            "SELECT file, line_no, reason, raw_line FROM rejected_rows").fetchall()


def test_malformed_line_is_quarantined_with_its_line_number(raw_copy, tmp_path):
    data = raw_copy / "ml-100k" / "u.data"
    lines = data.read_text().splitlines(keepends=True)
    lines.insert(41, "196\tnot-an-item\t3\t881250949\n")
    lines.insert(99, "7\t8\n")
    data.write_text("".join(lines))
    report, rejected = _ingest(raw_copy, tmp_path)
    assert report.result.row_counts["interactions"] == 100000
    assert [(r[0], r[1]) for r in rejected] == [("u.data", 42), ("u.data", 100)]
    assert rejected[0][2].startswith("bad_value") and rejected[0][3] == "196\tnot-an-item\t3\t881250949"
    assert rejected[1][2].startswith("too_few_fields")
    assert report.result.dropped == {"dropped_bad_value": 1, "dropped_too_few_fields": 1}
    assert {f.file: f.status for f in report.files}["u.data"] == "modified"  # accepted, with the warning


def test_too_many_malformed_lines_fail_naming_the_file(raw_copy, tmp_path):
    data = raw_copy / "ml-100k" / "u.data"
    data.write_text(data.read_text() + "garbage\n" * 1200)
    with pytest.raises(RawDataError, match=r"u.data: 1200 of 101200 lines \(1.2%\) are malformed.*line 100001"):
        _ingest(raw_copy, tmp_path)


def test_missing_file_is_named_with_its_folder(raw_copy, tmp_path):
    (raw_copy / "ml-100k" / "u.user").unlink()
    with pytest.raises(RawDataError, match=r"required file u.user is missing from .*raw/ml-100k"):
        _ingest(raw_copy, tmp_path)


def test_missing_dataset_folder_says_where_it_looked(tmp_path):
    settings = Settings(home=tmp_path / "home", raw_dir=tmp_path / "nowhere").ensure()
    with connect(settings.warehouse) as con, pytest.raises(RawDataError, match="ITDR_RAW_DIR.*itdr fetch ml-100k"):
        ingest_dataset(con, get_dataset("ml-100k"), settings)
