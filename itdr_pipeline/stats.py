"""Per-cell statistics of a published version, in the shape of ITDR's dataset table.

For every (task, profile) cell: instances per split, and the average length in tokens of the
input and the output under the default model's tokenizer (SmolLM2-135M-Instruct).

Token convention (records.user_message: the user turn LLaMA-Factory's alpaca converter, the
trainer and the evaluator all build):
- input tokens  = tokens of `instruction + "\\n" + input`, where an empty part is left out
  together with its "\\n" (records rendered without task description count the input alone);
- output tokens = tokens of `output`;
- counted with the converted `tokenizer.json` and `add_special_tokens=False`: no chat template,
  no BOS/EOS, so the figures describe the data, not a prompt format.
Averages are over every record of the cell (all splits), rounded to 2 decimals; per-split
averages and maxima are in stats.json.

Written into the version folder: stats.json, STATS.md (a Markdown table) and stats.png.
"""

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from itdr_pipeline.config import Settings
from itdr_pipeline.hashing import sha256_file
from itdr_pipeline.records import SPLITS, user_message
from itdr_pipeline.default_model import MODEL_NAME, TOKENIZER_FILE, ensure_tokenizer

CONVENTION = ('input = instruction + "\\n" + input (an empty part and its "\\n" left out, as LLaMA-Factory '
              'joins them); output = output; tokens of the SmolLM2-135M-Instruct tokenizer without special '
              'tokens or chat template; averages over all records of the cell')
STATS_FILES = ("stats.json", "STATS.md", "stats.png")
_BATCH = 4096


def models_dir(settings: Settings) -> Path:
    return settings.home / "models"


class TokenCounter:
    """Batch token counts with the fast `tokenizers` library (no transformers import)."""

    def __init__(self, settings: Settings):
        from tokenizers import Tokenizer

        self.path = ensure_tokenizer(models_dir(settings)) / TOKENIZER_FILE
        self.tokenizer = Tokenizer.from_file(str(self.path))

    def identity(self) -> dict[str, str]:
        """What the counts depend on; part of the version id."""
        return {"model": MODEL_NAME, "tokenizer_sha256": sha256_file(self.path)}

    def count(self, texts: Sequence[str]) -> list[int]:
        counts: list[int] = []
        for start in range(0, len(texts), _BATCH):
            batch = self.tokenizer.encode_batch_fast(list(texts[start:start + _BATCH]), add_special_tokens=False)
            counts += [len(e.ids) for e in batch]
        return counts


def _summary(inputs: list[int], outputs: list[int]) -> dict[str, Any]:
    n = len(inputs)
    return {
        "instances": n,
        "avg_input_tokens": round(sum(inputs) / n, 2) if n else None,
        "avg_output_tokens": round(sum(outputs) / n, 2) if n else None,
        "max_input_tokens": max(inputs, default=None),
        "max_output_tokens": max(outputs, default=None),
    }


def cell_stats(dataset: str, task: str, profile: str, tables: dict[str, pa.Table],
               counter: TokenCounter) -> dict[str, Any]:
    """Statistics of one cell from its split tables (columns instruction, input, output)."""
    by_split: dict[str, dict[str, Any]] = {}
    all_in: list[int] = []
    all_out: list[int] = []
    for split in SPLITS:
        table = tables[split]
        prompts = [user_message({"instruction": i, "input": x})
                   for i, x in zip(table.column("instruction").to_pylist(), table.column("input").to_pylist())]
        inputs = counter.count(prompts)
        outputs = counter.count([o or "" for o in table.column("output").to_pylist()])
        by_split[split] = _summary(inputs, outputs)
        all_in += inputs
        all_out += outputs
    total = _summary(all_in, all_out)
    total["instances"] = {s: by_split[s]["instances"] for s in SPLITS}
    return {"dataset": dataset, "task": task, "profile": profile, "config": f"{task}-{profile}",
            "total_instances": len(all_in), **total, "by_split": by_split}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown_table(cells: Iterable[dict[str, Any]]) -> str:
    lines = ["| dataset | task | profile | train | valid | test | avg input tokens | avg output tokens |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for c in cells:
        n = c["instances"]
        lines.append(f"| {c['dataset']} | {c['task']} | {c['profile']} | {n['train']:,} | {n['valid']:,} | "
                     f"{n['test']:,} | {_fmt(c['avg_input_tokens'])} | {_fmt(c['avg_output_tokens'])} |")
    return "\n".join(lines) + "\n"


def write_stats(root: Path, cells: list[dict[str, Any]], tokenizer: dict[str, str]) -> dict[str, Any]:
    """Write stats.json, STATS.md and stats.png under root; returns the stats document."""
    doc = {"tokenizer": tokenizer, "convention": CONVENTION, "cells": cells}
    (root / "stats.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    (root / "STATS.md").write_text(
        f"# Statistics\n\nTokens: {tokenizer['model']} tokenizer. Convention: {CONVENTION}.\n\n"
        + markdown_table(cells))
    plot(cells, root / "stats.png")
    return doc


def plot(cells: list[dict[str, Any]], path: Path) -> None:
    """Instances per split and average token lengths per cell, as a PNG with stable bytes
    (default style whatever the user's matplotlibrc says, fixed size and dpi, no timestamp or
    software tag)."""
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [f"{c['task']}-{c['profile']}" for c in cells]
    ys = list(range(len(cells)))
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(11, 1.5 + 0.4 * max(1, len(cells))), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        left, right = fig.subplots(1, 2, sharey=True)
        start = [0] * len(cells)
        for split in SPLITS:
            widths = [c["instances"][split] for c in cells]
            left.barh(ys, widths, left=start, label=split)
            start = [a + b for a, b in zip(start, widths)]
        left.set(yticks=ys, yticklabels=labels, xlabel="instances", title="Instances per split")
        left.invert_yaxis()
        left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=3, frameon=False)
        for offset, key, name in ((-0.2, "avg_input_tokens", "input"), (0.2, "avg_output_tokens", "output")):
            bars = right.barh([y + offset for y in ys], [c[key] or 0 for c in cells], height=0.4, label=name)
            right.bar_label(bars, fmt="%.1f", padding=2, fontsize=8)
        right.set(xlabel="average tokens (SmolLM2 tokenizer)", title="Average length")
        right.margins(x=0.15)
        right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2, frameon=False)
        fig.suptitle(", ".join(sorted({c["dataset"] for c in cells})) or "no records")
        fig.savefig(path, format="png", metadata={"Software": None})
