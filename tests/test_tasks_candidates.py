"""The candidate-list tasks tkr, nir and cdr on real data (ml-100k, ml-latest-small, Amazon 2018
Magazine_Subscriptions and Gift_Cards, and cdr across the two categories) and on a hand-made
cross-domain pair of Amazon 2018 categories written in the official JSON Lines layout."""

import collections
import gzip
import json
import math
from pathlib import Path

import pyarrow as pa
import pytest

from itdr_pipeline import render
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.filters import FilterConfig, apply_filters
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.tasks.base import RenderSettings, build_sequence
from itdr_pipeline.tasks.cdr import render_cdr
from itdr_pipeline.tasks.nir import render_nir
from itdr_pipeline.tasks.tkr import render_tkr
from itdr_pipeline.warehouse import connect
from conftest import shared_dataset

MAG = "amazon-reviews-2018.magazine-subscriptions"
GIFT = "amazon-reviews-2018.gift-cards"
SOFT = "amazon-reviews-2018.software"
MUSIC = "amazon-reviews-2018.digital-music"
RENDER = {"tkr": render_tkr, "nir": render_nir, "cdr": render_cdr}
SIZE = {"tkr": 10, "nir": 5, "cdr": 10}


def _ingest(con, settings: Settings, *ids: str) -> None:
    for dataset in ids:
        ingest_dataset(con, get_dataset(dataset), settings)
        apply_filters(con, dataset, FilterConfig())


class Cells:
    """Rendered cells of one warehouse, memoised (each costs about a second on ml-100k)."""

    def __init__(self, con):
        self.con, self.memo = con, {}

    def __call__(self, task: str, dataset: str, profile: str = "temporal", **changes) -> pa.Table:
        key = (task, dataset, profile, tuple(sorted(changes.items())))
        if key not in self.memo:
            seq = build_sequence(self.con, dataset, rated=False, name="test_seq")
            self.memo[key] = RENDER[task](self.con, get_dataset(dataset), profile, RenderSettings(**changes), seq)
        return self.memo[key]

    def seen(self, dataset: str) -> dict[str, set[str]]:
        rows = self.con.execute("SELECT user_id, list(DISTINCT item_id) FROM filtered_interactions WHERE dataset = ? "
                                "GROUP BY user_id", [dataset]).fetchall()
        return {u: set(items) for u, items in rows}

    def positions(self, dataset: str) -> dict[tuple[str, str], tuple[int, int]]:
        """(user, item) -> (pos, n) in the sequence the tasks read."""
        build_sequence(self.con, dataset, rated=False, name="test_pos")
        rows = self.con.execute("SELECT user_id, item_id, pos, n FROM test_pos").fetchall()
        return {(u, i): (p, n) for u, i, p, n in rows}

    def popularity(self, dataset: str) -> dict[str, int]:
        return dict(self.con.execute("SELECT item_id, count(*) FROM filtered_interactions WHERE dataset = ? "
                                     "GROUP BY item_id", [dataset]).fetchall())

    def labels(self, dataset: str) -> dict[str, str]:
        rows = self.con.execute("SELECT item_id, coalesce(title, 'product ' || item_id) FROM items WHERE dataset = ?",
                                [dataset]).fetchall()
        return dict(rows)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory):
    for name in ("ml-latest-small", "amazon-reviews-2018"):
        shared_dataset(name)  # fail, never skip, when the real data is missing
    settings = Settings(home=tmp_path_factory.mktemp("candidates"), raw_dir=shared_dataset("ml-100k").parent).ensure()
    with connect(settings.warehouse) as con:
        _ingest(con, settings, "ml-100k", "ml-latest-small", MAG, GIFT)
        yield Cells(con)


def _temporal_split(pos: int, n: int, min_h: int = 5, max_eval: int = 5) -> str | None:
    """The temporal profile's split of a position before any cap (base.assign_splits' rule, restated)."""
    if pos < min_h or n - min_h < 3:
        return None
    n_eval = min(max_eval, max(1, math.floor((n - min_h) * 0.1)))
    if pos - min_h >= n - min_h - n_eval:
        return "test"
    return "valid" if pos - min_h >= n - min_h - 2 * n_eval else "train"


