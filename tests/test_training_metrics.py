"""training.metrics against values computed by hand on tiny inputs."""

import json
import math

import pytest
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU

from training.answers import match_choice, normalize, parse_ranking, parse_rating, parse_uap
from training.metrics import evaluate, metric_direction

CANDIDATES = ["Alpha (1990)", "Beta (1991)", "Gamma (1992)", "Delta (1993)", "Epsilon (1994)"]
IDS = ["a", "b", "c", "d", "e"]


def record(task: str, **fields) -> dict:
    base = {"task": task, "split": "test", "record_idx": 0, "candidate_item_ids": [], "candidate_texts": [],
            "label": None, "answer_json": "{}", "output": "", "history_item_ids": [], "history_labels": []}
    return {**base, **fields}


def ranked(task: str, positives: list[str]) -> dict:
    return record(task, candidate_item_ids=IDS, candidate_texts=CANDIDATES,
                  answer_json=json.dumps({"positives": positives, "ranking": positives}))


def rows(task: str, records: list[dict], predictions: list) -> dict[str, tuple[float, int]]:
    return {metric: (value, n) for metric, value, n in evaluate(task, records, predictions)}


def test_normalize_strips_case_quotes_markers_and_spacing():
    assert normalize('  1. "Alpha  (1990)" ') == "alpha (1990)"
    assert normalize("2) 'Beta (1991)'") == "beta (1991)"
    assert normalize("- “Gamma”") == "gamma"
    assert normalize("•Delta") == "delta"
    assert normalize("* Epsilon") == "epsilon"
    # A number that is part of a title is no list marker; a lone apostrophe is no quote pair.
    assert normalize("9.5 Weeks") == "9.5 weeks"
    assert normalize("'Til There Was You (1997)") == "'til there was you (1997)"


def test_parse_rating():
    assert parse_rating("4") == 4.0
    assert parse_rating("Rating: 3.5 stars.") == 3.5
    assert parse_rating("4.") == 4.0
    assert parse_rating("10/10") == 10.0  # the first number
    assert parse_rating("no idea") is None
    assert parse_rating("11") is None  # outside [0, 10]
    assert parse_rating("-1") is None
    assert parse_rating("") is None


def test_parse_ranking_numbering_quotes_unknown_and_duplicates():
    clean = "1. Delta (1993)\n2. Beta (1991)\n3) Alpha (1990)\n- Epsilon (1994)\n* Gamma (1992)"
    assert parse_ranking(clean, CANDIDATES) == ([3, 1, 0, 4, 2], True)
    # Quotes, blank lines and case are fine; an unknown line and a repeat make the list invalid,
    # the repeat counts once, and unnamed candidates (Alpha, Epsilon) follow in prompt order.
    messy = '"GAMMA (1992)"\n\nSomething else\nbeta (1991)\n"Gamma (1992)"'
    assert parse_ranking(messy, CANDIDATES) == ([2, 1, 0, 3, 4], False)
    # All named but one missing -> invalid, missing appended.
    assert parse_ranking("Epsilon (1994)\nDelta (1993)\nGamma (1992)\nBeta (1991)", CANDIDATES) == ([4, 3, 2, 1, 0], False)
    assert parse_ranking("", CANDIDATES) == ([0, 1, 2, 3, 4], False)
    # Two candidates that read alike are taken in prompt order, one per naming line.
    assert parse_ranking("Hamlet\nHamlet", ["Hamlet", "Other", "hamlet"]) == ([0, 2, 1], False)


def test_match_choice():
    assert match_choice("Gamma (1992)", CANDIDATES) == 2
    assert match_choice('  \n"beta (1991)"\nbecause it fits', CANDIDATES) == 1  # first non-empty line
    assert match_choice("I think the user will watch Delta (1993) next.", CANDIDATES) == 3  # contained
    assert match_choice("Star Wars (1977), surely", ["Star Wars", "Star Wars (1977)", "Alien"]) == 1  # longest
    assert match_choice("Either Alpha (1990) or Gamma (1992)", CANDIDATES) is None  # same length: tie
    assert match_choice("Either Alpha (1990) or Beta (1991)", CANDIDATES) == 0  # longest wins
    assert match_choice("none of them", CANDIDATES) is None


