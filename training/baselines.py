"""Classic baselines for every task, answering in the same format a model does so that
`training.metrics.evaluate` scores both alike.

`baselines(task, train, test, seed)` -> {name: one prediction per test record}:
- "random" (every task): seeded guesses from the candidates or the train distribution.
- "popularity" (all but ir, tui, search): item popularity = appearances in train records (target plus
  history); uap: the most frequent train value per attribute.
- "item-kNN" (rp, tkr, cdr, nir, seqrec, psearch): cosine similarity of items over train records'
  item sets.
- "BM25" (search, psearch): the candidates' item text ranked against the intention the prompt
  states (bm25s, Lucene scoring), InstructRec's text-match baseline.
- "logistic regression" (preference): TALLRec's 3-feature LR (history like-ratio, item like-rate,
  log popularity), the baseline every LLM AUC must be read next to.

Fit on `train` only. Test records are cut down to their prompt-side columns (INPUT_COLUMNS) before
any baseline sees them, so no baseline can read a test label, output or answer. Of an InstructRec
record's answer_json only the prompt-side keys pass (PROMPT_KEYS: the query the prompt states and
each candidate's item text).
"""

import json
import math
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from itdr_pipeline.records import UAP_ATTRIBUTES
from itdr_pipeline.taskspec import TASKS, task_spec, tasks_where
from training import grouped
from training.answers import NUMERIC_ATTRIBUTES, parse_ranking
from training.train_stats import ItemSimilarity, TrainStats, lr_features

Prediction = float | str
RANKING_TASKS = tasks_where(candidates=True)
YES_NO_TASKS = tasks_where(answer="yes_no")  # preference and preference_hints
PROMPT_KEYS = ("query", "candidate_docs")  # InstructRec answer_json keys that the prompt shows
# What a test record's prompt shows (history_labels included: the prompt lists liked/disliked
# items or past ratings). Never label, output, answer_json or ranking_item_ids.
INPUT_COLUMNS = ("task", "record_idx", "user_id", "target_item_id", "candidate_item_ids", "candidate_texts",
                 "history_item_ids", "history_labels", "source_history_item_ids", "instruction", "input")
_ATTRIBUTE_ORDER = {name: i for i, (name, _key) in enumerate(UAP_ATTRIBUTES.values())}


def baselines(task: str, train: Sequence[dict], test: Sequence[dict], seed: int) -> dict[str, list[Prediction]]:
    """Baseline name -> predictions for `test`, in order, fitted on `train` (the same cell's train split).
    Grouped InstructRec lists (100 candidates in 10 groups) are ranked in the model's two stages:
    each baseline's order, group by group, then the winners (training.grouped)."""
    out = _baselines(task, train, test, seed)
    if task not in ("seqrec", "search", "psearch") or not any(grouped.stages(r) for r in test):
        return out
    def staged(r: dict, p: Prediction) -> Prediction:
        order = parse_ranking(str(p), r["candidate_texts"])[0]
        return _ranked(task, r["candidate_texts"], grouped.two_stage(r, order)) if grouped.stages(r) else p
    return {name: [staged(r, p) for r, p in zip(test, predictions)] for name, predictions in out.items()}


def _baselines(task: str, train: Sequence[dict], test: Sequence[dict], seed: int) -> dict[str, list[Prediction]]:
    if task not in TASKS:
        raise ValueError(f"no baselines for task {task!r}; known: {TASKS}")
    if not train:
        raise ValueError(f"{task}: baselines need train records, got none")
    for split, records in (("train", train), ("test", test)):
        others = sorted({str(r.get("task")) for r in records} - {task})
        if others:
            raise ValueError(f"{task}: {split} records of other tasks mixed in: {others}")
    inputs = [{**{k: r[k] for k in INPUT_COLUMNS if k in r}, **_prompt_side(task, r)} for r in test]
    fitted: list[TrainStats] = []

    def stats() -> TrainStats:  # fitted once, for the baselines that read train statistics
        if not fitted:
            fitted.append(TrainStats(train))
        return fitted[0]

    makers = {  # the task's baselines come from its TaskSpec (search: random and BM25 alone; see there)
        "random": lambda: _random(task, train, inputs, seed),
        "popularity": lambda: _popularity(task, train, inputs, stats()),
        "item-kNN": lambda: _item_knn(task, train, inputs, stats()),
        "BM25": lambda: _bm25(task, inputs),
        "logistic regression": lambda: _logistic_regression(train, inputs, stats()),
    }
    return {name: makers[name]() for name in task_spec(task).baselines}


