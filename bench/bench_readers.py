"""Benchmark: readers during a materialization, and two partitions in parallel vs one after the other.

    python bench/bench_readers.py --ratings 10000000

1. Generates N ratings in MovieLens-100K layout (bench/gen_movielens.py, cached by N) and runs
   `itdr materialize --datasets ml-100k --tasks preference` on it out of process. Meanwhile two
   reader loops query the catalog without pause: `itdr query` (a new process per query, as a user
   in another shell) and a read-only DuckDB connection opened per query (as a notebook would).
   Reports each reader's p50/p99 latency, its number of queries and failures (the target: zero).
2. Times the real ml-100k and amazon-reviews-2018.gift-cards partitions (../shared/data/raw)
   materialized at the same time (two `itdr materialize` processes) against one after the other,
   median over --repeats.

Results go to bench/results/readers_<N>.json; a Markdown summary is printed.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
ITDR = Path(sys.executable).with_name("itdr")
SHARED_RAW = (ROOT.parent / "shared" / "data" / "raw").resolve()
QUERY = "SELECT count(*), (SELECT count(*) FROM instructions) FROM interactions"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _summary(latencies: list[float], failures: list[str]) -> dict:
    return {"queries": len(latencies), "failures": len(failures), "first_failures": failures[:3],
            "p50_ms": round(1000 * _percentile(latencies, 0.5), 1), "p99_ms": round(1000 * _percentile(latencies, 0.99), 1)}


def readers_during_run(home: Path, raw: Path) -> dict:
    import duckdb

    env = {**os.environ, "ITDR_HOME": str(home), "ITDR_RAW_DIR": str(raw)}
    subprocess.run([str(ITDR), "materialize", "--datasets", "demo", "--tasks", "preference"], env=env, check=True,
                   capture_output=True)  # something committed to read while the big run goes
    stop = threading.Event()
    cli: tuple[list[float], list[str]] = ([], [])
    con_: tuple[list[float], list[str]] = ([], [])

    def cli_loop() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            done = subprocess.run([str(ITDR), "query", QUERY], env=env, capture_output=True, text=True)
            (cli[0] if done.returncode == 0 else cli[1]).append(
                time.perf_counter() - start if done.returncode == 0 else done.stderr.strip())

    def con_loop() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            try:
                with duckdb.connect(str(home / "catalog.duckdb"), read_only=True) as con:
                    con.execute(QUERY).fetchall()
                con_[0].append(time.perf_counter() - start)
            except duckdb.Error as exc:
                con_[1].append(str(exc))
            time.sleep(0.05)

    threads = [threading.Thread(target=cli_loop), threading.Thread(target=con_loop)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    run = subprocess.run([str(ITDR), "materialize", "--datasets", "ml-100k", "--tasks", "preference"], env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - start
    stop.set()
    for t in threads:
        t.join()
    if run.returncode != 0:
        raise SystemExit(f"materialize failed: {run.stderr[-2000:]}")
    return {"materialize_s": round(wall, 1), "itdr_query": _summary(*cli), "duckdb_read_only": _summary(*con_)}


def parallel_vs_serial(repeats: int) -> dict:
    datasets = ["ml-100k", "amazon-reviews-2018.gift-cards"]
    serial, parallel = [], []
    for _ in range(repeats):
        for mode in ("serial", "parallel"):
            with tempfile.TemporaryDirectory(prefix="itdr-bench-") as tmp:
                env = {**os.environ, "ITDR_HOME": tmp, "ITDR_RAW_DIR": str(SHARED_RAW)}
                subprocess.run([str(ITDR), "datasets"], env=env, check=True, capture_output=True)
                start = time.perf_counter()
                if mode == "serial":
                    for d in datasets:
                        subprocess.run([str(ITDR), "materialize", "--datasets", d], env=env, check=True,
                                       capture_output=True)
                    serial.append(time.perf_counter() - start)
                else:
                    procs = [subprocess.Popen([str(ITDR), "materialize", "--datasets", d], env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for d in datasets]
                    for p in procs:
                        if p.wait() != 0:
                            raise SystemExit(f"parallel materialize failed: {p.stderr.read()[-2000:]}")
                    parallel.append(time.perf_counter() - start)
    return {"datasets": datasets, "repeats": repeats, "serial_s": round(statistics.median(serial), 1),
            "parallel_s": round(statistics.median(parallel), 1),
            "speedup": round(statistics.median(serial) / statistics.median(parallel), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the parallel vs serial timing")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "itdr-bench")
    parser.add_argument("--skip-parallel", action="store_true")
    args = parser.parse_args()
    data = args.work / f"ml100k-layout-{args.ratings}"
    if not (data / "ml-100k" / "u.data").is_file():
        subprocess.run([sys.executable, str(BENCH / "gen_movielens.py"), "--ratings", str(args.ratings),
                        "--out", str(data / "ml-100k")], check=True)
    with tempfile.TemporaryDirectory(prefix="itdr-bench-home-") as home:
        result = {"ratings": args.ratings, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "readers": readers_during_run(Path(home), data)}
    if not args.skip_parallel:
        result["parallel"] = parallel_vs_serial(args.repeats)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"readers_{args.ratings}.json").write_text(json.dumps(result, indent=2) + "\n")
    r = result["readers"]
    print(f"| reader | queries | failures | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|")
    for name in ("itdr_query", "duckdb_read_only"):
        s = r[name]
        print(f"| {name} | {s['queries']} | {s['failures']} | {s['p50_ms']} | {s['p99_ms']} |")
    print(f"materialize of {args.ratings:,} ratings: {r['materialize_s']} s")
    if "parallel" in result:
        p = result["parallel"]
        print(f"two partitions: serial {p['serial_s']} s, parallel {p['parallel_s']} s ({p['speedup']}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
