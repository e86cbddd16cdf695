"""Split profiles, caps and ablations on real ml-100k (the rp task), and the blocking leakage checks."""

import collections

import pytest

from itdr_pipeline.errors import ItdrError
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.render import check_records, render_dataset
from itdr_pipeline.tasks.base import RenderSettings, entity_split, split_caps
from itdr_pipeline.tasks.rp import render_rp

SPEC = get_dataset("ml-100k")


def rp(con, profile: str, **settings) -> list[dict]:
    from itdr_pipeline.tasks.base import build_sequence

    seq = build_sequence(con, SPEC.id, rated=True, name="seq_rated")
    return render_rp(con, SPEC, profile, RenderSettings(**settings), seq).to_pylist()


def by_split(records: list[dict]) -> dict[str, list[dict]]:
    out = collections.defaultdict(list)
    for r in records:
        out[r["split"]].append(r)
    return out


def test_cell_cap_is_split_8_1_1_and_record_idx_dense(ml100k):
    con, _ = ml100k
    records = rp(con, "temporal")
    assert split_caps(6250) == {"train": 5000, "valid": 625, "test": 625}
    assert collections.Counter(r["split"] for r in records) == {"train": 5000, "valid": 625, "test": 625}
    assert [r["record_idx"] for r in records] == list(range(6250))
    assert [r["split"] for r in records] == ["train"] * 5000 + ["valid"] * 625 + ["test"] * 625


def test_temporal_test_after_train_and_ratings_in_source_scale(ml100k):
    con, _ = ml100k
    records = rp(con, "temporal", cap=0)
    users = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in records:
        users[r["user_id"]][r["split"]].append(r)
    for splits in users.values():
        assert max(r["target_ts"] for r in splits["train"]) <= min(r["target_ts"] for r in splits["test"])
        assert 1 <= len(splits["test"]) <= 5 and len(splits["train"]) <= 40
    assert {r["output"] for r in records} == {"1", "2", "3", "4", "5"}
    assert all(r["output"] == str(int(r["label"])) for r in records)
    assert all(len(r["history_item_ids"]) == min(10, len(r["history_item_ids"])) >= 5 for r in records)


def test_leave_one_out_holds_out_each_users_last_target(ml100k):
    con, _ = ml100k
    records = rp(con, "leave_one_out", cap=0)
    counts = collections.Counter((r["user_id"], r["split"]) for r in records)
    assert {n for (_, s), n in counts.items() if s != "train"} == {1}
    last = dict(con.execute("SELECT user_id, arg_max(item_id, pos) FROM seq_rated GROUP BY user_id").fetchall())
    test = by_split(records)["test"]
    assert len(test) == 943 and all(last[r["user_id"]] == r["target_item_id"] for r in test)


def test_random_user_splits_users_by_the_stable_hash(ml100k):
    con, _ = ml100k
    records = rp(con, "random_user", cap=0, max_train_per_user=1000)
    splits_of = collections.defaultdict(set)
    for r in records:
        splits_of[r["user_id"]].add(r["split"])
    assert all(len(s) == 1 for s in splits_of.values())
    # The SQL macro and its Python twin agree, and the split is about 8:1:1 of users.
    assert all(entity_split(42, SPEC.id, u) == next(iter(s)) for u, s in splits_of.items())
    shares = collections.Counter(next(iter(s)) for s in splits_of.values())
    assert 0.72 < shares["train"] / len(splits_of) < 0.88


def test_global_temporal_uses_one_time_cut_for_everyone(ml100k):
    con, _ = ml100k
    parts = by_split(rp(con, "global_temporal", cap=0))
    assert max(r["target_ts"] for r in parts["train"]) < min(r["target_ts"] for r in parts["valid"])
    assert max(r["target_ts"] for r in parts["valid"]) < min(r["target_ts"] for r in parts["test"])


def test_fraction_keeps_a_nested_share_of_train_only(ml100k):
    con, _ = ml100k
    full, half, quarter = (by_split(rp(con, "temporal", fraction=f)) for f in (1.0, 0.5, 0.25))
    key = lambda r: (r["user_id"], r["target_item_id"])  # noqa: E731
    assert (len(half["train"]), len(quarter["train"])) == (2500, 1250)
    assert {key(r) for r in quarter["train"]} <= {key(r) for r in half["train"]} <= {key(r) for r in full["train"]}
    assert [key(r) for r in quarter["test"]] == [key(r) for r in full["test"]]


def test_ablations_descriptions_and_unseen_template(ml100k):
    con, _ = ml100k
    plain = rp(con, "temporal", descriptions=False)
    assert {r["instruction"] for r in plain} == {""} and all(r["input"] for r in plain)
    unseen = by_split(rp(con, "temporal", unseen_template_test=True))
    assert {r["template_id"] for r in unseen["test"]} == {"rp-score-card"}
    assert "rp-score-card" not in {r["template_id"] for r in unseen["train"] + unseen["valid"]}
    assert {r["template_id"] for r in unseen["train"]} == {"rp-list", "rp-timeline", "rp-question"}


def test_seed_changes_samples_not_sizes(ml100k):
    con, _ = ml100k
    a, b = rp(con, "temporal"), rp(con, "temporal", seed=7)
    assert len(a) == len(b) and a != b
    assert a == rp(con, "temporal")


def test_bad_settings_are_refused():
    with pytest.raises(ItdrError, match="unknown split profile"):
        RenderSettings(profiles=("chronological",))
    with pytest.raises(ItdrError, match="fraction"):
        RenderSettings(fraction=0.0)
    with pytest.raises(ItdrError, match="negatives"):
        RenderSettings(negatives="hard")


def test_leakage_checks_block_a_corrupted_cell(ml100k):
    con, _ = ml100k
    render_dataset(con, SPEC, ["rp"], RenderSettings(profiles=("temporal", "random_user")))
    assert all(f.passed for f in check_records(con, SPEC.id))
    # Copy one user's test record into train: the record is now in two splits, and a test target
    # is also a train target of the same user.
    con.execute("""INSERT INTO instruction_records SELECT * REPLACE ('train' AS split, 100000 AS record_idx)
                   FROM instruction_records WHERE dataset = 'ml-100k' AND task = 'rp' AND profile = 'temporal'
                   AND split = 'test' ORDER BY record_idx LIMIT 1""")
    failed = {f.check for f in check_records(con, SPEC.id) if not f.passed and f.severity == "ERROR"}
    assert failed == {"rp/temporal: no_cross_split_duplicates", "rp/temporal: test_target_not_a_train_target"}
    con.execute("DELETE FROM instruction_records WHERE dataset = 'ml-100k' AND record_idx = 100000")
