"""Run a data contract against one dataset partition of the warehouse.

Two engines give the same outcomes for the same contract (tests/test_validation.py checks):
- `gx`: a great-expectations 1.x suite over a pandas extract of the partition (GX has no DuckDB
  datasource; see NOTES.md). GX is imported lazily: it costs seconds at import time.
- `duckdb`: the expectations compiled to SQL aggregates, one scan for the row-wise ones, so a
  32M-row partition validates in seconds without leaving DuckDB.
`auto` (the default) uses GX up to GX_MAX_ROWS rows and DuckDB above. Cross-table `references`
expectations are anti-joins in DuckDB under both engines.
"""

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from data_contracts import Contract, Expectation
from itdr_pipeline.errors import ContractError
from itdr_pipeline.registry import DatasetSpec

_EXAMPLES = 5
GX_MAX_ROWS = 1_000_000
ENGINES = ("auto", "gx", "duckdb")


@dataclass(frozen=True)
class Outcome:
    table: str
    expectation: Expectation
    success: bool
    unexpected_count: int
    element_count: int
    examples: tuple[Any, ...]

    @property
    def severity(self) -> str:
        return self.expectation.severity

    @property
    def message(self) -> str:
        exp = self.expectation
        where = f"{self.table}.{','.join(exp.columns)}"
        if self.success:
            return f"{where}: {exp.id} passed ({self.element_count} rows)"
        shown = ", ".join(_show(v) for v in self.examples)
        return (
            f"{where}: expectation {exp.id} [{exp.describe()}] failed for {self.unexpected_count} of "
            f"{self.element_count} rows; offending values: {shown}"
        )


# No source has events before the Unix epoch: an earlier time is a corrupt value (a negative epoch).
TS_MIN = datetime(1970, 1, 1)
# Later than now by more than this is the future (a day covers clock skew and time zones).
FUTURE_SLACK = timedelta(days=1)


