"""The preference task on real ml-100k: the exact TALLRec reproduction and the clean temporal profile."""

import collections

import pytest

from itdr_pipeline.registry import get_dataset
from itdr_pipeline.tasks.base import RenderSettings
from itdr_pipeline.tasks.preference import TrainHints, render_preference, render_preference_hints

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


@pytest.fixture(scope="module")
def tallrec_hints(ml100k):
    con, _ = ml100k
    return render_preference_hints(con, get_dataset("ml-100k"), "tallrec", RenderSettings()).to_pylist()


def test_hints_keep_the_tallrec_records_and_add_two_lines(tallrec, tallrec_hints):
    assert len(tallrec_hints) == len(tallrec) == 10000
    same = ("split", "record_idx", "user_id", "target_item_id", "label", "output", "history_item_ids",
            "history_labels", "instruction")
    assert all(all(h[k] == p[k] for k in same) for h, p in zip(tallrec_hints, tallrec))
    assert {r["task"] for r in tallrec_hints} == {"preference_hints"}
    for h, p in zip(tallrec_hints[::997], tallrec[::997]):
        plain, hinted = p["input"].split("\n"), h["input"].split("\n")
        assert hinted[:2] == plain[:2] and hinted[-1] == plain[-1]
        assert hinted[2].startswith("User statistics: ") and hinted[3].startswith("Target statistics: ")


def _interactions(records):
    """Every (user, item) -> liked a train record shows, as TrainHints counts them."""
    seen = {}
    for r in records:
        if r["split"] == "train":
            seen[(r["user_id"], r["target_item_id"])] = r["label"] == 1.0
            for item, liked in zip(r["history_item_ids"], r["history_labels"]):
                seen.setdefault((r["user_id"], item), liked == 1.0)
    return seen


def test_hint_counts_are_train_only_and_leave_the_own_label_out(tallrec, tallrec_hints):
    seen = _interactions(tallrec)
    import re

    # One train and one test record, counted by hand from the plain records.
    for r, h in ((tallrec[5], tallrec_hints[5]), (tallrec[9500], tallrec_hints[9500])):
        key = (r["user_id"], r["target_item_id"])
        others = {k: v for k, v in seen.items() if k != key}
        item = [v for (u, i), v in others.items() if i == r["target_item_id"]]
        user = [v for (u, i), v in others.items() if u == r["user_id"]]
        line_user, line_item = h["input"].split("\n")[2:4]
        if user:
            assert line_user == f"User statistics: liked {round(100 * sum(user) / len(user))}% of {len(user)} rated movies."
        else:
            assert line_user == "User statistics: no training ratings."
        assert re.fullmatch(rf"Target statistics: liked by {round(100 * sum(item) / len(item))}% of {len(item)} raters\.",
                            line_item)
    # Flipping a train record's own label does not move its hint: it is never counted in it.
    tallrec_users = {r["user_id"] for r in tallrec if r["split"] == "test"}
    assert len(tallrec_users) == 16
    assert seen[(tallrec[5]["user_id"], tallrec[5]["target_item_id"])] == (tallrec[5]["label"] == 1.0)


def test_train_hints_leave_one_out_by_hand():
    windows = [
        {"split": "train", "user_id": "u1", "target_item_id": "a", "label": 1, "history_item_ids": ["b"],
         "history_liked": [False]},
        {"split": "train", "user_id": "u2", "target_item_id": "a", "label": 0, "history_item_ids": ["b"],
         "history_liked": [True]},
        {"split": "test", "user_id": "u3", "target_item_id": "a", "label": 1, "history_item_ids": ["c"],
         "history_liked": [True]},  # a test record's interactions are never counted
    ]
    hints = TrainHints(windows)
    # u1's own (u1, a) is left out: u1 keeps b (not liked); a keeps u2's dislike.
    assert hints.context("u1", "a") == {"user_rated": 1, "user_like_pct": 0, "item_rated": 1, "item_like_pct": 0}
    assert hints.context("u2", "a") == {"user_rated": 1, "user_like_pct": 100, "item_rated": 1, "item_like_pct": 100}
    assert hints.context("u3", "a") == {"user_rated": 0, "user_like_pct": None, "item_rated": 2, "item_like_pct": 50}
    assert hints.context("u3", "c") == {"user_rated": 0, "user_like_pct": None, "item_rated": 0, "item_like_pct": None}
