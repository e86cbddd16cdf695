"""Load a contract YAML once and derive everything from it.

One contract gives: the DuckDB DDL of the canonical table, the Dagster column schema shown in
the UI, and the great-expectations 1.x expectations that gate the data. Values such as
`${rating_min}` are filled from the dataset's registry entry (and `${ts_max}` from the clock at
validation time), so one contract serves every source with its own scale. A `between` whose two
bounds are both parameters the dataset leaves unset (e.g. no documented collection period) is
not checked for that dataset.
"""

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONTRACT_DIR = Path(__file__).resolve().parent
# The canonical tables ingest writes and validates, partition by partition.
CONTRACT_NAMES = ("users", "items", "interactions", "reviews", "rejected_rows")
# The layout of rendered records: derived data that render replaces rather than migrates, so it is
# kept out of CONTRACT_NAMES (warehouse.ensure_schema handles it on its own).
RECORD_CONTRACT = "instruction_records"
SEVERITIES = ("ERROR", "WARN")
EXPECTATION_TYPES = ("not_null", "between", "unique", "in_set", "regex", "references")
_PARAM = re.compile(r"^\$\{([a-z_]+)\}$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
# Types are pasted into DDL and casts: one plain DuckDB type name, or a list of one (VARCHAR[]).
_TYPE = re.compile(r"^[A-Z]+(\[\])?$")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    description: str


@dataclass(frozen=True)
class Expectation:
    id: str
    type: str
    severity: str
    columns: tuple[str, ...]
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def column(self) -> str:
        return self.columns[0]

    def describe(self) -> str:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(self.args.items()))
        return f"{self.type}({', '.join(self.columns)}{'; ' + detail if detail else ''})"


@dataclass(frozen=True)
class Contract:
    table: str
    description: str
    columns: tuple[Column, ...]
    expectations: tuple[Expectation, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self, table: str | None = None) -> str:
        """CREATE TABLE statement for the canonical table, or a same-shaped `table` (identifiers are
        validated on load; `table` comes from code)."""
        cols = ",\n  ".join(
            f"{c.name} {c.type}{'' if c.nullable else ' NOT NULL'}" for c in self.columns
        )
        return f"CREATE TABLE IF NOT EXISTS {table or self.table} (\n  {cols}\n)"

    def resolved(self, params: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> list[Expectation]:
        """Expectations with `${param}` values filled in, plus not-null checks from the columns and
        `extra` source-specific expectations (same shape as in the YAML, from the registry)."""
        out = [
            Expectation(id=f"{c.name}_not_null", type="not_null", severity="ERROR", columns=(c.name,))
            for c in self.columns
            if not c.nullable and c.name != "dataset"
        ]
        names = set(self.column_names)
        added = tuple(_parse_expectation(self.table, dict(e), names) for e in extra or [])
        for exp in (*self.expectations, *added):
            args = {k: _fill(v, params, self.table, exp.id) for k, v in exp.args.items()}
            if exp.type == "between" and args.get("min") is None and args.get("max") is None:
                continue  # both bounds come from registry values this dataset does not have (documented)
            out.append(Expectation(exp.id, exp.type, exp.severity, exp.columns, args))
        return out

    def dagster_schema(self) -> Any:
        """The column schema the Dagster UI shows (dagster is imported only when asked for)."""
        import dagster as dg

        unique = {e.column for e in self.expectations if e.type == "unique" and len(e.columns) == 1}
        return dg.TableSchema(
            columns=[
                dg.TableColumn(
                    name=c.name,
                    type=c.type,
                    description=c.description,
                    constraints=dg.TableColumnConstraints(nullable=c.nullable, unique=c.name in unique),
                )
                for c in self.columns
            ]
        )


def _fill(value: Any, params: dict[str, Any], table: str, exp_id: str) -> Any:
    if isinstance(value, str) and (m := _PARAM.match(value)):
        if m.group(1) not in params:
            raise KeyError(f"contract {table}.{exp_id}: no value for parameter {m.group(1)!r}")
        return params[m.group(1)]
    return value


def _parse_expectation(table: str, raw: dict[str, Any], columns: set[str]) -> Expectation:
    raw = dict(raw)
    exp_id, kind = raw.pop("id"), raw.pop("type")
    severity = raw.pop("severity", "ERROR")
    cols = tuple(raw.pop("columns", None) or [raw.pop("column")])
    if kind not in EXPECTATION_TYPES:
        raise ValueError(f"contract {table}.{exp_id}: unknown expectation type {kind!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"contract {table}.{exp_id}: severity must be one of {SEVERITIES}")
    missing = [c for c in cols if c not in columns]
    if missing:
        raise ValueError(f"contract {table}.{exp_id}: unknown column(s) {missing}")
    return Expectation(id=exp_id, type=kind, severity=severity, columns=cols, args=raw)


@cache
def load_contract(name: str, directory: Path = CONTRACT_DIR) -> Contract:
    path = directory / f"{name}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    columns = tuple(Column(c["name"], c["type"], bool(c["nullable"]), c["description"]) for c in data["columns"])
    for ident in [data["table"], *(c.name for c in columns)]:
        if not _IDENT.match(ident):
            raise ValueError(f"{path}: {ident!r} is not a plain SQL identifier")
    for col in columns:
        if not _TYPE.match(col.type):
            raise ValueError(f"{path}: column {col.name} has type {col.type!r}; "
                             "use a plain DuckDB type name or a list of one, e.g. VARCHAR[]")
    names = {c.name for c in columns}
    expectations = tuple(_parse_expectation(data["table"], e, names) for e in data.get("expectations") or [])
    return Contract(data["table"], data["description"].strip(), columns, expectations)
