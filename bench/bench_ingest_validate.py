"""Benchmark: ingest plus contract validation of N ratings in ML-32M's layout (target: 32M in <= 60 s, <= 4 GB).

    python bench/bench_ingest_validate.py --ratings 32000000 --repeats 3

Generates SYNTHETIC data once with bench/gen_movielens.py (`--layout latest`, cached in the work
folder by N and seed), then times each run in a fresh subprocess with a fresh ITDR_HOME, as a user's
first `materialize` of the dataset would run: locate and hash the raw files, parse them into the
canonical tables, and validate users, items, interactions and reviews against their contracts
(engine `auto`: DuckDB SQL above 1M rows). Wall time is measured around the child (interpreter start
and imports included); peak memory is the child's `ru_maxrss`. Medians are reported.
Results go to bench/results/ingest_validate_<dataset>_<N>.json; a Markdown table is printed.

`--dataset ID --data FOLDER` times another registry source on existing files instead.
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
sys.path.insert(0, str(ROOT))
TABLES = ("users", "items", "interactions", "reviews")


def child(dataset: str) -> dict:
    import resource

    from data_contracts import load_contract
    from itdr_pipeline import raw
    from itdr_pipeline.config import Settings
    from itdr_pipeline.ingest import ingest_dataset
    from itdr_pipeline.registry import get_dataset
    from itdr_pipeline.validation import validate_table
    from itdr_pipeline.warehouse import connect

    phases: dict[str, float] = {}
    inner = raw.locate

    def timed_locate(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            phases["locate_and_hash"] = time.perf_counter() - start

    raw.locate = timed_locate
    import itdr_pipeline.ingest as ingest_module

    ingest_module.locate = timed_locate
    settings = Settings.from_env().ensure()
    spec = get_dataset(dataset)
    with connect(settings.warehouse) as con:
        start = time.perf_counter()
        report = ingest_dataset(con, spec, settings)
        phases["parse_and_write"] = time.perf_counter() - start - phases.get("locate_and_hash", 0.0)
        start = time.perf_counter()
        failed = []
        for table in TABLES:
            failed += [o.message for o in validate_table(con, load_contract(table), spec)
                       if not o.success and o.severity == "ERROR"]
        phases["validate"] = time.perf_counter() - start
    return {"counts": report.result.row_counts, "rejected": len(report.result.rejected), "errors": failed,
            "phases_s": phases, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(dataset: str, raw_dir: Path, workdir: Path) -> dict:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=workdir))
    env = dict(os.environ, ITDR_HOME=str(home), ITDR_RAW_DIR=str(raw_dir), PYTHONHASHSEED="0")
    try:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", "--dataset", dataset], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"run failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=32_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", default="ml-32m", help="registry id to ingest")
    parser.add_argument("--data", type=Path, default=None, help="existing raw folder (holding <dataset>/)")
    parser.add_argument("--workdir", type=Path, default=None, help="where generated data and homes go")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.dataset)))
        return 0
    workdir = args.workdir or Path(tempfile.gettempdir()) / "itdr-bench"
    workdir.mkdir(parents=True, exist_ok=True)
    raw_dir = args.data
    if raw_dir is None:
        sys.path.insert(0, str(BENCH))
        from gen_movielens import generate

        raw_dir = workdir / f"latest-{args.ratings}-{args.seed}"
        generate(args.ratings, raw_dir / args.dataset, args.seed, layout="latest")
    runs = [run_child(args.dataset, raw_dir, workdir) for _ in range(args.repeats)]
    for r in runs:
        if r["errors"]:
            raise SystemExit(f"contract errors: {r['errors']}")
    phases = sorted({k for r in runs for k in r["phases_s"]})
    result = {
        "dataset": args.dataset, "ratings": runs[0]["counts"]["interactions"], "data": str(raw_dir),
        "synthetic": args.data is None, "runs": len(runs), "counts": runs[0]["counts"],
        "wall_s_median": statistics.median(r["wall_s"] for r in runs),
        "wall_s_all": [round(r["wall_s"], 2) for r in runs],
        "peak_rss_mib_median": statistics.median(r["peak_rss_mib"] for r in runs),
        "peak_rss_mib_all": [round(r["peak_rss_mib"]) for r in runs],
        "phases_s_median": {p: round(statistics.median(r["phases_s"].get(p, 0.0) for r in runs), 2) for p in phases},
        "nproc": os.cpu_count(),
    }
    out = BENCH / "results" / f"ingest_validate_{args.dataset}_{result['ratings']}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    met = result["wall_s_median"] <= 60 and result["peak_rss_mib_median"] <= 4096
    print(f"| {args.dataset} | {result['ratings']:,} | {result['runs']} | {result['wall_s_median']:.1f} | "
          f"{result['wall_s_all']} | {result['peak_rss_mib_median']:,.0f} | {result['phases_s_median']} |")
    print(f"target (<= 60 s and <= 4 GB): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
