"""The evaluation report folder: `<reports_dir>/<run>/`

    report.json    a list of rows {task, dataset, model, metric, value, n}
    report.md      one table per task laid out like ITDR's (models as rows, metrics as columns)
    <task>.png     one bar chart per metric, every model side by side
    run.json       config, adapter, timings, sample answers
    lineage.json   rows linking this report to its adapter, split version and raw file hashes

Built in a temporary sibling folder and renamed into place: a report is complete or absent. A
rerun with the same run name replaces the previous report whole.
"""

import json
from pathlib import Path
from typing import Any

from itdr_pipeline.folders import replacing_folder
from training import metrics
from training.config import RunConfig
from training.evaluate import Evaluation


def lineage_rows(cfg: RunConfig, report_dir: Path, adapter: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per raw source file of the split version the report (and its adapter) came from;
    a mixed run: of every cell's version."""
    if cfg.mix:
        return [row for c in cfg.cells() for row in lineage_rows(cfg.for_cell(c), report_dir, adapter)]
    manifest = json.loads((Path(cfg.version_dir) / "manifest.json").read_text())
    return [{"report": report_dir.name, "adapter_id": adapter["adapter_id"] if adapter else None,
             "adapter_dir": adapter["path"] if adapter else None, "split_version": manifest["version"],
             "dataset": manifest["dataset"], "task": cfg.task, "profile": cfg.profile,
             "raw_file": s["file"], "raw_sha256": s["sha256"], "raw_status": s["status"]}
            for s in manifest["sources"]]


def markdown(rows: list[dict[str, Any]]) -> str:
    out = []
    for (task, dataset) in dict.fromkeys((r["task"], r["dataset"]) for r in rows):
        cell = [r for r in rows if (r["task"], r["dataset"]) == (task, dataset)]
        names = list(dict.fromkeys(r["metric"] for r in cell))
        models = list(dict.fromkeys(r["model"] for r in cell))
        value = {(r["model"], r["metric"]): r for r in cell}
        arrows = [f"{m} {'↑' if metrics.METRIC_DIRECTION.get(_family(m)) == 'higher' else '↓'}" for m in names]
        out += [f"### {task} on {dataset}", "", "| model | " + " | ".join(arrows) + " |",
                "|---|" + "---:|" * len(names)]
        for model in models:
            cells = [f"{value[(model, m)]['value']:.4f}" if (model, m) in value else "" for m in names]
            out.append(f"| {model} | " + " | ".join(cells) + " |")
        ns = sorted({r["n"] for r in cell if not r["metric"].endswith("@stage1")})
        staged = sorted({r["n"] for r in cell if r["metric"].endswith("@stage1")})
        out += ["", f"n = {ns[0] if len(ns) == 1 else ', '.join(map(str, ns))} test records per metric"
                + (f" (invalid@stage1: {staged[0]} group answers)." if staged else "."), ""]
    return "\n".join(out)


def _family(metric: str) -> str:
    """"acc:gender" -> "acc", "RMSE:age" -> "RMSE": directions are per family."""
    return metric.split(":", 1)[0]


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["metric"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(max(6.0, 3.2 * len(names)), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        got = {r["model"]: r["value"] for r in rows if r["metric"] == name}
        shown = [m for m in models if m in got]
        bars = ax.barh(range(len(shown)), [got[m] for m in shown], color="#4c72b0")
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
        ax.margins(x=0.25)
        ax.set_yticks(range(len(shown)), shown, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(name, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(title, fontsize=9, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})  # no version stamp: same rows, same bytes
    plt.close(fig)


def valid_curve_markdown(manifest: dict[str, Any]) -> str:
    """The adapter's valid curve as a table, the selected step in bold ("" when selection was off)."""
    curve = manifest.get("valid_curve") or []
    if not curve:
        return ""
    lines = [f"| step | valid {curve[0]['metric']} |", "|---:|---:|"]
    for p in curve:
        mark = "**" if p["step"] == manifest.get("selected_step") else ""
        lines.append(f"| {mark}{p['step']}{mark} | {mark}{p['value']:.4f}{mark} |")
    stopped = " (stopped early)" if manifest.get("stopped_early") else ""
    return "\n".join(lines) + f"\n\nThe adapter is the one from step {manifest['selected_step']}{stopped}.\n"


def write(cfg: RunConfig, result: Evaluation, adapter: dict[str, Any] | None, extra: dict[str, Any]) -> Path:
    final = cfg.report_dir()
    with replacing_folder(final) as tmp:
        (tmp / "report.json").write_text(json.dumps(result.rows, indent=2) + "\n")
        title = f"{cfg.cell} of {cfg.version} ({result.records} test records)"
        selection = valid_curve_markdown(adapter or {})
        (tmp / "report.md").write_text(f"# Evaluation: {title}\n\n{markdown(result.rows)}"
                                       + (f"\n## Model selection on valid\n\n{selection}" if selection else ""))
        for task in dict.fromkeys(r["task"] for r in result.rows):
            plot([r for r in result.rows if r["task"] == task], tmp / f"{task}.png", title)
        (tmp / "lineage.json").write_text(json.dumps(lineage_rows(cfg, final, adapter), indent=2) + "\n")
        run = {"config": json.loads(cfg.to_json()), "adapter": adapter, "timings": result.timings,
               "test_records": result.records, "samples": result.samples, **extra}
        (tmp / "run.json").write_text(json.dumps(run, indent=2, sort_keys=True, default=str) + "\n")
    return final
