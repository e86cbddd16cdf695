"""The instruction-record contract (data_contracts/instruction_records.yaml) is the one layout:
the Arrow RECORD_SCHEMA restates it, the warehouse table and the Dagster column schemas come from
it, and its expectations hold on records rendered from real ml-100k."""

import duckdb
import pyarrow as pa
import pytest

from data_contracts import CONTRACT_NAMES, RECORD_CONTRACT, load_contract
from itdr_pipeline.config import Settings
from itdr_pipeline.filters import FilterConfig, apply_filters
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.render import render_tasks
from itdr_pipeline.records import RECORD_SCHEMA, SPLITS
from itdr_pipeline.tasks.base import PROFILES, TASKS, RenderSettings
from itdr_pipeline.tasks.preference import ALL_PROFILES
from itdr_pipeline.validation import validate_table
from itdr_pipeline.warehouse import connect, ensure_schema, record_ddl
from conftest import shared_dataset

CONTRACT = load_contract(RECORD_CONTRACT)
_ARROW = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "TIMESTAMP": pa.timestamp("us")}


def _arrow(kind: str) -> pa.DataType:
    return pa.list_(_ARROW[kind[:-2]]) if kind.endswith("[]") else _ARROW[kind]


def test_contract_loads_with_a_description_per_column():
    assert CONTRACT.table == "instruction_records" and RECORD_CONTRACT not in CONTRACT_NAMES
    assert CONTRACT.description and all(c.description.strip() for c in CONTRACT.columns)
    assert {c.type for c in CONTRACT.columns} >= {"VARCHAR[]", "DOUBLE[]"}
    # Closed sets restated in the YAML must follow the code's.
    values = {e.column: e.args["values"] for e in CONTRACT.expectations if e.type == "in_set"}
    assert values == {"split": list(SPLITS), "task": list(TASKS), "profile": list(ALL_PROFILES)}


def test_record_schema_agrees_with_the_contract_column_by_column():
    assert RECORD_SCHEMA.names == CONTRACT.column_names
    for field, col in zip(RECORD_SCHEMA, CONTRACT.columns, strict=True):
        assert (field.type, field.nullable) == (_arrow(col.type), col.nullable), col.name


def test_loader_refuses_a_type_it_would_paste_into_sql(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "table: bad\ndescription: x\ncolumns:\n"
        "  - {name: a, type: 'VARCHAR); DROP TABLE users; --', nullable: true, description: x}\n")
    with pytest.raises(ValueError, match="plain DuckDB type"):
        load_contract("bad", tmp_path)


def _layout(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, bool]]:
    return con.execute(
        "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall()


def test_warehouse_table_is_the_contract():
    con = duckdb.connect()
    ensure_schema(con)
    assert _layout(con, "instruction_records") == [(c.name, c.type, c.nullable) for c in CONTRACT.columns]
    # Published-record tables (catalog) are the same layout after `version`.
    con.execute(f"CREATE TABLE pub ({record_ddl(('version', *CONTRACT.column_names))})")
    assert _layout(con, "pub") == [("version", "VARCHAR", False), *_layout(con, "instruction_records")]


def test_an_older_record_layout_is_dropped_and_recreated_from_the_contract():
    con = duckdb.connect()
    con.execute("CREATE TABLE instruction_records (dataset VARCHAR, task VARCHAR)")
    ensure_schema(con)
    assert [name for name, _, _ in _layout(con, "instruction_records")] == CONTRACT.column_names


def _columns(schema) -> list[tuple[str, str, str, bool]]:
    return [(c.name, c.type, c.description, c.constraints.nullable) for c in schema.columns]


def test_render_and_publish_assets_show_the_contract_schema():
    from assets.publish import published_splits
    from assets.render import render_assets

    expected = [(c.name, c.type, c.description, c.nullable) for c in CONTRACT.columns]
    for asset in render_assets:
        (spec,) = asset.specs
        assert _columns(spec.metadata["dagster/column_schema"]) == expected, spec.key
    (spec,) = published_splits.specs
    published = _columns(spec.metadata["dagster/column_schema"])
    assert published[0][0] == "version" and published[1:] == expected


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory):
    """Real ml-100k rendered for every task it feeds under every split profile (small cells)."""
    spec = get_dataset("ml-100k")
    settings = Settings(home=tmp_path_factory.mktemp("records"), raw_dir=shared_dataset("ml-100k").parent).ensure()
    with connect(settings.warehouse) as con:
        ingest_dataset(con, spec, settings)
        apply_filters(con, spec.id, FilterConfig())
        render_tasks(con, spec, list(spec.tasks), RenderSettings(profiles=PROFILES, cap=200, tallrec_records=200))
        yield con, spec


@pytest.mark.parametrize("engine", ["gx", "duckdb"])
def test_contract_expectations_hold_on_rendered_records(rendered, engine):
    con, spec = rendered
    tasks, profiles = con.execute("SELECT list(DISTINCT task), list(DISTINCT profile) FROM instruction_records").fetchone()
    assert set(tasks) == set(spec.tasks) and set(profiles) == {*PROFILES, "tallrec"}
    outcomes = validate_table(con, CONTRACT, spec, engine=engine)
    assert {"split_known", "task_known", "profile_known", "record_idx_unique_per_cell",
            "candidate_item_ids_not_null"} <= {o.expectation.id for o in outcomes}
    assert [o.message for o in outcomes if not o.success] == []
