"""Evaluate one cell's test split: the base model zero-shot, the tuned adapter and classic baselines,
all scored by the same metrics (training.metrics), into report rows {task, dataset, model, metric,
value, n}.

How each task is answered (the model sees exactly the published prompt, in its chat template):
- preference: P(Yes) vs P(No) at the first answer token, one forward pass (no generation);
- nir: greedy generation, and also likelihood scoring of the 5 candidates ("... (likelihood)");
- seqrec, search, psearch: the same two; likelihood scoring answers with every candidate, most
  likely first, which is how InstructRec ranks a candidate list (HR@k, NDCG@k); grouped lists
  (InstructRec's 100 candidates in 10 groups) are ranked in two stages (training.grouped), as the
  baselines rank them;
- every other task: greedy generation up to the end-of-turn token, with a budget of 1.25x the
  longest reference answer in the evaluated records (+8 tokens), so a model can always finish.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itdr_pipeline.taskspec import task_spec
from training import answers, grouped, metrics
from training.baselines import HYBRID, baselines, hybrid
from training.config import RunConfig
from training.data import PromptEncoder, load_split, sample
from training.infer import candidate_logprobs, generate, score_yes_no
from training.model import load_model, load_tokenizer, resolve_base, use_bf16

Report = Callable[[str, dict[str, Any]], None]
ZERO_SHOT, TUNED = "zero-shot", "LoRA"


@dataclass
class Evaluation:
    rows: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> seconds, records, per_second
    records: int = 0
    samples: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # model -> a few outputs to eyeball

    def merge(self, other: "Evaluation", prefix: str) -> None:
        """Another cell's evaluation into this one (a mixed run); timings and samples keyed by cell."""
        key = (lambda name: f"{prefix}: {name}") if prefix else (lambda name: name)
        self.rows += other.rows
        self.records += other.records
        self.timings.update({key(k): v for k, v in other.timings.items()})
        self.samples.update({key(k): v for k, v in other.samples.items()})

    def add(self, cfg: RunConfig, dataset: str, model: str, scored: list[tuple[str, float, int]]) -> None:
        self.rows += [{"task": cfg.task, "dataset": dataset, "model": model, "metric": m, "value": float(v), "n": int(n)}
                      for m, v, n in scored]


def evaluate(cfg: RunConfig, adapter: Path | None, report: Report) -> Evaluation:
    test = sample(load_split(Path(cfg.version_dir), cfg.task, cfg.profile, "test"), cfg.eval_limit, cfg.seed)
    dataset = test[0]["dataset"]
    out = Evaluation(records=len(test))
    report(f"evaluating {cfg.cell} of {cfg.version} on {len(test)} test records", {"test_records": len(test)})
    staged = _grouped_cell(test)
    if cfg.baselines:
        train = load_split(Path(cfg.version_dir), cfg.task, cfg.profile, "train")
        started = time.perf_counter()
        for name, predictions in baselines(cfg.task, train, test, cfg.seed).items():
            out.add(cfg, dataset, name, metrics.evaluate(cfg.task, test, predictions))
        report(f"baselines scored in {time.perf_counter() - started:.1f} s", {})
    models = ([] if cfg.skip_base else [(ZERO_SHOT, None)]) + ([] if cfg.skip_tuned or adapter is None
                                                                  else [(TUNED, str(adapter))])
    if not models:
        return out
    base = resolve_base(cfg.base_model, cfg.models_dir)
    tokenizer = load_tokenizer(base)
    encoder = PromptEncoder(tokenizer, cfg.max_length)
    prompts = [] if staged else [encoder.prompt_ids(r) for r in test]
    for name, adapter_path in models:
        model = load_model(base, adapter_path)
        started = time.perf_counter()
        extra: dict[str, list[metrics.Row]] = {}
        answers = (_answer_grouped(cfg, model, tokenizer, encoder, test, _progress(report, name), extra) if staged
                   else _answer(cfg, model, tokenizer, test, prompts, _progress(report, name)))
        seconds = time.perf_counter() - started
        out.timings[name] = {"seconds": round(seconds, 2), "records": len(test),
                             "records_per_second": round(len(test) / seconds, 2) if seconds else 0.0}
        for variant, predictions in answers.items():
            label = name if variant == "" else f"{name} ({variant})"
            out.add(cfg, dataset, label, metrics.evaluate(cfg.task, test, predictions) + extra.get(variant, []))
            out.samples[label] = [{"reference": r["output"], "answer": str(p)} for r, p in zip(test[:3], predictions)]
        report(f"{name}: {len(test)} records in {seconds:.1f} s", {})
        if name == TUNED and cfg.hybrid and task_spec(cfg.task).answer == "yes_no":
            _add_hybrid(cfg, out, dataset, model, tokenizer, encoder, test, answers[""], report)
        del model
    return out


def _add_hybrid(cfg: RunConfig, out: Evaluation, dataset: str, model: Any, tokenizer: Any, encoder: PromptEncoder,
                test: list[dict[str, Any]], test_yes: list[metrics.Prediction], report: Report) -> None:
    """The hybrid row (training.baselines.hybrid): P(Yes) on a seeded valid sample fits the calibrator."""
    version = Path(cfg.version_dir)
    valid = sample(load_split(version, cfg.task, cfg.profile, "valid"), cfg.valid_limit, cfg.seed)
    started = time.perf_counter()
    valid_yes = score_yes_no(model, tokenizer, [encoder.prompt_ids(r) for r in valid], cfg.eval_batch_size,
                             use_bf16(cfg.precision), _progress(report, f"{TUNED} on valid"))
    train = load_split(version, cfg.task, cfg.profile, "train")
    predictions = hybrid(train, valid, test, valid_yes, [float(p) for p in test_yes])
    out.add(cfg, dataset, HYBRID, metrics.evaluate(cfg.task, test, predictions))
    report(f"hybrid: calibrator fitted on {len(valid)} valid records in {time.perf_counter() - started:.1f} s", {})


