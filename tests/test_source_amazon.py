"""Amazon Reviews 2018 (real files from ../shared/data/raw) and 2023 (hand-written fixtures)."""

import datetime as dt
import gzip
import json
import os
from pathlib import Path

import pytest

from data_contracts import load_contract
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import RawDataError
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import get_category, get_dataset, sources
from itdr_pipeline.validation import validate_table
from itdr_pipeline.warehouse import connect
from conftest import shared_dataset

FIXTURES = Path(__file__).parent / "fixtures"
MAG = "amazon-reviews-2018.magazine-subscriptions"
GIFT = "amazon-reviews-2018.gift-cards"
BEAUTY18 = "amazon-reviews-2018.all-beauty"
SOFT18 = "amazon-reviews-2018.software"
BEAUTY23 = "amazon-reviews-2023.all-beauty"


def _errors(con, dataset: str, engine: str = "duckdb") -> list[str]:
    """ERROR-severity contract failures of a partition (duckdb engine: GX costs seconds to import)."""
    spec = get_dataset(dataset)
    outcomes = [o for t in ("users", "items", "interactions", "reviews")
                for o in validate_table(con, load_contract(t), spec, engine=engine)]
    return [o.message for o in outcomes if not o.success and o.severity == "ERROR"]


def _raw_dir(tmp_path: Path, source: str, files: dict[str, Path | bytes]) -> Path:
    """A raw folder holding `<source>/<name>`: a symlink to a real file, or the bytes given."""
    folder = tmp_path / "raw" / source
    folder.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, Path):
            os.symlink(content, folder / name)
        else:
            (folder / name).write_bytes(content)
    return folder.parent


def _gz(path: Path) -> bytes:
    return gzip.compress(path.read_bytes(), mtime=0)


def _settings(tmp_path: Path, raw: Path) -> Settings:
    return Settings(home=tmp_path / "home", raw_dir=raw).ensure()


@pytest.fixture(scope="module")
def real2018(tmp_path_factory: pytest.TempPathFactory):
    """Magazine_Subscriptions and Gift_Cards ingested once from the shared raw folder."""
    raw = shared_dataset("amazon-reviews-2018").parent
    settings = Settings(home=tmp_path_factory.mktemp("amazon2018"), raw_dir=raw).ensure()
    with connect(settings.warehouse) as con:
        reports = {d: ingest_dataset(con, get_dataset(d), settings) for d in (MAG, GIFT)}
        yield con, reports


# --- registry ---------------------------------------------------------------------------------

def test_registry_lists_every_official_category():
    by_source = sources()
    cats18 = [s.category for s in by_source["amazon-reviews-2018"]]
    cats23 = [s.category for s in by_source["amazon-reviews-2023"]]
    assert len(cats18) == 29 and len(cats23) == 34  # 2023: 33 categories + "Unknown"
    assert {"AMAZON_FASHION", "Prime_Pantry", "Magazine_Subscriptions"} <= set(cats18)
    assert {"Subscription_Boxes", "Handmade_Products", "Unknown"} <= set(cats23)
    assert get_category("amazon-reviews-2018", "AMAZON_FASHION").id == "amazon-reviews-2018.amazon-fashion"
    gift = get_dataset(GIFT)
    assert gift.source == "amazon-reviews-2018" and gift.category == "Gift_Cards" and gift.item_noun == "product"
    assert gift.tasks == ("preference", "rp", "tkr", "cdr", "nir", "ir", "tui", "seqrec", "search", "psearch")  # cdr given a source domain
    assert [f.names for f in gift.files] == [("Gift_Cards_5.json.gz", "Gift_Cards.json.gz"),
                                             ("meta_Gift_Cards.json.gz",)]
    assert gift.files[0].sha256 == "41e1f0e50d3c1c9d7d949fb6315944c8bde51ea6b7429a29fdd0d02cbc07ef25"
    assert not gift.files[1].required
    assert gift.downloads[0].url == ("https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/"
                                     "categoryFilesSmall/Gift_Cards_5.json.gz")
    assert get_dataset(MAG).files[1].sha256 is None  # two official releases of this meta file
    beauty = get_dataset(BEAUTY23)
    assert beauty.downloads[1].url == ("https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/raw/"
                                       "meta_categories/meta_All_Beauty.jsonl.gz")
    assert beauty.files[0].names == ("All_Beauty.jsonl.gz", "All_Beauty.jsonl")
    assert "cdr" in beauty.tasks and beauty.extra["cdr_partner"] == "amazon-reviews-2023.amazon-fashion"
    itdr = [s.category for s in by_source["amazon-reviews-2023"] if "itdr_category" in s.extra]
    assert len(itdr) == 12
    assert [s.category for s in by_source["amazon-reviews-2023"] if "cdr_partner" in s.extra] == [
        "All_Beauty", "Amazon_Fashion", "Appliances", "CDs_and_Vinyl", "Grocery_and_Gourmet_Food",
        "Home_and_Kitchen", "Industrial_and_Scientific", "Video_Games"]


