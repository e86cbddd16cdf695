"""Benchmark: render every applicable task for N interactions (target: 1M in <= 30 s).

    python bench/bench_render_tasks.py --ratings 1000000 --repeats 3

Generates N SYNTHETIC ratings in MovieLens-100K's layout once (bench/gen_movielens.py: users with
age, gender and occupation, movies with genres), then per run, in a fresh subprocess and a fresh
ITDR_HOME: ingest + filter (timed, not part of the target), then `render_dataset` with every task
the ml-100k registry entry feeds (preference, rp, tkr, nir, uap, tui) under the default settings
(temporal profile plus preference's tallrec, 6,250-record cells), timed per task and profile.
Medians over the repeats go to bench/results/render_tasks_<N>.json; a Markdown table is printed.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DATASET = "ml-100k"
TARGET_S = 30.0
sys.path.insert(0, str(BENCH))

from bench_ingest_render import _peak_rss_mib, code_state, machine  # noqa: E402


def child() -> dict:
    from itdr_pipeline import render
    from itdr_pipeline.config import Settings
    from itdr_pipeline.filters import FilterConfig, apply_filters
    from itdr_pipeline.ingest import ingest_dataset
    from itdr_pipeline.registry import get_dataset
    from itdr_pipeline.tasks.base import RenderSettings
    from itdr_pipeline.warehouse import connect

    spec, settings = get_dataset(DATASET), Settings.from_env().ensure()
    cells: dict[str, float] = {}
    inner = render.renderer

    def timed_renderer(task: str):
        fn = inner(task)

        def run(con, spec, profile, *args):
            start = time.perf_counter()
            try:
                return fn(con, spec, profile, *args)
            finally:
                cells[f"{task}/{profile}"] = time.perf_counter() - start
        return run

    render.renderer = timed_renderer
    with connect(settings.warehouse) as con:
        t0 = time.perf_counter()
        ingest_dataset(con, spec, settings)
        apply_filters(con, spec.id, FilterConfig())
        t1 = time.perf_counter()
        counts = render.render_dataset(con, spec, list(spec.tasks), RenderSettings())
        t2 = time.perf_counter()
        interactions = con.execute("SELECT count(*) FROM filtered_interactions").fetchone()[0]
    return {"ingest_filter_s": t1 - t0, "render_s": t2 - t1, "cells_s": cells, "peak_rss_mib": _peak_rss_mib(),
            "interactions": interactions, "records": {"/".join(k): v for k, v in counts.items()}}


def run_child(raw_dir: Path, workdir: Path) -> dict:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=workdir))
    env = dict(os.environ, PYTHONHASHSEED="0", ITDR_HOME=str(home), ITDR_RAW_DIR=str(raw_dir))
    try:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child"], cwd=ROOT, env=env,
                              capture_output=True, text=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"run failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(res: dict) -> str:
    lines = [f"N = {res['interactions']:,} interactions (SYNTHETIC, MovieLens-100K layout), {res['runs']} runs",
             "", f"render, all tasks: median {res['render_s_median']:.1f} s (runs {res['render_s_all']}); "
             f"target <= {TARGET_S:.0f} s: {'met' if res['render_s_median'] <= TARGET_S else 'NOT met'}",
             f"ingest + filter (not in the target): median {res['ingest_filter_s_median']:.1f} s; "
             f"peak RSS median {res['peak_rss_mib_median']:,.0f} MiB", "",
             "| task/profile | median s | records (train/valid/test) |", "|---|---|---|"]
    for cell, secs in sorted(res["cells_s_median"].items(), key=lambda kv: -kv[1]):
        n = [res["records"].get(f"{cell}/{s}", 0) for s in ("train", "valid", "test")]
        lines.append(f"| {cell} | {secs:.2f} | {n[0]:,} / {n[1]:,} / {n[2]:,} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "itdr-bench")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child()))
        return
    raw = args.workdir / f"render-{args.ratings}-{args.seed}"
    if not (raw / DATASET / "u.data").is_file():
        subprocess.run([sys.executable, str(BENCH / "gen_movielens.py"), "--ratings", str(args.ratings),
                        "--seed", str(args.seed), "--out", str(raw / DATASET)], check=True)
    before = code_state()
    runs = [run_child(raw, args.workdir) for _ in range(args.repeats)]
    cells = sorted({c for r in runs for c in r["cells_s"]})
    res = {
        "benchmark": "render_tasks", "ratings": args.ratings, "runs": len(runs),
        "interactions": runs[0]["interactions"], "records": runs[0]["records"],
        "render_s_median": statistics.median(r["render_s"] for r in runs),
        "render_s_all": [round(r["render_s"], 2) for r in runs],
        "ingest_filter_s_median": statistics.median(r["ingest_filter_s"] for r in runs),
        "peak_rss_mib_median": statistics.median(r["peak_rss_mib"] for r in runs),
        "cells_s_median": {c: statistics.median(r["cells_s"].get(c, 0.0) for r in runs) for c in cells},
        "target_s": TARGET_S, "machine": machine(), "code": before,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"render_tasks_{args.ratings}.json"
    out.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    print(markdown(res))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