def test_ranking_metrics_ndcg_hit_precision_invalid():
    # Record 1: positives b, d at ranks 2 and 4 of a valid list.
    #   NDCG@10 = (1/log2(3) + 1/log2(5)) / (1/log2(2) + 1/log2(3)) = (0.63093 + 0.43068) / 1.63093 = 0.65092
    #   Hit@1 = 0 (a is no positive), P@5 = 2/5.
    # Record 2: answer names d then b (plus an unknown line -> invalid); a, c, e appended.
    #   positives at ranks 1, 2 -> NDCG 1, Hit@1 1, P@5 2/5.
    first = "Alpha (1990)\nBeta (1991)\nGamma (1992)\nDelta (1993)\nEpsilon (1994)"
    second = '1. "Delta (1993)"\nNot a movie\n2. Beta (1991)'
    for task in ("tkr", "cdr"):
        got = rows(task, [ranked(task, ["b", "d"]), ranked(task, ["b", "d"])], [first, second])
        ndcg1 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
        assert got["NDCG@10"][0] == pytest.approx((ndcg1 + 1) / 2)
        assert got["NDCG@10"][0] == pytest.approx((0.65092 + 1) / 2, abs=1e-5)
        assert got["Hit@1"] == (0.5, 2)
        assert got["P@5"][0] == pytest.approx(0.4)
        assert got["invalid"] == (0.5, 2)


def test_ndcg_ideal_hits_capped_at_positives():
    # One positive (c) ranked 3rd: DCG = 1/log2(4) = 0.5, IDCG = 1 -> 0.5; P@5 = 1/5.
    got = rows("tkr", [ranked("tkr", ["c"])], ["Alpha (1990)\nBeta (1991)\nGamma (1992)\nDelta (1993)\nEpsilon (1994)"])
    assert got["NDCG@10"][0] == pytest.approx(0.5)
    assert got["P@5"][0] == pytest.approx(0.2)


def test_nir_hit_and_invalid():
    records = [ranked("nir", ["c"]) for _ in range(4)]
    answers = ["Gamma (1992)", "The user will pick gamma (1992).", "Alpha (1990)", "no clue"]
    # Hits: 1st, 2nd -> 2/4; invalid: only the 4th names no candidate -> 1/4.
    assert rows("nir", records, answers) == {"Hit@1": (0.5, 4), "invalid": (0.25, 4)}


def test_rp_rmse_mae_unparseable():
    records = [record("rp", label=4.0), record("rp", label=2.0), record("rp", label=5.0)]
    # Parsed: 4 (err 0), 3.5 (err 1.5); "n/a" unparseable.
    # RMSE = sqrt((0 + 2.25) / 2) = 1.06066; MAE = (0 + 1.5) / 2 = 0.75; unparseable = 1/3 of 3.
    got = rows("rp", records, ["4", "I'd say 3.5", "n/a"])
    assert got["RMSE"][0] == pytest.approx(math.sqrt(1.125)) and got["RMSE"][1] == 2
    assert got["MAE"] == (pytest.approx(0.75), 2)
    assert got["unparseable"] == (pytest.approx(1 / 3), 3)
    none = rows("rp", records[:1], ["?"])  # nothing parses: NaN with n = 0, never a silent 0
    assert math.isnan(none["RMSE"][0]) and none["RMSE"][1] == 0 and none["unparseable"] == (1.0, 1)


def test_uap_accuracy_and_age_rmse():
    truths = [{"age": 24, "gender": "M", "occupation": "programmer"},
              {"age": 40, "gender": "F", "occupation": "writer"},
              {"age": 50, "gender": "F", "occupation": "other"}]
    records = [record("uap", answer_json=json.dumps(t)) for t in truths]
    answers = ["age:30,gender:m,occupation:Programmer",  # age +6, gender ok, occupation ok
               "Age: 32, Gender: M; occupation: writer",  # age -8, gender wrong, occupation ok
               "I cannot tell"]  # nothing parses: counts wrong, no age pair
    got = evaluate("uap", records, answers)
    # RMSE:age = sqrt((36 + 64) / 2) = sqrt(50) over 2 parsed; gender 1/3; occupation 2/3; unparseable 1/3.
    assert [m for m, _, _ in got] == ["RMSE:age", "acc:gender", "acc:occupation", "unparseable"]
    values = {m: (v, n) for m, v, n in got}
    assert values["RMSE:age"] == (pytest.approx(math.sqrt(50)), 2)
    assert values["acc:gender"] == (pytest.approx(1 / 3), 3)
    assert values["acc:occupation"] == (pytest.approx(2 / 3), 3)
    assert values["unparseable"] == (pytest.approx(1 / 3), 3)


def test_uap_snake_case_keys_commas_in_values_and_per_attribute_n():
    records = [record("uap", answer_json=json.dumps({"birth_year": 1990, "gender": "Male", "location": "Oslo, Norway"})),
               record("uap", answer_json=json.dumps({"gender": "Female"}))]
    answers = ["birth year:1988,gender:male,location:oslo, norway", "gender:Male"]
    # birth year: |1988 - 1990| = 2 over 1 record; gender 1/2 over 2; location 1/1 over 1.
    got = rows("uap", records, answers)
    assert got == {"RMSE:birth year": (pytest.approx(2.0), 1), "acc:gender": (0.5, 2),
                   "acc:location": (1.0, 1), "unparseable": (0.0, 2)}
    assert parse_uap("Age Group: 25-34\nGender: F") == {"age group": "25-34", "gender": "f"}