# --- 2018, real data --------------------------------------------------------------------------

def test_magazine_official_counts(real2018):
    con, reports = real2018
    report = reports[MAG]
    assert report.result.row_counts == {"users": 348, "items": 2326, "interactions": 2375, "reviews": 2375}
    assert report.result.rejected == []
    assert {f.file: f.status for f in report.files} == {
        "Magazine_Subscriptions_5.json.gz": "official", "meta_Magazine_Subscriptions.json.gz": "unverified"}
    counts = con.execute(
        "SELECT count(DISTINCT user_id), count(DISTINCT item_id), min(ts), max(ts) FROM interactions WHERE dataset = ?",
        [MAG]).fetchone()
    assert counts == (348, 157, dt.datetime(2001, 11, 12), dt.datetime(2018, 5, 20))
    dist = dict(con.execute("SELECT rating, count(*) FROM interactions WHERE dataset = ? GROUP BY 1", [MAG]).fetchall())
    assert dist == {1.0: 102, 2.0: 118, 3.0: 239, 4.0: 375, 5.0: 1541}
    assert _errors(con, MAG) == []


def test_magazine_duplicate_meta_lines_are_dropped_and_counted(real2018):
    con, reports = real2018
    result = reports[MAG].result
    # 3,385 meta lines, 2,320 distinct asins: the first line of each wins, not quarantined.
    assert result.file_rows["meta_Magazine_Subscriptions.json.gz"] == 3385
    assert result.dropped == {"dropped_duplicate_item": 1065}
    with_meta = con.execute(
        """SELECT count(*) FILTER (WHERE url IS NOT NULL),
                  count(*) FILTER (WHERE url IS NOT NULL AND item_id IN (SELECT item_id FROM interactions
                                                                         WHERE dataset = ?))
           FROM items WHERE dataset = ?""", [MAG, MAG]).fetchone()
    assert with_meta == (2320, 151)  # 151 of the 157 reviewed magazines have metadata
    missing = con.execute("SELECT item_id, title FROM items WHERE dataset = ? AND url IS NULL ORDER BY 1",
                          [MAG]).fetchall()
    assert missing == [(a, None) for a in ("B000IMVNQU", "B000ZLY992", "B001684M22", "B00EVV77A0", "B00EZB37X2",
                                           "B00I8P3HR2")]


def test_magazine_scraped_titles_become_null(real2018):
    con, _ = real2018
    # 2,173 of the 2,320 products carry an HTML fragment as title; only 3 reviewed ones have a real title.
    titled = con.execute(
        """SELECT item_id, title FROM items WHERE dataset = ? AND title IS NOT NULL
           AND item_id IN (SELECT item_id FROM interactions WHERE dataset = ?) ORDER BY 1""", [MAG, MAG]).fetchall()
    assert titled == [("B00005N7QH", "Gourmet (1-year)"), ("B00005N7SS", "SmartMoney (1-year)"),
                      ("B00005N7TM", "Woman's Day")]
    assert con.execute("SELECT count(title) FROM items WHERE dataset = ?", [MAG]).fetchone()[0] == 147
    row = con.execute("SELECT categories, brand, price, url FROM items WHERE dataset = ? AND item_id = 'B00005N7OC'",
                      [MAG]).fetchone()
    assert row == (["Magazine Subscriptions", "Arts, Music & Photography", "Music"], "String Letter Publishers", None,
                   "https://www.amazon.com/dp/B00005N7OC")
    # Reviews without text or summary keep the review, with NULLs.
    assert con.execute("SELECT count(*) - count(text), count(*) - count(summary) FROM reviews WHERE dataset = ?",
                       [MAG]).fetchone() == (1, 2)


