from datetime import datetime

import pytest

from data_contracts import CONTRACT_NAMES, load_contract
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.registry import REGISTRY, get_dataset, parse_dataset_list
from itdr_pipeline.templates import load_task_templates, templates_for
from itdr_pipeline.validation import contract_params


def test_registry_ids_are_valid_and_lookup_works():
    assert list(REGISTRY)[:7] == ["demo", "ml-100k", "ml-1m", "ml-latest-small", "ml-20m", "ml-25m", "ml-32m"]
    spec = get_dataset("ml-100k")
    assert spec.file("u.data").sha256 == "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
    assert spec.downloads[0].url.endswith("ml-100k.zip")
    assert get_dataset("demo").synthetic


@pytest.mark.parametrize("bad", ["../etc", "ML-100K", "ml_100k/..", "", "a" * 80, "ml 100k"])
def test_malformed_ids_are_refused_before_touching_paths(bad):
    with pytest.raises(ItdrError, match="invalid dataset id"):
        get_dataset(bad)


def test_unknown_id_lists_known_ones():
    with pytest.raises(ItdrError, match="known sources: .*ml-100k, ml-1m"):
        get_dataset("ml-1b")


def test_dataset_list_defaults_to_demo_and_dedupes():
    assert parse_dataset_list(None) == ["demo"]
    assert parse_dataset_list("ml-100k, demo,ml-100k") == ["ml-100k", "demo"]


def test_contracts_give_ddl_schema_and_resolved_expectations():
    assert set(CONTRACT_NAMES) == {"users", "items", "interactions", "reviews", "rejected_rows"}
    inter = load_contract("interactions")
    assert "rating DOUBLE" in inter.ddl() and "user_id VARCHAR NOT NULL" in inter.ddl()
    now = datetime(2026, 12, 6, 12, 30)
    resolved = {e.id: e for e in inter.resolved(contract_params(get_dataset("ml-latest-small"), now))}
    assert resolved["rating_in_scale"].args == {"min": 0.5, "max": 5.0}
    assert resolved["ts_not_before_1970"].args == {"min": datetime(1970, 1, 1)}
    assert resolved["ts_not_in_future"].args == {"max": datetime(2026, 12, 7, 12, 30)}  # a day of clock skew
    period = resolved["ts_in_collection_period"]
    assert period.severity == "WARN" and period.args == {"min": datetime(1996, 3, 29), "max": datetime(2018, 9, 25)}
    # No documented period (Steam): that warning is not checked at all, the ERROR bounds still are.
    steam = {e.id for e in inter.resolved(contract_params(get_dataset("steam"), now))}
    assert {"ts_not_before_1970", "ts_not_in_future"} <= steam and "ts_in_collection_period" not in steam
    assert resolved["user_id_not_null"].severity == "ERROR"
    schema = load_contract("items").dagster_schema()
    by_name = {c.name: c for c in schema.columns}
    assert by_name["item_id"].constraints.unique and not by_name["genres"].constraints.unique
    assert by_name["item_id"].type == "VARCHAR" and not by_name["item_id"].constraints.nullable
    assert by_name["title"].constraints.nullable  # items without metadata keep their row, title NULL


def test_contract_parameters_must_be_supplied():
    with pytest.raises(KeyError, match="rating_min"):
        load_contract("interactions").resolved({})


def test_templates_registry():
    prefs = load_task_templates("preference")
    assert len({t.id for t in prefs}) == len(prefs) >= 4
    assert [t.id for t in templates_for("preference", "tallrec")] == ["preference-tallrec"]
    temporal = templates_for("preference", "temporal")
    assert len(temporal) == 2 and not any(t.held_out for t in temporal)
    assert len(templates_for("preference", "temporal", include_held_out=True)) == 3