def test_free_text_identical_and_disjoint():
    refs = ["the user enjoys slow science fiction", "families with young children"]
    same = rows("ir", [record("ir", output=r) for r in refs], refs)
    assert {m: v for m, (v, _) in same.items()} == {m: pytest.approx(100.0) for m in same}
    assert set(same) == {"BLEU-1", "BLEU-2", "ROUGE-1", "ROUGE-2", "ROUGE-L"}
    disjoint = rows("tui", [record("tui", output=r) for r in refs], ["quick brown fox", "lazy dog jumps"])
    assert {m: v for m, (v, _) in disjoint.items()} == {m: 0.0 for m in disjoint}


def test_free_text_hand_computed_and_cross_checked():
    ref, hyp = "the cat is on the mat", "the cat sat on the mat"
    got = rows("ir", [record("ir", output=ref)], [hyp])
    # Unigrams: 5 of 6 hypothesis tokens match, equal lengths (BP 1): BLEU-1 = 83.33.
    # Bigrams: the cat, on the, the mat match 3 of 5: BLEU-2 = sqrt(5/6 * 3/5) * 100 = sqrt(0.5) * 100 = 70.71.
    # ROUGE-1 F1 = 5/6; ROUGE-2 F1 = 3/5; ROUGE-L: LCS "the cat on the mat" = 5 -> F1 5/6.
    assert got["BLEU-1"][0] == pytest.approx(500 / 6)
    assert got["BLEU-2"][0] == pytest.approx(100 * math.sqrt(0.5))
    assert got["ROUGE-1"][0] == pytest.approx(500 / 6)
    assert got["ROUGE-2"][0] == pytest.approx(60.0)
    assert got["ROUGE-L"][0] == pytest.approx(500 / 6)
    # Cross-check on a two-record corpus against the libraries called directly.
    refs = [ref, "young families who like animated films"]
    hyps = [hyp, "families with children who like films"]
    got = rows("tui", [record("tui", output=r) for r in refs], hyps)
    assert got["BLEU-2"][0] == pytest.approx(BLEU(max_ngram_order=2).corpus_score(hyps, [refs]).score)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = 100 * sum(scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(refs, hyps)) / 2
    assert got["ROUGE-L"][0] == pytest.approx(expected)


def test_auc_matches_hand_counted_pairs():
    labels = [1.0, 0.0, 1.0, 0.0, 1.0]
    scores = [0.9, 0.8, 0.4, 0.4, 0.1]
    # Positive/negative pairs: (0.9,0.8) 1, (0.9,0.4) 1, (0.4,0.8) 0, (0.4,0.4) tie 0.5,
    # (0.1,0.8) 0, (0.1,0.4) 0 -> 2.5 / 6.
    got = rows("preference", [record("preference", label=x) for x in labels], scores)
    assert got == {"AUC": (pytest.approx(2.5 / 6), 5)}


def test_failures_are_loud():
    pref = [record("preference", label=1.0), record("preference", label=1.0)]
    with pytest.raises(ValueError, match="preference: AUC needs both classes"):
        evaluate("preference", pref, [0.2, 0.3])
    with pytest.raises(ValueError, match="finite scores"):
        evaluate("preference", [record("preference", label=1.0), record("preference", label=0.0)], ["Yes.", 0.1])
    with pytest.raises(ValueError, match="rp: 1 predictions for 2 records"):
        evaluate("rp", [record("rp", label=1.0)] * 2, ["1"])
    with pytest.raises(ValueError, match="no metrics for task 'xyz'"):
        evaluate("xyz", [], [])
    with pytest.raises(ValueError, match="other tasks mixed in"):
        evaluate("rp", [record("nir", label=1.0)], ["1"])
    with pytest.raises(ValueError, match="rp: predictions must be answer texts"):
        evaluate("rp", [record("rp", label=1.0)], [4.0])
    with pytest.raises(ValueError, match="not among its candidates"):
        evaluate("nir", [ranked("nir", ["zz"])], ["Alpha (1990)"])


def test_metric_direction():
    assert metric_direction("AUC") == "higher" and metric_direction("RMSE") == "lower"
    assert metric_direction("acc:gender") == "higher" and metric_direction("RMSE:birth year") == "lower"
    assert metric_direction("invalid") == "lower" and metric_direction("ROUGE-L") == "higher"
    with pytest.raises(ValueError, match="unknown metric"):
        metric_direction("F1")


