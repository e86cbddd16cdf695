from datetime import datetime

import pytest

from data_contracts import load_contract
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ContractError
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.validation import raise_on_errors, validate_table
from itdr_pipeline.warehouse import connect


def test_real_ml100k_passes_every_contract(ml100k):
    con, _ = ml100k
    spec = get_dataset("ml-100k")
    for name in ("users", "items", "interactions"):
        outcomes = validate_table(con, load_contract(name), spec)
        assert outcomes and all(o.success for o in outcomes), [o.message for o in outcomes if not o.success]


def test_rating_of_9_is_blocked_with_a_clear_message(raw_copy, tmp_path):
    data = raw_copy / "ml-100k" / "u.data"
    data.write_text(data.read_text().replace("196\t242\t3\t881250949", "196\t242\t9\t881250949", 1))
    settings = Settings(home=tmp_path / "home", raw_dir=raw_copy).ensure()
    with connect(settings.warehouse) as con:
        ingest_dataset(con, get_dataset("ml-100k"), settings)
        outcomes = validate_table(con, load_contract("interactions"), get_dataset("ml-100k"))
    failed = [o for o in outcomes if not o.success]
    assert [o.expectation.id for o in failed] == ["rating_in_scale"]
    assert failed[0].unexpected_count == 1 and failed[0].examples == (9.0,)
    with pytest.raises(ContractError) as err:
        raise_on_errors(outcomes)
    message = str(err.value)
    for part in ("interactions.rating", "rating_in_scale", "between(rating; max=5.0, min=1.0)", "9.0", "1 of 100000"):
        assert part in message


def test_unknown_item_reference_is_an_error(raw_copy, tmp_path):
    data = raw_copy / "ml-100k" / "u.data"
    data.write_text(data.read_text() + "1\t99999\t4\t881250949\n")
    settings = Settings(home=tmp_path / "home", raw_dir=raw_copy).ensure()
    with connect(settings.warehouse) as con:
        ingest_dataset(con, get_dataset("ml-100k"), settings)
        outcomes = validate_table(con, load_contract("interactions"), get_dataset("ml-100k"))
    bad = {o.expectation.id: o for o in outcomes if not o.success}
    assert set(bad) == {"item_is_known"} and bad["item_is_known"].examples == ("99999",)


def test_gx_and_duckdb_engines_agree_on_failing_data(raw_copy, tmp_path):
    """The SQL engine (used above 1M rows) must judge exactly as the GX suite does."""
    folder = raw_copy / "ml-100k"
    data = folder / "u.data"
    text = data.read_text().replace("196\t242\t3\t881250949", "196\t242\t9\t881250949", 1)
    # A repeat of line 2 (not unique), a negative epoch (1969-12-31) and the year 2100.
    data.write_text(text + "186\t302\t3\t891717742\n1\t1\t4\t-86400\n1\t2\t4\t4102444800\n")
    user = folder / "u.user"
    user.write_text(user.read_text().replace("1|24|M|technician|85711", "1|200|M|technician|85711", 1))
    settings = Settings(home=tmp_path / "home", raw_dir=raw_copy).ensure()
    spec = get_dataset("ml-100k")
    with connect(settings.warehouse) as con:
        ingest_dataset(con, spec, settings)
        for table in ("users", "items", "interactions", "reviews"):
            judged = {}
            for engine in ("gx", "duckdb"):
                outcomes = validate_table(con, load_contract(table), spec, engine)
                # Examples are shown differently (GX lists rows, SQL distinct values) but must exist.
                assert all(o.examples for o in outcomes if not o.success), (engine, table)
                judged[engine] = sorted((o.expectation.id, o.success, o.unexpected_count, o.element_count)
                                        for o in outcomes)
            assert judged["gx"] == judged["duckdb"], table
            failed = {row[0]: row[2] for row in judged["duckdb"] if not row[1]}
            expected = {"users": {"age_plausible": 1}, "items": {},
                        "interactions": {"rating_in_scale": 1, "user_item_unique": 2, "ts_not_before_1970": 1,
                                         "ts_not_in_future": 1, "ts_in_collection_period": 2},
                        "reviews": {}}[table]
            assert failed == expected, table


def test_times_before_1970_and_in_the_future_are_errors_naming_the_rows(raw_copy, tmp_path):
    data = raw_copy / "ml-100k" / "u.data"
    data.write_text(data.read_text() + "1\t1\t4\t-86400\n2\t1\t4\t-1\n1\t2\t4\t4102444800\n")
    settings = Settings(home=tmp_path / "home", raw_dir=raw_copy).ensure()
    spec = get_dataset("ml-100k")
    with connect(settings.warehouse) as con:
        ingest_dataset(con, spec, settings)  # parses: the values are valid timestamps, only implausible
        outcomes = validate_table(con, load_contract("interactions"), spec, now=datetime(2026, 12, 6))
    failed = {o.expectation.id: o for o in outcomes if not o.success}
    assert set(failed) == {"ts_not_before_1970", "ts_not_in_future", "ts_in_collection_period"}
    assert failed["ts_not_before_1970"].severity == "ERROR" and failed["ts_not_in_future"].severity == "ERROR"
    assert failed["ts_in_collection_period"].severity == "WARN"
    assert failed["ts_in_collection_period"].unexpected_count == 3
    with pytest.raises(ContractError) as err:
        raise_on_errors(outcomes)
    message = str(err.value)
    for part in ("interactions.ts: expectation ts_not_before_1970", "failed for 2 of 100003 rows",
                 "1969-12-31 00:00:00", "1969-12-31 23:59:59", "ts_not_in_future", "failed for 1 of 100003 rows",
                 "2100-01-01 00:00:00", "max=2026-12-07 00:00:00"):
        assert part in message, part
    assert "ts_in_collection_period" not in message  # a warning does not stop the run
