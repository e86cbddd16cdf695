"""What runs beyond one process: multi-GPU ranks report once, and the Pipes client is swappable."""

from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

import training.__main__ as entry
from training.config import RunConfig


class _Recorder:
    def __init__(self) -> None:
        self.materialized: list[str] = []
        self.pipes = None

    def report(self, message: str, _metadata: dict) -> None:
        pass

    def materialize(self, metadata: dict, data_version: str, asset_key: str | None = None) -> None:
        self.materialized.append(data_version)


@pytest.mark.parametrize(("rank", "reports"), [("0", 1), ("1", 0), (None, 1)])
def test_only_the_main_process_reports_the_adapter(monkeypatch: pytest.MonkeyPatch, rank: str | None, reports: int):
    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)
    manifest = {"adapter_id": "a1", "split_version": "demo-x", "loss_history": [{"step": 1, "loss": 0.5}], "steps": 1,
                "train_records": 8, "seconds": 1.0, "train_loss": 0.5, "device": "cpu", "bf16": False,
                "base_model": "default"}
    import training.train

    monkeypatch.setattr(training.train, "train",
                        lambda cfg, report: SimpleNamespace(adapter_dir=Path("/x"), manifest=manifest, trained=True))
    channel = _Recorder()
    entry._train(RunConfig(version_dir="/v/demo-x", models_dir="/m", adapters_dir="/a", reports_dir="/r",
                            task="preference"), channel)
    assert channel.materialized == ["demo-x/a1"] * reports
    assert entry.is_main_process() is (reports == 1)


def test_the_training_assets_use_whatever_pipes_client_the_resources_give(tmp_path: Path, monkeypatch):
    """The seam for Kubernetes (PipesK8sClient) or a remote host: swap the resource, keep the asset."""
    from assets.definitions import build_definitions
    from itdr_pipeline.config import Settings

    calls: list[list[str]] = []

    class RecordingClient(dg.PipesSubprocessClient):
        def run(self, *, context, command, **kwargs):  # what a K8s client would run in its pod
            calls.append(list(command))
            raise dg.Failure(description="recorded, not run")

    settings = Settings(home=tmp_path / "home", raw_dir=None).ensure()
    defs = build_definitions(settings)
    resources = {**defs.resources, "pipes_subprocess_client": RecordingClient()}
    from assets.training import lora_adapter

    # Entered, so Dagster's definitions-state storage is this instance's, not one a test before left.
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("datasets", ["demo"])
        # a published_splits materialization for the partition, as upstream would record it
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "published_splits", partition="demo", metadata={"version": "demo-0123456789abcdef"}))
        result = dg.materialize([lora_adapter], partition_key="demo", instance=instance, resources=resources,
                                run_config={"ops": {"lora_adapter": {"config": {"max_steps": 3}}}},
                                raise_on_error=False)
    assert not result.success
    assert len(calls) == 1 and calls[0][1:4] == ["-m", "training", "train"]
    config = Path(calls[0][-1])
    assert config.name == "run.json"


def test_materialize_all_never_starts_a_full_epoch_by_accident(tmp_path: Path):
    import json

    from assets.definitions import build_definitions
    from assets.training import lora_adapter
    from itdr_pipeline.config import Settings

    settings = Settings(home=tmp_path / "home", raw_dir=None).ensure()
    version = settings.published / "demo-0123456789abcdef"
    version.mkdir(parents=True)
    (version / "manifest.json").write_text(json.dumps({"files": [
        {"task": "preference", "profile": "temporal", "split": "train", "rows": 8000}]}))
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("datasets", ["demo"])
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "published_splits", partition="demo", metadata={"version": version.name}))
        result = dg.materialize([lora_adapter], partition_key="demo", instance=instance,
                                resources=build_definitions(settings).resources, raise_on_error=False)
    failure = result.get_step_failure_events()[0].step_failure_data
    assert "refusing an epoch-based run of about 1000 steps" in failure.user_failure_data.description


def test_jobs_load_even_when_an_instance_was_left_entered_and_collected(tmp_path: Path):
    """A long-lived process (a notebook, a test worker) where an instance was entered, never exited
    and then collected: Dagster's definitions-state variable still names that instance's storage,
    and every job load reading it fails (seen in a CI worker). `load_job` is immune."""
    import gc

    from dagster._core.storage.defs_state.base import set_defs_state_storage

    from assets.definitions import build_definitions
    from assets.runner import load_job
    from itdr_pipeline.config import Settings

    settings = Settings(home=tmp_path / "home", raw_dir=None).ensure()
    with dg.instance_for_test() as instance:
        storage = instance.defs_state_storage
    del instance
    gc.collect()
    assert storage is not None and storage._instance_weakref() is None
    with set_defs_state_storage(storage):  # what the lost exit stack leaves behind
        with pytest.raises(dg.DagsterInvariantViolationError, match="undefined DagsterInstance weakref"):
            build_definitions(settings).resolve_job_def("main")  # the trap itself
        job = load_job(settings, "main")
    assert job.name == "main"
    assert {"interactions", "preference_records"} <= {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
