"""InstructRec's tasks on real data: the classic baselines' HR@k / NDCG@k on each test split, with
uniform, BM25 (`retriever`) and item-kNN (`knn`) hard negatives, and the paper's large lists (100
uniform candidates in 10 groups, ranked in two stages), so a model's figures can be read against them.

    python bench/bench_instructrec_baselines.py [--raw ../shared/data/raw] [--out bench/results]

Reads Amazon 2018 Gift_Cards and Magazine_Subscriptions and ml-100k from the raw folder (the REAL
files, never copied), ingests and filters them into a temporary ITDR_HOME, renders seqrec, search
and psearch under the default settings (temporal profile, 10 candidates), then scores every
baseline of training.baselines on the test split (fitted on train). Deterministic: the figures
do not vary between runs, so there is nothing to take a median of; render time is reported once.
Writes <out>/instructrec_baselines.json and prints a Markdown table.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from itdr_pipeline.config import Settings  # noqa: E402
from itdr_pipeline.filters import FilterConfig, apply_filters  # noqa: E402
from itdr_pipeline.ingest import ingest_dataset  # noqa: E402
from itdr_pipeline.registry import get_dataset  # noqa: E402
from itdr_pipeline.render import render_tasks  # noqa: E402
from itdr_pipeline.tasks.base import RenderSettings  # noqa: E402
from itdr_pipeline.warehouse import connect  # noqa: E402
from training.baselines import baselines  # noqa: E402
from training.metrics import evaluate  # noqa: E402

DATASETS = ("amazon-reviews-2018.gift-cards", "amazon-reviews-2018.magazine-subscriptions", "ml-100k")
TASKS = ("seqrec", "search", "psearch")
SHOWN = ("HR@1", "HR@5", "NDCG@5", "HR@10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=ROOT.parent / "shared" / "data" / "raw")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), raw_dir=args.raw.resolve()).ensure()
        with connect(settings.warehouse) as con:
            for dataset in DATASETS:
                ingest_dataset(con, get_dataset(dataset), settings)
                apply_filters(con, dataset, FilterConfig())
            for negatives, groups in (("uniform", 1), ("retriever", 1), ("knn", 1), ("uniform", 10)):
                for dataset in DATASETS:
                    started = time.perf_counter()
                    render_tasks(con, get_dataset(dataset), list(TASKS),
                                 RenderSettings(instructrec_negatives=negatives, instructrec_groups=groups))
                    seconds = time.perf_counter() - started
                    for task in TASKS:
                        records = con.sql("SELECT * FROM instruction_records WHERE dataset = ? AND task = ? "
                                          "ORDER BY record_idx", params=[dataset, task]).to_arrow_table().to_pylist()
                        train = [r for r in records if r["split"] == "train"]
                        test = [r for r in records if r["split"] == "test"]
                        for name, predictions in baselines(task, train, test, seed=42).items():
                            metrics = {m: round(v, 4) for m, v, _ in evaluate(task, test, predictions)}
                            rows.append({"dataset": dataset, "task": task, "negatives": negatives,
                                         "candidates": len(test[0]["candidate_item_ids"]), "baseline": name,
                                         "test_records": len(test), "render_seconds": round(seconds, 2), **metrics})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "instructrec_baselines.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print("| dataset | task | negatives | candidates | baseline | test | " + " | ".join(SHOWN) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(SHOWN))
    for r in rows:
        print(f"| {r['dataset'].split('.')[-1]} | {r['task']} | {r['negatives']} | {r['candidates']} | {r['baseline']} | "
              f"{r['test_records']} | " + " | ".join(f"{r[m]:.3f}" if m in r else "-" for m in SHOWN) + " |")


if __name__ == "__main__":
    main()
