"""Benchmark: likelihood ranking of candidate lists (rp/tkr/nir/search), vocabulary projection of
the answer positions only vs of every position.

    python bench/bench_likelihood.py [--version-dir DIR] [--task nir] [--records 6] [--batch 16] [--repeats 3]

Same model (the default SmolLM2-135M-Instruct), same prompts (the first N test records of the
task's temporal cell, chat-templated) and candidates, same batches, bf16 autocast where `auto`
picks it:
- ours: `training.infer.candidate_logprobs` (`logits_to_keep`: the logits that predict the longest
  answer of the batch, nothing before);
- every position: the same forward pass projecting every position onto the 49k-token vocabulary,
  then log-softmax (how the scorer worked before 2026-12-08).
Both must give the same scores; medians over the repeats go to bench/results/likelihood_<device>.json.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from bench_ingest_render import code_state, machine  # noqa: E402
from bench_scoring import default_version_dir  # noqa: E402
from itdr_pipeline.config import Settings  # noqa: E402
from training.data import PromptEncoder, load_split  # noqa: E402
from training.infer import _batches, _pad_left, _positions, candidate_logprobs  # noqa: E402
from training.model import autocast, load_model, load_tokenizer, resolve_base, use_bf16  # noqa: E402


@torch.inference_mode()
def every_position(model, tokenizer, prompts: list[list[int]], candidates: list[list[str]], batch_size: int,
                   bf16: bool) -> list[list[float]]:
    pairs = [(r, c) for r, cands in enumerate(candidates) for c in range(len(cands))]
    answers = [tokenizer.encode(candidates[r][c], add_special_tokens=False) + [tokenizer.eos_token_id]
               for r, c in pairs]
    seqs = [prompts[r] + a for (r, _), a in zip(pairs, answers)]
    scores = [[0.0] * len(c) for c in candidates]
    for batch in _batches([len(s) for s in seqs], batch_size):
        ids, mask = _pad_left([seqs[i] for i in batch], tokenizer.pad_token_id, model.device)
        with autocast(bf16):
            logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        for row, i in enumerate(batch):
            r, c = pairs[i]
            scores[r][c] = logp[row, -len(answers[i]):].sum().item()
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version-dir", type=Path)
    parser.add_argument("--task", default="nir")
    parser.add_argument("--records", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    version = args.version_dir or default_version_dir()
    base = resolve_base("default", str(Settings.from_env().models))
    tokenizer, model = load_tokenizer(base), load_model(base)
    bf16 = use_bf16("auto")
    records = load_split(version, args.task, "temporal", "test")[:args.records]
    encoder = PromptEncoder(tokenizer, 512)
    prompts = [encoder.prompt_ids(r) for r in records]
    candidates = [r["candidate_texts"] for r in records]
    seconds: dict[str, list[float]] = {"ours (logits_to_keep)": [], "every position": []}
    scores = {}
    for _ in range(args.repeats):
        for name, scorer in (("every position", every_position), ("ours (logits_to_keep)", candidate_logprobs)):
            started = time.perf_counter()
            scores[name] = scorer(model, tokenizer, prompts, candidates, args.batch, bf16)
            seconds[name].append(round(time.perf_counter() - started, 2))
    diff = max(abs(a - b) for ra, rb in zip(*scores.values()) for a, b in zip(ra, rb))
    result = {
        "version": version.name, "cell": f"{args.task}-temporal", "records": len(records),
        "pairs": sum(map(len, candidates)), "mean_prompt_tokens": round(sum(map(len, prompts)) / len(prompts), 1),
        "batch": args.batch, "bf16": bf16, "max_abs_score_difference": diff,
        "runs": {name: {"seconds": s, "median_s": statistics.median(s)} for name, s in seconds.items()},
        "code": code_state(), "machine": machine(),
    }
    print(json.dumps(result["runs"]), f"max |difference| {diff:.2e}")
    path = BENCH / "results" / f"likelihood_{'cuda' if torch.cuda.is_available() else 'cpu'}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {path}")


if __name__ == "__main__":
    main()