def test_gift_cards_official_counts_and_metadata(real2018):
    con, reports = real2018
    report = reports[GIFT]
    assert report.result.row_counts == {"users": 458, "items": 1547, "interactions": 2972, "reviews": 2972}
    assert report.result.dropped == {} and report.result.absent == []
    assert {f.status for f in report.files} == {"official"}
    dist = dict(con.execute("SELECT rating, count(*) FROM interactions WHERE dataset = ? GROUP BY 1",
                            [GIFT]).fetchall())
    assert dist == {1.0: 22, 2.0: 11, 3.0: 33, 4.0: 154, 5.0: 2752}
    assert con.execute("SELECT count(DISTINCT item_id) FROM interactions i JOIN items USING (dataset, item_id) "
                       "WHERE dataset = ? AND url IS NOT NULL", [GIFT]).fetchone()[0] == 148
    rows = dict(con.execute(
        "SELECT item_id, (title, price, release_date, brand) FROM items WHERE dataset = ? AND item_id IN "
        "('B002BSHDJK', 'B002VFYGC0', 'B01GF6X842', 'B00BXOFI1I')", [GIFT]).fetchall())
    assert rows["B002BSHDJK"] == ("Wilton Reception Gift Card Holder, White", 29.99, dt.date(2009, 5, 15), "Wilton")
    assert rows["B002VFYGC0"] == ("Maggiano's Gift Card", None, None, None)  # ' Maggiano&#39;s Gift Card'
    assert rows["B01GF6X842"][0] == "Hallmark Gift Card Holder (Donkey Birthday Piñata)"
    assert rows["B00BXOFI1I"][1:3] == (7.99, None)  # the date field holds scraped HTML
    first = con.execute("SELECT user_id, item_id, rating, ts, text, summary, src_row FROM reviews WHERE dataset = ? "
                        "ORDER BY src_row LIMIT 1", [GIFT]).fetchone()
    assert first == ("A31UBHTUUIFJUT", "B004LLIKVU", 5.0, dt.datetime(2018, 6, 17), "Another great gift.",
                     "Five Stars", 0)
    priced = con.execute("SELECT count(price), count(release_date) FROM items WHERE dataset = ?", [GIFT]).fetchone()
    assert priced == (358, 12)
    assert _errors(con, GIFT, engine="gx") == []


def test_repeated_review_lines_are_kept_as_published(real2018):
    con, _ = real2018
    repeats = con.execute(
        """SELECT count(*) - count(DISTINCT (user_id, item_id, ts, rating, text, summary)) FROM reviews
           WHERE dataset = ?""", [MAG]).fetchone()[0]
    assert repeats == 42


def test_both_magazine_meta_releases_parse_alike(real2018, tmp_path):
    con, _ = real2018
    folder = shared_dataset("amazon-reviews-2018")
    raw = _raw_dir(tmp_path, "amazon-reviews-2018", {
        "Magazine_Subscriptions_5.json.gz": folder / "Magazine_Subscriptions_5.json.gz",
        "meta_Magazine_Subscriptions.json.gz": folder / "older_meta_2020-08" / "meta_Magazine_Subscriptions.json.gz"})
    query = "SELECT * EXCLUDE (dataset) FROM items WHERE dataset = ? ORDER BY item_id"
    with connect(_settings(tmp_path, raw).warehouse) as old:
        report = ingest_dataset(old, get_dataset(MAG), _settings(tmp_path, raw))
        assert report.result.dropped == {"dropped_duplicate_item": 1065}
        assert old.execute(query, [MAG]).fetchall() == con.execute(query, [MAG]).fetchall()


