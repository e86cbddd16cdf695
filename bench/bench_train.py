"""Benchmark: LoRA training throughput of the default model, fp32 vs bf16, on this machine's device.

    python bench/bench_train.py [--version-dir DIR] [--task preference] [--profile tallrec] [--steps 6]

Runs the project's own trainer (training.train._trainer: transformers Trainer + peft, LoRA r 8 on
every linear layer) for `--steps` optimizer steps of batch 4 x grad-accum 2 per precision, each in
a fresh process, and times every step with a callback. The first step (allocation, warm-up) is
left out; medians go to bench/results/train_<device>.json with tokens per second.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from bench_ingest_render import _peak_rss_mib, code_state, machine  # noqa: E402
from bench_scoring import default_version_dir  # noqa: E402


def child(args: argparse.Namespace) -> dict:
    import torch
    from transformers import TrainerCallback

    from itdr_pipeline.config import Settings
    from training.config import RunConfig
    from training.data import PromptEncoder, encode_for_training, load_split, sample
    from training.model import load_tokenizer, resolve_base
    from training.train import _trainer

    base = resolve_base("default", str(Settings.from_env().models))
    cfg = RunConfig(version_dir=str(args.version_dir), task=args.task, profile=args.profile,
                    max_steps=args.steps, precision=args.precision, save_steps=10_000, logging_steps=10_000,
                    max_length=args.max_length, lora_dropout=args.lora_dropout)
    tokenizer = load_tokenizer(base)
    records = sample(load_split(args.version_dir, args.task, args.profile, "train"), args.steps * 8, 0)
    examples = encode_for_training(PromptEncoder(tokenizer, cfg.max_length), records, cfg.mask_prompt)
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    with tempfile.TemporaryDirectory() as tmp:
        trainer = _trainer(cfg, base, tokenizer, examples, Path(tmp), lambda *_: None)
        trainer.add_callback(Timer())
        trainer.train()
    steady = times[1:]
    tokens = sum(len(e["input_ids"]) for e in examples) / len(examples) * cfg.batch_size * cfg.grad_accum
    return {"precision": args.precision, "device": "cuda" if torch.cuda.is_available() else "cpu",
            "steps_timed": len(steady), "median_step_s": round(statistics.median(steady), 2),
            "all_step_s": [round(t, 2) for t in times], "examples_per_step": cfg.batch_size * cfg.grad_accum,
            "mean_tokens_per_example": round(tokens / (cfg.batch_size * cfg.grad_accum), 1),
            "tokens_per_s": round(tokens / statistics.median(steady), 1), "peak_rss_mib": round(_peak_rss_mib())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version-dir", type=Path)
    parser.add_argument("--task", default="preference")
    parser.add_argument("--profile", default="tallrec")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--lora-dropout", type=float, default=0.0)
    parser.add_argument("--precision", default=None, help=argparse.SUPPRESS)  # set in the child
    args = parser.parse_args()
    if args.precision:
        print(json.dumps(child(args)))
        return
    version = args.version_dir or default_version_dir()
    runs = []
    for precision in ("fp32", "bf16"):
        out = subprocess.run([sys.executable, __file__, "--version-dir", str(version), "--task", args.task,
                              "--profile", args.profile, "--steps", str(args.steps), "--max-length",
                              str(args.max_length), "--lora-dropout", str(args.lora_dropout), "--precision", precision],
                             capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1]))
    device = runs[0]["device"]
    result = {"version": version.name, "cell": f"{args.task}-{args.profile}", "lora_dropout": args.lora_dropout, "runs": runs,
              "code": code_state(), "machine": machine()}
    path = BENCH / "results" / f"train_{device}{'' if args.lora_dropout == 0 else f'_dropout{args.lora_dropout:g}'}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {path}")


if __name__ == "__main__":
    main()
