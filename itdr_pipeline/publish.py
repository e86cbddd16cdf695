"""Publish rendered records as an immutable, content-addressed version.

A version id is derived from everything that determines its bytes: the raw file hashes, the
code version, the template files and the render configuration. Same inputs -> same id and
byte-identical Parquet; any change -> a new id. A version folder is written under a temporary
name and renamed into place, so a crash never leaves half a version, and an existing version
is never rewritten. Layout (Hugging Face style):

    published/<version>/manifest.json
    published/<version>/README.md                           dataset card with `configs`
    published/<version>/data/<task>-<profile>/<split>-00000-of-00001.parquet
"""

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from itdr_pipeline import __version__
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.hashing import sha256_file, sha256_json
from itdr_pipeline.tasks.base import RECORD_SCHEMA

# Bump when rendering or publishing logic changes output bytes for the same inputs.
CODE_VERSION = f"{__version__}+render.2"
SPLITS = ("train", "valid", "test")
COLUMNS = ("version", *RECORD_SCHEMA.names)


@dataclass(frozen=True)
class Publication:
    version: str
    path: Path
    created: bool  # False when this exact version already existed
    manifest: dict[str, Any]


def version_inputs(con: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, Any]:
    """Everything a version id is derived from, read from the warehouse's bookkeeping tables."""
    sources = con.execute(
        "SELECT file, sha256, bytes, status, official_sha256 FROM source_files WHERE dataset = ? ORDER BY file",
        [dataset],
    ).fetchall()
    run = con.execute("SELECT config_json, templates_sha256 FROM render_runs WHERE dataset = ?", [dataset]).fetchone()
    filters = con.execute("SELECT config_json FROM filter_runs WHERE dataset = ?", [dataset]).fetchone()
    if not sources or run is None or filters is None:
        raise ItdrError(f"{dataset}: nothing to publish; ingest and render it first (`itdr materialize --datasets {dataset}`)")
    return {
        "dataset": dataset,
        "code_version": CODE_VERSION,
        "templates_sha256": run[1],
        "config": json.loads(run[0]),
        "filters": json.loads(filters[0]),
        "sources": [dict(zip(("file", "sha256", "bytes", "status", "official_sha256"), s)) for s in sources],
    }


def version_id(inputs: dict[str, Any]) -> str:
    return f"{inputs['dataset']}-{sha256_json(inputs)[:16]}"


def _write_config(con: duckdb.DuckDBPyConnection, root: Path, version: str, dataset: str,
                  task: str, profile: str) -> list[dict[str, Any]]:
    files = []
    for split in SPLITS:
        table = con.sql(
            f"""SELECT ? AS version, {', '.join(COLUMNS[1:])} FROM instruction_records
                WHERE dataset = ? AND task = ? AND profile = ? AND split = ? ORDER BY record_idx""",
            params=[version, dataset, task, profile, split],
        ).to_arrow_table()
        rel = Path("data") / f"{task}-{profile}" / f"{split}-00000-of-00001.parquet"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / rel, compression="zstd", row_group_size=100_000)
        files.append({"path": rel.as_posix(), "task": task, "profile": profile, "split": split,
                      "rows": table.num_rows, "sha256": sha256_file(root / rel)})
    return files


def _dataset_card(manifest: dict[str, Any]) -> str:
    configs = {}
    for f in manifest["files"]:
        configs.setdefault(f"{f['task']}-{f['profile']}", []).append(f)
    lines = ["---", "configs:"]
    for name, files in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        lines += [f"  - split: {'validation' if f['split'] == 'valid' else f['split']}\n    path: {f['path']}" for f in files]
    lines += ["---", "", f"# {manifest['version']}", "",
              f"Instruction records for `{manifest['dataset']}`, published by itdr-pipeline {manifest['code_version']}.",
              "See manifest.json for source file hashes, configuration and per-file checksums.", ""]
    return "\n".join(lines)


def publish(con: duckdb.DuckDBPyConnection, settings: Settings, dataset: str) -> Publication:
    inputs = version_inputs(con, dataset)
    version = version_id(inputs)
    final = settings.published / version
    if not (final / "manifest.json").is_file():
        _build(con, settings, inputs, version, final)
        created = True
    else:
        created = False
    manifest = json.loads((final / "manifest.json").read_text())
    con.execute("INSERT INTO publications VALUES (?, ?, ?, current_timestamp)", [version, dataset, str(final)])
    refresh_views(con, settings)
    return Publication(version, final, created, manifest)


def _build(con: duckdb.DuckDBPyConnection, settings: Settings, inputs: dict[str, Any], version: str,
           final: Path) -> None:
    dataset = inputs["dataset"]
    settings.published.mkdir(parents=True, exist_ok=True)
    tmp = settings.published / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        configs = con.execute(
            "SELECT DISTINCT task, profile FROM instruction_records WHERE dataset = ? ORDER BY task, profile",
            [dataset],
        ).fetchall()
        files = [f for task, profile in configs for f in _write_config(con, tmp, version, dataset, task, profile)]
        manifest = {"version": version, **inputs, "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        (tmp / "README.md").write_text(_dataset_card(manifest))
        os.rename(tmp, final)  # atomic on one filesystem; fails if another writer got there first
    except OSError:
        if (final / "manifest.json").is_file():  # a concurrent publish of the same version won
            return
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def latest_versions(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute(
        "SELECT dataset, arg_max(version, published_at) FROM publications GROUP BY dataset ORDER BY dataset"
    ).fetchall()
    return dict(rows)


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def refresh_views(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """`instructions`: every record of each dataset's latest version (view DDL takes no parameters,
    so paths, which we built ourselves from validated ids, are quoted as SQL string literals)."""
    files = []
    for dataset, version in latest_versions(con).items():
        manifest = json.loads((settings.published / version / "manifest.json").read_text())
        files += [str(settings.published / version / f["path"]) for f in manifest["files"]]
    if files:
        listing = ", ".join(_sql_str(f) for f in sorted(files))
        con.execute(f"CREATE OR REPLACE VIEW instructions AS SELECT * FROM read_parquet([{listing}], union_by_name = true)")


def read_split(version_dir: Path, task: str, profile: str, split: str) -> pa.Table:
    path = version_dir / "data" / f"{task}-{profile}" / f"{split}-00000-of-00001.parquet"
    if not path.is_file():
        raise ItdrError(f"{version_dir.name} has no {task}/{profile} {split} split ({path} missing)")
    return pq.read_table(path)
