"""Anime Dataset 2023 (MyAnimeList via Kaggle): hand-written fixtures in the official CSV layout."""

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
SPEC = get_dataset("anime-2023")
ANIME, USERS, SCORES = "anime-dataset-2023.csv", "users-details-2023.csv", "users-score-2023.csv"


@contextmanager
def _ingested(raw_dir: Path, tmp_path: Path, **kw):
    settings = Settings(home=tmp_path / "home", raw_dir=raw_dir).ensure()
    with connect(settings.warehouse) as con:
        yield con, ingest_dataset(con, SPEC, settings, **kw)


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "raw" / "anime-2023"
    shutil.copytree(FIXTURES / "anime-2023", folder)
    return folder


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("anime")
    with _ingested(FIXTURES, tmp) as (con, report):
        yield con, report


def test_counts_and_scores(fixture_db):
    con, report = fixture_db
    result = report.result
    assert result.row_counts == {"users": 6, "items": 7, "interactions": 8, "reviews": 0}
    assert result.file_rows == {ANIME: 6, USERS: 5, SCORES: 8}  # 6 records on 12 physical lines
    assert result.rejected == [] and result.absent == []
    rows = con.execute("""SELECT user_id, item_id, rating, ts, event, src_row FROM interactions
                          WHERE dataset = 'anime-2023' ORDER BY src_row""").fetchall()
    assert rows[0] == ("11", "70001", 10.0, None, "rating", 0)  # no timestamps in this release
    assert [r[2] for r in rows] == [10.0, 8.0, 6.0, 7.0, 3.0, 9.0, 5.0, 1.0]
    assert rows[7][:2] == ("33", "70003")  # empty Username: the numeric user_id is the key


def test_items(fixture_db):
    con, _ = fixture_db
    items = {r[0]: r[1:] for r in con.execute(
        """SELECT item_id, title, genres, description, publisher, release_date::VARCHAR, url
           FROM items WHERE dataset = 'anime-2023'""").fetchall()}
    first = items["70001"]
    assert first[:2] == ("Hoshizora Kaizoku", ["Action", "Adventure", "Sci-Fi"])
    assert first[2].startswith("A salvage crew drifts") and first[2].endswith("\n\n(Source: fixture)")
    assert 'signed "Captain Nobody," the crew' in first[2]  # "" inside quotes, over five lines
    assert first[3:] == ("Studio Kumo", "1998-04-03", "https://myanimelist.net/anime/70001")
    assert items["70002"][4] == "2001-09-01"
    assert items["70003"][4] == "1999-10-20"  # "Oct 20, 1999 to ?"
    assert items["70004"] == ("Kaze Uta", None, None, None, None, "https://myanimelist.net/anime/70004")
    assert items["70005"][0] == "Tsuki, Hoshi, Sora" and items["70005"][3:5] == (
        "Studio Deen Fixture, Shaft Fixture", None)  # "Apr 2012 to Sep 2012": no full date
    assert items["70006"][0] == '"Ore no" Bentou' and items["70006"][2] is None
    assert items["70099"] == (None,) * 6  # scored, but not in the anime file


def test_users(fixture_db):
    con, _ = fixture_db
    users = {r[0]: r[1:] for r in con.execute(
        "SELECT user_id, gender, birth_date::VARCHAR, location, age FROM users WHERE dataset = 'anime-2023'"
    ).fetchall()}
    assert users["11"] == ("Male", "1990-07-14", "California", None)
    assert users["12"] == ("Female", None, "Oslo, Norway", None)
    assert users["15"] == (None, None, None, None)
    assert users["18"] == ("Non-Binary", "2001-02-28", "Lule&aring;, Sweden", None)  # entity kept as typed
    assert users["33"] == (None, None, None, None)  # only in the score file


def test_fixture_passes_the_contracts(fixture_db):
    con, _ = fixture_db
    outcomes = [o for t in ("users", "items", "interactions", "reviews")
                for o in validate_table(con, load_contract(t), SPEC)]
    assert [o.message for o in outcomes if not o.success and o.severity == "ERROR"] == []
    assert {o.expectation.id for o in outcomes if not o.success} == {"title_present"}  # item 70099 (WARN)


def test_bad_rows_are_quarantined_with_line_numbers(tmp_path):
    folder = _copy(tmp_path)
    anime = folder / ANIME
    header, rest = anime.read_text(encoding="utf-8").split("\n", 1)
    # Put the bad records first: DuckDB numbers rejected CSV *records*, which equal physical lines
    # only before the first quoted line break.
    bad = ("x70100,Broken,UNKNOWN,x,1.0,Drama,ok,TV,1.0,UNKNOWN,UNKNOWN,Finished Airing,UNKNOWN,UNKNOWN,"
           "UNKNOWN,Original,1 min,G - All Ages,1.0,1,0,1.0,1,u\n70101,Short,row\n")
    anime.write_text(f"{header}\n{bad}{rest}", encoding="utf-8")
    with (folder / SCORES).open("a", encoding="utf-8") as f:
        f.write("12,Tsubame,70001,Hoshizora Kaizoku,ten\n")
    with _ingested(folder.parent, tmp_path, max_reject_share=0.5) as (_, report):
        result = report.result
    assert [(r.file, r.line_no, r.reason.split(":")[0]) for r in result.rejected] == [
        (ANIME, 2, "bad_value"), (ANIME, 3, "too_few_fields"), (SCORES, 10, "bad_value")]
    assert result.rejected[2].raw_line == "12,Tsubame,70001,Hoshizora Kaizoku,ten"
    assert result.row_counts["items"] == 7 and result.row_counts["interactions"] == 8


def test_unexpected_header_is_refused_by_name(tmp_path):
    folder = _copy(tmp_path)
    scores = folder / SCORES
    scores.write_text(scores.read_text().replace("Anime Title,rating", "Anime Title,score", 1))
    with pytest.raises(RawDataError, match=rf"anime-2023: {SCORES}: header is .*'user_id,Username,anime_id,"
                                           r"Anime Title,score', expected"):
        with _ingested(folder.parent, tmp_path):
            pass


def test_missing_file_is_named(tmp_path):
    folder = _copy(tmp_path)
    (folder / USERS).unlink()
    with pytest.raises(RawDataError, match=rf"required file {USERS} is missing from .*raw/anime-2023"):
        with _ingested(folder.parent, tmp_path):
            pass


def test_registry_entry():
    assert (SPEC.rating_min, SPEC.rating_max, SPEC.like_threshold) == (1.0, 10.0, 6.0)
    assert set(SPEC.tasks) == {"preference", "rp", "tkr", "uap", "ir", "tui", "seqrec", "search", "psearch"} and SPEC.item_noun == "anime"
    assert SPEC.user_attributes == ("gender", "location", "birth_date")
    assert SPEC.downloads[0].filename == "myanimelist-dataset.zip" and SPEC.downloads[0].strip_prefix == ""
