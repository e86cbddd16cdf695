"""The instruction record, declared once, for everything that writes or reads one: rendering,
publishing, statistics, export and training.

- Its layout is data_contracts/instruction_records.yaml (names, DuckDB types, nullability,
  descriptions): the warehouse DDL, the Arrow schema below, the Dagster column schema and the
  published Parquet all follow it.
- A published split lives at `data/<task>-<profile>/<split>-00000-of-00001.parquet` under its
  version folder (the Hugging Face layout; `<task>-<profile>` is the card's config name).
- A record becomes a model's user turn by `user_message`: the task description, a newline, the
  input (the input alone when the description was ablated), exactly as LLaMA-Factory's alpaca
  converter joins an exported record. The trainer, the evaluator and the token statistics all
  use it: the statistics count what the model reads, and an adapter trained here or by
  LLaMA-Factory on the export sees the same prompts.
- uap's answers are `attr:value` pairs in the fixed order of UAP_ATTRIBUTES; `parse_attributes`
  reads one back (the renderer writes them, metrics and baselines read them).

Only pyarrow and the contract loader are imported: training depends on this module and the
published files, not on the warehouse, the templates or Dagster.
"""

import re
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from data_contracts import RECORD_CONTRACT, load_contract

SPLITS = ("train", "valid", "test")
CONTRACT = load_contract(RECORD_CONTRACT)
_ARROW = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "TIMESTAMP": pa.timestamp("us")}


def arrow_type(kind: str) -> pa.DataType:
    """A contract column type in Arrow: VARCHAR -> string, DOUBLE[] -> list<double>, ..."""
    return pa.list_(_ARROW[kind[:-2]]) if kind.endswith("[]") else _ARROW[kind]


# Pyarrow does not enforce a field's nullability; the warehouse's NOT NULL columns do.
RECORD_SCHEMA = pa.schema([pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in CONTRACT.columns])
PUBLISHED_COLUMNS = ("version", *RECORD_SCHEMA.names)  # a published file leads with its version id


def config_name(task: str, profile: str) -> str:
    return f"{task}-{profile}"


def split_path(task: str, profile: str, split: str) -> PurePosixPath:
    """Where a split lives inside a version folder."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    return PurePosixPath("data") / config_name(task, profile) / f"{split}-00000-of-00001.parquet"


def split_file(version_dir: Path, task: str, profile: str, split: str) -> Path:
    return Path(version_dir) / split_path(task, profile, split)


# Names the join below; part of every adapter id, so an adapter trained on other prompts is never reused.
PROMPT_FORMAT = "alpaca-join-v1"


def user_message(record: dict[str, Any]) -> str:
    """The user turn a model reads for a record (its chat template wraps it): the non-empty parts
    of instruction and input joined by a newline."""
    return "\n".join(part for part in (record.get("instruction"), record.get("input")) if part)


# uap: users column -> (name in the output, answer_json key), in the output's fixed order.
UAP_ATTRIBUTES = {
    "age_group": ("age group", "age_group"), "age": ("age", "age"), "birth_date": ("birth year", "birth_year"),
    "gender": ("gender", "gender"), "occupation": ("occupation", "occupation"),
    "location": ("location", "location"), "country": ("country", "country"),
}
_UAP_SPLIT = re.compile(r",(?=(?:%s):)" % "|".join(re.escape(name) for name, _key in UAP_ATTRIBUTES.values()))


def parse_attributes(text: str) -> dict[str, str]:
    """`age:24,gender:M,location:Oslo, Norway` -> {"age": "24", "gender": "M", "location": "Oslo, Norway"}:
    a comma splits only before a known attribute name, so free-text values may hold commas."""
    out = {}
    for part in _UAP_SPLIT.split(text.strip()):
        name, sep, value = part.partition(":")
        if sep:
            out[name.strip()] = value.strip()
    return out
