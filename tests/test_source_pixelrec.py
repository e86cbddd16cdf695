"""PixelRec parser on hand-written fixtures in the official layouts (tests/fixtures/pixelrec-*/FIXTURE.md)."""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from data_contracts import load_contract
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import RawDataError
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.validation import validate_table
from itdr_pipeline.warehouse import connect

FIXTURES = Path(__file__).parent / "fixtures"
INTERACTIONS_200K = "pixelrec_interaction/Pixel200K.csv"
ITEMS_200K = "pixelrec_iteminfo/Pixel200K.csv"


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


def _ingest_fails(raw: Path) -> None:
    with _ingested(raw):
        pass


def test_50k_interactions_items_and_contracts(tmp_path):
    with _ingested(_raw(tmp_path, "pixelrec-50k")) as (report, con):
        assert report.result.row_counts == {"users": 3, "items": 4, "interactions": 6, "reviews": 0}
        assert report.result.rejected == [] and report.result.absent == []
        rows = con.execute("SELECT user_id, item_id, ts, event, weight FROM interactions "
                           "WHERE dataset = 'pixelrec-50k' ORDER BY src_row").fetchall()
        assert rows[0] == ("u9001", "i501", datetime(2020, 11, 11, 1, 52, 26), "interaction", None)
        assert [r[1] for r in rows if r[0] == "u9003"] == ["i504", "i503"]  # same second: file order
        items = {r[0]: r[1:] for r in con.execute(
            "SELECT item_id, title, categories, description FROM items WHERE dataset = 'pixelrec-50k'").fetchall()}
        assert items["i501"] == ("My puppy meets the vacuum cleaner, round two", ["Pets"],
                                 "The rematch nobody asked for…")
        assert items["i502"][2] is None  # empty description
        assert items["i503"] == ("Speedrun tips, part 3", None, None)  # counters, tag, description empty
        assert items["i504"] == (None, ["Daily Life"], 'A rainy "lazy" Sunday, filmed in one take')
        spec, warned = get_dataset("pixelrec-50k"), []
        for table in ("users", "items", "interactions", "reviews"):
            outcomes = validate_table(con, load_contract(table), spec)
            assert [o.message for o in outcomes if not o.success and o.severity == "ERROR"] == []
            warned += [o.expectation.id for o in outcomes if not o.success]
        assert warned == ["title_present"]  # i504 has no title


def test_200k_layout_bom_and_columns_by_name(tmp_path):
    with _ingested(_raw(tmp_path, "pixelrec-200k")) as (report, con):
        assert report.result.row_counts == {"users": 3, "items": 3, "interactions": 4, "reviews": 0}
        items = {r[0]: r[1:] for r in con.execute(
            "SELECT item_id, title, categories, description FROM items WHERE dataset = 'pixelrec-200k'").fetchall()}
    assert items == {"i7": ("Café tour in the old quarter", ["Travel"], "Three cafés, one afternoon"),
                     "i8": ("Beginner chess traps", ["Board Games"], None),
                     "i9": (None, None, None)}  # interacted, no item row
    assert sorted(str(f.path.relative_to(tmp_path / "raw" / "pixelrec-200k")) for f in report.files) == [
        INTERACTIONS_200K, ITEMS_200K]


def test_malformed_lines_are_quarantined_under_their_registry_path(tmp_path):
    raw = _raw(tmp_path, "pixelrec-200k")
    with (raw / INTERACTIONS_200K).open("a") as f:
        f.write("i8,u302,yesterday\n")  # line 6
    with (raw / ITEMS_200K).open("ab") as f:
        f.write(b"i9,Bad \xff byte,Travel,,1.0,0.0,0.0,0.0,0.0,0.0,0.0\n")  # line 4: not UTF-8
        f.write(b"i7,A second row for i7,Travel,,1.0,0.0,0.0,0.0,0.0,0.0,0.0\n")  # line 5: repeated id
    with _ingested(raw, max_reject_share=0.5) as (report, con):
        title = con.execute("SELECT title FROM items WHERE dataset = 'pixelrec-200k' AND item_id = 'i7'").fetchone()
    assert [(r.file, r.line_no, r.reason.split(":")[0]) for r in report.result.rejected] == [
        (INTERACTIONS_200K, 6, "bad_value"), (ITEMS_200K, 4, "bad_encoding")]
    assert title == ("Café tour in the old quarter",)  # the first row of a repeated id wins
    assert report.result.file_rows == {INTERACTIONS_200K: 4, ITEMS_200K: 3}


def test_empty_id_fails_naming_the_row(tmp_path):
    raw = _raw(tmp_path, "pixelrec-50k")
    with (raw / "interaction.csv").open("a") as f:
        f.write(",u9004,1600000100\n")
    with pytest.raises(RawDataError, match=r"interaction.csv: 1 data row\(s\) have an empty .* data row 7"):
        _ingest_fails(raw)


def test_header_without_a_needed_column_fails(tmp_path):
    raw = _raw(tmp_path, "pixelrec-50k")
    text = (raw / "item_info.csv").read_text().replace(",tag,", ",category,", 1)
    (raw / "item_info.csv").write_text(text)
    with pytest.raises(RawDataError, match=r"item_info.csv lacks the column\(s\) \['tag'\]"):
        _ingest_fails(raw)


def test_item_file_is_optional_interactions_are_not(tmp_path):
    raw = _raw(tmp_path, "pixelrec-50k")
    (raw / "item_info.csv").unlink()
    with _ingested(raw) as (report, _):
        pass
    assert report.result.row_counts["items"] == 4
    assert report.result.absent[0].startswith("item_info.csv not found")
    (raw / "interaction.csv").unlink()
    with pytest.raises(RawDataError, match=r"required file interaction.csv is missing from .*pixelrec-50k"):
        _ingest_fails(raw)


def test_registry_entries():
    ids = ["pixelrec-50k", "pixelrec-200k", "pixelrec-1m", "pixelrec-8m"]
    specs = [get_dataset(i) for i in ids]
    assert {(s.feedback, s.label_rule, s.tasks, s.item_noun) for s in specs} == {
        ("implicit", "positive_only", ("tkr", "nir", "tui", "seqrec"), "item")}
    assert specs[3].files[0].names == ("pixelrec_interaction/Pixel8M.csv", "interactions/Pixel8M.csv",
                                       "interaction/Pixel8M.csv", "dataset/Pixel8M.csv")
