"""Last.fm 1K and 360K on hand-written fixtures in the official layouts (tests/fixtures/lastfm-*/,
see their FIXTURE.md): the real files are not in ../shared (research-only, not obtainable here)."""

import hashlib
import shutil
import tarfile
from datetime import datetime
from pathlib import Path

import pytest

from data_contracts import load_contract
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import RawDataError
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.sources import get_parser
from itdr_pipeline.validation import validate_table
from itdr_pipeline.warehouse import connect

FIXTURES = Path(__file__).parent / "fixtures"
PLAYS_1K = "userid-timestamp-artid-artname-traid-traname.tsv"
PLAYS_360K = "usersha1-artmbid-artname-plays.tsv"
T1, T4, T5 = ("80870fbf-0118-5c83-af5f-0bc4149b0dc6", "d7cfea12-6375-5d41-8716-bb932bb4b2cb",
              "1e4e98f4-4c9b-54b4-b09b-902195664e30")
M1, M3, M4 = ("d5964034-505e-5169-a555-d31e042f4b2e", "08387d04-3bf8-5a85-b026-49df8a9da4f0",
              "ada88185-0b2e-5cc4-85b9-a760a8dc4c0d")
U1, U3, U4 = ("0a2efbd610e77d8269d2e366db4b2e63518005d4", "436e51eff6e000fdb40c4d9c33855d269c0a5b24",
              "e616b5c1926eb74dcdfcac1322cbc4678cd802a7")


def name_id(artist: str, track: str) -> str:
    return "name:" + hashlib.md5(f"{artist}\t{track}".encode()).hexdigest()


def _ingest(con, raw_dir: Path, home: Path, dataset: str, share: float = 0.5):
    settings = Settings(home=home, raw_dir=raw_dir).ensure()
    return ingest_dataset(con, get_dataset(dataset), settings, max_reject_share=share)


@pytest.fixture(scope="module")
def lastfm(tmp_path_factory: pytest.TempPathFactory):
    """Both fixtures ingested into one warehouse (one session, as the CLI would)."""
    home = tmp_path_factory.mktemp("lastfm")
    with connect(Settings(home=home, raw_dir=FIXTURES).ensure().warehouse) as con:
        reports = {ds: _ingest(con, FIXTURES, home, ds) for ds in ("lastfm-1k", "lastfm-360k")}
        yield con, reports


def _rejects(report) -> list[tuple[str, int, str]]:
    return sorted((r.file, r.line_no, r.reason.split(":", 1)[0]) for r in report.result.rejected)


def _rows(con, sql: str, dataset: str) -> list[tuple]:
    return con.execute(sql, [dataset]).fetchall()


def test_registry_entries():
    k1, k360 = get_dataset("lastfm-1k"), get_dataset("lastfm-360k")
    assert (k1.feedback, k1.label_rule, k1.tasks, k1.item_noun) == ("implicit", "positive_only", ("uap",), "song")
    assert (k360.label_rule, k360.tasks, k360.item_noun) == ("weight_above_user_median", ("uap",), "artist")
    assert k1.user_attributes == k360.user_attributes == ("age", "gender", "country")
    assert [(d.filename, d.md5, d.strip_prefix) for d in k1.downloads] == [
        ("lastfm-dataset-1K.tar.gz", "a79a6808f54f73354789a9fb02cb1e41", "lastfm-dataset-1K/")]
    assert k360.downloads[0].md5 == "635e6ed3fc873aa4ba33aba0ebce02b1"
    assert k1.extra[f"published_md5:{PLAYS_1K}"] == "64747b21563e3d2aa95751e0ddc46b68"
    assert [(f.name, f.required) for f in k1.files] == [(PLAYS_1K, True), ("userid-profile.tsv", False)]
    assert callable(get_parser(k1.format)) and callable(get_parser(k360.format))


