"""Yelp Open Dataset: hand-written fixtures in the official JSON Lines layout (no real copy is available)."""

import shutil
from contextlib import contextmanager
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
SPEC = get_dataset("yelp")
BUSINESS, REVIEW, USER = (f"yelp_academic_dataset_{k}.json" for k in ("business", "review", "user"))
PIZZA, TRUCK = "bZ1tQ8rPz3LkYv0WmA7c2g", "Kd9-uE3sWq0YhN5xJr2PfA"
KEYS, CAFE = "m4Ry7_TgHc2VbN8sLqE1dw", "P2vXc6Nn0aJrT4yQe9LsHg"
DANA, RAVI, INES = "u7Hq2ZpL0xWc4Rt9Ks1YmA", "u8Ir3AqM1yXd5Su0Lt2ZnB", "u9Js4BrN2zYe6Tv1Mu3AoC"


@contextmanager
def _ingested(raw_dir: Path, tmp_path: Path, **kw):
    settings = Settings(home=tmp_path / "home", raw_dir=raw_dir).ensure()
    with connect(settings.warehouse) as con:
        yield con, ingest_dataset(con, SPEC, settings, **kw)


def _copy(tmp_path: Path, skip: tuple[str, ...] = ()) -> Path:
    folder = tmp_path / "raw" / "yelp"
    folder.mkdir(parents=True)
    for name in (BUSINESS, REVIEW, USER):
        if name not in skip:
            shutil.copy(FIXTURES / "yelp" / name, folder / name)
    return folder


def test_fixture_counts_and_events(tmp_path):
    with _ingested(FIXTURES, tmp_path) as (con, report):
        events = con.execute("""SELECT user_id, item_id, rating, ts::VARCHAR, event, src_row FROM interactions
                                WHERE dataset = 'yelp' ORDER BY src_row""").fetchall()
        reviews = con.execute(
            "SELECT src_row, rating, text FROM reviews WHERE dataset = 'yelp' ORDER BY src_row").fetchall()
        users = [r[0] for r in con.execute(
            "SELECT user_id FROM users WHERE dataset = 'yelp' ORDER BY user_id").fetchall()]
        errors = [o.message for t in ("users", "items", "interactions", "reviews")
                  for o in validate_table(con, load_contract(t), SPEC) if not o.success and o.severity == "ERROR"]
    result = report.result
    assert result.row_counts == {"users": 4, "items": 5, "interactions": 8, "reviews": 8}
    assert result.file_rows == {BUSINESS: 4, REVIEW: 8, USER: 3}
    assert result.rejected == [] and result.absent == []
    assert events[0] == (DANA, PIZZA, 5.0, "2018-07-07 22:09:11", "review", 0)
    assert events[4] == (DANA, PIZZA, 2.0, "2021-05-20 20:45:00", "review", 4)  # a second review, kept
    assert events[7] == (INES, CAFE, 2.0, "2014-06-03 07:55:31", "review", 7)  # stars written as an int
    assert [r[1] for r in reviews] == [5.0, 1.0, 4.0, 3.0, 2.0, 4.0, 4.0, 2.0]
    assert reviews[0][2] == "Blistered crust, good basil.\n\nWe will be back."
    assert reviews[1][2] == "Waited 50 minutes \U0001F355 and it came cold."  # a JSON surrogate pair
    assert reviews[3][2] == "Tr\u00e8s bien for keys, slow for heels."
    assert reviews[6][2] == 'The "best" saskatoon pie in town, they say. Close enough.'
    assert users == [DANA, RAVI, INES, "uA0Kt5CsO3aZf7Uw2Nv4BpD"]  # the last only reviews
    assert errors == []