def test_every_registered_task_has_a_renderer_templates_a_scorer_baselines_and_docs():
    """The task registry is the one list: each task resolves everywhere it is read."""
    import re
    from pathlib import Path

    from itdr_pipeline.render import renderer
    from itdr_pipeline.tasks.base import ROOTS
    from itdr_pipeline.taskspec import TASK_SPECS, TASKS, TaskSpec, task_spec
    from training import metrics

    docs = (Path(__file__).resolve().parents[1] / "docs" / "tasks.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \| (?:UII|UIU|InstructRec)", docs, flags=re.M))
    contract = {e.column: e.args["values"] for e in load_contract("instruction_records").expectations
                if e.type == "in_set"}
    assert contract["task"] == list(TASKS) and documented == set(TASKS)
    assert [t for ts in ROOTS.values() for t in ts] == list(TASKS)
    for spec in TASK_SPECS:
        assert callable(renderer(spec.id)), spec.id
        assert load_task_templates(spec.id), spec.id
        assert spec.id in metrics._SCORERS, spec.id
        assert task_spec(spec.id) is spec
    with pytest.raises(ValueError, match="unknown task 'xyz'; known: preference, preference_hints, rp"):
        task_spec("xyz")
    with pytest.raises(ValueError, match="baselines must include random"):
        TaskSpec("x", "UII", "x", "sequence", "rp:render_rp", "generate", "rating", ("popularity",))
    with pytest.raises(ValueError, match="metric must be one of"):
        TaskSpec("x", "UII", "x", "sequence", "rp:render_rp", "generate", "bleu", ("random",))


def test_docs_sources_registry_table_is_current_and_every_parser_resolves():
    from itdr_pipeline.registry import REGISTRY
    from itdr_pipeline.registry.docs import DOC, main, render, table
    from itdr_pipeline.sources import get_parser

    for spec in REGISTRY.values():
        assert callable(get_parser(spec.format)), spec.id
    assert main(["--check"]) == 0, "docs/sources.md is stale: run python -m itdr_pipeline.registry.docs"
    text = DOC.read_text(encoding="utf-8")
    assert "| `ml-100k` | MovieLens 100K | `movielens:ingest_ml100k` |" in table()
    assert "`amazon-reviews-2018.<category>` (29 categories)" in table()
    stale = text.replace("| `ml-100k` | MovieLens 100K |", "| `ml-100k` | MovieLens 100K (old) |")
    assert stale != text and render(stale) == text  # a hand edit inside the block is undone


def test_export_formats_share_one_interface(tmp_path):
    from itdr_pipeline.config import Settings
    from itdr_pipeline.errors import ItdrError
    from itdr_pipeline.formats import FORMATS, ExportRequest, export, get_format

    assert set(FORMATS) == {"alpaca", "recbole"}
    assert all(callable(f.writer) and f.description for f in FORMATS.values())
    request = ExportRequest("demo", tmp_path / "out", task="preference")
    assert get_format("alpaca").folder(request) == tmp_path / "out"
    assert get_format("recbole").folder(request) == tmp_path / "out" / "demo"
    settings = Settings(home=tmp_path / "home", raw_dir=None)
    with pytest.raises(ItdrError, match="unknown format 'csv'; known: alpaca, recbole"):
        export(settings, "csv", request)
    with pytest.raises(ItdrError, match="--task is required for --format alpaca"):
        export(settings, "alpaca", ExportRequest("demo", tmp_path / "out"))
    with pytest.raises(ItdrError, match="exports the whole dataset"):
        export(settings, "recbole", request)


def test_each_knob_default_is_declared_once():
    """The Dagster configs and the CLI take their defaults from the library's own declarations."""
    import inspect

    from assets.cli import evaluate, materialize, train
    from assets.render import RenderConfig
    from assets.training import TrainingConfig
    from itdr_pipeline.tasks.base import RenderSettings
    from training.config import RUN_DEFAULTS

    render = RenderSettings().as_dict()
    run_fields = set(RUN_DEFAULTS) | {"task"}
    for name, f in TrainingConfig.model_fields.items():
        if name in ("full_run", "mix", "task"):
            continue
        assert name in run_fields and f.default == RUN_DEFAULTS[name], name
    for name, f in RenderConfig.model_fields.items():
        if name in render and f.default is not None:
            assert f.default == render[name] or list(f.default) == list(render[name]), name
    checked = 0
    # materialize --min-history is the interaction filter's (filters.FilterSpec), not render's knob.
    for command, defaults, other in ((train, RUN_DEFAULTS, ()), (evaluate, RUN_DEFAULTS, ()),
                                     (materialize, render, ("min_history",))):
        for name, p in inspect.signature(command).parameters.items():
            if name in defaults and name not in other and p.default is not None and not isinstance(defaults[name], list):
                assert p.default == defaults[name], f"{command.__name__} --{name}"
                checked += 1
    assert checked >= 18
