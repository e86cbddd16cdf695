"""Benchmark: Yes/No preference scoring, ours vs TALLRec's generation-based evaluator.

    python bench/bench_scoring.py [--version-dir DIR] [--prompts 96] [--batch 16] [--repeats 3] [--adapter DIR]

Same model (the default SmolLM2-135M-Instruct, optionally with an adapter merged), same prompts
(the first N test records of the preference cell, chat-templated and length-sorted), same batch size:
- ours: `training.infer.score_yes_no` (one forward pass, logits for the last position only);
- bare forward: the same forward pass returning every position's logits (what a naive scorer does);
- TALLRec-style: `generate(max_new_tokens=128, output_scores=True)` and P(Yes) vs P(No) from the
  first generated token's scores, as their evaluate.py does (stops early once every row hit EOS).
Medians over the repeats (after one warm-up batch) go to bench/results/scoring_<device>_<N>.json.
The default version dir is the newest published ml-100k (else demo) under $ITDR_HOME.
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
from itdr_pipeline.config import Settings  # noqa: E402
from training.data import PromptEncoder, load_split  # noqa: E402
from training.infer import _batches, _pad_left, _positions, answer_token_ids, score_yes_no  # noqa: E402
from training.model import autocast, load_model, load_tokenizer, resolve_base, use_bf16  # noqa: E402


def default_version_dir() -> Path:
    settings = Settings.from_env()
    for dataset in ("ml-100k", "demo"):
        found = sorted(settings.published.glob(f"{dataset}-*"), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
    raise SystemExit(f"nothing published under {settings.published}: run `itdr materialize` first")


@torch.inference_mode()
def bare_forward(model, tokenizer, prompts, batch, bf16):
    yes, no = answer_token_ids(tokenizer)
    out = [0.0] * len(prompts)
    for idx in _batches([len(p) for p in prompts], batch):
        ids, mask = _pad_left([prompts[i] for i in idx], tokenizer.pad_token_id, model.device)
        with autocast(bf16):
            logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask)).logits[:, -1]
        for i, p in zip(idx, torch.softmax(logits.float()[:, [yes, no]], -1)[:, 0].tolist()):
            out[i] = p
    return out


@torch.inference_mode()
def tallrec_generate(model, tokenizer, prompts, batch, bf16):
    yes, no = answer_token_ids(tokenizer)
    out, new_tokens = [0.0] * len(prompts), 0
    for idx in _batches([len(p) for p in prompts], batch):
        ids, mask = _pad_left([prompts[i] for i in idx], tokenizer.pad_token_id, model.device)
        with autocast(bf16):
            gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=128, do_sample=False,
                                 output_scores=True, return_dict_in_generate=True,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        first = gen.scores[0].float()
        for i, p in zip(idx, torch.softmax(first[:, [yes, no]], -1)[:, 0].tolist()):  # back to input order
            out[i] = p
        new_tokens += len(gen.scores) * len(idx)
    return out, new_tokens


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version-dir", type=Path)
    parser.add_argument("--profile", default=None, help="preference cell profile (default: tallrec if present)")
    parser.add_argument("--prompts", type=int, default=96)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--adapter", default=None)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    version = args.version_dir or default_version_dir()
    profile = args.profile or ("tallrec" if (version / "data" / "preference-tallrec").is_dir() else "temporal")
    base = resolve_base("default", str(Settings.from_env().models))
    tokenizer, model = load_tokenizer(base), load_model(base, args.adapter)
    bf16 = use_bf16(args.precision)
    records = load_split(version, "preference", profile, "test")[: args.prompts]
    prompts = [PromptEncoder(tokenizer, 512).prompt_ids(r) for r in records]
    score_yes_no(model, tokenizer, prompts[: args.batch], args.batch, bf16)  # warm-up
    ours = timed(lambda: score_yes_no(model, tokenizer, prompts, args.batch, bf16), args.repeats)
    bare = timed(lambda: bare_forward(model, tokenizer, prompts, args.batch, bf16), args.repeats)
    gen = timed(lambda: tallrec_generate(model, tokenizer, prompts, args.batch, bf16), args.repeats)
    gen_scores, new_tokens = gen[2]
    agree = max(abs(a - b) for a, b in zip(ours[2], gen_scores))
    n = len(prompts)
    result = {
        "version": version.name, "profile": profile, "prompts": n, "batch": args.batch, "bf16": bf16,
        "device": str(next(model.parameters()).device), "adapter": args.adapter,
        "mean_prompt_tokens": round(sum(map(len, prompts)) / n, 1),
        "ours": {"median_s": round(ours[0], 3), "all_s": [round(t, 3) for t in ours[1]],
                 "prompts_per_s": round(n / ours[0], 2)},
        "bare_forward": {"median_s": round(bare[0], 3), "all_s": [round(t, 3) for t in bare[1]],
                         "prompts_per_s": round(n / bare[0], 2)},
        "tallrec_generate": {"median_s": round(gen[0], 3), "all_s": [round(t, 3) for t in gen[1]],
                             "prompts_per_s": round(n / gen[0], 2),
                             "mean_generated_tokens": round(new_tokens / n, 1)},
        "speedup_vs_generate": round(gen[0] / ours[0], 1), "speedup_vs_bare_forward": round(bare[0] / ours[0], 2),
        "max_abs_score_difference_vs_generate": agree,
        "code": code_state(), "machine": machine(),
    }
    out = BENCH / "results" / f"scoring_{result['device'].split(':')[0]}_{n}{'_adapter' if args.adapter else ''}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("ours", "bare_forward", "tallrec_generate", "speedup_vs_generate",
                                               "max_abs_score_difference_vs_generate")}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
