"""MicroLens parsers on hand-written fixtures in the official layouts (tests/fixtures/microlens-*/FIXTURE.md)."""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from data_contracts import load_contract
from itdr_pipeline import fetch
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import RawDataError
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.validation import validate_table
from itdr_pipeline.warehouse import connect

FIXTURES = Path(__file__).parent / "fixtures"


def _raw(tmp_path: Path, rid: str) -> Path:
    dest = tmp_path / "raw" / rid
    shutil.copytree(FIXTURES / rid, dest, ignore=shutil.ignore_patterns("FIXTURE.md"))
    return dest


@contextmanager
def _ingested(raw: Path, **kw) -> Iterator[tuple]:
    """Ingest the dataset in `raw` (named as its folder) into a fresh warehouse; yield (report, con)."""
    settings = Settings(home=raw.parent.parent / "home", raw_dir=raw.parent).ensure()
    with connect(settings.warehouse) as con:
        yield ingest_dataset(con, get_dataset(raw.name), settings, **kw), con


def _items(con, rid: str) -> dict[str, tuple]:
    rows = con.execute("SELECT item_id, title, categories FROM items WHERE dataset = ?", [rid]).fetchall()
    return {r[0]: r[1:] for r in rows}


def _warnings(con, rid: str) -> list[str]:
    spec, failed = get_dataset(rid), []
    for table in ("users", "items", "interactions", "reviews"):
        outcomes = validate_table(con, load_contract(table), spec)
        assert [o.message for o in outcomes if not o.success and o.severity == "ERROR"] == []
        failed += [o.expectation.id for o in outcomes if not o.success]
    return failed


def test_50k_pairs_titles_and_contracts(tmp_path):
    with _ingested(_raw(tmp_path, "microlens-50k")) as (report, con):
        assert report.result.row_counts == {"users": 3, "items": 5, "interactions": 8, "reviews": 0}
        assert report.result.rejected == [] and report.result.absent == []
        first = con.execute("SELECT user_id, item_id, ts, event, weight, rating FROM interactions "
                            "WHERE dataset = 'microlens-50k' ORDER BY src_row LIMIT 1").fetchone()
        assert first == ("1", "3", datetime(2020, 9, 13, 12, 26, 40, 123000), "interaction", None, None)
        tie = con.execute("SELECT item_id FROM interactions WHERE dataset = 'microlens-50k' AND user_id = '3' "
                          "ORDER BY ts, src_row").fetchall()
        assert [t[0] for t in tie] == ["9", "3", "8"]  # same millisecond: file order
        items = _items(con, "microlens-50k")
        assert items["3"][0] == "Lazy cat learns to open the fridge, owner gives up # pets # funny"
        assert items["8"][0] == 'He said "one more try" and won the match 🎉 # sports'
        assert items["10"][0] == "Night drive through the city lights # cars"  # listed, never interacted
        assert items["9"] == (None, None)  # interacted, no title row
        assert _warnings(con, "microlens-50k") == ["title_present"]


def test_100k_titles_categories_and_comments(tmp_path):
    with _ingested(_raw(tmp_path, "microlens-100k")) as (report, con):
        assert report.result.row_counts == {"users": 4, "items": 5, "interactions": 6, "reviews": 4}
        items = _items(con, "microlens-100k")
        assert items["1"] == ("A quiet walk through the old town, at dawn", ["Travel"])
        assert items["3"] == ('The "best" dumplings in town? # food', ["Food"])
        assert items["4"] == (None, None)  # empty title in the file
        assert items["5"] == (None, ["Games"])  # category only
        reviews = con.execute("SELECT user_id, item_id, ts, rating, text, src_row FROM reviews "
                              "WHERE dataset = 'microlens-100k' ORDER BY src_row").fetchall()
        assert reviews[1] == ("12", "1", None, None, 'Where is this? Looks like "old town" in spring', 1)
        assert reviews[2][4] == "ok\tbut the music is too loud"  # a tab inside the comment is kept
        assert reviews[3][4] is None  # empty comment
        users = [u[0] for u in con.execute(
            "SELECT user_id FROM users WHERE dataset = 'microlens-100k' ORDER BY user_id").fetchall()]
        assert users == ["11", "12", "13", "17"]  # 17 only comments
        assert _warnings(con, "microlens-100k") == ["title_present"]


def test_1m_header_detection_and_line_split_titles(tmp_path):
    with _ingested(_raw(tmp_path, "microlens-1m")) as (report, con):
        assert report.result.row_counts == {"users": 3, "items": 4, "interactions": 5, "reviews": 0}
        first = con.execute("SELECT user_id, item_id, ts FROM interactions WHERE dataset = 'microlens-1m' "
                            "ORDER BY src_row LIMIT 1").fetchone()
        assert first == ("21", "11", datetime(2022, 4, 15, 5, 20))  # no header: line 1 is data
        titles = {k: v[0] for k, v in _items(con, "microlens-1m").items()}
        assert titles == {"11": "今天的晚饭：红烧肉 # 美食", "12": '"他说"这次一定赢 # 游戏',
                          "13": "标题里有逗号,也有空格 # 生活", "14": "完整引用的标题, 带逗号"}
        assert _warnings(con, "microlens-1m") == []


