"""Benchmark: ingest N ratings (MovieLens-100K layout) and render the tallrec preference records.

    python bench/bench_ingest_render.py --ratings 10000000 --repeats 3

Generates the data once (bench/gen_movielens.py, cached in the work folder by N and seed), then
times, each run in a fresh subprocess so the runs do not share caches or memory:
- ours: `ingest_dataset` + `render_preference(profile="tallrec")` into a fresh ITDR_HOME;
- reference: bench/reference_linewise.py, the same algorithm as line-by-line pure Python.
Wall time is measured by this process around each child (interpreter start and imports included);
peak RSS is the child's own `ru_maxrss`. Medians over the repeats are reported, with the speed and
memory ratios, and the records (split, instruction, input, output, in order) of both sides are
compared by sha256. Results go to bench/results/ingest_render_<N>.json; a Markdown table is printed.

`--data FOLDER` benchmarks an existing folder in MovieLens-100K layout instead (e.g. the real
ml-100k), which checks equivalence on real data.
"""

import argparse
import hashlib
import json
import os
import platform
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


# ----------------------------------------------------------------------------------------------
# Children: each prints one JSON line as its last line of output.
# ----------------------------------------------------------------------------------------------
def records_sha256(rows) -> str:
    """sha256 over (split, instruction, input, output) records, one JSON line each, in order."""
    digest = hashlib.sha256()
    for split, instruction, text, output in rows:
        digest.update(json.dumps([split, instruction, text, output]).encode() + b"\n")
    return digest.hexdigest()


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _timed(module, name: str, phases: dict[str, float], label: str) -> None:
    """Wrap module.name so its time accumulates in phases[label] (no change in behaviour)."""
    inner = getattr(module, name, None)
    if inner is None:
        return

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            phases[label] = phases.get(label, 0.0) + time.perf_counter() - start

    setattr(module, name, wrapper)


def child_ours() -> dict:
    start = time.perf_counter()
    import duckdb

    from itdr_pipeline import ingest as ingest_mod
    from itdr_pipeline.config import Settings
    from itdr_pipeline.filters import FilterConfig, apply_filters
    from itdr_pipeline.ingest import ingest_dataset
    from itdr_pipeline.registry import get_dataset
    from itdr_pipeline.sources import movielens
    from itdr_pipeline.tasks import preference
    from itdr_pipeline.tasks.base import RenderSettings
    from itdr_pipeline.tasks.preference import render_preference
    from itdr_pipeline.warehouse import connect

    phases: dict[str, float] = {"imports": time.perf_counter() - start}
    # Sub-step timings, by wrapping the library's own steps where they exist under these names.
    _timed(ingest_mod, "inspect_files", phases, "ingest.hash_files")
    _timed(movielens, "read_delimited", phases, "ingest.read_csv")
    _timed(movielens, "replace_partition", phases, "ingest.write_canonical")
    _timed(ingest_mod, "record_source_files", phases, "ingest.record_lineage")
    _timed(preference, "_tallrec_users", phases, "render.users_sql")
    _timed(preference, "_sequence", phases, "render.sequence_sql")
    _timed(preference, "_tallrec_targets", phases, "render.targets_sql")
    _timed(preference, "_windows", phases, "render.windows_sql")

    spec = get_dataset(DATASET)
    settings = Settings.from_env().ensure()
    t0 = time.perf_counter()
    with connect(settings.warehouse) as con:
        t1 = time.perf_counter()
        report = ingest_dataset(con, spec, settings)
        apply_filters(con, spec.id, FilterConfig())  # the default keeps every row; tasks read the filtered table
        t2 = time.perf_counter()
        table = render_preference(con, spec, "tallrec", RenderSettings())
        t3 = time.perf_counter()
    phases.update({"connect": t1 - t0, "ingest": t2 - t1, "render": t3 - t2})
    steps = sum(v for k, v in phases.items() if k.startswith("ingest."))
    if steps:
        phases["ingest.other"] = phases["ingest"] - steps
    sql = sum(v for k, v in phases.items() if k.startswith("render.") and k.endswith("_sql"))
    if sql:
        phases["render.python_templates"] = phases["render"] - sql
    cols = [table.column(c).to_pylist() for c in ("split", "instruction", "input", "output")]
    splits = cols[0]
    return {
        "phases_s": phases,
        "peak_rss_mib": _peak_rss_mib(),
        "sha256": records_sha256(zip(*cols)),
        "counts": {s: splits.count(s) for s in ("train", "valid", "test")},
        "rows": report.result.row_counts,
        "file_status": {f.file: f.status for f in report.files},
        "duckdb": duckdb.__version__,
        "library_path": str(Path(preference.__file__).resolve().parents[2]),
    }


