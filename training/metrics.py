"""Score a model's (or a baseline's) answers against published test records, task by task.

`evaluate(task, records, predictions)` returns rows `(metric, value, n)`, n being the number of
records the value was computed over. Answers are the text a model produces (the preference task
alone takes a score: higher = more likely "Yes."), read by `training.answers`: an answer that
names no candidate or holds no number is counted as such ("invalid", "unparseable"), never guessed.

- preference: AUC (scikit-learn).
- rp: RMSE and MAE over the answers that hold a rating, plus the unparseable share.
- tkr, cdr: NDCG@10, Hit@1, P@5 against answer_json's positives, plus the invalid-list share.
- nir: Hit@1, plus the share of answers that name no candidate.
- seqrec, search, psearch (InstructRec): HR@1/3/5 and NDCG@3/5 (plus HR@10 and NDCG@10 for lists
  of more than 10), as the paper: the target's rank among the candidates the answer names, in
  order (a ranking, one per line, or a single title: then only HR@1 can score), plus the invalid
  share (answers that name no candidate).
- uap: accuracy per categorical attribute, RMSE per numeric one, plus the unparseable share.
- ir, tui: corpus BLEU-1/2 (sacrebleu) and mean ROUGE-1/2/L F1 (rouge_score), on a 0-100 scale.

No dagster import: this runs out of process.
"""

import json
import math
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from itdr_pipeline.taskspec import TASK_SPECS, task_spec
from training.answers import (ATTRIBUTE_NAMES, NUMERIC_ATTRIBUTES, first_number, match_choice, named_order,
                              parse_ranking, parse_rating, parse_uap)

Prediction = float | str
Row = tuple[str, float, int]

METRIC_DIRECTION: dict[str, str] = {
    "AUC": "higher", "RMSE": "lower", "MAE": "lower", "unparseable": "lower", "invalid": "lower",
    "invalid@stage1": "lower",
    "NDCG@10": "higher", "Hit@1": "higher", "P@5": "higher", "acc": "higher",
    "HR@1": "higher", "HR@3": "higher", "HR@5": "higher", "HR@10": "higher", "NDCG@3": "higher", "NDCG@5": "higher",
    "BLEU-1": "higher", "BLEU-2": "higher", "ROUGE-1": "higher", "ROUGE-2": "higher", "ROUGE-L": "higher",
}  # "acc:<attr>" and "RMSE:<attr>" go by their prefix: use metric_direction()


def metric_direction(metric: str) -> str:
    """"higher" or "lower" is better, for a metric name as `evaluate` writes it."""
    name = metric if metric in METRIC_DIRECTION else metric.split(":", 1)[0]
    if name not in METRIC_DIRECTION:
        raise ValueError(f"unknown metric {metric!r}")
    return METRIC_DIRECTION[name]


def evaluate(task: str, records: Sequence[dict], predictions: Sequence[Prediction]) -> list[Row]:
    """Rows (metric, value, n) for one task's records and the matching predictions, in order."""
    if task not in _SCORERS:
        raise ValueError(f"no metrics for task {task!r}; known: {sorted(_SCORERS)}")
    if len(predictions) != len(records):
        raise ValueError(f"{task}: {len(predictions)} predictions for {len(records)} records")
    if not records:
        raise ValueError(f"{task}: no records to evaluate")
    others = sorted({str(r.get("task")) for r in records} - {task})
    if others:
        raise ValueError(f"{task}: records of other tasks mixed in: {others}")
    if task_spec(task).answer != "yes_no":
        bad = [i for i, p in enumerate(predictions) if not isinstance(p, str)]
        if bad:
            raise ValueError(f"{task}: predictions must be answer texts; record {bad[0]} got {predictions[bad[0]]!r}")
    return _SCORERS[task](records, predictions)


