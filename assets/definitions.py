"""The Dagster entry point (workspace.yaml loads `defs` from here)."""

import json

import dagster as dg

from assets.filter import filtered_interactions
from assets.ingest import canonical_tables
from assets.publish import published_splits
from assets.render import render_assets
from assets.resources import DATASETS, add_partitions, build_resources, present_datasets
from assets.training import evaluation_report, lora_adapter
from itdr_pipeline.config import Settings
from itdr_pipeline.hashing import sha256_json
from itdr_pipeline.raw import find_folder
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
    keys = present_datasets(settings)
    add_partitions(context.instance, keys)  # a folder placed since the UI started gets its partition
    for key in keys:
        yield dg.RunRequest(run_key=f"{key}-{context.scheduled_execution_time:%Y%m%d}", partition_key=key)


def raw_fingerprint(spec, settings: Settings) -> str:
    """Name, size and mtime of every registry file (and official archive) in the dataset's folder:
    cheap enough for every tick; the run itself hashes the files (sha256) for lineage."""
    folder = find_folder(spec, settings) if not spec.synthetic else None
    if folder is None:
        return ""
    names = sorted({n for f in spec.files for n in f.names} | {d.filename for d in spec.downloads})
    stats = [(n, p.stat().st_size, p.stat().st_mtime_ns) for n in names
             for p in [folder / n, *(folder / d.strip_prefix.strip("/") / n for d in spec.downloads
                                     if d.is_archive and d.strip_prefix.strip("/"))] if p.is_file()]
    return sha256_json(stats)


@dg.sensor(job=main_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def raw_files_changed(context: dg.SensorEvaluationContext):
    """Request a run of a dataset when its raw folder appears or one of its files changes, adding
    its partition first if it is new. The cursor keeps each dataset's file fingerprint; a run key per
    fingerprint makes a repeat request a no-op. The synthetic demo gets a partition, never a run."""
    settings = Settings.from_env()
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    present = present_datasets(settings)
    new = [key for key in present if not context.instance.has_dynamic_partition(DATASETS.name, key)]
    requests = []
    for key in present:
        spec = get_dataset(key)
        if spec.synthetic:
            continue
        fingerprint = raw_fingerprint(spec, settings)
        if seen.get(key) != fingerprint:
            requests.append(dg.RunRequest(run_key=f"{key}-{fingerprint[:16]}", partition_key=key))
            seen[key] = fingerprint
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True),
                           dynamic_partitions_requests=[DATASETS.build_add_request(new)] if new else [])


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[canonical_tables, filtered_interactions, *render_assets, published_splits, lora_adapter,
                evaluation_report],
        jobs=[main_job, train_job, evaluate_job],
        schedules=[weekly_refresh],
        sensors=[raw_files_changed],
        resources=build_resources(settings),
    )


defs = build_definitions(Settings.from_env())
