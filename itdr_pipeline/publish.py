"""Publish rendered records as an immutable, content-addressed version.

A version id is derived from everything that determines its bytes: the raw file hashes, the
code version, the template files, the render configuration and the tokenizer the statistics
count with. Same inputs -> same id and byte-identical files; any change -> a new id. A version
folder is written under a temporary name and renamed into place, so a crash never leaves half a
version, and an existing version is never rewritten. Layout (docs/publishing.md):

    published/<version>/manifest.json        inputs, per-file sha256, statistics
    published/<version>/README.md            Hugging Face dataset card (`configs`, features, stats)
    published/<version>/data/<task>-<profile>/<split>-00000-of-00001.parquet
    published/<version>/llamafactory/<task>-<profile>_<split>.json + dataset_info.json
    published/<version>/stats.json, STATS.md, stats.png
"""

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from itdr_pipeline import __version__
from itdr_pipeline import export, stats
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.hashing import sha256_file, sha256_json
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.records import PUBLISHED_COLUMNS, SPLITS, split_path

# Bump when rendering or publishing logic changes output bytes for the same inputs.
CODE_VERSION = f"{__version__}+render.4"  # render.4: tasks rendered (and recorded) one by one
# The version folder's layout and formats (HF card, LLaMA-Factory files, statistics).
PUBLISH_FORMAT = 2
PUBLISH_CODE_VERSION = f"{CODE_VERSION}+publish.{PUBLISH_FORMAT}"
COLUMNS = PUBLISHED_COLUMNS
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Publication:
    version: str
    path: Path
    created: bool  # False when this exact version already existed
    manifest: dict[str, Any]


def version_inputs(con: duckdb.DuckDBPyConnection, dataset: str, tokenizer: dict[str, str]) -> dict[str, Any]:
    """Everything a version id is derived from: the warehouse's bookkeeping tables, the code and
    format versions, and the identity of the tokenizer the statistics count with."""
    sources = con.execute(
        "SELECT file, sha256, bytes, status, official_sha256 FROM source_files WHERE dataset = ? ORDER BY file",
        [dataset],
    ).fetchall()
    runs = con.execute("SELECT task, config_json, templates_sha256 FROM render_runs WHERE dataset = ? ORDER BY task",
                       [dataset]).fetchall()
    filters = con.execute("SELECT config_json FROM filter_runs WHERE dataset = ?", [dataset]).fetchone()
    if not sources or not runs or filters is None:
        raise ItdrError(f"{dataset}: nothing to publish: no task rendered any record (ingest and render it first, "
                        f"`itdr materialize --datasets {dataset}`; a required raw file may be absent)")
    return {
        "dataset": dataset,
        "code_version": CODE_VERSION,
        "publish_format": PUBLISH_FORMAT,
        "templates_sha256": {task: sha for task, _, sha in runs},
        "config": {task: json.loads(config) for task, config, _ in runs},
        "filters": json.loads(filters[0]),
        "sources": [dict(zip(("file", "sha256", "bytes", "status", "official_sha256"), s)) for s in sources],
        "stats_tokenizer": tokenizer,
    }


def version_id(inputs: dict[str, Any]) -> str:
    return f"{inputs['dataset']}-{sha256_json(inputs)[:16]}"


def _write_config(con: duckdb.DuckDBPyConnection, root: Path, version: str, dataset: str,
                  task: str, profile: str) -> tuple[list[dict[str, Any]], dict[str, pa.Table]]:
    """One cell's Parquet splits; returns their manifest entries and the tables."""
    files, tables = [], {}
    for split in SPLITS:
        table = con.sql(
            f"""SELECT ? AS version, {', '.join(COLUMNS[1:])} FROM instruction_records
                WHERE dataset = ? AND task = ? AND profile = ? AND split = ? ORDER BY record_idx""",
            params=[version, dataset, task, profile, split],
        ).to_arrow_table()
        rel = Path(split_path(task, profile, split))
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / rel, compression="zstd", row_group_size=100_000)
        meta = pq.read_metadata(root / rel)
        files.append({"path": rel.as_posix(), "task": task, "profile": profile, "split": split,
                      "rows": table.num_rows, "sha256": sha256_file(root / rel), "bytes": (root / rel).stat().st_size,
                      # uncompressed data size: the card's num_bytes (datasets wants one; it checks only rows)
                      "uncompressed_bytes": sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))})
        tables[split] = table
    return files, tables


