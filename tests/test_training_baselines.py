"""training.baselines on small hand-made train/test records where the right answer is known."""

import copy
import json

import pytest

from training.baselines import baselines
from training.answers import parse_uap
from training.metrics import evaluate


def record(task: str, **fields) -> dict:
    base = {"task": task, "record_idx": 0, "user_id": "u", "target_item_id": None, "candidate_item_ids": [],
            "candidate_texts": [], "ranking_item_ids": [], "label": None, "answer_json": "{}", "output": "",
            "history_item_ids": [], "history_labels": []}
    return {**base, **fields}


def ranking_record(task: str, history: list[str], candidates: list[str], target: str) -> dict:
    return record(task, history_item_ids=history, target_item_id=target, candidate_item_ids=candidates,
                  candidate_texts=[f"Item {c.upper()}" for c in candidates],
                  answer_json=json.dumps({"positives": [target]}))


# Train item sets: {h, a} together twice; b is the most popular item (4 appearances) but never with h.
RANK_TRAIN = [ranking_record("tkr", ["h"], ["a", "b", "c"], "a"), ranking_record("tkr", ["h"], ["a", "b", "c"], "a"),
              ranking_record("tkr", ["b"], ["a", "b", "c"], "c"), ranking_record("tkr", ["b"], ["a", "b", "c"], "b"),
              ranking_record("tkr", ["c"], ["a", "b", "c"], "b")]
# Popularity: b 4, a 2, h 2, c 2; ties keep prompt order.
# RP train: pairs (h1, 2), (t, 4), (h2, 3), (t, 5), (h2, 3), (x, 1).
#   item means: t 4.5, h1 2, h2 3, x 1; global mean 18 / 6 = 3.0.
#   item sets {h1, t}, {h2, t}, {h2, x}: vectors over records t=(1,1,0), h1=(1,0,0), h2=(0,1,1), x=(0,0,1);
#   cos(t, h1) = 1/sqrt(2), cos(t, h2) = 1/2.
RP_TRAIN = [record("rp", history_item_ids=["h1"], history_labels=[2.0], target_item_id="t", label=4.0),
            record("rp", history_item_ids=["h2"], history_labels=[3.0], target_item_id="t", label=5.0),
            record("rp", history_item_ids=["h2"], history_labels=[3.0], target_item_id="x", label=1.0)]


def test_popularity_ranks_most_frequent_candidate_first():
    test = [ranking_record("tkr", ["h"], ["c", "a", "b"], "a"), ranking_record("tkr", ["z"], ["q", "c", "a"], "a")]
    got = baselines("tkr", RANK_TRAIN, test, seed=1)["popularity"]
    # b (4) first, then a and c (2 each) in prompt order; q (0) last.
    assert got == ["Item B\nItem C\nItem A", "Item C\nItem A\nItem Q"]
    nir = [ranking_record("nir", ["h"], ["c", "a", "b"], "a")]
    assert baselines("nir", [{**r, "task": "nir"} for r in RANK_TRAIN], nir, seed=1)["popularity"] == ["Item B"]


def test_item_knn_prefers_the_candidate_that_cooccurs_with_the_history():
    test = [ranking_record("tkr", ["h"], ["b", "c", "a"], "a")]
    # a co-occurs with h (cos = 2 / sqrt(2 * 2) = 1); b and c never do (score 0): b before c by popularity.
    assert baselines("tkr", RANK_TRAIN, test, seed=1)["item-kNN"] == ["Item A\nItem B\nItem C"]
    nir_train = [{**r, "task": "nir"} for r in RANK_TRAIN]
    assert baselines("nir", nir_train, [{**test[0], "task": "nir"}], seed=1)["item-kNN"] == ["Item A"]
    scored = evaluate("tkr", test, baselines("tkr", RANK_TRAIN, test, seed=1)["item-kNN"])
    assert ("Hit@1", 1.0, 1) in scored


def test_rp_popularity_and_item_knn_values():
    test = [record("rp", target_item_id="t", history_item_ids=["h1", "h2"], history_labels=[5.0, 2.0]),
            record("rp", target_item_id="new", history_item_ids=["h1", "h2"], history_labels=[5.0, 2.0]),
            record("rp", target_item_id="new", history_item_ids=[], history_labels=[])]
    got = baselines("rp", RP_TRAIN, test, seed=3)
    # Popularity: t's train mean 4.5; unseen items get the global mean 3.0.
    assert got["popularity"] == ["4.50", "3.00", "3.00"]
    # kNN: (5/sqrt(2) + 2/2) / (1/sqrt(2) + 1/2) = 4.53553 / 1.20711 = 3.757 -> "3.76";
    # unseen target: plain history mean (5 + 2) / 2 = 3.5; no history: global mean 3.0.
    assert got["item-kNN"] == ["3.76", "3.50", "3.00"]
    assert set(got["random"]) <= {"4", "5", "1"}  # drawn from the train ratings