def test_recompressed_all_beauty_without_metadata(tmp_path):
    recompressed = shared_dataset("amazon-reviews-2018") / "recompressed" / "All_Beauty_5.json.gz"
    raw = _raw_dir(tmp_path, "amazon-reviews-2018", {"All_Beauty_5.json.gz": recompressed})
    settings = _settings(tmp_path, raw)
    with connect(settings.warehouse) as con:
        report = ingest_dataset(con, get_dataset(BEAUTY18), settings)
        assert report.result.row_counts == {"users": 991, "items": 85, "interactions": 5269, "reviews": 5269}
        assert [(f.file, f.status) for f in report.files] == [("All_Beauty_5.json.gz", "unverified")]
        assert len(report.result.absent) == 1
        assert report.result.absent[0].startswith("meta_All_Beauty.json.gz not found")
        assert con.execute("SELECT count(title), count(url) FROM items WHERE dataset = ?",
                           [BEAUTY18]).fetchone() == (0, 0)
        assert _errors(con, BEAUTY18) == []


def test_malformed_review_lines_are_quarantined(tmp_path):
    folder = shared_dataset("amazon-reviews-2018")
    real = gzip.decompress((folder / "Gift_Cards_5.json.gz").read_bytes()).splitlines(keepends=True)
    real.insert(10, b'{"overall": 5.0, "reviewerID": "A1", "asin": "B1", "unixReviewTime": 15\n')
    real.insert(20, b'{"overall": 9.0, "reviewerID": "A1", "asin": "B1", "unixReviewTime": 1500000000}\n')
    raw = _raw_dir(tmp_path, "amazon-reviews-2018", {
        "Gift_Cards_5.json.gz": gzip.compress(b"".join(real), mtime=0),
        "meta_Gift_Cards.json.gz": folder / "meta_Gift_Cards.json.gz"})
    settings = _settings(tmp_path, raw)
    with connect(settings.warehouse) as con:
        report = ingest_dataset(con, get_dataset(GIFT), settings)
        assert report.result.row_counts["interactions"] == 2972
        assert [(r.file, r.line_no, r.reason.split(":")[0]) for r in report.result.rejected] == [
            ("Gift_Cards_5.json.gz", 11, "bad_json"), ("Gift_Cards_5.json.gz", 21, "bad_rating")]
        assert report.result.dropped == {"dropped_bad_json": 1, "dropped_bad_rating": 1}
        assert {f.file: f.status for f in report.files}["Gift_Cards_5.json.gz"] == "modified"
        quarantined = con.execute("SELECT file, line_no FROM rejected_rows WHERE dataset = ? ORDER BY 2", [GIFT])
        assert quarantined.fetchall() == [("Gift_Cards_5.json.gz", 11), ("Gift_Cards_5.json.gz", 21)]


def test_full_file_name_is_read_when_no_5core_file(tmp_path):
    # The 5-core file under the full file's name: read through the registry alternative; the
    # 5-core hash is not applied to another spelling, so it is `unverified`, not `modified`.
    folder = shared_dataset("amazon-reviews-2018")
    raw = _raw_dir(tmp_path, "amazon-reviews-2018", {"Gift_Cards.json.gz": folder / "Gift_Cards_5.json.gz"})
    settings = _settings(tmp_path, raw)
    with connect(settings.warehouse) as con:
        report = ingest_dataset(con, get_dataset(GIFT), settings)
        assert report.result.row_counts["interactions"] == 2972
        assert [(f.file, f.status) for f in report.files] == [("Gift_Cards.json.gz", "unverified")]


def test_missing_reviews_file_is_named(tmp_path):
    raw = _raw_dir(tmp_path, "amazon-reviews-2018", {
        "meta_Gift_Cards.json.gz": shared_dataset("amazon-reviews-2018") / "meta_Gift_Cards.json.gz"})
    settings = _settings(tmp_path, raw)
    with connect(settings.warehouse) as con, pytest.raises(RawDataError,
                                                           match=r"required file Gift_Cards_5.json.gz is missing"):
        ingest_dataset(con, get_dataset(GIFT), settings)


# --- 2018, hand-written edge cases ------------------------------------------------------------

