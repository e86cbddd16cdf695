"""LoRA training and evaluation as Dagster assets, run out of process through Dagster Pipes.

The webserver and the asset code never import torch: each asset writes a `training.config.RunConfig`
as JSON and launches `python -m training train|evaluate --config <file>` with
`dg.PipesSubprocessClient`; the child streams its log lines and reports the materialization (adapter
id as data version, loss curve, report tables). To run elsewhere, swap the client: e.g.
`dagster_k8s.PipesK8sClient` with the same command in an image of this project, or a subprocess
command that wraps `accelerate launch -m training ...` for several GPUs (docs/training.md).
"""

import json
import sys
import tempfile
from pathlib import Path

import dagster as dg
import duckdb

from assets.resources import DATASETS, ItdrSettings
from itdr_pipeline import catalog
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.versions import latest_version_dir
from itdr_pipeline.warehouse import ensure_schema
from training.config import RUN_DEFAULTS as _RUN
from training.config import RunConfig


class TrainingConfig(dg.Config):
    """One training + evaluation run on a published cell (the same config goes to both assets;
    fields mirror training.config.RunConfig, where each is documented, and take its defaults)."""

    task: str = "preference"  # RunConfig has no default task: the one a UI launch starts with
    profile: str = _RUN["profile"]
    base_model: str = _RUN["base_model"]
    max_steps: int = _RUN["max_steps"]
    epochs: float = _RUN["epochs"]
    shots: int = _RUN["shots"]
    batch_size: int = _RUN["batch_size"]
    grad_accum: int = _RUN["grad_accum"]
    learning_rate: float = _RUN["learning_rate"]
    scheduler: str = _RUN["scheduler"]
    lora_rank: int = _RUN["lora_rank"]
    lora_alpha: int = _RUN["lora_alpha"]
    lora_dropout: float = _RUN["lora_dropout"]
    max_length: int = _RUN["max_length"]
    mask_prompt: bool = _RUN["mask_prompt"]
    precision: str = _RUN["precision"]
    seed: int = _RUN["seed"]
    save_steps: int = _RUN["save_steps"]
    valid_every: int = _RUN["valid_every"]  # model selection on valid (0 = off)
    valid_limit: int = _RUN["valid_limit"]
    select_best: bool = _RUN["select_best"]
    patience: int = _RUN["patience"]  # early stopping (0 = never)
    eval_limit: int = _RUN["eval_limit"]
    eval_batch_size: int = _RUN["eval_batch_size"]
    adapter: str = _RUN["adapter"]
    skip_base: bool = _RUN["skip_base"]
    skip_tuned: bool = _RUN["skip_tuned"]
    baselines: bool = _RUN["baselines"]
    hybrid: bool = _RUN["hybrid"]
    run_name: str = _RUN["run_name"]
    full_run: bool = False  # epoch-based runs (max_steps 0) must be asked for: hours on a CPU


    # Multi-task: several cells in one run, "dataset/task/profile[:weight]" each (the partition's
    # dataset reads the version its published_splits recorded, others their latest). Empty = one cell.
    mix: list[str] = []

    def run_config(self, settings: Settings, version: str, dataset: str) -> RunConfig:
        fields = self.model_dump(exclude={"full_run", "mix"})
        cells = [parse_cell(entry) for entry in self.mix]
        if cells:
            mix = [{"version_dir": str(settings.published / version if d == dataset
                                       else latest_version_dir(settings, d)), "task": t, "profile": p, "weight": w}
                   for d, t, p, w in cells]
            fields.update(task=mix[0]["task"], profile=mix[0]["profile"])
            return RunConfig(version_dir=mix[0]["version_dir"], mix=mix, models_dir=str(settings.models),
                             adapters_dir=str(settings.adapters), reports_dir=str(settings.reports), **fields)
        return RunConfig(version_dir=str(settings.published / version), models_dir=str(settings.models),
                         adapters_dir=str(settings.adapters), reports_dir=str(settings.reports), **fields)