def test_fixture_items(tmp_path):
    with _ingested(FIXTURES, tmp_path) as (con, _):
        items = {r[0]: r[1:] for r in con.execute(
            "SELECT item_id, title, categories, description, genres FROM items WHERE dataset = 'yelp'").fetchall()}
    assert items[PIZZA] == ("Lucia's Wood Oven", ["Pizza", "Restaurants", "Italian"],
                            "4120 Larkspur Ave, Tucson, AZ 85719", None)
    assert items[TRUCK][1:3] == (["Food Trucks", "Mexican", "Food"], "Tampa, FL")  # empty address and zip left out
    assert items[KEYS][:3] == ("Joe\u2019s Shoe Repair & Keys", None, "18 Mercer St, Reno, NV 89501")
    assert items[CAFE] == ("Saskatoon Berry Caf\u00e9", ["Cafes", "Breakfast & Brunch", "Coffee & Tea"],
                           "10330 82 Ave NW, Edmonton, AB T6E 1Z9", None)
    assert items["Zq8wE1rT5yU3iO9pA2sD4f"] == (None, None, None, None)  # reviewed, not in the business file


def test_bad_lines_are_quarantined_with_line_numbers(tmp_path):
    folder = _copy(tmp_path)
    with (folder / REVIEW).open("a") as f:
        f.write('{"review_id":"x1","user_id":"' + RAVI + '","business_id":"' + PIZZA + '","stars":4.0,"te\n')  # line 9
        f.write('{"review_id":"x2","user_id":"' + RAVI + '","business_id":"' + PIZZA + '","stars":6.0,"text":"?",'
                '"date":"2020-01-01 00:00:00"}\n')  # line 10
        f.write('{"review_id":"x3","user_id":"' + RAVI + '","business_id":"' + TRUCK + '","stars":3.0,"text":"?",'
                '"date":"yesterday"}\n')  # line 11
        f.write('{"review_id":"x4","business_id":"' + TRUCK + '","stars":3.0,"text":"?",'
                '"date":"2020-01-01 00:00:00"}\n')  # line 12: no user_id
    with (folder / BUSINESS).open("a") as f:
        f.write('{"business_id":"' + PIZZA + '","name":"Lucia\'s (second listing)","categories":null}\n')  # line 5
    with _ingested(folder.parent, tmp_path, max_reject_share=0.5) as (con, report):
        title = con.execute("SELECT title FROM items WHERE item_id = ?", [PIZZA]).fetchone()[0]
    result = report.result
    assert sorted((r.file, r.line_no, r.reason.split(":")[0]) for r in result.rejected) == [
        (BUSINESS, 5, "duplicate_id"), (REVIEW, 9, "bad_json"), (REVIEW, 10, "bad_value"),
        (REVIEW, 11, "bad_value"), (REVIEW, 12, "missing_user")]
    assert result.row_counts["interactions"] == 8 and result.row_counts["items"] == 5
    assert title == "Lucia's Wood Oven"  # the first line of a repeated id wins


def test_reject_limit_names_the_file(tmp_path):
    folder = _copy(tmp_path)
    with (folder / REVIEW).open("a") as f:
        f.write("not json\n")
    with pytest.raises(RawDataError, match=rf"{REVIEW}: 1 of 9 lines \(11.1%\).*first at line 9: bad_json"):
        with _ingested(folder.parent, tmp_path):
            pass


def test_user_file_is_optional(tmp_path):
    folder = _copy(tmp_path, skip=(USER,))
    with _ingested(folder.parent, tmp_path) as (_, report):
        assert report.result.row_counts["users"] == 4  # every reviewer, from the reviews
        assert report.result.absent == [f"{USER} not found in {folder}: users listed from the reviews only"]


def test_missing_review_file_is_named(tmp_path):
    folder = _copy(tmp_path, skip=(REVIEW,))
    with pytest.raises(RawDataError, match=rf"required file {REVIEW} is missing from .*raw/yelp"):
        with _ingested(folder.parent, tmp_path):
            pass


def test_registry_entry():
    assert SPEC.feedback == "explicit" and SPEC.label_rule == "rating_above" and SPEC.like_threshold == 3.0
    assert (SPEC.rating_min, SPEC.rating_max) == (1.0, 5.0)
    assert set(SPEC.tasks) == {"rp", "tui", "preference", "seqrec", "search", "psearch"} and SPEC.item_noun == "business"
    assert [f.name for f in SPEC.files if f.required] == [BUSINESS, REVIEW]
    assert SPEC.downloads == ()  # a click-through zip of a gzip'd tar: unpacked by hand