def _fmt_number(x: float) -> str:
    """4.0 -> "4", 3.5 -> "3.5": the way ratings and ages read in the outputs."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _candidates(record: dict, task: str) -> list[str]:
    texts = list(record.get("candidate_texts") or [])
    if not texts or len(texts) != len(record.get("candidate_item_ids") or []):
        raise ValueError(f"{task}: record {record.get('record_idx')} needs as many candidate_texts "
                         f"as candidate_item_ids (and some)")
    return texts


def _prompt_side(task: str, record: dict) -> dict:
    """InstructRec: the query and candidate texts the prompt shows, from answer_json."""
    if task not in ("seqrec", "search", "psearch"):
        return {}
    answer = json.loads(record["answer_json"])
    return {k: answer.get(k) for k in PROMPT_KEYS}


def _bm25(task: str, test: list[dict]) -> list[Prediction]:
    """Candidates ranked by BM25 against the stated query; the index holds every candidate text of
    the test records (document frequencies from the whole candidate pool); ties: prompt order."""
    import logging

    import bm25s  # only the search tasks need it

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each index build at INFO

    docs = sorted({d for r in test for d in (r.get("candidate_docs") or [])})
    if not docs:
        raise ValueError(f"{task}: BM25 needs candidate_docs in answer_json (records rendered before InstructRec v1?)")
    index = {d: i for i, d in enumerate(docs)}
    model = bm25s.BM25()
    model.index(bm25s.tokenize(docs, stopwords="en", show_progress=False), show_progress=False)
    out: list[Prediction] = []
    for r in test:
        texts = _candidates(r, task)
        tokens = bm25s.tokenize([r.get("query") or ""], stopwords="en", return_ids=False, show_progress=False)[0]
        scores = model.get_scores(tokens) if tokens else np.zeros(len(docs))
        mine = [float(scores[index[d]]) for d in r["candidate_docs"]]
        out.append(_ranked(task, texts, sorted(range(len(texts)), key=lambda i: (-mine[i], i))))
    return out


def _ranked(task: str, texts: list[str], order: list[int]) -> str:
    """The answer text for a candidate order: nir the first one, the other ranking tasks all,
    one per line."""
    return texts[order[0]] if task == "nir" else "\n".join(texts[i] for i in order)


def _train_labels(train: Sequence[dict], task: str) -> list[float]:
    labels = [float(r["label"]) for r in train if r.get("label") is not None]
    if not labels:
        raise ValueError(f"{task}: no train record has a label")
    return labels


def _attribute_values(train: Sequence[dict]) -> dict[str, list]:
    """uap: attribute name (as the output spells it) -> its train values, in output order."""
    values: dict[str, list] = defaultdict(list)
    for r in train:
        for key, value in json.loads(r["answer_json"]).items():
            values[key.replace("_", " ")].append(value)
    if not values:
        raise ValueError("uap: no attribute values in the train answers")
    return {a: values[a] for a in sorted(values, key=lambda a: (_ATTRIBUTE_ORDER.get(a, len(_ATTRIBUTE_ORDER)), a))}


def _fmt_attributes(values: dict[str, object]) -> str:
    return ",".join(f"{a}:{_fmt_number(v) if isinstance(v, (int, float)) else v}" for a, v in values.items())


def _random(task: str, train: Sequence[dict], test: list[dict], seed: int) -> list[Prediction]:
    rng = random.Random(f"{seed}:random:{task}")
    if task in YES_NO_TASKS:
        return [rng.random() for _ in test]
    if task == "rp":
        labels = _train_labels(train, task)
        return [_fmt_number(rng.choice(labels)) for _ in test]
    if task in RANKING_TASKS:
        out = []
        for r in test:
            texts = _candidates(r, task)
            out.append(_ranked(task, texts, rng.sample(range(len(texts)), len(texts))))
        return out
    if task == "uap":
        dist = _attribute_values(train)
        return [_fmt_attributes({a: rng.choice(vs) for a, vs in dist.items()}) for _ in test]
    return [str(rng.choice(train)["output"]) for _ in test]  # ir, tui


def _mode(attr: str, values: list) -> object:
    """Most frequent value (ties: smallest as text); numeric attributes: the median rounded half up."""
    if attr in NUMERIC_ATTRIBUTES:
        return math.floor(statistics.median(float(v) for v in values) + 0.5)
    counts = Counter(values)
    return min(counts, key=lambda v: (-counts[v], str(v)))


def _popularity(task: str, train: Sequence[dict], test: list[dict], stats: TrainStats) -> list[Prediction]:
    if task in YES_NO_TASKS:
        return [float(stats.popularity[r["target_item_id"]]) for r in test]
    if task == "rp":
        if math.isnan(stats.global_mean):
            raise ValueError("rp: no train ratings for the popularity baseline")
        return [f"{stats.item_mean(r['target_item_id']):.2f}" for r in test]
    if task == "uap":
        answer = _fmt_attributes({a: _mode(a, vs) for a, vs in _attribute_values(train).items()})
        return [answer for _ in test]
    return [_ranked(task, _candidates(r, task), stats.by_popularity(r["candidate_item_ids"])) for r in test]


def _item_knn(task: str, train: Sequence[dict], test: list[dict], stats: TrainStats) -> list[Prediction]:
    similarity = ItemSimilarity(train)
    out: list[Prediction] = []
    for r in test:
        history = list(r.get("history_item_ids") or [])
        if task == "rp":
            labels = np.array(r.get("history_labels") or [], dtype=float)
            if len(labels) != len(history):
                raise ValueError(f"rp: test record {r.get('record_idx')} history and history_labels differ in length")
            weights = similarity.between([r["target_item_id"]], history)[0]
            guess = (weights @ labels / weights.sum() if weights.sum() > 0
                     else labels.mean() if len(labels) else stats.global_mean)
            if math.isnan(guess):
                raise ValueError("rp: no train ratings and no history to fall back on")
            out.append(f"{guess:.2f}")
            continue
        ids = r["candidate_item_ids"]
        score = similarity.between(ids, history).sum(axis=1)
        order = sorted(range(len(ids)), key=lambda i: (-score[i], -stats.popularity[ids[i]], i))
        out.append(_ranked(task, _candidates(r, task), order))
    return out


def _logistic_regression(train: Sequence[dict], test: list[dict], stats: TrainStats) -> list[Prediction]:
    labels = _train_labels(train, "preference")
    if len(labels) != len(train) or set(labels) != {0.0, 1.0}:
        raise ValueError("preference: logistic regression needs a 1.0/0.0 label on every train record, both classes")
    # Scaling only conditions the solver (popularity is on another scale); lbfgs is deterministic.
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(lr_features(train, stats), labels)
    if not test:
        return []
    return [float(p) for p in model.predict_proba(lr_features(test, stats))[:, 1]]


HYBRID = "LoRA + LR features (hybrid)"


def hybrid(train: Sequence[dict], valid: Sequence[dict], test: Sequence[dict], valid_yes: Sequence[float],
           test_yes: Sequence[float]) -> list[Prediction]:
    """Yes/No tasks: the tuned model's P(Yes) combined with the logistic regression's three features
    by a calibrator (a logistic regression) fitted on the valid split. Reported as its own labelled
    row, never in place of the plain tuned model's. Features come from train only, as the LR's do;
    the calibrator sees valid labels, never test ones."""
    labels = [float(r["label"]) for r in valid]
    if len(valid_yes) != len(valid) or len(test_yes) != len(test):
        raise ValueError("hybrid: one model score per valid and per test record is needed")
    if set(labels) != {0.0, 1.0}:
        raise ValueError("hybrid: the valid sample needs both classes to fit the calibrator")
    stats = TrainStats(train)
    inputs = [{k: r[k] for k in INPUT_COLUMNS if k in r} for r in test]

    def features(records: Sequence[dict], yes: Sequence[float]) -> np.ndarray:
        p = np.clip(np.asarray(yes, dtype=float), 1e-6, 1 - 1e-6)
        return np.column_stack([np.log(p / (1 - p)), lr_features(records, stats)])

    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(features(valid, valid_yes), labels)
    return [float(p) for p in model.predict_proba(features(inputs, test_yes))[:, 1]]