def child_reference(folder: Path) -> dict:
    start = time.perf_counter()
    sys.path.insert(0, str(BENCH))
    from reference_linewise import render_linewise

    t0 = time.perf_counter()
    records = render_linewise(folder)
    t1 = time.perf_counter()
    rows = [(split, r["instruction"], r["input"], r["output"]) for split, recs in records.items() for r in recs]
    return {
        "phases_s": {"imports": t0 - start, "render_linewise": t1 - t0},
        "peak_rss_mib": _peak_rss_mib(),
        "sha256": records_sha256(rows),
        "counts": {k: len(v) for k, v in records.items()},
    }


# ----------------------------------------------------------------------------------------------
# Parent
# ----------------------------------------------------------------------------------------------
def run_child(kind: str, raw_dir: Path, workdir: Path, library: Path | None = None) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0")
    if library is not None:  # another checkout of the library (e.g. an older commit) goes first
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(library), env.get("PYTHONPATH")]))
    home = None
    if kind == "ours":
        home = Path(tempfile.mkdtemp(prefix="home-", dir=workdir))
        env.update(ITDR_HOME=str(home), ITDR_RAW_DIR=str(raw_dir))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--data", str(raw_dir / DATASET)]
    try:
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    finally:
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def summarize(runs: list[dict]) -> dict:
    phases = sorted({k for r in runs for k in r["phases_s"]})
    return {
        "runs": len(runs),
        "wall_s_median": statistics.median(r["wall_s"] for r in runs),
        "wall_s_all": [round(r["wall_s"], 3) for r in runs],
        "peak_rss_mib_median": statistics.median(r["peak_rss_mib"] for r in runs),
        "peak_rss_mib_all": [round(r["peak_rss_mib"], 1) for r in runs],
        "phases_s_median": {p: statistics.median(r["phases_s"].get(p, 0.0) for r in runs) for p in phases},
        "sha256": sorted({r["sha256"] for r in runs}),
        "counts": runs[0]["counts"],
    }


