"""The Dagster entry point (workspace.yaml loads `defs` from here)."""

import dagster as dg

from assets.filter import filtered_interactions
from assets.ingest import canonical_tables
from assets.publish import published_splits
from assets.render import instruction_records
from assets.resources import DATASETS, build_resources
from assets.training import evaluation_report, lora_adapter
from itdr_pipeline.config import Settings
from itdr_pipeline.raw import available
from itdr_pipeline.registry import get_dataset

MODEL_GROUP = dg.AssetSelection.groups("model")
main_job = dg.define_asset_job(
    "main", selection=dg.AssetSelection.all() - MODEL_GROUP,
    description="Ingest, validate, filter, render and publish one dataset partition.",
)
train_job = dg.define_asset_job(
    "train", selection=MODEL_GROUP,
    description="LoRA-tune on one published cell, then evaluate it against its zero-shot self and baselines.",
)
evaluate_job = dg.define_asset_job(
    "evaluate", selection=dg.AssetSelection.assets(evaluation_report),
    description="Evaluate an existing adapter (or, with skip_tuned, the base model and baselines only).",
)


@dg.schedule(job=main_job, cron_schedule="0 3 * * 1", default_status=dg.DefaultScheduleStatus.STOPPED)
def weekly_refresh(context: dg.ScheduleEvaluationContext):
    """Re-materialize every dataset whose raw files are present, weekly: unchanged raw files
    republish the same version (a no-op)."""
    settings = Settings.from_env()
    for key in DATASETS.get_partition_keys():
        if available(get_dataset(key), settings):
            yield dg.RunRequest(run_key=f"{key}-{context.scheduled_execution_time:%Y%m%d}", partition_key=key)


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[canonical_tables, filtered_interactions, instruction_records, published_splits, lora_adapter,
                evaluation_report],
        jobs=[main_job, train_job, evaluate_job],
        schedules=[weekly_refresh],
        resources=build_resources(settings),
    )


defs = build_definitions(Settings.from_env())
