"""Evaluate one cell's test split: the base model zero-shot, the tuned adapter and classic baselines,
all scored by the same metrics (training.metrics), into report rows {task, dataset, model, metric,
value, n}.

How each task is answered (the model sees exactly the published prompt, in its chat template):
- preference: P(Yes) vs P(No) at the first answer token, one forward pass (no generation);
- nir: greedy generation, and also likelihood scoring of the 5 candidates ("... (likelihood)");
- seqrec, search, psearch: the same two; likelihood scoring answers with every candidate, most
  likely first, which is how InstructRec ranks a candidate list (HR@k, NDCG@k);
- every other task: greedy generation up to the end-of-turn token, with a budget of 1.25x the
  longest reference answer in the evaluated records (+8 tokens), so a model can always finish.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import metrics
from training.baselines import baselines
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

    def add(self, cfg: RunConfig, dataset: str, model: str, scored: list[tuple[str, float, int]]) -> None:
        self.rows += [{"task": cfg.task, "dataset": dataset, "model": model, "metric": m, "value": float(v), "n": int(n)}
                      for m, v, n in scored]


def evaluate(cfg: RunConfig, adapter: Path | None, report: Report) -> Evaluation:
    test = sample(load_split(Path(cfg.version_dir), cfg.task, cfg.profile, "test"), cfg.eval_limit, cfg.seed)
    dataset = test[0]["dataset"]
    out = Evaluation(records=len(test))
    report(f"evaluating {cfg.cell} of {cfg.version} on {len(test)} test records", {"test_records": len(test)})
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
    prompts = [encoder.prompt_ids(r) for r in test]
    for name, adapter_path in models:
        model = load_model(base, adapter_path)
        started = time.perf_counter()
        answers = _answer(cfg, model, tokenizer, test, prompts, _progress(report, name))
        seconds = time.perf_counter() - started
        out.timings[name] = {"seconds": round(seconds, 2), "records": len(test),
                             "records_per_second": round(len(test) / seconds, 2) if seconds else 0.0}
        for variant, predictions in answers.items():
            label = name if variant == "" else f"{name} ({variant})"
            out.add(cfg, dataset, label, metrics.evaluate(cfg.task, test, predictions))
            out.samples[label] = [{"reference": r["output"], "answer": str(p)} for r, p in zip(test[:3], predictions)]
        report(f"{name}: {len(test)} records in {seconds:.1f} s", {})
        del model
    return out


def _answer(cfg: RunConfig, model: Any, tokenizer: Any, test: list[dict[str, Any]], prompts: list[list[int]],
            progress: Callable[[int, int], None]) -> dict[str, list[metrics.Prediction]]:
    """Predictions by variant ("" = the main one) in the format training.metrics expects."""
    bf16, batch = use_bf16(cfg.precision), cfg.eval_batch_size
    if cfg.task == "preference":
        return {"": score_yes_no(model, tokenizer, prompts, batch, bf16, progress)}
    budget = int(1.25 * max(len(tokenizer.encode(r["output"], add_special_tokens=False)) for r in test)) + 8
    out: dict[str, list[metrics.Prediction]] = {"": generate(model, tokenizer, prompts, budget, batch, bf16, progress)}
    if cfg.task in ("nir", "seqrec", "search", "psearch"):
        candidates = [r["candidate_texts"] for r in test]
        scores = candidate_logprobs(model, tokenizer, prompts, candidates, batch, bf16, progress)
        # Highest log-probability first; ties go to the earlier candidate. nir answers with the
        # top one; InstructRec's tasks with the whole order (HR@k, NDCG@k read it).
        orders = [sorted(range(len(s)), key=lambda i: (-s[i], i)) for s in scores]
        out["likelihood"] = [c[o[0]] if cfg.task == "nir" else "\n".join(c[i] for i in o)
                             for c, o in zip(candidates, orders)]
    return out


def _progress(report: Report, name: str) -> Callable[[int, int], None]:
    """Log about ten progress lines per model, not one per batch."""
    state = {"next": 0.0}

    def tick(done: int, total: int) -> None:
        if done / total >= state["next"] or done == total:
            report(f"{name}: {done}/{total}", {})
            state["next"] = done / total + 0.1
    return tick