def _answer(record: dict, task: str) -> dict:
    try:
        answer = json.loads(record["answer_json"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{task}: record {record.get('record_idx')} has no readable answer_json") from exc
    if not isinstance(answer, dict):
        raise ValueError(f"{task}: record {record.get('record_idx')} answer_json is not an object")
    return answer


def _positives(record: dict, task: str) -> set[str]:
    positives = set(_answer(record, task).get("positives") or [])
    ids = record["candidate_item_ids"]
    if len(ids) != len(record["candidate_texts"]):
        raise ValueError(f"{task}: record {record.get('record_idx')} has {len(ids)} candidate ids "
                         f"but {len(record['candidate_texts'])} candidate texts")
    if not positives or not positives <= set(ids):
        raise ValueError(f"{task}: record {record.get('record_idx')} positives {sorted(positives)} "
                         f"are empty or not among its candidates")
    return positives


def _preference(records: Sequence[dict], predictions: Sequence[Prediction]) -> list[Row]:
    labels = [r.get("label") for r in records]
    if any(label not in (0.0, 1.0) for label in labels):
        raise ValueError(f"preference: labels must be 1.0/0.0, got {sorted(set(map(repr, labels)))[:5]}")
    if not all(isinstance(p, (int, float, np.number)) and not isinstance(p, bool) and math.isfinite(p)
               for p in predictions):
        raise ValueError("preference: predictions must be finite scores (higher = more likely Yes)")
    if len(set(labels)) < 2:
        raise ValueError(f"preference: AUC needs both classes, the test labels are all {labels[0]}")
    return [("AUC", float(roc_auc_score(labels, [float(p) for p in predictions])), len(records))]


def _errors(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """(RMSE, MAE) over (truth, prediction) pairs; NaN when there are none (n = 0 says why)."""
    if not pairs:
        return math.nan, math.nan
    err = np.array([p - t for t, p in pairs])
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))


def _rp(records: Sequence[dict], predictions: Sequence[Prediction]) -> list[Row]:
    if any(r.get("label") is None for r in records):
        raise ValueError("rp: every record needs its rating in `label`")
    parsed = [parse_rating(p) for p in predictions]
    pairs = [(float(r["label"]), p) for r, p in zip(records, parsed) if p is not None]
    rmse, mae = _errors(pairs)
    return [("RMSE", rmse, len(pairs)), ("MAE", mae, len(pairs)),
            ("unparseable", 1 - len(pairs) / len(records), len(records))]


def _ranking(task: str) -> Callable[[Sequence[dict], Sequence[Prediction]], list[Row]]:
    def score(records: Sequence[dict], predictions: Sequence[Prediction]) -> list[Row]:
        totals = np.zeros(4)  # NDCG@10, Hit@1, P@5, invalid
        for r, text in zip(records, predictions):
            positives = _positives(r, task)
            order, valid = parse_ranking(text, r["candidate_texts"])
            rel = [r["candidate_item_ids"][i] in positives for i in order]
            dcg = sum(1 / math.log2(k + 2) for k, hit in enumerate(rel[:10]) if hit)
            idcg = sum(1 / math.log2(k + 2) for k in range(min(len(positives), 10)))
            totals += (dcg / idcg, rel[0], sum(rel[:5]) / 5, not valid)
        n = len(records)
        return [(name, float(v / n), n) for name, v in zip(("NDCG@10", "Hit@1", "P@5", "invalid"), totals)]
    return score


def _nir(records: Sequence[dict], predictions: Sequence[Prediction]) -> list[Row]:
    hits = invalid = 0
    for r, text in zip(records, predictions):
        positives = _positives(r, "nir")
        choice = match_choice(text, r["candidate_texts"])
        invalid += choice is None
        hits += choice is not None and r["candidate_item_ids"][choice] in positives
    n = len(records)
    return [("Hit@1", hits / n, n), ("invalid", invalid / n, n)]


def _instructrec(task: str) -> Callable[[Sequence[dict], Sequence[Prediction]], list[Row]]:
    def score(records: Sequence[dict], predictions: Sequence[Prediction]) -> list[Row]:
        large = max(len(r["candidate_item_ids"]) for r in records) > 10
        hr_at, ndcg_at = (1, 3, 5, *((10,) if large else ())), (3, 5, *((10,) if large else ()))
        hr, ndcg, invalid = np.zeros(len(hr_at)), np.zeros(len(ndcg_at)), 0
        for r, text in zip(records, predictions):
            positives = _positives(r, task)
            named = named_order(text, r["candidate_texts"])
            invalid += not named
            rank = next((k for k, i in enumerate(named) if r["candidate_item_ids"][i] in positives), None)
            if rank is None:
                continue
            hr += [rank < k for k in hr_at]
            ndcg += [1 / math.log2(rank + 2) if rank < k else 0.0 for k in ndcg_at]
        n = len(records)
        return ([(f"HR@{k}", float(v / n), n) for k, v in zip(hr_at, hr)]
                + [(f"NDCG@{k}", float(v / n), n) for k, v in zip(ndcg_at, ndcg)] + [("invalid", invalid / n, n)])
    return score


def _uap(records: Sequence[dict], predictions: Sequence[Prediction]) -> list[Row]:
    scores: dict[str, list] = {}  # categorical: True/False per record; numeric: (truth, pred) pairs
    unparseable = 0
    for r, text in zip(records, predictions):
        truth = {k.replace("_", " ").casefold(): v for k, v in _answer(r, "uap").items()}
        guess = parse_uap(text)
        scored = False
        for attr, value in truth.items():
            if attr in NUMERIC_ATTRIBUTES:
                pred = first_number(guess.get(attr, ""))
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"uap: record {r.get('record_idx')} {attr} {value!r} is not a number")
                pairs = scores.setdefault(attr, [])  # the row stays, with n = 0, if none parse
                if pred is not None:
                    pairs.append((float(value), pred))
                scored |= pred is not None
            else:
                scores.setdefault(attr, []).append(guess.get(attr, "").strip() == str(value).strip().casefold())
                scored |= attr in guess
        unparseable += not scored
    rank = {a: i for i, a in enumerate(ATTRIBUTE_NAMES)}
    rows: list[Row] = []
    for attr in sorted(scores, key=lambda a: (rank.get(a, len(rank)), a)):
        if attr in NUMERIC_ATTRIBUTES:
            rows.append((f"RMSE:{attr}", _errors(scores[attr])[0], len(scores[attr])))
        else:
            rows.append((f"acc:{attr}", float(np.mean(scores[attr])), len(scores[attr])))
    return rows + [("unparseable", unparseable / len(records), len(records))]