def test_malformed_lines_are_quarantined_with_their_lines(tmp_path):
    raw = _raw(tmp_path, "microlens-100k")
    with (raw / "MicroLens-100k_pairs.csv").open("a") as f:
        f.write("14,x7,1662163260000\n")  # line 8 (the header is line 1)
    with (raw / "MicroLens-100k_comment_en.txt").open("a") as f:
        f.write("12\t3\tfirst half of a comment\nsecond half after a line break\n")  # lines 5-6
        f.write("13\t2\n")  # line 7: no comment field
    with (raw / "MicroLens-100k_title_en.csv").open("a") as f:
        f.write("3,A second title for video 3\n")  # a repeated id: the first line wins
    with _ingested(raw, max_reject_share=0.5) as (report, con):
        rejected = con.execute("SELECT file, line_no, reason FROM rejected_rows ORDER BY file, line_no").fetchall()
        assert _items(con, "microlens-100k")["3"][0] == 'The "best" dumplings in town? # food'
    assert [(f, n, r.split(":")[0]) for f, n, r in rejected] == [
        ("MicroLens-100k_comment_en.txt", 6, "too_few_fields"), ("MicroLens-100k_comment_en.txt", 7, "too_few_fields"),
        ("MicroLens-100k_pairs.csv", 8, "bad_value")]
    assert report.result.row_counts["reviews"] == 5 and report.result.row_counts["interactions"] == 6


def test_1m_title_without_numeric_id_is_quarantined(tmp_path):
    raw = _raw(tmp_path, "microlens-1m")
    with (raw / "MicroLens-1M_title.csv").open("a", encoding="utf-8") as f:
        f.write("第二行的续写，没有编号\n")  # line 5: continuation text, no id
    with _ingested(raw, max_reject_share=0.5) as (report, _):
        pass
    assert [(r.file, r.line_no, r.reason.split(":")[0]) for r in report.result.rejected] == [
        ("MicroLens-1M_title.csv", 5, "bad_value")]


def test_optional_files_absent(tmp_path):
    raw = _raw(tmp_path, "microlens-100k")
    for name in ("tags_to_summary.csv", "MicroLens-100k_comment_en.txt", "MicroLens-100k_title_en.csv"):
        (raw / name).unlink()
    with _ingested(raw) as (report, con):
        assert report.result.row_counts == {"users": 3, "items": 4, "interactions": 6, "reviews": 0}
        titles = con.execute("SELECT DISTINCT title FROM items WHERE dataset = 'microlens-100k'").fetchall()
        assert titles == [(None,)]
    assert sorted(a.split(" not found")[0] for a in report.result.absent) == [
        "MicroLens-100k_comment_en.txt", "MicroLens-100k_title_en.csv", "tags_to_summary.csv"]


def test_missing_pairs_file_is_named(tmp_path):
    raw = _raw(tmp_path, "microlens-50k")
    (raw / "MicroLens-50k_pairs.csv").unlink()
    with pytest.raises(RawDataError, match=r"required file MicroLens-50k_pairs.csv is missing from .*microlens-50k"):
        with _ingested(raw):
            pass


def test_registry_entries():
    spec = get_dataset("microlens-100k")
    assert (spec.feedback, spec.label_rule, spec.tasks, spec.item_noun) == (
        "implicit", "positive_only", ("tkr", "nir", "tui", "seqrec"), "video")
    assert [d.url for d in spec.downloads][0] == (
        "https://recsys.westlake.edu.cn/MicroLens-100k-Dataset/MicroLens-100k_pairs.csv")
    assert [s.id for s in map(get_dataset, ("microlens-50k", "microlens-1m"))] == ["microlens-50k", "microlens-1m"]


def test_empty_id_fails_naming_the_row(tmp_path):
    raw = _raw(tmp_path, "microlens-50k")
    with (raw / "MicroLens-50k_pairs.csv").open("a") as f:
        f.write("4,,1620000400000\n")
    with pytest.raises(RawDataError, match=r"MicroLens-50k_pairs.csv: 1 data row\(s\) have an empty .*data row 9"):
        with _ingested(raw):
            pass


def test_fetch_places_the_plain_files_in_the_source_folder(tmp_path, monkeypatch):
    def offline_download(url: str, dest: Path, sha256: str | None, **_) -> Path:
        assert url.startswith("https://recsys.westlake.edu.cn/MicroLens-100k-Dataset/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / "microlens-100k" / url.rsplit("/", 1)[1], dest)
        return dest

    monkeypatch.setattr(fetch, "download", offline_download)
    settings = Settings(home=tmp_path / "home", raw_dir=None).ensure()
    folder = fetch.fetch_dataset(get_dataset("microlens-100k"), settings, progress=False)
    assert folder.name == "microlens-100k" and len(list(folder.iterdir())) == 4
    with connect(settings.warehouse) as con:
        report = ingest_dataset(con, get_dataset("microlens-100k"), settings)
    assert report.result.row_counts == {"users": 4, "items": 5, "interactions": 6, "reviews": 4}