def test_1k_counts_and_quarantined_lines(lastfm):
    _, reports = lastfm
    report = reports["lastfm-1k"]
    assert report.result.row_counts == {"users": 7, "items": 10, "interactions": 16, "reviews": 0}
    assert report.result.absent == []
    assert report.result.skipped == {"duplicate_user": 1}  # profile line 7
    assert {f.file: f.status for f in report.files} == {PLAYS_1K: "unverified", "userid-profile.tsv": "unverified"}
    # Line 24 comes after the empty line 19: its number is still exact.
    assert _rejects(report) == [
        ("userid-profile.tsv", 6, "bad_value"), ("userid-profile.tsv", 9, "missing_user"),
        (PLAYS_1K, 8, "bad_time"), (PLAYS_1K, 9, "too_many_fields"), (PLAYS_1K, 10, "too_few_fields"),
        (PLAYS_1K, 13, "missing_item"), (PLAYS_1K, 15, "bad_encoding"), (PLAYS_1K, 17, "missing_user"),
        (PLAYS_1K, 24, "missing_time"),
    ]
    bad_time = next(r for r in report.result.rejected if r.line_no == 8 and r.file == PLAYS_1K)
    assert bad_time.raw_line.startswith("user_000002\t2009-04-29T23:13:45+02:00\t79db150e-")  # the line as read


def test_1k_items_are_tracks_keyed_by_mbid_else_names(lastfm):
    con, _ = lastfm
    items = dict((i, (t, c)) for i, t, c in _rows(
        con, "SELECT item_id, title, creator FROM items WHERE dataset = ?", "lastfm-1k"))
    assert items[T1] == ("Paper Boats", "Harbor Lights")  # line 1 wins over line 6's "(Remastered)"
    assert items[T4] == ("Canción del río", "Los Ñandúes")  # first non-blank track name (line 12)
    assert items[T5] == ("Intro", None)  # artist MBID without a name
    assert items[name_id("Mýrin Ós", "Hljóð í myrkri")] == ("Hljóð í myrkri", "Mýrin Ós")
    assert items[name_id('"Weird" Marta & the Spoons', 'Polka "Forever"')] == ('Polka "Forever"',
                                                                               '"Weird" Marta & the Spoons')
    assert items[name_id("Harbor Lights", "Paper Boats")] == ("Paper Boats", "Harbor Lights")  # not T1
    # Joined with ' - ' these two would be one id; the tab-separated key keeps them apart.
    assert name_id("Harbor Lights - Live", "Paper Boats") in items
    assert name_id("Harbor Lights", "Live - Paper Boats") in items
    assert items["27101338-50b2-5836-a5ca-df487113d470"] == ("夜明けのバス", "東京カラス")


def test_1k_one_row_per_play_with_its_utc_time(lastfm):
    con, _ = lastfm
    plays = _rows(con, """SELECT item_id, ts, event, weight, src_row FROM interactions
                          WHERE dataset = ? AND user_id = 'user_000001' ORDER BY src_row""", "lastfm-1k")
    mýrin = name_id("Mýrin Ós", "Hljóð í myrkri")
    assert plays == [
        (T1, datetime(2009, 5, 4, 23, 8, 57), "play", 1.0, 0),
        ("08c596a1-fad0-5c96-aee0-c82a82613b83", datetime(2009, 5, 4, 23, 5, 12), "play", 1.0, 1),
        (mýrin, datetime(2009, 5, 4, 23, 1, 40), "play", 1.0, 2),  # the double scrobble is kept
        (mýrin, datetime(2009, 5, 4, 23, 1, 40), "play", 1.0, 3),
        (name_id('"Weird" Marta & the Spoons', 'Polka "Forever"'), datetime(2009, 5, 3, 18, 22, 9), "play", 1.0, 4),
    ]
    per_user = dict(_rows(con, "SELECT user_id, count(*) FROM interactions WHERE dataset = ? GROUP BY 1", "lastfm-1k"))
    assert per_user == {"user_000001": 5, "user_000002": 2, "user_000003": 3, "user_000004": 2,
                        "user_000005": 1, "user_000006": 3}