def _assert_sound(cells: Cells, task: str, dataset: str, rows: list[dict]) -> None:
    seen, pos, pop, labels = (cells.seen(dataset), cells.positions(dataset), cells.popularity(dataset),
                              cells.labels(dataset))
    for r in rows:
        cand, ranking, target, user = r["candidate_item_ids"], r["ranking_item_ids"], r["target_item_id"], r["user_id"]
        answer = json.loads(r["answer_json"])
        positives = answer["positives"]
        assert len(cand) == SIZE[task] and len(set(cand)) == len(cand) and cand.count(target) == 1
        assert positives[0] == target and set(positives) <= set(cand)
        negatives = [c for c in cand if c not in positives]
        assert not set(negatives) & seen[user]  # never interacted, any event
        t_pos = pos[(user, target)][0]
        assert [pos[(user, p)][0] for p in positives] == list(range(t_pos, t_pos + len(positives)))
        history = r["history_item_ids"]
        assert [pos[(user, h)][0] for h in history] == list(range(t_pos - len(history), t_pos))
        assert len(history) == min(5, t_pos) and not set(history) & set(cand)
        lines = r["output"].split("\n")
        if task == "nir":
            assert ranking == [target] and positives == [target]
            assert lines in ([labels[target]], [f"{labels[target]} [{target}]"])
            assert set(answer) == {"positives"}
            continue
        assert sorted(ranking) == sorted(cand) and answer["ranking"] == ranking
        assert ranking[:len(positives)] == positives
        assert ranking[len(positives):] == sorted(negatives, key=lambda i: (-pop[i], i))
        assert len(lines) == len(ranking)
        assert all(line in (labels[i], f"{labels[i]} [{i}]") for line, i in zip(lines, ranking))


CELLS = [(t, d, p) for d in ("ml-100k", "ml-latest-small", MAG, GIFT) for t in ("tkr", "nir")
         for p in ("temporal", "random_user")] + [(t, GIFT, p) for t in ("tkr", "nir")
                                                  for p in ("leave_one_out", "global_temporal")]


@pytest.mark.parametrize(("task", "dataset", "profile"), CELLS)
def test_candidate_lists_are_sound(real, task, dataset, profile):
    rows = real(task, dataset, profile).to_pylist()
    _assert_sound(real, task, dataset, rows)
    # No train record shows an item that is one of the user's valid or test targets in this cell.
    held = {(r["user_id"], r["target_item_id"]) for r in rows if r["split"] != "train"}
    assert not [r for r in rows if r["split"] == "train"
                and any((r["user_id"], c) in held for c in r["candidate_item_ids"])]


# Measured record counts per split (train, valid, test): ml-100k and ml-latest-small fill the
# 6,250 cap; the Amazon categories (5-core files, 348 and 458 users) do not.
COUNTS = {("ml-100k", "temporal"): (5000, 625, 625), ("ml-latest-small", "random_user"): (5000, 625, 625),
          (MAG, "temporal"): (281, 84, 84), (MAG, "random_user"): (497, 57, 45),
          (GIFT, "temporal"): (293, 83, 83), (GIFT, "random_user"): (589, 44, 45)}


@pytest.mark.parametrize(("dataset", "profile"), list(COUNTS))
def test_real_counts(real, dataset, profile):
    for task in ("tkr", "nir"):
        splits = collections.Counter(real(task, dataset, profile).column("split").to_pylist())
        assert (splits["train"], splits["valid"], splits["test"]) == COUNTS[(dataset, profile)]


def test_tkr_positives_are_next_items_of_the_same_split(real):
    rows = real("tkr", "ml-100k").to_pylist()
    pos = real.positions("ml-100k")
    sizes = collections.Counter(len(json.loads(r["answer_json"])["positives"]) for r in rows)
    assert sizes == {3: 5421, 2: 388, 1: 441}
    for r in rows:
        positives = json.loads(r["answer_json"])["positives"]
        assert {_temporal_split(*pos[(r["user_id"], p)]) for p in positives} == {r["split"]}
        # Fewer than three only where the next position belongs to a later split.
        if len(positives) < 3:
            p, n = pos[(r["user_id"], positives[-1])]
            assert p + 1 == n or _temporal_split(p + 1, n) != r["split"]
    # Every valid/test position of the user (capped or not) stays out of train candidate lists.
    later = {(u, i) for (u, i), (p, n) in pos.items() if _temporal_split(p, n) in ("valid", "test")}
    assert not [r for r in rows if r["split"] == "train"
                and any((r["user_id"], c) in later for c in r["candidate_item_ids"])]


