"""Benchmark: what tuning is worth. The recipe's AUC on TALLRec's movie test (ml-100k, `tallrec`
profile) next to the logistic regression, the zero-shot model and TALLRec's published LLaMA-7B
figures, with training time and peak memory; and, with --mix, the multi-task table.

    itdr materialize --datasets ml-100k --tasks preference,preference_hints,rp,nir   # once
    python bench/bench_quality.py --task preference_hints --steps 300 --lr 5e-4 --valid-every 100
    python bench/bench_quality.py --name mixed --steps 200 \\
        --mix ml-100k/preference/tallrec --mix ml-100k/rp/temporal:0.5 --mix ml-100k/nir/temporal:0.5

Each run is the project's own command, `python -m training run --config <json>`, in a child
process: wall time and the child's peak RSS are measured around it, and the report rows are read
back from $ITDR_HOME/reports/<run>/report.json. Results: bench/results/quality_<name>.json and a
markdown table on stdout (docs/training.md carries the measured ones).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from bench_ingest_render import code_state, machine  # noqa: E402

from training.config import RunConfig  # noqa: E402

# TALLRec (Bao et al. 2023), Table 2, movie, LLaMA-7B rec-tuned: AUC by training shots.
TALLREC_PUBLISHED = {"TALLRec LLaMA-7B, 64-shot (published)": 0.6748, "TALLRec LLaMA-7B, 256-shot (published)": 0.7198}


def run_config(args: argparse.Namespace) -> dict:
    from assets.training import parse_cell
    from itdr_pipeline.config import Settings
    from itdr_pipeline.versions import latest_version_dir

    settings = Settings.from_env()
    cells = [parse_cell(c) for c in args.mix] or [(args.dataset, args.task, args.profile, 1.0)]
    mix = [{"version_dir": str(latest_version_dir(settings, d)), "task": t, "profile": p, "weight": w}
           for d, t, p, w in cells]
    return {
        "version_dir": mix[0]["version_dir"], "task": mix[0]["task"], "profile": mix[0]["profile"],
        "mix": mix if args.mix else [], "models_dir": str(settings.models), "adapters_dir": str(settings.adapters),
        "reports_dir": str(settings.reports), "run_name": f"bench-quality-{args.name}",
        "max_steps": args.steps, "learning_rate": args.lr, "lora_rank": args.rank, "lora_alpha": 2 * args.rank,
        "lora_dropout": args.dropout,
        "max_length": args.max_length, "valid_every": args.valid_every, "valid_limit": args.valid_limit,
        "patience": args.patience, "eval_limit": args.eval_limit, "seed": args.seed,
    }


def markdown(result: dict) -> str:
    rows = result["rows"]
    lines = [f"{result['name']}: {result['train_seconds'] / 60:.1f} min training + evaluation "
             f"{result['wall_seconds'] / 60:.1f} min in all, peak RSS {result['peak_rss_mib']:.0f} MiB, "
             f"{result['machine']['nproc']} cores", ""]
    for (task, dataset) in dict.fromkeys((r["task"], r["dataset"]) for r in rows):
        cell = [r for r in rows if (r["task"], r["dataset"]) == (task, dataset) and "@stage1" not in r["metric"]]
        metric = cell[0]["metric"]
        lines += [f"| {task} on {dataset} | {metric} | n |", "|---|---:|---:|"]
        lines += [f"| {r['model']} | {r['value']:.4f} | {r['n']} |" for r in cell if r["metric"] == metric]
        if task.startswith("preference") and result["profile"] == "tallrec":
            lines += [f"| *{name}* | *{value:.4f}* | |" for name, value in TALLREC_PUBLISHED.items()]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="", help="result name (default: the task)")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--task", default="preference_hints")
    parser.add_argument("--profile", default="tallrec")
    parser.add_argument("--mix", action="append", default=[], help="dataset/task/profile[:weight], repeated")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--dropout", type=float, default=RunConfig.lora_dropout,
                        help="LoRA dropout (0 skips the copy of every adapted input: about 25%% faster a step on CPU)")
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--valid-every", type=int, default=100)
    parser.add_argument("--valid-limit", type=int, default=200)
    parser.add_argument("--patience", type=int, default=0)
    parser.add_argument("--eval-limit", type=int, default=0, help="test records per cell; 0 = all")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    args.name = args.name or args.task
    cfg = run_config(args)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.json"
        path.write_text(json.dumps(cfg))
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "training", "run", "--config", str(path)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - started
    report = Path(cfg["reports_dir"]) / cfg["run_name"]
    run = json.loads((report / "run.json").read_text())
    result = {
        "name": args.name, "profile": cfg["profile"], "config": cfg, "rows": json.loads((report / "report.json").read_text()),
        "train_seconds": (run.get("adapter") or {}).get("seconds"), "wall_seconds": round(wall, 1),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "valid_curve": (run.get("adapter") or {}).get("valid_curve"), "timings": run["timings"],
        "report_dir": str(report), "machine": machine(), "code": code_state(),
    }
    out = BENCH / "results" / f"quality_{args.name}.json"
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(markdown(result))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