def code_state() -> dict:
    """The library's git commit and a hash of its uncommitted changes (results depend on both)."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else ""

    paths = ["itdr_pipeline", "data_contracts"]
    diff = git("diff", "HEAD", "--", *paths)
    return {"commit": git("rev-parse", "HEAD").strip() or None,
            "library_trees": {p: git("rev-parse", f"HEAD:{p}").strip() or None for p in paths},
            "uncommitted_library_changes": bool(diff),
            "library_diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None}


def _library_changed(before: dict, after: dict) -> bool:
    return any(before[k] != after[k] for k in ("library_trees", "library_diff_sha256"))


def machine() -> dict:
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1] if Path("/proc/meminfo").exists() else None
    return {"nproc": os.cpu_count(), "mem_total_gib": round(int(mem) / 2**20, 1) if mem else None,
            "python": platform.python_version(), "platform": platform.platform()}


def markdown(res: dict) -> str:
    ours, ref = res["ours"], res.get("reference")
    lines = [f"N = {res['ratings']:,} ratings ({res['data']})", "",
             "| implementation | runs | median wall s | all wall s | median peak RSS MiB |",
             "|---|---|---|---|---|"]
    for name, s in (("ours (DuckDB)", ours), ("line-by-line reference", ref)):
        if s:
            lines.append(f"| {name} | {s['runs']} | {s['wall_s_median']:.2f} | {s['wall_s_all']} | "
                         f"{s['peak_rss_mib_median']:,.0f} |")
    if ref:
        lines += ["", f"speed: reference / ours = {res['speedup']:.1f}x; "
                      f"memory: ours / reference = {res['memory_ratio']:.2f}; "
                      f"records identical: {res['match']}",
                  f"target (>= 10x faster and less memory, same records): "
                  f"{'met' if res['target_met'] else 'NOT met'}"]
    phases = ", ".join(f"{k} {v:.2f}" for k, v in ours["phases_s_median"].items())
    lines += ["", f"ours, median seconds per phase: {phases}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs of our pipeline")
    parser.add_argument("--reference-repeats", type=int, default=None,
                        help="runs of the line-by-line reference (default: --repeats; 0 skips it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where data and temporary homes go (default /tmp/itdr-bench-<N>-<seed>)")
    parser.add_argument("--data", type=Path, default=None,
                        help="use this existing MovieLens-100K-layout folder instead of generating data")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/...)")
    parser.add_argument("--library", type=Path, default=None,
                        help="time the itdr_pipeline package found in this folder (e.g. an older commit, "
                             "extracted with `git archive`) instead of the installed one")
    parser.add_argument("--child", choices=("ours", "reference"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "ours":
        print(json.dumps(child_ours()))
        return 0
    if args.child == "reference":
        print(json.dumps(child_reference(args.data)))
        return 0

    default_name = f"itdr-bench-data-{args.data.resolve().name}" if args.data else f"itdr-bench-{args.ratings}-{args.seed}"
    workdir = (args.workdir or Path(tempfile.gettempdir()) / default_name).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    raw_dir = workdir / "raw"
    folder = raw_dir / DATASET
    if args.data is not None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.is_symlink() or folder.exists():
            if not folder.is_symlink():
                raise SystemExit(f"{folder} exists and is not a link; use another --workdir with --data")
            folder.unlink()
        folder.symlink_to(args.data.resolve(), target_is_directory=True)
        with open(folder / "u.data", "rb") as handle:
            n_ratings = sum(1 for _ in handle)
        data_label = str(args.data.resolve())
    else:
        sys.path.insert(0, str(BENCH))
        from gen_movielens import generate

        start = time.perf_counter()
        generate(args.ratings, folder, args.seed)
        print(f"data ready in {folder} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
        n_ratings = args.ratings
        data_label = f"gen_movielens.py seed {args.seed}"

    code_before = code_state()
    ref_repeats = args.repeats if args.reference_repeats is None else args.reference_repeats
    runs: dict[str, list[dict]] = {"ours": [], "reference": []}
    # Interleave the two sides so slow phases of a shared machine hit both.
    for i in range(max(args.repeats, ref_repeats)):
        for kind, count in (("ours", args.repeats), ("reference", ref_repeats)):
            if i < count:
                result = run_child(kind, raw_dir, workdir, args.library if kind == "ours" else None)
                runs[kind].append(result)
                print(f"{kind} run {i + 1}: {result['wall_s']:.2f} s wall, {result['peak_rss_mib']:,.0f} MiB peak, "
                      f"phases {json.dumps({k: round(v, 2) for k, v in result['phases_s'].items()})}",
                      file=sys.stderr)

    code = code_state()
    if args.library is not None:
        code = {"library": str(args.library.resolve())}
    elif _library_changed(code_before, code):
        print("WARNING: the library changed while the benchmark ran; rerun for clean figures", file=sys.stderr)
        code["changed_during_run"] = True
    ours = summarize(runs["ours"])
    res = {
        "benchmark": "ingest + tallrec preference rendering",
        "ratings": n_ratings, "seed": args.seed, "data": data_label,
        "command": "python bench/bench_ingest_render.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(), "code": code, "library_path": runs["ours"][0]["library_path"],
        "duckdb": runs["ours"][0]["duckdb"],
        "ingest_rows": runs["ours"][0]["rows"], "file_status": runs["ours"][0]["file_status"],
        "ours": ours, "reference": None,
    }
    if runs["reference"]:
        ref = summarize(runs["reference"])
        res["reference"] = ref
        res["speedup"] = ref["wall_s_median"] / ours["wall_s_median"]
        res["memory_ratio"] = ours["peak_rss_mib_median"] / ref["peak_rss_mib_median"]
        res["match"] = len(ours["sha256"]) == 1 and ours["sha256"] == ref["sha256"]
        res["target_met"] = res["speedup"] >= 10 and res["memory_ratio"] < 1 and res["match"]
    out = args.out or RESULTS / f"ingest_render_{n_ratings}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(markdown(res))
    print(f"\nwrote {out}", file=sys.stderr)
    return 0 if res.get("match", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