def test_target_position_is_shuffled(real):
    for task in ("tkr", "nir"):
        rows = real(task, "ml-100k").to_pylist()
        at = collections.Counter(r["candidate_item_ids"].index(r["target_item_id"]) for r in rows)
        assert sorted(at) == list(range(SIZE[task]))
        assert min(at.values()) > 0.8 * len(rows) / SIZE[task]  # about uniform


def test_popularity_negatives_differ_and_favour_popular_items(real):
    pop = real.popularity("ml-100k")

    def mean_negative_popularity(table: pa.Table) -> float:
        values = [pop[c] for r in table.to_pylist() for c in r["candidate_item_ids"]
                  if c not in json.loads(r["answer_json"])["positives"]]
        return sum(values) / len(values)

    uniform, popular = real("tkr", "ml-100k"), real("tkr", "ml-100k", negatives="popularity")
    assert uniform.column("target_item_id") == popular.column("target_item_id")
    assert uniform.column("candidate_item_ids") != popular.column("candidate_item_ids")
    assert round(mean_negative_popularity(uniform)) == 50  # heavy users have seen the hits
    assert round(mean_negative_popularity(popular)) == 143
    _assert_sound(real, "tkr", "ml-100k", popular.to_pylist())


def test_same_seed_same_table_other_seed_other_lists(real):
    first = real("nir", "ml-100k")
    seq = build_sequence(real.con, "ml-100k", rated=False, name="again")
    assert render_nir(real.con, get_dataset("ml-100k"), "temporal", RenderSettings(), seq).equals(first)
    other = real("nir", "ml-100k", seed=7).to_pylist()
    same = {(r["user_id"], r["target_item_id"]): r["candidate_item_ids"] for r in first.to_pylist()}
    common = [r for r in other if (r["user_id"], r["target_item_id"]) in same]
    assert len(common) > 500  # the seed also redraws the capped sample
    assert sum(r["candidate_item_ids"] != same[(r["user_id"], r["target_item_id"])] for r in common) == len(common)


def test_templates_vary_and_the_held_out_one_is_kept_for_unseen_evaluation(real):
    for task in ("tkr", "nir"):
        used = collections.Counter(real(task, "ml-100k").column("template_id").to_pylist())
        assert len(used) == 3 and min(used.values()) > 1800
        assert not any(t.endswith(("-shortlist", "-guess")) for t in used)
        unseen = real(task, "ml-100k", unseen_template_test=True).to_pylist()
        held_out = "tkr-shortlist" if task == "tkr" else "nir-guess"
        assert {r["template_id"] for r in unseen if r["split"] == "test"} == {held_out}


def test_nir_history_shows_title_and_first_genre(real):
    r = real("nir", "ml-100k").to_pylist()[0]
    assert r["template_id"] == "nir-question"
    assert r["input"].startswith('The user watched, in this order: "Fast, Cheap & Out of Control (1997)":Documentary; '
                                 '"Shall We Dance? (1996)":Comedy;')
    mag = real("nir", MAG).to_pylist()
    # Magazine titles are mostly missing: the noun and id stand in, the first category follows.
    assert mag[0]["input"].startswith("History: product B00005R8BL:Magazine Subscriptions, product B00005N7T5:")
    assert "Candidates: product B00005N7SN, product B005DNCU20," in mag[0]["input"]


def test_duplicate_titles_among_candidates_are_told_apart(real):
    rows = real("tkr", GIFT, "random_user").to_pylist()
    marked = [line for r in rows for line in r["output"].split("\n") if line.endswith("]")]
    assert len(marked) > 0 and all(line.rsplit(" [", 1)[1][:-1] in real.labels(GIFT) for line in marked)