def parse_cell(entry: str) -> tuple[str, str, str, float]:
    """"ml-100k/rp/temporal:0.5" -> ("ml-100k", "rp", "temporal", 0.5); the weight defaults to 1."""
    name, _, weight = entry.partition(":")
    parts = name.split("/")
    if len(parts) != 3 or not all(parts):
        raise ItdrError(f"mix cell {entry!r}: write dataset/task/profile[:weight], e.g. ml-100k/rp/temporal:0.5")
    try:
        value = float(weight) if weight else 1.0
    except ValueError:
        raise ItdrError(f"mix cell {entry!r}: the weight {weight!r} is not a number") from None
    get_dataset(parts[0])  # an unknown dataset id fails here, by name
    return parts[0], parts[1], parts[2], value


def recorded_version(context: dg.AssetExecutionContext) -> str:
    """The version the last `published_splits` materialization of this partition recorded (not a
    folder lookup: what the UI shows upstream is what trains)."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("published_splits"), asset_partitions=[context.partition_key]),
        limit=1).records
    mat = records[0].asset_materialization if records else None
    version = mat.metadata.get("version") if mat else None
    if version is None:
        raise ItdrError(f"{context.partition_key} has no materialized published_splits; "
                        f"run `itdr materialize --datasets {context.partition_key}` first")
    return getattr(version, "value", version)


def _launch(context: dg.AssetExecutionContext, client: dg.PipesSubprocessClient, command: str,
            cfg: RunConfig) -> dg.PipesClientCompletedInvocation:
    with tempfile.TemporaryDirectory(prefix="itdr-run-") as tmp:
        path = Path(tmp) / "run.json"
        path.write_text(cfg.to_json())
        context.log.info(f"python -m training {command} on {cfg.cell} of {cfg.version}")
        return client.run(context=context, command=[sys.executable, "-m", "training", command, "--config", str(path)])


@dg.asset(deps=["published_splits"], partitions_def=DATASETS, group_name="model", kinds={"pytorch"})
def lora_adapter(context: dg.AssetExecutionContext, config: TrainingConfig, itdr: ItdrSettings,
                 pipes_subprocess_client: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    """A LoRA adapter trained on one cell of the latest published version, saved under
    $ITDR_HOME/adapters/<version>/<task>-<profile>/<adapter id>."""
    settings = itdr.settings()
    version = recorded_version(context)
    if config.max_steps == 0 and not config.full_run:
        manifest = json.loads((settings.published / version / "manifest.json").read_text())
        rows = sum(f["rows"] for f in manifest["files"] if (f["task"], f["profile"], f["split"])
                   == (config.task, config.profile, "train"))
        steps = int(rows * config.epochs / (config.batch_size * config.grad_accum))
        raise dg.Failure(description=f"refusing an epoch-based run of about {steps} steps on {config.task}/"
                                     f"{config.profile} ({rows} train records): set max_steps, or full_run: true "
                                     "to train the whole epoch (hours on a CPU). `Materialize all` never trains "
                                     "by accident.")
    cfg = config.run_config(settings, version, context.partition_key)
    return _launch(context, pipes_subprocess_client, "train", cfg).get_materialize_result()


@dg.asset(deps=["lora_adapter"], partitions_def=DATASETS, group_name="model", kinds={"pytorch", "duckdb"})
def evaluation_report(context: dg.AssetExecutionContext, config: TrainingConfig, itdr: ItdrSettings,
                      pipes_subprocess_client: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    """The base model zero-shot, the tuned adapter and classic baselines on the test split: report
    in $ITDR_HOME/reports/<run>/, rows and lineage in the warehouse (evaluation_results, model_lineage)."""
    settings = itdr.settings()
    cfg = config.run_config(settings, recorded_version(context), context.partition_key)
    result = _launch(context, pipes_subprocess_client, "evaluate", cfg).get_materialize_result()
    folder = cfg.report_dir()
    rows = [{**r, "report": folder.name} for r in json.loads((folder / "report.json").read_text())]
    lineage = json.loads((folder / "lineage.json").read_text())
    with duckdb.connect() as con:  # a scratch table to snapshot from; readers see it after the commit
        ensure_schema(con)
        for table, data in (("evaluation_results", rows), ("model_lineage", lineage)):
            if data:
                columns = list(data[0])
                con.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                                [[r[c] for c in columns] for r in data])
        catalog.commit(settings, catalog.snapshot(con, settings, ["evaluation_results", "model_lineage"], folder.name))
    return result