def test_1k_users_demographics(lastfm):
    con, _ = lastfm
    users = {u: rest for u, *rest in _rows(
        con, "SELECT user_id, gender, age, country FROM users WHERE dataset = ?", "lastfm-1k")}
    assert users == {
        "user_000001": ["m", None, "Japan"],
        "user_000002": ["f", 27, "United Kingdom"],  # its second profile line (line 7) is dropped
        "user_000003": [None, None, "Brazil"],  # age 0
        "user_000004": ["m", None, None],  # age 112
        "user_000005": [None, None, None],  # profile line refused, plays kept
        "user_000006": [None, None, None],  # no profile line
        "user_000007": ["f", 23, "Côte D'Ivoire"],  # profile only, no plays
    }


def test_360k_counts_and_quarantined_lines(lastfm):
    _, reports = lastfm
    report = reports["lastfm-360k"]
    assert report.result.row_counts == {"users": 5, "items": 6, "interactions": 9, "reviews": 0}
    assert _rejects(report) == [
        (PLAYS_360K, 7, "missing_item"), (PLAYS_360K, 8, "bad_value"), (PLAYS_360K, 10, "bad_user_id"),
        (PLAYS_360K, 11, "too_few_fields"), (PLAYS_360K, 14, "too_many_fields"), (PLAYS_360K, 16, "missing_plays"),
        ("usersha1-profile.tsv", 5, "bad_value"), ("usersha1-profile.tsv", 7, "bad_user_id"),
    ]
    assert report.result.skipped == {"merged_user_artist_lines": 1, "duplicate_user": 1}
    assert report.result.dropped["dropped_bad_value"] == 2  # lines 8 and profile 5; line 14 has a field too many
    assert report.result.dropped["dropped_too_many_fields"] == 1


def test_360k_artists_plays_and_users(lastfm):
    con, _ = lastfm
    items = dict(_rows(con, "SELECT item_id, title FROM items WHERE dataset = ?", "lastfm-360k"))
    assert items == {M1: "harbor lights", "9eb2b317-835e-59ef-b1e7-73fed6a9bfd1": "mýrin ós",
                     'name:"weird" marta & the spoons': '"weird" marta & the spoons',
                     M3: "los ñandúes", M4: "東京カラス", "name:mýrin ós": "mýrin ós"}
    plays = con.execute("""SELECT user_id, item_id, weight, src_row, ts, event FROM interactions
                           WHERE dataset = 'lastfm-360k' AND user_id IN (?, ?, ?) ORDER BY src_row""",
                        [U1, U3, U4]).fetchall()
    assert [(u[:4], i, w, s) for u, i, w, s, _, _ in plays] == [
        ("0a2e", M1, 2257.0, 0),  # lines 1 and 5: one artist under two spellings, plays summed
        ("0a2e", "9eb2b317-835e-59ef-b1e7-73fed6a9bfd1", 1099.0, 1),
        ("0a2e", 'name:"weird" marta & the spoons', 897.0, 2),
        ("0a2e", M3, 450.0, 3),
        ("436e", M4, 0.0, 9),  # zero plays are kept
        ("436e", "name:mýrin ós", 7.0, 10),
        ("e616", M1, 3.0, 11),
    ]
    assert {(ts, ev) for *_, ts, ev in plays} == {(None, "play")}
    users = {u[:4]: rest for u, *rest in _rows(
        con, "SELECT user_id, gender, age, country FROM users WHERE dataset = ?", "lastfm-360k")}
    assert users == {"0a2e": ["f", 22, "Germany"], "51b2": ["m", None, "Canada"],
                     "436e": [None, None, "United States"], "e69c": ["m", None, "Mexico"],
                     "e616": [None, None, None]}


@pytest.mark.parametrize("dataset", ["lastfm-1k", "lastfm-360k"])
def test_contracts_pass(lastfm, dataset):
    con, _ = lastfm
    spec = get_dataset(dataset)
    failed = {}
    for table in ("users", "items", "interactions", "reviews"):
        outcomes = validate_table(con, load_contract(table), spec)
        assert [o.message for o in outcomes if not o.success and o.severity == "ERROR"] == []
        failed |= {o.expectation.id: o.unexpected_count for o in outcomes if not o.success}
    # The only failure is a WARN: 1K lines 3-4, the same play scrobbled twice in one second.
    assert failed == ({"user_item_unique": 2} if dataset == "lastfm-1k" else {})


