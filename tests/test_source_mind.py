"""MIND parser on hand-written fixtures in the official layout (tests/fixtures/mind-small/FIXTURE.md)."""

import io
import shutil
import zipfile
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

FIXTURE = Path(__file__).parent / "fixtures" / "mind-small"


def _raw(tmp_path: Path, rid: str = "mind-small", rename: dict[str, str] | None = None) -> Path:
    """A writable copy of the fixture as ITDR_RAW_DIR/<rid>/, split folders optionally renamed."""
    dest = tmp_path / "raw" / rid
    shutil.copytree(FIXTURE, dest, ignore=shutil.ignore_patterns("FIXTURE.md"))
    for old, new in (rename or {}).items():
        (dest / old).rename(dest / new)
    return dest


@contextmanager
def _ingested(raw: Path, rid: str = "mind-small", **kw) -> Iterator[tuple]:
    """Ingest ITDR_RAW_DIR=raw.parent into a fresh warehouse; yield (report, connection)."""
    settings = Settings(home=raw.parent.parent / "home", raw_dir=raw.parent).ensure()
    with connect(settings.warehouse) as con:
        yield ingest_dataset(con, get_dataset(rid), settings, **kw), con


@pytest.fixture
def mind(tmp_path):
    with _ingested(_raw(tmp_path)) as ingested:
        yield ingested


def test_counts_and_file_status(mind):
    report, _ = mind
    assert report.result.row_counts == {"users": 4, "items": 8, "interactions": 20, "reviews": 0}
    assert report.result.rejected == [] and report.result.absent == []
    assert {f.status for f in report.files} == {"unverified"}  # the publisher gives no checksums
    assert len(report.files) == 4


def test_impressions_carry_labels_and_parsed_times(mind):
    _, con = mind
    rows = con.execute(
        """SELECT user_id, item_id, ts, weight FROM interactions
           WHERE dataset = 'mind-small' AND event = 'impression' ORDER BY src_row""").fetchall()
    assert len(rows) == 14
    assert rows[0] == ("U100", "N1003", datetime(2019, 11, 11, 9, 5, 3), 1.0)
    assert rows[1] == ("U100", "N1004", datetime(2019, 11, 11, 9, 5, 3), 0.0)
    # 12 AM is midnight, 12 PM noon; times are not zero-padded in the file.
    assert rows[3][2] == datetime(2019, 11, 12, 12, 15, 40)
    assert rows[5] == ("U100", "N1005", datetime(2019, 11, 13, 0, 1, 9), 1.0)
    assert rows[-1] == ("U400", "N2002", datetime(2019, 11, 15, 22, 22, 32), 1.0)
    assert sum(r[3] for r in rows) == 6


def test_history_clicks_are_deduplicated_and_untimed(mind):
    _, con = mind
    clicks = con.execute(
        """SELECT user_id, item_id, ts, weight, src_row FROM interactions
           WHERE dataset = 'mind-small' AND event = 'click' ORDER BY src_row""").fetchall()
    # U100's history repeats in three lines (train and dev) but is kept once, in history order.
    assert [(u, i) for u, i, *_ in clicks] == [
        ("U100", "N1001"), ("U100", "N1002"), ("U300", "N1003"), ("U300", "N1001"), ("U300", "N1005"),
        ("U400", "N2002")]
    assert {ts for _, _, ts, _, _ in clicks} == {None} and {w for *_, w, _ in clicks} == {1.0}
    # src_row is file order: a line's history before its impressions, train before dev.
    assert [r[4] for r in clicks] == [0, 1, 9, 10, 11, 17]
    src = [r[0] for r in con.execute(
        "SELECT src_row FROM interactions WHERE dataset = 'mind-small' ORDER BY src_row").fetchall()]
    assert src == list(range(20))


def test_items_keep_the_train_copy_and_text_quirks(mind):
    _, con = mind
    items = {r[0]: r[1:] for r in con.execute(
        "SELECT item_id, title, categories, description, url FROM items WHERE dataset = 'mind-small'").fetchall()}
    assert sorted(items) == ["N1001", "N1002", "N1003", "N1004", "N1005", "N1009", "N2001", "N2002"]
    assert items["N1002"][0] == 'Mayor says "no comment on the budget'  # bare quote kept, quoting off
    assert items["N1002"][2] is None  # empty abstract
    assert items["N1003"][0] == "Café owner’s “secret” menu — revealed"
    assert items["N1003"][2] == "The dish regulars order twice a week."  # train wins over dev
    assert items["N1001"][1] == ["sports", "golf"]
    assert items["N1001"][3].startswith("https://www.msn.com/en-us/sports/golf/")
    assert items["N1009"] == (None, None, None, None)  # shown but described by no news.tsv


def test_contracts_pass(mind):
    _, con = mind
    spec = get_dataset("mind-small")
    warned = []
    for table in ("users", "items", "interactions", "reviews"):
        outcomes = validate_table(con, load_contract(table), spec)
        assert [o.message for o in outcomes if not o.success and o.severity == "ERROR"] == []
        warned += [o.expectation.id for o in outcomes if not o.success]
    assert warned == ["title_present"]  # N1009 is shown but has no news.tsv row