def _check(con, dataset: str, tables: list[pa.Table]) -> list[render.Finding]:
    con.execute("DELETE FROM instruction_records WHERE dataset = ?", [dataset])
    for records in tables:
        con.execute("INSERT INTO instruction_records BY NAME SELECT * FROM records")
    return render.check_records(con, dataset)


@pytest.mark.parametrize("dataset", ["ml-100k", "ml-latest-small", MAG])
def test_render_checks_pass(real, dataset):
    tables = [real(t, dataset, p) for t in ("tkr", "nir") for p in ("temporal", "random_user")]
    findings = _check(real.con, dataset, tables)
    assert len(findings) > 10 and [f for f in findings if not f.passed] == []


# --- cdr -------------------------------------------------------------------------------------------
def test_cdr_on_the_real_amazon_pair(real):
    overlap = real.con.execute(
        """SELECT count(*) FROM (SELECT DISTINCT user_id FROM filtered_interactions WHERE dataset = ?
           INTERSECT SELECT DISTINCT user_id FROM filtered_interactions WHERE dataset = ?)""",
        [MAG, GIFT]).fetchall()[0][0]
    assert overlap == 2  # Magazine_Subscriptions and Gift_Cards 5-core files share two reviewers
    for profile, splits in (("temporal", (9, 2, 2)), ("random_user", (4, 0, 9)), ("leave_one_out", (9, 2, 2))):
        rows = real("cdr", GIFT, profile, cdr_source=MAG).to_pylist()
        count = collections.Counter(r["split"] for r in rows)
        assert (count["train"], count["valid"], count["test"]) == splits
        _assert_cdr(real, rows, GIFT, MAG)
    assert {r["user_id"] for r in real("cdr", GIFT, cdr_source=MAG).to_pylist()} == {"A1GQAKL9CGQLP1", "AKMEY1BSHSDG7"}
    # The other way round, only two magazine reviews of one user come after a gift-card review.
    assert real("cdr", MAG, "temporal", cdr_source=GIFT).num_rows == 0
    assert real("cdr", MAG, "random_user", cdr_source=GIFT).num_rows == 2
    findings = _check(real.con, GIFT, [real(t, GIFT, p, **({"cdr_source": MAG} if t == "cdr" else {}))
                                       for t in ("tkr", "nir", "cdr") for p in ("temporal", "random_user")])
    assert [f for f in findings if not f.passed] == []


def _assert_cdr(cells: Cells, rows: list[dict], target: str, source: str) -> None:
    _assert_sound(cells, "cdr", target, rows)
    times = dict(((d, u, i), t) for d, u, i, t in cells.con.execute(
        "SELECT dataset, user_id, item_id, min(ts) FROM filtered_interactions GROUP BY ALL").fetchall())
    for r in rows:
        assert r["source_dataset"] == source and len(json.loads(r["answer_json"])["positives"]) == 1
        assert 1 <= len(r["source_history_item_ids"]) <= 5 and len(r["history_item_ids"]) >= 1
        assert all(times[(source, r["user_id"], i)] < r["target_ts"] for i in r["source_history_item_ids"])
        assert set(r["candidate_item_ids"]) <= set(cells.labels(target))  # target-domain items only


def test_cdr_refuses_a_missing_source(real):
    seq = build_sequence(real.con, GIFT, rated=False, name="err_seq")
    with pytest.raises(ItdrError, match="cdr needs a source domain: set cdr_source"):
        render_cdr(real.con, get_dataset(GIFT), "temporal", RenderSettings(), seq)
    with pytest.raises(ItdrError, match=f"ingest it first: itdr materialize --datasets {SOFT}"):
        render_cdr(real.con, get_dataset(GIFT), "temporal", RenderSettings(cdr_source=SOFT), seq)
    with pytest.raises(ItdrError, match="must be another dataset"):
        render_cdr(real.con, get_dataset(GIFT), "temporal", RenderSettings(cdr_source=GIFT), seq)