def test_2018_fixture_full_file_and_quirks(tmp_path):
    src = FIXTURES / "amazon-reviews-2018"
    raw = _raw_dir(tmp_path, "amazon-reviews-2018", {
        "Software.json.gz": _gz(src / "Software.json"), "meta_Software.json.gz": _gz(src / "meta_Software.json")})
    settings = _settings(tmp_path, raw)
    with connect(settings.warehouse) as con:
        report = ingest_dataset(con, get_dataset(SOFT18), settings, max_reject_share=0.5)
        result = report.result
        assert [f.file for f in report.files] == ["Software.json.gz", "meta_Software.json.gz"]
        assert result.row_counts == {"users": 2, "items": 4, "interactions": 5, "reviews": 5}
        assert sorted((r.file, r.line_no, r.reason.split(":")[0]) for r in result.rejected) == [
            ("Software.json.gz", 4, "missing_id"), ("Software.json.gz", 5, "bad_rating"),
            ("Software.json.gz", 6, "bad_json"), ("Software.json.gz", 7, "bad_value"),
            ("meta_Software.json.gz", 5, "missing_id")]
        assert result.dropped == {"dropped_bad_json": 1, "dropped_bad_rating": 1, "dropped_bad_value": 1,
                                  "dropped_duplicate_item": 1, "dropped_missing_id": 2}
        reviews = con.execute("SELECT user_id, item_id, rating, ts, text, summary, src_row FROM reviews "
                              "WHERE dataset = ? ORDER BY src_row", [SOFT18]).fetchall()
        assert [r[6] for r in reviews] == [0, 1, 2, 7, 8]  # file order kept; quarantined lines leave gaps
        assert reviews[2] == ("AFIXTURE2018A", "B00FIXT004", 3.0, dt.datetime(2017, 1, 5), None, "Three Stars", 2)
        assert reviews[3][4] is None  # whitespace-only review text
        items = {r[0]: r[1:] for r in con.execute(
            "SELECT item_id, title, categories, description, brand, release_date, price, url FROM items "
            "WHERE dataset = ? ORDER BY item_id", [SOFT18]).fetchall()}
        assert items["B00FIXT001"] == ("PhotoTidy 3 – Photo Organizer", ["Software", "Photography & Graphic Design"],
                                       "Sort photos by date.\nFind duplicates fast.", "Tidy Labs", dt.date(2015, 3, 2),
                                       1299.99, "https://www.amazon.com/dp/B00FIXT001")
        assert items["B00FIXT002"] == (None, ["Software"], "A single string description.", None, None, None,
                                       "https://www.amazon.com/dp/B00FIXT002")
        assert items["B00FIXT004"] == ("Budget Tracker Deluxe", None, None, "Ledgerly", dt.date(2012, 1, 5), None,
                                       "https://www.amazon.com/dp/B00FIXT004")
        assert items["B00FIXT003"] == (None,) * 7  # reviewed, no metadata
        assert _errors(con, SOFT18) == []


# --- 2023, hand-written fixtures --------------------------------------------------------------

