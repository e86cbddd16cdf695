import dagster as dg

from assets.render import RECORD_TABLE_SCHEMA, RENDER_ASSET_NAMES
from assets.resources import DATASETS, ItdrSettings, partition, record
from itdr_pipeline import catalog
from itdr_pipeline.publish import PUBLISH_CODE_VERSION, publish
from itdr_pipeline.stats import markdown_table

# The published Parquet files: the record layout after a leading `version` column.
PUBLISHED_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("version", "VARCHAR", description="The published version id (dataset plus a hash of its inputs).",
                   constraints=dg.TableColumnConstraints(nullable=False)),
    *RECORD_TABLE_SCHEMA.columns,
])


@dg.asset(
    deps=RENDER_ASSET_NAMES,
    partitions_def=DATASETS,
    group_name="publish",
    kinds={"parquet", "duckdb"},
    code_version=PUBLISH_CODE_VERSION,
    metadata={"dagster/column_schema": PUBLISHED_SCHEMA},
    # Re-rendering one task from the UI republishes by itself (with the automation sensor on).
    automation_condition=dg.AutomationCondition.eager(),
)
def published_splits(context: dg.AssetExecutionContext, itdr: ItdrSettings):
    """Versioned, immutable instruction data: Parquet splits with a Hugging Face card, LLaMA-Factory
    files and statistics (instances, average tokens) per task and split profile."""
    settings = itdr.settings()
    with partition(context, itdr) as con:
        pub = publish(con, settings, context.partition_key)
        record(context, settings, {**catalog.snapshot(con, settings, ["publications"], context.partition_key),
                                   **catalog.published_entry(settings, context.partition_key, pub.version)})
    context.log.info(f"{'published' if pub.created else 'already published'} {pub.version} at {pub.path}")
    files, cells = pub.manifest["files"], pub.manifest["stats"]["cells"]
    per_cell = {c["config"]: {k: c[k] for k in ("instances", "avg_input_tokens", "avg_output_tokens",
                                                "max_input_tokens", "max_output_tokens")} for c in cells}
    return dg.MaterializeResult(
        data_version=dg.DataVersion(pub.version),
        metadata={
            "version": pub.version,
            "path": dg.MetadataValue.path(str(pub.path)),
            "newly_written": pub.created,
            "dagster/row_count": sum(f["rows"] for f in files),
            "dagster/column_schema": PUBLISHED_SCHEMA,
            "stats": dg.MetadataValue.md(markdown_table(cells)),
            "stats_per_cell": dg.MetadataValue.json(per_cell),
            "stats_tokenizer": pub.manifest["stats"]["tokenizer"]["model"],
            "files": dg.MetadataValue.md(
                "| file | rows | sha256 |\n|---|---|---|\n"
                + "\n".join(f"| {f['path']} | {f['rows']} | {f['sha256'][:16]} |" for f in files)
            ),
            "sources": dg.MetadataValue.json(pub.manifest["sources"]),
        },
    )
