"""Steam (SASRec release): the real steam_games.json.gz from ../shared, and hand-written fixtures."""

import gzip
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
from conftest import shared_dataset

FIXTURES = Path(__file__).parent / "fixtures"
SPEC = get_dataset("steam")


def _errors(con) -> list[str]:
    return [o.message for t in ("users", "items", "interactions", "reviews")
            for o in validate_table(con, load_contract(t), SPEC) if not o.success and o.severity == "ERROR"]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    home = tmp_path_factory.mktemp("steam-real")
    settings = Settings(home=home, raw_dir=shared_dataset("steam").parent).ensure()
    with connect(settings.warehouse) as con:
        yield con, ingest_dataset(con, SPEC, settings)


def _gz_raw(tmp_path: Path, names: tuple[str, ...] = ("steam_games.json", "steam_reviews.json")) -> Path:
    """A raw folder with the fixtures gzip'd under their official names."""
    folder = tmp_path / "raw" / "steam"
    folder.mkdir(parents=True)
    for name in names:
        (folder / f"{name}.gz").write_bytes(gzip.compress((FIXTURES / "steam" / name).read_bytes(), mtime=0))
    return folder.parent


@contextmanager
def _ingested(raw_dir: Path, tmp_path: Path, **kw):
    settings = Settings(home=tmp_path / "home", raw_dir=raw_dir).ensure()
    with connect(settings.warehouse) as con:
        yield con, ingest_dataset(con, SPEC, settings, **kw)


def test_real_games_counts_and_quarantine(real):
    con, report = real
    result = report.result
    assert result.row_counts == {"users": 0, "items": 32132, "interactions": 0, "reviews": 0}
    assert result.file_rows == {"steam_games.json.gz": 32132}
    # 32,135 lines: two without an id quarantined, the later copy of id 612880 quarantined.
    assert sorted((r.line_no, r.reason.split(":")[0]) for r in result.rejected) == [
        (75, "missing_id"), (14574, "duplicate_id"), (30962, "missing_id")]
    assert result.dropped == {"dropped_duplicate_id": 1, "dropped_missing_id": 2}
    assert len(result.absent) == 1 and result.absent[0].startswith("steam_reviews.json.gz not found in ")
    assert {f.file: f.status for f in report.files} == {"steam_games.json.gz": "official"}


def test_real_games_values(real):
    con, _ = real
    rows = {r[0]: r[1:] for r in con.execute(
        """SELECT item_id, title, genres, tags[1], creator, publisher, release_date::VARCHAR, price, url
           FROM items WHERE dataset = 'steam' AND item_id IN ('761140', '643980', '317160', '612880')""").fetchall()}
    assert rows["761140"] == ("Lost Summoner Kitty", ["Action", "Casual", "Indie", "Simulation", "Strategy"],
                              "Strategy", "Kotoshiro", "Kotoshiro", "2018-01-04", 4.99,
                              "http://store.steampowered.com/app/761140/Lost_Summoner_Kitty/")
    assert rows["643980"][0] == "Ironbound" and rows["643980"][6] is None  # price "Free To Play"
    assert rows["317160"][0] is None  # the line with neither app_name nor title
    assert rows["612880"][0] == "Wolfenstein II: The New Colossus" and rows["612880"][7].endswith("/612880/")
    counts = con.execute("SELECT count(title), count(price), count(release_date), count(genres), count(creator) "
                         "FROM items WHERE dataset = 'steam'").fetchone()
    assert counts == (32131, 28845, 29781, 28850, 28834)


def test_real_games_pass_the_contracts(real):
    con, _ = real
    assert _errors(con) == []


