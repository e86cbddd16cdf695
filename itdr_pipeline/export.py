"""The formats of a published version: the Hugging Face dataset card, LLaMA-Factory's alpaca
JSON and its dataset_info.json (docs/publishing.md).

publish.py writes them into every version folder; `itdr export --format alpaca` writes one
cell's splits of the latest version to a folder of the user's choice with the same writer.

LLaMA-Factory reads `dataset_info.json` from its `dataset_dir`: each entry names a file relative
to that folder (`file_name`), `formatting: alpaca`, and maps its prompt/query/response roles to
our columns. No `split` key: a local JSON file always loads as the `train` split of
`datasets.load_dataset("json", ...)`, which is what LLaMA-Factory asks for by default, so the
split lives in the entry name and the file name instead.
"""

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from itdr_pipeline import stats
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.records import SPLITS
from itdr_pipeline.versions import latest_version_dir, read_split

FORMATS = ("alpaca",)
ALPACA_COLUMNS = ("instruction", "input", "output")
LLAMAFACTORY_DIR = "llamafactory"
DATASET_INFO = "dataset_info.json"  # LLaMA-Factory's DATA_CONFIG file name


def write_alpaca_json(path: Path, table: pa.Table) -> int:
    """A JSON array of {instruction, input, output} in record order; returns the record count.
    Written to a temporary name and renamed, so readers never see half a file."""
    records = table.select(list(ALPACA_COLUMNS)).to_pylist()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(records, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return len(records)


def llamafactory_name(dataset: str, task: str, profile: str, split: str) -> str:
    return f"itdr_{dataset}_{task}_{profile}_{split}"


def llamafactory_file(task: str, profile: str, split: str) -> str:
    return f"{task}-{profile}_{split}.json"


def write_llamafactory_split(folder: Path, task: str, profile: str, split: str, table: pa.Table) -> str:
    """One cell's split as alpaca JSON under folder; returns its file name."""
    folder.mkdir(parents=True, exist_ok=True)
    name = llamafactory_file(task, profile, split)
    write_alpaca_json(folder / name, table)
    return name


def dataset_info(dataset: str, cells: list[tuple[str, str]]) -> dict[str, Any]:
    """LLaMA-Factory's dataset_info.json: one entry per (cell, split)."""
    return {
        llamafactory_name(dataset, task, profile, split): {
            "file_name": llamafactory_file(task, profile, split),
            "formatting": "alpaca",
            "columns": {"prompt": "instruction", "query": "input", "response": "output"},
        }
        for task, profile in cells for split in SPLITS
    }


def write_dataset_info(folder: Path, dataset: str, cells: list[tuple[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DATASET_INFO).write_text(json.dumps(dataset_info(dataset, cells), indent=2) + "\n")


# One line per task and profile for the dataset card; tasks added later fall back to their name.
TASK_SUMMARIES = {
    "preference": "binary preference (TALLRec): will the user like the target item? Yes/No",
    "preference_hints": "binary preference with collaborative hints: the same records, the input also stating "
                        "train-split like rates of the user and the target",
    "rp": "rating prediction: the user's rating of a target item, from their rated history",
    "tkr": "top-K recommendation: re-rank candidate items by what the user interacts with next",
    "cdr": "cross-domain recommendation: re-rank target-domain candidates from histories in two domains",
    "nir": "next item recommendation: pick the user's next item among candidates",
    "uap": "user attribute prediction: demographic attributes as attr:value pairs",
    "ir": "interest recognition: a short summary of what the user likes and dislikes",
    "tui": "target user identification: which users an item suits",
    "seqrec": "sequential recommendation (InstructRec <P1, I0, T3>): the user's next item among candidates",
    "search": "product search (InstructRec <P0, I2, T3>): the item a stated intention describes, no user context",
    "psearch": "personalized search (InstructRec <P1, I2, T3>): the item matching the user's intention and history",
}
PROFILE_SUMMARIES = {
    "temporal": "per user, latest targets to test, the ones before to validation",
    "leave_one_out": "per user, last target to test, the one before to validation",
    "random_user": "users split 8:1:1 by a stable hash",
    "global_temporal": "one pair of cut points in time for everyone",
    "tallrec": "TALLRec's published design, reproduced as it is",
}
DEFAULT_CONFIG = "preference-temporal"
_HF_SPLIT = {"train": "train", "valid": "validation", "test": "test"}


def _feature(field: pa.Field) -> dict[str, Any]:
    """A column as a `datasets` feature in the card's YAML (tests compare with datasets' own)."""
    kind = field.type
    names = {pa.string(): "string", pa.int64(): "int64", pa.float64(): "float64", pa.bool_(): "bool"}
    if pa.types.is_list(kind) and kind.value_type in names:
        return {"name": field.name, "list": names[kind.value_type]}
    if pa.types.is_timestamp(kind):
        return {"name": field.name, "dtype": f"timestamp[{kind.unit}]"}
    if kind not in names:
        raise ItdrError(f"no dataset card feature type for column {field.name} ({kind})")
    return {"name": field.name, "dtype": names[kind]}


def default_config(configs: list[str]) -> str | None:
    """The config `load_dataset(version_dir)` loads without a name."""
    return DEFAULT_CONFIG if DEFAULT_CONFIG in configs else (configs[0] if configs else None)


def _card_yaml(spec: DatasetSpec, files: list[dict[str, Any]], schema: pa.Schema | None) -> dict[str, Any]:
    by_config: dict[str, list[dict[str, Any]]] = {}
    for f in files:
        by_config.setdefault(f"{f['task']}-{f['profile']}", []).append(f)
    default = default_config(list(by_config))
    configs, infos = [], []
    for name, cell in by_config.items():
        data_files = [{"split": _HF_SPLIT[f["split"]], "path": f["path"]} for f in cell]
        flag = {"default": True} if name == default else {}
        configs.append({"config_name": name, **flag, "data_files": data_files})
        infos.append({"config_name": name, "features": [_feature(c) for c in schema] if schema else [],
                      "splits": [{"name": _HF_SPLIT[f["split"]], "num_bytes": f["uncompressed_bytes"],
                                 "num_examples": f["rows"]} for f in cell]})
    return {"pretty_name": f"{spec.name}: instruction records", "language": ["en"], "license": "other",
            "license_name": "source-terms", "license_link": spec.homepage,
            "task_categories": ["text-generation"], "tags": ["recommendation", "instruction-tuning", "itdr"],
            "configs": configs, "dataset_info": infos}


def dataset_card(spec: DatasetSpec, version: str, inputs: dict[str, Any], files: list[dict[str, Any]],
                 cells: list[dict[str, Any]], schema: pa.Schema | None) -> str:
    """README.md: YAML front matter (configs, features, split sizes) and a short description."""
    front = yaml.safe_dump(_card_yaml(spec, files, schema), sort_keys=False, allow_unicode=True, width=1000)
    described = [f"- `{c['config']}`: {TASK_SUMMARIES.get(c['task'], c['task'] + ' records')}; split profile "
                 f"`{c['profile']}` ({PROFILE_SUMMARIES.get(c['profile'], c['profile'])})." for c in cells]
    return "\n".join([
        "---", front.rstrip("\n"), "---", "", f"# {spec.name}: instruction records `{version}`", "",
        f"Instruction-tuning records (instruction, input, output, plus structured columns) rendered from "
        f"{spec.name} ({spec.homepage}) by itdr-pipeline {inputs['code_version']}. {spec.description}", "",
        "## Configurations", "", *(described or ["(no records)"]), "",
        "## Statistics", "", f"Tokens: {stats.CONVENTION}.", "", stats.markdown_table(cells),
        "## Loading", "", "```python", "from datasets import load_dataset",
        f'ds = load_dataset("path/to/{version}", "{default_config([c["config"] for c in cells])}")', "```", "",
        f"LLaMA-Factory: `dataset_dir: path/to/{version}/llamafactory`, `dataset: "
        f"{llamafactory_name(inputs['dataset'], '<task>', '<profile>', 'train')}` (see dataset_info.json).", "",
        "## Terms", "", f"Source terms: {spec.terms} These records derive from the source and carry its terms.", "",
        "## Citation", "", spec.citation, "",
        "manifest.json lists the source file hashes, the configuration and every file's sha256.", "",
    ])


# What an export must never write into (or replace): the state the pipeline owns.
_MANAGED = ("published", "tables", "work", "staging", "catalog.duckdb", "dagster", "adapters", "models",
            "reports", "cache")


def check_export_target(settings: Settings, target: Path, force: bool) -> Path:
    """The resolved folder an export may replace: never inside (or above) what ITDR_HOME manages, where
    it would change a published version or a table readers query; a non-empty one only with `force`."""
    final = target.expanduser().resolve()
    home = settings.home.resolve()
    if home.is_relative_to(final):
        raise ItdrError(f"refusing to export into {final}: it holds ITDR_HOME ({home}); choose a folder of its own")
    for name in _MANAGED:
        if final.is_relative_to(home / name):
            raise ItdrError(f"refusing to export into {final}: it is inside {home / name}, which itdr manages "
                            "(published versions are immutable); choose a folder outside it")
    if final.exists() and not final.is_dir():
        raise ItdrError(f"refusing to export into {final}: it is a file, not a folder")
    if final.is_dir() and any(final.iterdir()) and not force:
        raise ItdrError(f"refusing to export into {final}: it is not empty (pass --force to replace it as a whole)")
    return final


def export_alpaca(settings: Settings, dataset: str, task: str, profile: str, out: Path,
                  force: bool = False) -> dict[str, int]:
    """Write out/train.json, valid.json, test.json: JSON arrays of {instruction, input, output}. The
    folder is built beside `out` and renamed into place: a failed export leaves `out` as it was."""
    from itdr_pipeline.folders import replacing_folder

    final = check_export_target(settings, out, force)
    version_dir = latest_version_dir(settings, dataset)
    tables = {split: read_split(version_dir, task, profile, split) for split in SPLITS}
    with replacing_folder(final) as tmp:
        return {split: write_alpaca_json(tmp / f"{split}.json", table) for split, table in tables.items()}
