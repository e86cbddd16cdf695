"""Filters (k-core, rating threshold, time window, minimum history) and the RecBole export, on real
ml-latest-small (from its official zip in ../shared) and the synthetic demo."""

import csv
import io
import zipfile
from collections import Counter

import pytest

from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.filters import FilterConfig, apply_filters
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.recbole import write_recbole
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.warehouse import connect
from tests.conftest import run_cli, shared_dataset


def _reference_k_core(pairs: list[tuple[str, str]], k: int) -> list[tuple[str, str]]:
    """Iterative k-core as a plain loop: drop users and items with < k rows until nothing changes."""
    while True:
        users, items = Counter(u for u, _ in pairs), Counter(i for _, i in pairs)
        kept = [(u, i) for u, i in pairs if users[u] >= k and items[i] >= k]
        if len(kept) == len(pairs):
            return kept
        pairs = kept


@pytest.fixture(scope="module")
def latest(tmp_path_factory: pytest.TempPathFactory):
    raw = shared_dataset("ml-latest-small").parent
    settings = Settings(home=tmp_path_factory.mktemp("latest"), raw_dir=raw).ensure()
    with connect(settings.warehouse) as con:
        ingest_dataset(con, get_dataset("ml-latest-small"), settings)
        yield settings, con


def test_k_core_matches_a_plain_loop_on_real_data(latest):
    settings, con = latest
    with zipfile.ZipFile(shared_dataset("ml-latest-small") / "ml-latest-small.zip") as zf:
        rows = list(csv.DictReader(io.TextIOWrapper(zf.open("ml-latest-small/ratings.csv"), "utf-8")))
    expected = _reference_k_core([(r["userId"], r["movieId"]) for r in rows], 10)
    report = apply_filters(con, "ml-latest-small", FilterConfig(user_core=10, item_core=10))
    got = con.execute("SELECT user_id, item_id FROM filtered_interactions WHERE dataset = 'ml-latest-small' "
                      "ORDER BY src_row").fetchall()
    assert got == expected and report.kept == len(expected) < 100836
    assert report.dropped == {"dropped_k_core": 100836 - len(expected)} and report.k_core_rounds >= 2


def test_rating_time_and_history_filters_report_each_drop(latest):
    _, con = latest
    cfg = FilterConfig(since="2010-01-01", until="2015-01-01", min_rating=3.5, min_history=20)
    report = apply_filters(con, "ml-latest-small", cfg)
    window, rated = con.execute(
        """SELECT count(*) FILTER (WHERE NOT (ts >= '2010-01-01' AND ts < '2015-01-01')),
                  count(*) FILTER (WHERE ts >= '2010-01-01' AND ts < '2015-01-01' AND rating < 3.5)
           FROM interactions WHERE dataset = 'ml-latest-small'""").fetchone()
    assert report.dropped["dropped_time_window"] == window and report.dropped["dropped_min_rating"] == rated
    per_user = con.execute("SELECT min(n), count(*) FROM (SELECT count(*) AS n FROM filtered_interactions "
                           "WHERE dataset = 'ml-latest-small' GROUP BY user_id)").fetchone()
    assert per_user[0] >= 20
    assert report.kept + sum(report.dropped.values()) == 100836
    with pytest.raises(ItdrError, match="not an ISO date"):
        FilterConfig(since="last year")


def test_recbole_files_have_typed_headers_and_the_filtered_rows(latest, tmp_path):
    settings, con = latest
    apply_filters(con, "ml-latest-small", FilterConfig(user_core=5, item_core=5))
    kept = con.execute("SELECT count(*), count(DISTINCT user_id), count(DISTINCT item_id) FROM filtered_interactions "
                       "WHERE dataset = 'ml-latest-small'").fetchone()
    con.execute("CHECKPOINT")
    counts = write_recbole(con, "ml-latest-small", tmp_path / "rb")
    assert (counts["inter"], counts["user"], counts["item"]) == kept
    folder = tmp_path / "rb" / "ml-latest-small"
    inter = (folder / "ml-latest-small.inter").read_text().splitlines()
    assert inter[0] == "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    assert inter[1] == "1\t1\t4.0\t964982703"  # the first line of ratings.csv
    item = (folder / "ml-latest-small.item").read_text().splitlines()
    assert item[0] == "item_id:token\ttitle:token_seq\tgenres:token_seq\ttags:token_seq"
    assert item[1].startswith("1\tToy Story (1995)\tAdventure Animation Children Comedy Fantasy\t")
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    write_recbole(con, "ml-latest-small", tmp_path / "rb")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first  # same data, same bytes


def test_cli_materialize_with_k_core_then_recbole(tmp_path):
    env = {"ITDR_HOME": str(tmp_path / "home")}
    run_cli("materialize", "--datasets", "demo", "--k-core", "5", "--tasks", "preference", env=env, check=True)
    out = run_cli("query", "SELECT kept, dropped_json FROM filter_runs WHERE dataset = 'demo'", env=env, check=True)
    kept, dropped = out.stdout.splitlines()[1].split("\t")
    assert int(kept) < 13986 and dropped.startswith('{"dropped_k_core":')
    done = run_cli("export", "--dataset", "demo", "--format", "recbole", "--out", str(tmp_path / "rb"), env=env,
                   check=True)
    assert f"demo.inter ({kept} rows)" in done.stdout
    header = (tmp_path / "rb" / "demo" / "demo.user").read_text().splitlines()[0]
    assert header == "user_id:token\tage:float\tgender:token\toccupation:token\tzip_code:token"