def test_fixture_reviews_and_games(tmp_path):
    with _ingested(_gz_raw(tmp_path), tmp_path, max_reject_share=0.5) as (con, report):
        result = report.result
        events = con.execute("""SELECT user_id, item_id, ts::VARCHAR, event, weight, rating, src_row
                                FROM interactions WHERE dataset = 'steam' ORDER BY src_row""").fetchall()
        texts = dict(con.execute("SELECT src_row, text FROM reviews WHERE dataset = 'steam'").fetchall())
    assert result.row_counts == {"users": 3, "items": 6, "interactions": 7, "reviews": 7}
    assert sorted((r.file, r.line_no, r.reason.split(":")[0]) for r in result.rejected) == [
        ("steam_games.json.gz", 3, "missing_id"), ("steam_games.json.gz", 5, "duplicate_id"),
        ("steam_games.json.gz", 7, "bad_literal"), ("steam_reviews.json.gz", 5, "missing_user"),
        ("steam_reviews.json.gz", 7, "bad_value"), ("steam_reviews.json.gz", 8, "bad_literal")]
    assert result.absent == []
    assert events == [
        ("PixelPilgrim", "900001", "2016-03-04 00:00:00", "review", 12.5, None, 0),
        ("PixelPilgrim", "900002", "2016-05-11 00:00:00", "review", 0.7, None, 1),
        ("nightowl_77", "900001", "2017-01-20 00:00:00", "review", 140.0, None, 2),
        ("nightowl_77", "900004", "2017-02-02 00:00:00", "review", None, None, 3),  # no hours key
        ("Kir", "999999", "2014-12-24 00:00:00", "review", 55.1, None, 5),
        ("Kir", "900003", "2018-01-05 00:00:00", "review", 3.0, None, 7),  # after the blank line 9
        ("PixelPilgrim", "900005", "2017-07-14 00:00:00", "review", 31.2, None, 8),
    ]
    assert texts[2] == "I keep coming back to it \u2665"
    assert texts[3] == '"Just one more order" \u2014 famous last words. Caf\u00e9 sim done right.'
    assert texts[7] == "" and texts[8] == "Don't skip the intro."


def test_fixture_item_quirks_and_contracts(tmp_path):
    with _ingested(_gz_raw(tmp_path), tmp_path, max_reject_share=0.5) as (con, _):
        items = {r[0]: r[1:] for r in con.execute(
            "SELECT item_id, title, genres, price, release_date::VARCHAR, creator, publisher FROM items").fetchall()}
        errors = _errors(con)
    assert items["900001"] == ("Harbor Lights", ["Adventure", "Indie"], 9.99, "2016-02-19", "Lanternfish Works",
                               "Lanternfish Works")  # the first of the two id-900001 lines
    assert items["900002"][2] is None and items["900002"][5] is None  # "Free To Play", no publisher
    assert items["900003"][:2] == ("Salt Road", None) and items["900003"][3] is None  # title key, "Coming Soon"
    assert items["900004"][0] == "Caf\u00e9 Tycoon \u2122" and items["900004"][2:4] == (None, None)
    assert items["900005"][0] == "Dragon's Lair Remastered" and items["900005"][2] == 0.0
    assert items["999999"] == (None,) * 6  # reviewed, but no metadata line
    assert errors == []


def test_plain_files_under_their_alternative_names(tmp_path):
    with _ingested(FIXTURES, tmp_path, max_reject_share=0.5) as (_, report):
        assert report.result.file_rows == {"steam_games.json": 5, "steam_reviews.json": 7}
        # The official hash belongs to steam_games.json.gz; an uncompressed copy cannot be judged by it.
        assert {f.file: f.status for f in report.files} == {"steam_reviews.json": "unverified",
                                                             "steam_games.json": "unverified"}


def test_reject_limit_names_the_file(tmp_path):
    with pytest.raises(RawDataError, match=r"steam_games.json.gz: 1 of 8 lines \(12.5%\).*first at line 7"):
        with _ingested(_gz_raw(tmp_path), tmp_path):
            pass


def test_missing_games_file_is_named(tmp_path):
    raw = _gz_raw(tmp_path, names=("steam_reviews.json",))
    with pytest.raises(RawDataError, match=r"required file steam_games.json.gz is missing from .*raw/steam"):
        with _ingested(raw, tmp_path):
            pass


def test_reviews_absent_is_reported(tmp_path):
    raw = _gz_raw(tmp_path, names=("steam_games.json",))
    with _ingested(raw, tmp_path, max_reject_share=0.5) as (_, report):
        assert report.result.row_counts == {"users": 0, "items": 5, "interactions": 0, "reviews": 0}
        assert report.result.absent == [f"steam_reviews.json.gz not found in {raw / 'steam'}: games ingested "
                                        "as items; no users, interactions or reviews"]


def test_registry_entry():
    assert SPEC.feedback == "implicit" and SPEC.label_rule == "weight_above_user_median"
    assert SPEC.tasks == ("ir", "tui", "seqrec", "search", "psearch") and SPEC.item_noun == "game"
    assert not SPEC.file("steam_reviews.json.gz").required and SPEC.file("steam_games.json").required
    assert [d.url for d in SPEC.downloads] == ["https://cseweb.ucsd.edu/~wckang/steam_reviews.json.gz",
                                               "https://cseweb.ucsd.edu/~wckang/steam_games.json.gz"]