def preference_set(n_per_item: int, split: str) -> list[dict]:
    """Items g1, g2 always liked, b1, b2 never; every item equally popular, every history half liked."""
    records = []
    for k in range(n_per_item):
        for item, label in (("g1", 1.0), ("b1", 0.0), ("g2", 1.0), ("b2", 0.0)):
            records.append(record("preference", record_idx=len(records), target_item_id=item, label=label,
                                  history_item_ids=[f"{split}{k}a", f"{split}{k}b"], history_labels=[1.0, 0.0],
                                  output="Yes." if label else "No.",
                                  answer_json=json.dumps({"liked": bool(label)})))
    return records


def test_logistic_regression_beats_random_on_a_separable_set():
    train, test = preference_set(10, "train"), preference_set(5, "test")
    got = baselines("preference", train, test, seed=0)
    assert set(got) == {"random", "popularity", "logistic regression"}
    auc = {name: evaluate("preference", test, scores)[0][1] for name, scores in got.items()}
    # The item like-rate separates the classes: (10+1)/(10+2) for g items vs 1/12 for b items.
    assert auc["logistic regression"] == 1.0
    assert auc["random"] < 0.9
    assert auc["popularity"] == 0.5  # every item equally popular: all scores tie
    assert got["popularity"][:4] == [10.0, 10.0, 10.0, 10.0]


def test_logistic_regression_needs_both_classes():
    train = [r for r in preference_set(3, "train") if r["label"] == 1.0]
    with pytest.raises(ValueError, match="both classes"):
        baselines("preference", train, preference_set(1, "test"), seed=0)


UAP_TRAIN = [record("uap", answer_json=json.dumps(a)) for a in (
    {"gender": "M", "age": 20, "occupation": "writer"},  # key order differs from the output order
    {"age": 25, "gender": "F", "occupation": "writer"},
    {"age": 31, "gender": "M", "occupation": "artist"},
    {"age": 40, "gender": "F"})]


def test_uap_popularity_and_random():
    test = [record("uap", answer_json=json.dumps({"age": 33, "gender": "M", "occupation": "artist"}))]
    got = baselines("uap", UAP_TRAIN, test, seed=5)
    # Median age of 20, 25, 31, 40 = 28.0 -> 28; gender M/F tie 2-2 -> "F" (smallest text); writer 2x.
    assert got["popularity"] == ["age:28,gender:F,occupation:writer"]
    guess = parse_uap(got["random"][0])
    assert list(guess) == ["age", "gender", "occupation"]
    assert guess["age"] in {"20", "25", "31", "40"} and guess["gender"] in {"m", "f"}
    assert guess["occupation"] in {"writer", "artist"}
    half_up = baselines("uap", UAP_TRAIN[:2], test, seed=5)["popularity"]
    assert half_up == ["age:23,gender:F,occupation:writer"]  # median 22.5 rounds half up (round() gives 22)


def test_free_text_tasks_get_a_random_train_output_only():
    train = [record("ir", output=f"summary {k}") for k in range(5)]
    got = baselines("ir", train, [record("ir"), record("ir")], seed=2)
    assert set(got) == {"random"}
    assert all(p in {r["output"] for r in train} for p in got["random"])


def test_determinism_and_seed_dependence():
    test = [ranking_record("tkr", ["h"], ["a", "b", "c", "d", "e", "f"], "a") for _ in range(5)]
    first = baselines("tkr", RANK_TRAIN, test, seed=7)
    assert baselines("tkr", RANK_TRAIN, test, seed=7) == first
    other = baselines("tkr", RANK_TRAIN, test, seed=8)
    assert other["random"] != first["random"]
    assert other["popularity"] == first["popularity"] and other["item-kNN"] == first["item-kNN"]
    pref = baselines("preference", preference_set(3, "train"), preference_set(3, "test"), seed=7)
    assert pref == baselines("preference", preference_set(3, "train"), preference_set(3, "test"), seed=7)


@pytest.mark.parametrize(("task", "train", "test"), [
    ("preference", preference_set(4, "train"), preference_set(2, "test")),
    ("rp", RP_TRAIN, [record("rp", target_item_id="t", history_item_ids=["h1"], history_labels=[4.0], label=2.0,
                             output="2", answer_json='{"rating": 2.0}')]),
    ("tkr", RANK_TRAIN, [ranking_record("tkr", ["h"], ["a", "b", "c"], "a")]),
    ("uap", UAP_TRAIN, [record("uap", answer_json='{"age": 50, "gender": "M"}', output="age:50,gender:M")]),
])
def test_baselines_never_read_test_answers(task, train, test):
    before = baselines(task, train, test, seed=11)
    mutated = copy.deepcopy(test)
    for r in mutated:
        r.update(label=None if r["label"] is None else 1.0 - r["label"] if task == "preference" else 9.0,
                 output="changed", answer_json='{"positives": ["c"], "age": 1}', ranking_item_ids=["c", "b", "a"])
    assert baselines(task, train, mutated, seed=11) == before