# A hand-made pair (NOT real data): Software (source) and Digital_Music (target) in the 2018 layout.
# Users U01-U12 review 4 programs (days 1, 3, 5, 7) and 6 albums (days 0, 2, ..., 10); T01-T05
# review albums only, S01-S03 programs only; HEAVY reviews 16 of the 20 albums, leaving too few
# negatives for a 10-candidate list.
DAY = 86_400
T0 = 1_400_000_000


def _review(user: str, asin: str, day: int, stars: float = 5.0) -> dict:
    return {"overall": stars, "verified": True, "reviewTime": "", "reviewerID": user, "asin": asin,
            "reviewerName": user, "reviewText": "fine", "summary": "ok", "unixReviewTime": T0 + day * DAY}


def _pair_files(raw: Path) -> None:
    soft, music = [], []
    for u in range(1, 13):
        soft += [_review(f"U{u:02d}", f"S{(u + j) % 10:02d}", 2 * j + 1) for j in range(4)]
        music += [_review(f"U{u:02d}", f"M{(u * 3 + j) % 20:02d}", 2 * j) for j in range(6)]
    music += [_review(f"T{u:02d}", f"M{(u + j) % 20:02d}", j) for u in range(1, 6) for j in range(6)]
    soft += [_review(f"S{u:02d}", f"S{(u + j) % 10:02d}", j) for u in range(1, 4) for j in range(5)]
    soft += [_review("HEAVY", "S00", 0)]
    music += [_review("HEAVY", f"M{j:02d}", j + 1) for j in range(16)]
    folder = raw / "amazon-reviews-2018"
    folder.mkdir(parents=True)
    for name, lines in (("Software_5.json.gz", soft), ("Digital_Music_5.json.gz", music)):
        (folder / name).write_bytes(gzip.compress("".join(json.dumps(x) + "\n" for x in lines).encode(), mtime=0))
    meta = [{"asin": f"M{i:02d}", "title": f"Album {i}", "category": ["Digital Music", "Rock"]} for i in range(20)]
    (folder / "meta_Digital_Music.json.gz").write_bytes(
        gzip.compress("".join(json.dumps(x) + "\n" for x in meta).encode(), mtime=0))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    raw = tmp_path_factory.mktemp("pair_raw")
    _pair_files(raw)
    settings = Settings(home=tmp_path_factory.mktemp("pair_home"), raw_dir=raw).ensure()
    with connect(settings.warehouse) as con:
        _ingest(con, settings, SOFT, MUSIC)
        yield Cells(con)


def test_cdr_on_a_hand_made_pair(pair):
    rows = pair("cdr", MUSIC, cdr_source=SOFT).to_pylist()
    # 12 overlapping users x 5 targets (the first album has no program before it, and needs one
    # album before it anyway); HEAVY's targets are dropped: too few albums left for negatives.
    assert collections.Counter(r["split"] for r in rows) == {"train": 36, "valid": 12, "test": 12}
    assert pair.con.execute("SELECT count(*) FROM cdr_targets WHERE user_id = 'HEAVY'").fetchall()[0][0] == 15
    assert {r["user_id"] for r in rows} == {f"U{u:02d}" for u in range(1, 13)}
    _assert_cdr(pair, rows, MUSIC, SOFT)
    first = rows[0]
    assert first["input"].count("Album ") == 1 + 10 and "product S" in first["input"]
    assert "Software" in first["instruction"] and "Digital Music" in first["instruction"]


def test_cdr_min_source_history_moves_the_first_target(pair):
    rows = pair("cdr", MUSIC, "temporal", cdr_source=SOFT, cdr_min_source_history=3).to_pylist()
    pos = pair.positions(MUSIC)
    # Three programs precede only the 4th album (day 6): targets are the 4th, 5th and 6th albums.
    assert collections.Counter((r["split"], pos[(r["user_id"], r["target_item_id"])][0]) for r in rows) == {
        ("train", 3): 12, ("valid", 4): 12, ("test", 5): 12}
    assert all(len(r["source_history_item_ids"]) >= 3 for r in rows)
    assert all(len(r["history_item_ids"]) == 3 for r in rows if r["split"] == "train")
    findings = _check(pair.con, MUSIC, [pair("cdr", MUSIC, p, cdr_source=SOFT) for p in ("temporal", "random_user")])
    assert [f for f in findings if not f.passed] == []