@pytest.mark.parametrize("compressed", [True, False], ids=["server-gz", "huggingface-jsonl"])
def test_2023_reviews_and_metadata(tmp_path, compressed):
    src = FIXTURES / "amazon-reviews-2023"
    if compressed:
        files = {"All_Beauty.jsonl.gz": _gz(src / "All_Beauty.jsonl"),
                 "meta_All_Beauty.jsonl.gz": _gz(src / "meta_All_Beauty.jsonl")}
    else:
        files = {n: (src / n).read_bytes() for n in ("All_Beauty.jsonl", "meta_All_Beauty.jsonl")}
    raw = _raw_dir(tmp_path, "amazon-reviews-2023", files)
    settings = _settings(tmp_path, raw)
    with connect(settings.warehouse) as con:
        report = ingest_dataset(con, get_dataset(BEAUTY23), settings, max_reject_share=0.5)
        result = report.result
        assert [f.file for f in report.files] == list(files)
        assert {f.status for f in report.files} == {"unverified"}
        assert result.row_counts == {"users": 3, "items": 5, "interactions": 6, "reviews": 6}
        review_file, meta_file = list(files)
        assert sorted((r.file, r.line_no, r.reason.split(":")[0]) for r in result.rejected) == [
            (review_file, 4, "bad_json"), (review_file, 5, "bad_rating"), (review_file, 7, "missing_id"),
            (meta_file, 6, "missing_id")]
        assert result.dropped["dropped_duplicate_item"] == 1
        reviews = con.execute("SELECT user_id, item_id, rating, ts, text, summary, src_row FROM reviews "
                              "WHERE dataset = ? ORDER BY src_row", [BEAUTY23]).fetchall()
        assert [(r[1], r[6]) for r in reviews] == [("B0FXTR0001", 0), ("B0FXTR0001", 1), ("B0FXTR0003", 2),
                                                   ("B0FXTR0099", 5), ("B0FXTR0001", 7), ("B0FXTR0004", 8)]
        # Milliseconds: 1588687728923 is 2020-05-05 14:08:48.923 UTC.
        assert reviews[0][3] == dt.datetime(2020, 5, 5, 14, 8, 48, 923000)
        assert reviews[0][4] == "Light floral scent that lasts most of the day.<br />Will buy again."
        assert reviews[2][4] is None and reviews[2][5] == "Four Stars"  # empty text
        assert reviews[3][4] == "Le parfum disparaît en une heure 😞"
        assert reviews[5][3:6] == (dt.datetime(2010, 1, 1), "Does what it says.", None)  # empty title
        assert reviews[4][:6] == reviews[0][:6]  # the repeated line is kept
        items = {r[0]: r[1:] for r in con.execute(
            "SELECT item_id, title, categories, description, brand, creator, publisher, release_date, price, url "
            "FROM items WHERE dataset = ?", [BEAUTY23]).fetchall()}
        assert items["B0FXTR0001"] == ("Garden Bloom Eau de Toilette, 1.7 fl oz", ["All Beauty"],
                                       "A light floral fragrance.\nTop notes of pear and freesia.", "Garden Bloom",
                                       None, None, dt.date(2019, 3, 7), 24.99, "https://www.amazon.com/dp/B0FXTR0001")
        assert items["B0FXTR0003"] == ("Tea Tree & Mint Shampoo, 12 oz",
                                       ["Beauty & Personal Care", "Hair Care", "Shampoo & Conditioner", "Shampoos"],
                                       None, None, None, None, dt.date(2020, 6, 15), None,
                                       "https://www.amazon.com/dp/B0FXTR0003")
        assert items["B0FXTR0004"] == ("The Home Spa Handbook", None, "Recipes for masks and scrubs.",
                                       "Dana Whitfield (Author)", "Dana Whitfield", "Fernleaf Press", None, None,
                                       "https://www.amazon.com/dp/B0FXTR0004")
        assert items["B0FXTR0005"][0] == "Shea Butter Lip Balm (3 Pack)" and items["B0FXTR0005"][7] is None
        assert items["B0FXTR0099"] == (None,) * 9
        assert _errors(con, BEAUTY23) == []


def test_2023_without_metadata(tmp_path):
    raw = _raw_dir(tmp_path, "amazon-reviews-2023", {
        "All_Beauty.jsonl.gz": _gz(FIXTURES / "amazon-reviews-2023" / "All_Beauty.jsonl")})
    settings = _settings(tmp_path, raw)
    with connect(settings.warehouse) as con:
        report = ingest_dataset(con, get_dataset(BEAUTY23), settings, max_reject_share=0.5)
        assert report.result.row_counts == {"users": 3, "items": 4, "interactions": 6, "reviews": 6}
        assert report.result.absent[0].startswith("meta_All_Beauty.jsonl.gz not found")
        assert "dropped_duplicate_item" not in report.result.dropped


def test_2023_missing_reviews_file_is_named(tmp_path):
    raw = _raw_dir(tmp_path, "amazon-reviews-2023", {
        "meta_All_Beauty.jsonl": (FIXTURES / "amazon-reviews-2023" / "meta_All_Beauty.jsonl").read_bytes()})
    settings = _settings(tmp_path, raw)
    with connect(settings.warehouse) as con, pytest.raises(RawDataError,
                                                           match=r"required file All_Beauty.jsonl.gz is missing"):
        ingest_dataset(con, get_dataset(BEAUTY23), settings)


def test_fixtures_are_valid_json_except_the_marked_lines():
    # Guards the fixtures themselves: exactly the lines FIXTURE.md calls malformed fail to parse.
    bad = {}
    for path in sorted((FIXTURES / "amazon-reviews-2023").glob("*.jsonl")) + sorted(
            (FIXTURES / "amazon-reviews-2018").glob("*.json")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                json.loads(line)
            except json.JSONDecodeError:
                bad.setdefault(path.name, []).append(n)
    assert bad == {"All_Beauty.jsonl": [4], "Software.json": [6]}