def contract_params(spec: DatasetSpec, now: datetime | None = None) -> dict[str, Any]:
    """Registry values for a contract's `${...}` parameters; times are naive UTC, as stored."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None, microsecond=0)
    first, last = (None, None) if spec.collected is None else spec.collected
    return {
        "rating_min": spec.rating_min, "rating_max": spec.rating_max,
        "ts_min": TS_MIN, "ts_max": now + FUTURE_SLACK,
        # The documented period, whole days: from the first day's start to the last day's end.
        "collected_from": None if first is None else datetime.fromisoformat(first),
        "collected_to": None if last is None else datetime.fromisoformat(last) + timedelta(days=1),
    }


def validate_table(
    con: duckdb.DuckDBPyConnection, contract: Contract, spec: DatasetSpec, engine: str = "auto",
    now: datetime | None = None,
) -> list[Outcome]:
    """Outcomes of every expectation; `now` (default: the clock) is what "in the future" is judged against."""
    if engine not in ENGINES:
        raise ValueError(f"unknown validation engine {engine!r}; use one of {ENGINES}")
    extra = [e for table, e in spec.expectations if table == contract.table]
    expectations = contract.resolved(contract_params(spec, now), extra)
    column_exps = [e for e in expectations if e.type != "references"]
    if engine == "auto":
        rows = con.execute(f"SELECT count(*) FROM {contract.table} WHERE dataset = ?", [spec.id]).fetchone()[0]
        engine = "gx" if rows <= GX_MAX_ROWS else "duckdb"
    run = _run_gx if engine == "gx" else _run_sql
    outcomes = run(con, contract, spec.id, column_exps) if column_exps else []
    outcomes += [_run_reference(con, contract, spec.id, e) for e in expectations if e.type == "references"]
    return outcomes


def raise_on_errors(outcomes: list[Outcome]) -> None:
    """Fail with every ERROR-severity failure named, one per line."""
    errors = [o.message for o in outcomes if not o.success and o.severity == "ERROR"]
    if errors:
        raise ContractError("; ".join(errors))


def _gx_expectation(exp: Expectation) -> Any:
    import great_expectations.expectations as gxe

    meta = {"id": exp.id}
    col = exp.column
    match exp.type:
        case "not_null":
            return gxe.ExpectColumnValuesToNotBeNull(column=col, meta=meta)
        case "between":
            return gxe.ExpectColumnValuesToBeBetween(
                column=col, min_value=exp.args.get("min"), max_value=exp.args.get("max"), meta=meta
            )
        case "unique" if len(exp.columns) == 1:
            return gxe.ExpectColumnValuesToBeUnique(column=col, meta=meta)
        case "unique":
            return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(exp.columns), meta=meta)
        case "in_set":
            return gxe.ExpectColumnValuesToBeInSet(column=col, value_set=list(exp.args["values"]), meta=meta)
        case "regex":
            return gxe.ExpectColumnValuesToMatchRegex(column=col, regex=exp.args["regex"], meta=meta)
    raise ValueError(f"no GX mapping for expectation type {exp.type!r}")


def _run_gx(
    con: duckdb.DuckDBPyConnection, contract: Contract, dataset: str, exps: list[Expectation]
) -> list[Outcome]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    needed = sorted({c for e in exps for c in e.columns}, key=contract.column_names.index)
    select = ", ".join(needed)  # identifiers validated when the contract was loaded
    frame = con.execute(f"SELECT {select} FROM {contract.table} WHERE dataset = ?", [dataset]).df()

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch_def = (
        context.data_sources.add_pandas(f"{contract.table}_source")
        .add_dataframe_asset(contract.table)
        .add_batch_definition_whole_dataframe("partition")
    )
    suite = gx.ExpectationSuite(name=f"{contract.table}_contract")
    by_id = {e.id: e for e in exps}
    for exp in exps:
        suite.add_expectation(_gx_expectation(exp))
    result = batch_def.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": _EXAMPLES}
    )
    outcomes = []
    for res in result.results:
        exp = by_id[res.expectation_config.meta["id"]]
        detail = res.result or {}
        examples = detail.get("partial_unexpected_list") or []
        outcomes.append(
            Outcome(
                table=contract.table,
                expectation=exp,
                success=bool(res.success),
                unexpected_count=int(detail.get("unexpected_count") or 0),
                element_count=int(detail.get("element_count") or len(frame)),
                examples=tuple(_plain(v) for v in examples[:_EXAMPLES]),
            )
        )
    return outcomes


def _sql_condition(contract: Contract, exp: Expectation) -> tuple[str, list[Any]]:
    """SQL that is true for an unexpected row of a row-wise expectation, with its bound values.
    Nulls are unexpected only for not_null, as in GX."""
    col = exp.column  # identifiers validated when the contract was loaded
    match exp.type:
        case "not_null":
            return f"{col} IS NULL", []
        case "between":
            parts, params = [], []
            if exp.args.get("min") is not None:
                parts.append(f"{col} < ?")
                params.append(exp.args["min"])
            if exp.args.get("max") is not None:
                parts.append(f"{col} > ?")
                params.append(exp.args["max"])
            return f"{col} IS NOT NULL AND ({' OR '.join(parts) or 'false'})", params
        case "in_set":
            kind = next(c.type for c in contract.columns if c.name == col)
            return f"{col} IS NOT NULL AND NOT list_contains(?::{kind}[], {col})", [list(exp.args["values"])]
        case "regex":
            return f"{col} IS NOT NULL AND NOT regexp_matches({col}, ?)", [exp.args["regex"]]
    raise ValueError(f"no SQL mapping for expectation type {exp.type!r}")


def _run_sql(
    con: duckdb.DuckDBPyConnection, contract: Contract, dataset: str, exps: list[Expectation]
) -> list[Outcome]:
    table = contract.table
    row_wise = [e for e in exps if e.type != "unique"]
    conditions = [_sql_condition(contract, e) for e in row_wise]
    filters = "".join(f", count(*) FILTER (WHERE {cond})" for cond, _ in conditions)
    params = [p for _, ps in conditions for p in ps]
    total, *bad = con.execute(f"SELECT count(*){filters} FROM {table} WHERE dataset = ?", [*params, dataset]).fetchone()
    outcomes = []
    for exp, (cond, ps), n in zip(row_wise, conditions, bad, strict=True):
        examples = () if n == 0 else tuple(r[0] for r in con.execute(
            f"SELECT DISTINCT {exp.column} FROM {table} WHERE dataset = ? AND {cond} ORDER BY 1 LIMIT {_EXAMPLES}",
            [dataset, *ps]).fetchall())
        outcomes.append(Outcome(table, exp, n == 0, int(n), int(total), examples))
    return outcomes + [_sql_unique(con, table, dataset, e, int(total)) for e in exps if e.type == "unique"]


def _sql_unique(con: duckdb.DuckDBPyConnection, table: str, dataset: str, exp: Expectation, total: int) -> Outcome:
    cols = ", ".join(exp.columns)
    # GX skips rows whose values are all missing, then counts every row of a repeated value.
    present = " OR ".join(f"{c} IS NOT NULL" for c in exp.columns)
    where = f"dataset = ? AND ({present})"
    # Fast path: distinct hashes == rows proves uniqueness (a collision can only fake a duplicate).
    rows, hashes = con.execute(f"SELECT count(*), count(DISTINCT hash({cols})) FROM {table} WHERE {where}",
                               [dataset]).fetchone()
    if rows == hashes:
        return Outcome(table, exp, True, 0, total, ())
    dupes = f"SELECT {cols}, count(*) AS n FROM {table} WHERE {where} GROUP BY ALL HAVING count(*) > 1"
    bad = con.execute(f"SELECT coalesce(sum(n), 0) FROM ({dupes})", [dataset]).fetchone()[0]
    examples = [r[:-1] for r in con.execute(f"{dupes} ORDER BY ALL LIMIT {_EXAMPLES}", [dataset]).fetchall()]
    shown = tuple(r[0] if len(r) == 1 else tuple(r) for r in examples)
    return Outcome(table, exp, bad == 0, int(bad), total, shown)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):  # compound-unique examples come as {column: value}
        return tuple(value.values())
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp (GX's examples of a TIMESTAMP column)
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def _show(value: Any) -> str:
    """An offending value as users read it: times in ISO form, the rest as Python literals."""
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return repr(value)


def _run_reference(con: duckdb.DuckDBPyConnection, contract: Contract, dataset: str, exp: Expectation) -> Outcome:
    col, ref_table, ref_col = exp.column, exp.args["ref_table"], exp.args["ref_column"]
    for ident in (ref_table, ref_col):
        if not ident.replace("_", "").isalnum():
            raise ValueError(f"contract {contract.table}.{exp.id}: bad identifier {ident!r}")
    # An anti join against the partition's keys (filtered first): one hash build, one probe.
    orphans = f"""
        FROM (SELECT {col} FROM {contract.table} WHERE dataset = $d AND {col} IS NOT NULL) t
        ANTI JOIN (SELECT {ref_col} AS {col} FROM {ref_table} WHERE dataset = $d) r USING ({col})"""
    total, bad = con.execute(
        f"SELECT (SELECT count(*) FROM {contract.table} WHERE dataset = $d), count(*) {orphans}", {"d": dataset}
    ).fetchone()
    examples = [] if bad == 0 else [r[0] for r in con.execute(
        f"SELECT DISTINCT {col} {orphans} ORDER BY 1 LIMIT {_EXAMPLES}", {"d": dataset}).fetchall()]
    exp = Expectation(exp.id, exp.type, exp.severity, exp.columns, {"ref": f"{ref_table}.{ref_col}"})
    return Outcome(contract.table, exp, bad == 0, int(bad), int(total), tuple(examples))
