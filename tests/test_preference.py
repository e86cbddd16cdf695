"""The preference task on real ml-100k: the exact TALLRec reproduction and the clean temporal profile."""

import collections

import pytest

from itdr_pipeline.registry import get_dataset
from itdr_pipeline.tasks.base import RenderSettings
from itdr_pipeline.tasks.preference import render_preference

UNCAPPED = RenderSettings(cap=0)

# TALLRec's released data/movie/test.json, first record (instruction and output are constant strings).
TALLREC_INSTRUCTION = ('Given the user\'s preference and unpreference, identify whether the user will like the '
                       'target movie by answering "Yes." or "No.".')
TALLREC_FIRST_TEST_INPUT = (
    'User Preference: "Paris, Texas (1984)", "Rebel Without a Cause (1955)", "Return of the Pink Panther, The (1974)", '
    '"Ace Ventura: Pet Detective (1994)", "Magnificent Seven, The (1954)", "Star Trek: The Wrath of Khan (1982)", '
    '"Cat People (1982)", "Orlando (1993)", "Dave (1993)"\nUser Unpreference: "Kalifornia (1993)"\n'
    'Whether the user will like the target movie "Perez Family, The (1995)"?'
)


@pytest.fixture(scope="module")
def tallrec(ml100k):
    con, _ = ml100k
    return render_preference(con, get_dataset("ml-100k"), "tallrec", RenderSettings()).to_pylist()


@pytest.fixture(scope="module")
def temporal(ml100k):
    con, _ = ml100k
    # Uncapped, so every user's records are there (the default cell cap samples 6,250).
    return render_preference(con, get_dataset("ml-100k"), "temporal", UNCAPPED).to_pylist()


def test_tallrec_split_sizes_and_order(tallrec):
    assert [r["split"] for r in tallrec] == ["train"] * 8000 + ["valid"] * 1000 + ["test"] * 1000
    assert [r["record_idx"] for r in tallrec] == list(range(10000))


def test_tallrec_exact_strings(tallrec):
    test = [r for r in tallrec if r["split"] == "test"]
    assert test[0]["instruction"] == TALLREC_INSTRUCTION
    assert test[0]["input"] == TALLREC_FIRST_TEST_INPUT and test[0]["output"] == "No."
    second = test[1]["input"]
    assert second.endswith('Whether the user will like the target movie "Jurassic Park (1993)"?')
    assert 'User Unpreference: "Kalifornia (1993)", "Perez Family, The (1995)"' in second
    assert {r["instruction"] for r in tallrec} == {TALLREC_INSTRUCTION}
    assert {r["output"] for r in tallrec} == {"Yes.", "No."}
    assert all(r["output"] == ("Yes." if r["label"] == 1.0 else "No.") for r in tallrec)


def test_tallrec_known_weakness_is_reproduced(tallrec):
    # The released test set covers only 16 users: the reason the temporal profile exists.
    assert len({r["user_id"] for r in tallrec if r["split"] == "test"}) == 16
    assert all(len(r["history_item_ids"]) == 10 for r in tallrec)


def test_temporal_is_leakage_free_per_user(temporal):
    by_user = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in temporal:
        by_user[r["user_id"]][r["split"]].append(r)
    for splits in by_user.values():
        last_train = max(r["target_ts"] for r in splits["train"])
        assert all(r["target_ts"] >= last_train for r in splits["valid"] + splits["test"])
        assert max(r["target_ts"] for r in splits["valid"]) <= min(r["target_ts"] for r in splits["test"])
        train_targets = {r["target_item_id"] for r in splits["train"]}
        assert not train_targets & {r["target_item_id"] for r in splits["test"]}


def test_temporal_represents_every_user_in_every_split(temporal):
    users = {s: {r["user_id"] for r in temporal if r["split"] == s} for s in ("train", "valid", "test")}
    assert len(users["train"]) == len(users["valid"]) == len(users["test"]) == 943
    per_user = collections.Counter((r["user_id"], r["split"]) for r in temporal)
    assert max(n for (_, s), n in per_user.items() if s == "train") == 40
    assert max(n for (_, s), n in per_user.items() if s == "test") == 5


def test_temporal_uses_several_templates_and_history_precedes_target(temporal):
    assert {r["template_id"] for r in temporal} == {"preference-liked-disliked", "preference-timeline"}
    assert all(5 <= len(r["history_item_ids"]) <= 10 for r in temporal)
    assert all(r["target_item_id"] not in r["history_item_ids"] for r in temporal)


def test_rendering_is_deterministic(ml100k, temporal):
    con, _ = ml100k
    again = render_preference(con, get_dataset("ml-100k"), "temporal", UNCAPPED).to_pylist()
    assert again == temporal
    reseeded = render_preference(con, get_dataset("ml-100k"), "temporal", UNCAPPED.with_(seed=7)).to_pylist()
    assert reseeded != temporal and len(reseeded) == len(temporal)