def test_failures_are_loud():
    with pytest.raises(ValueError, match="no baselines for task 'xyz'"):
        baselines("xyz", RP_TRAIN, [], seed=0)
    with pytest.raises(ValueError, match="rp: baselines need train records"):
        baselines("rp", [], [record("rp")], seed=0)
    with pytest.raises(ValueError, match="test records of other tasks"):
        baselines("rp", RP_TRAIN, [record("tkr")], seed=0)
    with pytest.raises(ValueError, match="nir: record 0 needs as many candidate_texts"):
        baselines("nir", [{**r, "task": "nir"} for r in RANK_TRAIN], [record("nir")], seed=0)


def search_record(task: str, query: str, candidates: dict[str, str], target: str, history=()) -> dict:
    """An InstructRec record: the prompt states `query`; candidate_docs are the items' texts."""
    ids = list(candidates)
    return record(task, history_item_ids=list(history), target_item_id=target, candidate_item_ids=ids,
                  candidate_texts=[f"Item {c.upper()}" for c in ids],
                  answer_json=json.dumps({"positives": [target], "query": query,
                                          "candidate_docs": [f"Item {c.upper()} {candidates[c]}" for c in ids]}))


def test_bm25_ranks_by_the_stated_query_and_search_has_no_popularity():
    docs = {"a": "Phone Cases blue silicone", "b": "Phone Cases red leather", "c": "Kitchen knives steel"}
    train = [search_record("search", "Kitchen knives", docs, "c")]
    test = [search_record("search", "red leather phone case", docs, "b"),
            search_record("search", "steel knives", docs, "c")]
    got = baselines("search", train, test, seed=3)
    # Queries are held-out items: train popularity says nothing about them, so search has none.
    assert set(got) == {"random", "BM25"}
    # b matches "red", "leather" and "phone"; a only "phone"; c nothing. Then c, then a and b (0, prompt order).
    assert got["BM25"] == ["Item B\nItem A\nItem C", "Item C\nItem A\nItem B"]
    assert dict((m, v) for m, v, _ in evaluate("search", test, got["BM25"]))["HR@1"] == 1.0
    # psearch has the history too: popularity and item-kNN join, BM25 stays.
    ptrain = [{**r, "task": "psearch", "history_item_ids": ["h"]} for r in train]
    ptest = [{**r, "task": "psearch", "history_item_ids": ["h"]} for r in test]
    assert set(baselines("psearch", ptrain, ptest, seed=3)) == {"random", "popularity", "item-kNN", "BM25"}
    seq = [{**r, "task": "seqrec"} for r in ptest]
    assert set(baselines("seqrec", [{**r, "task": "seqrec"} for r in ptrain], seq, seed=3)) == {
        "random", "popularity", "item-kNN"}


def test_bm25_reads_only_the_prompt_side_of_answer_json():
    docs = {"a": "Phone Cases blue", "b": "Phone Cases red"}
    test = [search_record("search", "red phone case", docs, "b")]
    before = baselines("search", test, test, seed=3)
    changed = json.loads(test[0]["answer_json"]) | {"positives": ["a"], "intention": "blue", "ranking": ["a", "b"]}
    after = baselines("search", test, [{**test[0], "answer_json": json.dumps(changed), "output": "Item A"}], seed=3)
    assert after == before


def test_hybrid_combines_the_model_score_with_the_lr_features_fitted_on_valid():
    from training.baselines import hybrid

    train, valid, test = preference_set(10, "train"), preference_set(6, "valid"), preference_set(5, "test")
    # A model score that knows nothing (constant) leaves the LR features to separate the classes...
    flat = hybrid(train, valid, test, [0.5] * len(valid), [0.5] * len(test))
    assert evaluate("preference", test, flat)[0][1] == 1.0
    # ...and the calibrator is fitted on valid labels: a valid sample of one class is refused.
    with pytest.raises(ValueError, match="both classes"):
        liked = [r for r in valid if r["label"] == 1.0]
        hybrid(train, liked, test, [0.5] * len(liked), [0.5] * len(test))
    with pytest.raises(ValueError, match="one model score per"):
        hybrid(train, valid, test, [0.5], [0.5] * len(test))
    # Test labels never reach it: flipping them changes nothing.
    flipped = [{**r, "label": 1.0 - r["label"], "output": "?"} for r in test]
    assert hybrid(train, valid, flipped, [0.5] * len(valid), [0.5] * len(test)) == flat
