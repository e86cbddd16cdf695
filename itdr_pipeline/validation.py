"""Run a data contract against one dataset partition of the warehouse.

Column expectations run as a great-expectations 1.x suite over a pandas extract of the
partition (GX has no DuckDB datasource; see NOTES.md). Cross-table `references` expectations
are anti-joins pushed into DuckDB. GX is imported lazily: it costs seconds at import time.
"""

import os
from dataclasses import dataclass
from typing import Any

import duckdb

from data_contracts import Contract, Expectation
from itdr_pipeline.errors import ContractError
from itdr_pipeline.registry import DatasetSpec

_EXAMPLES = 5


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
        shown = ", ".join(repr(v) for v in self.examples)
        return (
            f"{where}: expectation {exp.id} [{exp.describe()}] failed for {self.unexpected_count} of "
            f"{self.element_count} rows; offending values: {shown}"
        )


def contract_params(spec: DatasetSpec) -> dict[str, Any]:
    return {"rating_min": spec.rating_min, "rating_max": spec.rating_max}


def validate_table(con: duckdb.DuckDBPyConnection, contract: Contract, spec: DatasetSpec) -> list[Outcome]:
    expectations = contract.resolved(contract_params(spec))
    column_exps = [e for e in expectations if e.type != "references"]
    outcomes = _run_gx(con, contract, spec.id, column_exps) if column_exps else []
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


def _plain(value: Any) -> Any:
    if isinstance(value, dict):  # compound-unique examples come as {column: value}
        return tuple(value.values())
    return value.item() if hasattr(value, "item") else value


def _run_reference(con: duckdb.DuckDBPyConnection, contract: Contract, dataset: str, exp: Expectation) -> Outcome:
    col, ref_table, ref_col = exp.column, exp.args["ref_table"], exp.args["ref_column"]
    for ident in (ref_table, ref_col):
        if not ident.replace("_", "").isalnum():
            raise ValueError(f"contract {contract.table}.{exp.id}: bad identifier {ident!r}")
    orphans = f"""
        FROM {contract.table} t
        WHERE t.dataset = ? AND t.{col} IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM {ref_table} r WHERE r.dataset = t.dataset AND r.{ref_col} = t.{col})"""
    total, bad = con.execute(
        f"SELECT (SELECT count(*) FROM {contract.table} WHERE dataset = ?), count(*) {orphans}",
        [dataset, dataset],
    ).fetchone()
    examples = [r[0] for r in con.execute(
        f"SELECT DISTINCT t.{col} {orphans} ORDER BY 1 LIMIT {_EXAMPLES}", [dataset]
    ).fetchall()]
    exp = Expectation(exp.id, exp.type, exp.severity, exp.columns, {"ref": f"{ref_table}.{ref_col}"})
    return Outcome(contract.table, exp, bad == 0, int(bad), int(total), tuple(examples))