def _copy(tmp_path: Path, dataset: str, under: str = "") -> Path:
    dest = tmp_path / "raw" / dataset / under
    shutil.copytree(FIXTURES / dataset, dest)
    (dest / "FIXTURE.md").unlink()
    return tmp_path / "raw"


def test_archive_layout_and_absent_profile(tmp_path):
    # Extracted as it comes (top folder kept), without its profile file.
    raw = _copy(tmp_path, "lastfm-1k", under="lastfm-dataset-1K")
    (raw / "lastfm-1k" / "lastfm-dataset-1K" / "userid-profile.tsv").unlink()
    with connect(Settings(home=tmp_path / "home", raw_dir=raw).ensure().warehouse) as con:
        report = _ingest(con, raw, tmp_path / "home", "lastfm-1k")
        assert report.result.row_counts == {"users": 6, "items": 10, "interactions": 16, "reviews": 0}
        assert len(report.result.absent) == 1 and report.result.absent[0].startswith("userid-profile.tsv not found")
        assert con.execute("SELECT count(*) FROM users WHERE gender IS NOT NULL OR age IS NOT NULL").fetchone() == (0,)


def test_official_archive_in_the_folder_is_unpacked(tmp_path):
    # The fixture packed as the official .tar.gz is packed: files under lastfm-dataset-360K/.
    folder = tmp_path / "raw" / "lastfm-360k"
    folder.mkdir(parents=True)
    with tarfile.open(folder / "lastfm-dataset-360K.tar.gz", "w:gz") as tar:
        for name in (PLAYS_360K, "usersha1-profile.tsv"):
            tar.add(FIXTURES / "lastfm-360k" / name, arcname=f"lastfm-dataset-360K/{name}")
    with connect(Settings(home=tmp_path / "home", raw_dir=folder.parent).ensure().warehouse) as con:
        report = _ingest(con, folder.parent, tmp_path / "home", "lastfm-360k")
    assert report.result.row_counts == {"users": 5, "items": 6, "interactions": 9, "reviews": 0}
    # Not the published archive (its MD5 differs): accepted as a local, modified copy.
    assert {f.file: f.status for f in report.files} == {
        "lastfm-dataset-360K.tar.gz": "modified", PLAYS_360K: "unverified", "usersha1-profile.tsv": "unverified"}


def test_missing_plays_file_is_named(tmp_path):
    raw = _copy(tmp_path, "lastfm-360k")
    (raw / "lastfm-360k" / PLAYS_360K).unlink()
    with connect(Settings(home=tmp_path / "home", raw_dir=raw).ensure().warehouse) as con, pytest.raises(
            RawDataError, match=rf"required file {PLAYS_360K} is missing from .*raw/lastfm-360k \(or the archive"):
        _ingest(con, raw, tmp_path / "home", "lastfm-360k")


def test_default_reject_limit_fails_naming_the_file(tmp_path):
    with connect(Settings(home=tmp_path, raw_dir=FIXTURES).ensure().warehouse) as con, pytest.raises(
            RawDataError, match=rf"lastfm-1k: {PLAYS_1K}: 3 of 23 lines \(13.0%\) are malformed.*line 9"):
        _ingest(con, FIXTURES, tmp_path, "lastfm-1k", share=0.01)


def test_reingest_reports_only_its_own_rejects(lastfm, tmp_path):
    con, reports = lastfm
    again = _ingest(con, FIXTURES, tmp_path, "lastfm-1k")
    assert _rejects(again) == _rejects(reports["lastfm-1k"])
    stored = con.execute("SELECT file, count(*) FROM rejected_rows WHERE dataset = 'lastfm-1k' GROUP BY 1").fetchall()
    assert sorted(stored) == [("userid-profile.tsv", 2), (PLAYS_1K, 7)]