def _answer(cfg: RunConfig, model: Any, tokenizer: Any, test: list[dict[str, Any]], prompts: list[list[int]],
            progress: Callable[[int, int], None], likelihood_only: bool = False) -> dict[str, list[metrics.Prediction]]:
    """Predictions by variant ("" = the main one) in the format training.metrics expects;
    `likelihood_only` skips generation where the task also ranks by likelihood (model selection)."""
    bf16, batch = use_bf16(cfg.precision), cfg.eval_batch_size
    spec = task_spec(cfg.task)
    if spec.answer == "yes_no":
        return {"": score_yes_no(model, tokenizer, prompts, batch, bf16, progress)}
    budget = int(1.25 * max(len(tokenizer.encode(r["output"], add_special_tokens=False)) for r in test)) + 8
    skip = likelihood_only and spec.answer == "generate+likelihood"
    out: dict[str, list[metrics.Prediction]] = (
        {} if skip else {"": generate(model, tokenizer, prompts, budget, batch, bf16, progress)})
    if spec.answer == "generate+likelihood":
        candidates = [r["candidate_texts"] for r in test]
        scores = candidate_logprobs(model, tokenizer, prompts, candidates, batch, bf16, progress)
        # Highest log-probability first; ties go to the earlier candidate. nir answers with the
        # top one; InstructRec's tasks with the whole order (HR@k, NDCG@k read it).
        orders = [sorted(range(len(s)), key=lambda i: (-s[i], i)) for s in scores]
        out["likelihood"] = [c[o[0]] if spec.metric == "choice" else "\n".join(c[i] for i in o)
                             for c, o in zip(candidates, orders)]
    return out


def _grouped_cell(test: list[dict[str, Any]]) -> bool:
    """Whether the cell's test records are grouped lists (all of them or none)."""
    flags = {grouped.stages(r) is not None for r in test}
    if len(flags) > 1:
        raise ValueError("the test split mixes grouped and plain candidate lists; render it with one "
                         "instructrec_groups setting")
    return flags == {True}


def _text(record: dict[str, Any], order: list[int]) -> str:
    return "\n".join(record["candidate_texts"][i] for i in order)


def _best_first(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))  # ties: the earlier candidate


def _answer_grouped(cfg: RunConfig, model: Any, tokenizer: Any, encoder: PromptEncoder, test: list[dict[str, Any]],
                    progress: Callable[[int, int], None],
                    extra: dict[str, list[metrics.Row]]) -> dict[str, list[metrics.Prediction]]:
    """Grouped lists (training.grouped), both ways the model answers: by generation (stage 1 names
    each group's winner; a group whose answer names none sends its first candidate and counts in
    "invalid@stage1"; stage 2 names the best winner) and by candidate likelihood (each group ranked,
    then its winners)."""
    bf16, batch = use_bf16(cfg.precision), cfg.eval_batch_size
    parts = [grouped.groups(r) for r in test]
    first = [grouped.stage_record(r, g) for r, gs in zip(test, parts) for g in gs]
    first_prompts = [encoder.prompt_ids(s) for s in first]

    def per_record(values: list[Any]) -> list[list[Any]]:
        it = iter(values)
        return [[next(it) for _ in gs] for gs in parts]

    def second(winners: list[list[int]]) -> tuple[list[dict[str, Any]], list[list[int]]]:
        records = [grouped.stage_record(r, w) for r, w in zip(test, winners)]
        return records, [encoder.prompt_ids(s) for s in records]

    budget = int(1.25 * max(len(tokenizer.encode(r["output"], add_special_tokens=False)) for r in test)) + 8
    picks = per_record(generate(model, tokenizer, first_prompts, budget, batch, bf16, progress))
    winners, invalid = [], 0
    for r, gs, said in zip(test, parts, picks):
        chosen = [answers.match_choice(text, [r["candidate_texts"][i] for i in g]) for g, text in zip(gs, said)]
        invalid += sum(c is None for c in chosen)
        winners.append([g[0] if c is None else g[c] for g, c in zip(gs, chosen)])
    _, final_prompts = second(winners)
    out: dict[str, list[metrics.Prediction]] = {
        "": generate(model, tokenizer, final_prompts, budget, batch, bf16, progress)}
    extra[""] = [("invalid@stage1", invalid / len(first), len(first))]

    scores = per_record(candidate_logprobs(model, tokenizer, first_prompts, [s["candidate_texts"] for s in first],
                                           batch, bf16, progress))
    group_orders = [[[g[i] for i in _best_first(s)] for g, s in zip(gs, sc)] for gs, sc in zip(parts, scores)]
    finals, final_prompts = second([[o[0] for o in orders] for orders in group_orders])
    final_scores = candidate_logprobs(model, tokenizer, final_prompts, [s["candidate_texts"] for s in finals],
                                      batch, bf16, progress)
    out["likelihood"] = [_text(r, grouped.combine(orders, _best_first(s)))
                         for r, orders, s in zip(test, group_orders, final_scores)]
    return out


def _progress(report: Report, name: str) -> Callable[[int, int], None]:
    """Log about ten progress lines per pass, not one per batch (a grouped list makes four passes)."""
    state = {"next": 0.0, "done": 0}

    def tick(done: int, total: int) -> None:
        if done < state["done"]:  # a new pass
            state["next"] = 0.0
        state["done"] = done
        if done / total >= state["next"] or done == total:
            report(f"{name}: {done}/{total}", {})
            state["next"] = done / total + 0.1
    return tick
