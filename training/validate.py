"""Model selection on the valid split: the task's own metric on a seeded sample of valid records,
scored every `valid_every` optimizer steps by a Trainer callback (training.train). TALLRec keeps
the checkpoint with the best valid AUC; so does this, and it can stop early after `patience`
evaluations without a gain.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from training import metrics
from training.config import RunConfig
from training.data import PromptEncoder, load_split, sample



class ValidScorer:
    """Scores a model on `cfg.valid_limit` valid records (seeded), the way evaluation scores test.
    A mixed run (several cells) selects on its first cell."""

    def __init__(self, cfg: RunConfig, tokenizer: Any):
        cfg = cfg.for_cell(cfg.cells()[0])
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.records = sample(load_split(Path(cfg.version_dir), cfg.task, cfg.profile, "valid"), cfg.valid_limit,
                              cfg.seed)
        self.prompts = [PromptEncoder(tokenizer, cfg.max_length).prompt_ids(r) for r in self.records]

    def score(self, model: Any, progress: Callable[[int, int], None] | None = None) -> tuple[str, float]:
        """(metric, value): the main variant's first metric; likelihood ranking where the task has it
        (cheaper and steadier than generation)."""
        from training.evaluate import _answer  # heavy imports (baselines, sklearn) only when used

        answers = _answer(self.cfg, model, self.tokenizer, self.records, self.prompts, progress or (lambda d, t: None),
                          likelihood_only=True)
        variant = "likelihood" if "likelihood" in answers else ""
        metric, value, _n = metrics.evaluate(self.cfg.task, self.records, answers[variant])[0]
        return (f"{metric} (likelihood)" if variant else metric), float(value)


def better(metric: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    lower = metrics.metric_direction(metric.split(" (")[0]) == "lower"
    return value < best if lower else value > best
