"""Export a published split set to training formats (LLaMA-Factory / Alpaca JSON)."""

import json
import os
from pathlib import Path

import duckdb

from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.publish import SPLITS, latest_versions, read_split

FORMATS = ("alpaca",)


def latest_version_dir(settings: Settings, dataset: str) -> Path:
    if not settings.warehouse.is_file():
        raise ItdrError(f"nothing published yet under {settings.home}; run `itdr materialize --datasets {dataset}`")
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        latest = latest_versions(con)
    if dataset not in latest:
        raise ItdrError(f"no published version for dataset {dataset!r}; run `itdr materialize --datasets {dataset}`")
    return settings.published / latest[dataset]


def _write_json_atomic(path: Path, records: list[dict[str, str]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(records, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def export_alpaca(settings: Settings, dataset: str, task: str, profile: str, out: Path) -> dict[str, int]:
    """Write out/train.json, valid.json, test.json: JSON arrays of {instruction, input, output}."""
    version_dir = latest_version_dir(settings, dataset)
    tables = {split: read_split(version_dir, task, profile, split) for split in SPLITS}
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, table in tables.items():
        records = table.select(["instruction", "input", "output"]).to_pylist()
        _write_json_atomic(out / f"{split}.json", records)
        counts[split] = len(records)
    return counts