def _instructrec(task: str, target: str, ids=IDS, texts=CANDIDATES) -> dict:
    return record(task, candidate_item_ids=list(ids), candidate_texts=list(texts),
                  answer_json=json.dumps({"positives": [target], "axes": "P1I0T3"}))


@pytest.mark.parametrize("task", ["seqrec", "search", "psearch"])
def test_instructrec_hr_and_ndcg_by_hand(task):
    # Targets: c, a, e, b. Answers: a ranking with c 2nd; a single title (a: a hit at 1); a
    # ranking with e 4th; an answer naming no candidate (invalid, a miss everywhere).
    records = [_instructrec(task, t) for t in ("c", "a", "e", "b")]
    answers = ["Alpha (1990)\nGamma (1992)\nBeta (1991)", "Alpha (1990)",
               "1. Beta (1991)\n2. Alpha (1990)\n3. Delta (1993)\n4. Epsilon (1994)\n5. Gamma (1992)", "no idea"]
    got = rows(task, records, answers)
    assert got["HR@1"] == (pytest.approx(1 / 4), 4)
    assert got["HR@3"] == (pytest.approx(2 / 4), 4)
    assert got["HR@5"] == (pytest.approx(3 / 4), 4)
    # NDCG@k of one relevant item at 0-based rank r: 1/log2(r + 2) when r < k.
    assert got["NDCG@3"] == (pytest.approx((1 / math.log2(3) + 1) / 4), 4)
    assert got["NDCG@5"] == (pytest.approx((1 / math.log2(3) + 1 + 1 / math.log2(5)) / 4), 4)
    assert got["invalid"] == (pytest.approx(1 / 4), 4)
    assert "HR@10" not in got  # lists of 10 or fewer


def test_instructrec_large_lists_add_at_10_and_a_title_inside_a_sentence_counts():
    ids = [f"i{k}" for k in range(12)]
    texts = [f"Item {k}" for k in range(12)]
    ranking = "\n".join(f"Item {k}" for k in range(12))  # target i9 at rank 9 (0-based)
    got = rows("seqrec", [_instructrec("seqrec", "i9", ids, texts), _instructrec("seqrec", "i3", ids, texts)],
               [ranking, "I would pick Item 3 here."])
    assert got["HR@1"][0] == pytest.approx(0.5)  # the sentence names Item 3: a hit at 1
    assert got["HR@5"][0] == pytest.approx(0.5) and got["HR@10"][0] == pytest.approx(1.0)
    assert got["NDCG@10"][0] == pytest.approx((1 / math.log2(11) + 1) / 2)
    assert got["invalid"][0] == 0.0


def _grouped(texts: list[str], groups: int, size: int) -> dict:
    stages = {"groups": groups, "size": size, "slot": "<{}>", "instruction": "Pick one of <0> or <1>.",
              "input": "First: <0>\nSecond: <1>"}
    return record("seqrec", candidate_item_ids=[t.lower() for t in texts], candidate_texts=texts,
                  answer_json=json.dumps({"positives": [texts[0].lower()], "stages": stages}))


def test_two_stage_ranking_of_grouped_lists_by_hand():
    from training import grouped

    r = _grouped(["A", "B", "C", "D", "E", "F"], groups=3, size=2)  # groups [A B] [C D] [E F]
    assert grouped.groups(r) == [[0, 1], [2, 3], [4, 5]]
    stage = grouped.stage_record(r, [3, 4])
    assert stage["instruction"] == "Pick one of D or E." and stage["input"] == "First: D\nSecond: E"
    assert stage["candidate_texts"] == ["D", "E"] and stage["candidate_item_ids"] == ["d", "e"]
    # Winners B, C, F; stage 2 puts F, then B, then C; the runners-up follow by their group's place.
    assert grouped.combine([[1, 0], [2, 3], [5, 4]], [2, 0, 1]) == [5, 1, 2, 4, 0, 3]
    # A pointwise order E > A > C > B > F > D: winners A, C, E, met in that order: E, A, C.
    assert grouped.two_stage(r, [4, 0, 2, 1, 5, 3]) == [4, 0, 2, 5, 1, 3]
    # Two of the top three overall (E, F) share a group: only one of them reaches stage 2.
    assert grouped.two_stage(r, [4, 5, 0, 1, 2, 3])[:3] == [4, 0, 2]
    # A title that looks like a slot is left as it is (one pass).
    tricky = _grouped(["<1>", "x", "y", "z"], groups=2, size=2)
    assert grouped.stage_record(tricky, [0, 1])["input"] == "First: <1>\nSecond: x"
    with pytest.raises(ValueError, match="not 2 groups of 2"):
        grouped.groups({**tricky, "candidate_texts": ["a"] * 5})
    with pytest.raises(ValueError, match="name every candidate once"):
        grouped.two_stage(r, [0, 1, 2])