def _free_text(records: Sequence[dict], predictions: Sequence[Prediction]) -> list[Row]:
    # Imported here: rouge_score pulls in nltk (~2 s), which no other task needs.
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU

    refs = [r.get("output") for r in records]
    if not all(isinstance(ref, str) for ref in refs):
        raise ValueError("ir/tui: every record needs its reference text in `output`")
    hyps = list(predictions)
    n = len(records)
    rows: list[Row] = [(f"BLEU-{order}", float(BLEU(max_ngram_order=order).corpus_score(hyps, [refs]).score), n)
                       for order in (1, 2)]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])  # library defaults: no stemming
    pairs = [scorer.score(ref, hyp) for ref, hyp in zip(refs, hyps)]  # score(target, prediction)
    for key, name in (("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L")):
        rows.append((name, 100 * float(np.mean([p[key].fmeasure for p in pairs])), n))
    return rows


Scorer = Callable[[Sequence[dict], Sequence[Prediction]], list[Row]]
# TaskSpec.metric -> the scorer for a task of that family.
FAMILIES: dict[str, Callable[[str], Scorer]] = {
    "auc": lambda _task: _preference, "rating": lambda _task: _rp, "ranking": _ranking, "choice": lambda _task: _nir,
    "attributes": lambda _task: _uap, "text": lambda _task: _free_text, "instructrec": _instructrec,
}
_SCORERS: dict[str, Scorer] = {s.id: FAMILIES[s.metric](s.id) for s in TASK_SPECS}