def test_malformed_lines_are_quarantined_with_their_lines(tmp_path):
    raw = _raw(tmp_path)
    with (raw / "dev" / "behaviors.tsv").open("a", encoding="utf-8") as f:
        f.write("3\tU500\t11/15/2019 7:30:00 AM\tN1001\n")  # line 3: 4 fields
        f.write("4\tU500\t2019-11-15 07:30:00\tN1001\tN2001-1\n")  # line 4: another time format
        f.write("5\tU500\t11/15/2019 7:31:00 AM\tN1001\tN2001 N1003-0\n")  # line 5: unlabelled token
        f.write("6\tU500\t11/15/2019 7:32:00 AM\t\tN2001-1\n")  # line 6: fine
    with (raw / "train" / "news.tsv").open("a", encoding="utf-8") as f:
        f.write("N1006\tsports\tgolf\n")  # line 6: 3 of 8 fields
    with _ingested(raw, max_reject_share=0.6) as (report, con):
        rejected = con.execute("SELECT file, line_no, reason FROM rejected_rows ORDER BY file, line_no").fetchall()
    assert [(f, n) for f, n, _ in rejected] == [
        ("dev/behaviors.tsv", 3), ("dev/behaviors.tsv", 4), ("dev/behaviors.tsv", 5), ("train/news.tsv", 6)]
    assert [r[2].split(":")[0] for r in rejected] == ["too_few_fields", "bad_value", "bad_value", "too_few_fields"]
    assert report.result.dropped == {"dropped_bad_value": 2, "dropped_too_few_fields": 2}
    assert report.result.row_counts["interactions"] == 21  # U500's one good impression added


def test_too_many_bad_lines_fail_naming_the_file(tmp_path):
    raw = _raw(tmp_path)
    with (raw / "train" / "behaviors.tsv").open("a", encoding="utf-8") as f:
        f.write("9\tU900\tyesterday\t\tN1001-1\n")
    with pytest.raises(RawDataError, match=r"behaviors.tsv: 1 of 5 lines \(20.0%\) are malformed.*line 5"):
        with _ingested(raw):
            pass


def test_dev_split_is_optional(tmp_path):
    raw = _raw(tmp_path)
    shutil.rmtree(raw / "dev")
    with _ingested(raw) as (report, _):
        pass
    assert report.result.row_counts == {"users": 3, "items": 6, "interactions": 15, "reviews": 0}
    assert [a.split(" not found")[0] for a in report.result.absent] == ["dev/news.tsv", "dev/behaviors.tsv"]


def test_missing_training_file_is_named(tmp_path):
    raw = _raw(tmp_path)
    (raw / "train" / "behaviors.tsv").unlink()
    with pytest.raises(RawDataError, match=r"required file train/behaviors.tsv is missing from .*raw/mind-small"):
        with _ingested(raw):
            pass


def test_large_reads_the_folders_unzip_names(tmp_path):
    raw = _raw(tmp_path, "mind-large", {"train": "MINDlarge_train", "dev": "MINDlarge_dev"})
    with _ingested(raw, "mind-large") as (report, _):
        pass
    assert report.result.row_counts == {"users": 4, "items": 8, "interactions": 20, "reviews": 0}
    assert sorted(str(f.path.relative_to(raw)) for f in report.files) == [
        "MINDlarge_dev/behaviors.tsv", "MINDlarge_dev/news.tsv", "MINDlarge_train/behaviors.tsv",
        "MINDlarge_train/news.tsv"]


def test_empty_news_id_fails_naming_the_row(tmp_path):
    raw = _raw(tmp_path)
    with (raw / "dev" / "news.tsv").open("a", encoding="utf-8") as f:
        f.write("\tnews\tnewsus\tA title without an id\t\t\t[]\t[]\n")
    with pytest.raises(RawDataError, match=r"dev/news.tsv: 1 row\(s\) have an empty news id.*data row 5"):
        with _ingested(raw):
            pass


def test_crlf_copy_reads_the_same(tmp_path):
    raw = _raw(tmp_path)
    for split in ("train", "dev"):
        path = raw / split / "behaviors.tsv"
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    with _ingested(raw) as (report, con):
        weights = con.execute("SELECT sum(weight) FROM interactions WHERE event = 'impression'").fetchone()
    assert report.result.row_counts["interactions"] == 20 and weights == (6.0,)


def test_fetch_unpacks_each_zip_into_its_split_folder(tmp_path, monkeypatch):
    zips = {}
    for split in ("train", "dev"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            for name in ("behaviors.tsv", "news.tsv"):  # the official zips hold their files at the root
                zf.write(FIXTURE / split / name, name)
        zips[f"https://mind201910small.blob.core.windows.net/release/MINDsmall_{split}.zip"] = buffer.getvalue()

    def offline_download(url: str, dest: Path, sha256: str | None, **_) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(zips[url])
        return dest

    monkeypatch.setattr(fetch, "download", offline_download)
    settings = Settings(home=tmp_path / "home", raw_dir=None).ensure()
    folder = fetch.fetch_dataset(get_dataset("mind-small"), settings, progress=False)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*.tsv")) == [
        "dev/behaviors.tsv", "dev/news.tsv", "train/behaviors.tsv", "train/news.tsv"]
    with connect(settings.warehouse) as con:
        report = ingest_dataset(con, get_dataset("mind-small"), settings)
    assert report.result.row_counts == {"users": 4, "items": 8, "interactions": 20, "reviews": 0}