def publish(con: duckdb.DuckDBPyConnection, settings: Settings, dataset: str) -> Publication:
    counter = stats.TokenCounter(settings)
    inputs = version_inputs(con, dataset, counter.identity())
    version = version_id(inputs)
    final = settings.published / version
    if not (final / MANIFEST).is_file():
        _build(con, settings, inputs, version, final, counter)
        created = True
    else:
        created = False
    manifest = json.loads((final / MANIFEST).read_text())
    con.execute("INSERT INTO publications VALUES (?, ?, ?, current_timestamp)",
                [version, dataset, final.relative_to(settings.home).as_posix()])
    return Publication(version, final, created, manifest)


def _write_version(con: duckdb.DuckDBPyConnection, root: Path, inputs: dict[str, Any], version: str,
                   counter: "stats.TokenCounter") -> dict[str, Any]:
    """Every file of the version under root; returns the manifest (written last)."""
    dataset = inputs["dataset"]
    cells = con.execute(
        "SELECT DISTINCT task, profile FROM instruction_records WHERE dataset = ? ORDER BY task, profile", [dataset],
    ).fetchall()
    files, cell_stats, schema = [], [], None
    lf_dir = root / export.LLAMAFACTORY_DIR
    for task, profile in cells:
        cell_files, tables = _write_config(con, root, version, dataset, task, profile)
        files += cell_files
        schema = schema or tables["train"].schema
        for split, table in tables.items():
            export.write_llamafactory_split(lf_dir, task, profile, split, table)
        cell_stats.append(stats.cell_stats(dataset, task, profile, tables, counter))
    export.write_dataset_info(lf_dir, dataset, cells)
    stats_doc = stats.write_stats(root, cell_stats, counter.identity())
    card = export.dataset_card(get_dataset(dataset), version, inputs, files, cell_stats, schema)
    (root / "README.md").write_text(card)
    listed = {f["path"] for f in files}
    artifacts = [{"path": p.relative_to(root).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
                 for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).as_posix() not in listed]
    manifest = {"version": version, **inputs, "files": files, "artifacts": artifacts, "stats": stats_doc}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _sweep_leftovers(settings: Settings, dataset: str) -> None:
    """Remove the half-built folders a killed run of this dataset left (the caller holds the
    dataset's partition lock, so no live writer owns one). Never visible: readers and the
    catalog only know renamed, complete versions."""
    leftover = re.compile(rf"\.tmp-{re.escape(dataset)}-[0-9a-f]{{16}}-[0-9a-f]{{8}}")
    for path in settings.published.iterdir():
        if path.is_dir() and leftover.fullmatch(path.name):
            shutil.rmtree(path, ignore_errors=True)


def _build(con: duckdb.DuckDBPyConnection, settings: Settings, inputs: dict[str, Any], version: str,
           final: Path, counter: "stats.TokenCounter") -> None:
    settings.published.mkdir(parents=True, exist_ok=True)
    _sweep_leftovers(settings, inputs["dataset"])
    tmp = settings.published / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        _write_version(con, tmp, inputs, version, counter)
        for path in tmp.rglob("*"):
            if path.is_file():
                path.chmod(0o444)  # published bytes are never rewritten
        os.rename(tmp, final)  # atomic on one filesystem; fails if another writer got there first
    except OSError:
        if (final / MANIFEST).is_file():  # a concurrent publish of the same version won
            return
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
