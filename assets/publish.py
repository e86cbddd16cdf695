import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.resources import DATASETS, DUCKDB_POOL, ItdrSettings, warehouse
from itdr_pipeline.publish import CODE_VERSION, publish


@dg.asset(
    deps=["instruction_records"],
    partitions_def=DATASETS,
    group_name="publish",
    kinds={"parquet", "duckdb"},
    pool=DUCKDB_POOL,
    code_version=CODE_VERSION,
)
def published_splits(context: dg.AssetExecutionContext, itdr: ItdrSettings, duckdb: DuckDBResource):
    """Versioned, immutable Parquet splits (Hugging Face layout) and the `instructions` DuckDB view."""
    settings = itdr.settings()
    with warehouse(duckdb) as con:
        pub = publish(con, settings, context.partition_key)
    context.log.info(f"{'published' if pub.created else 'already published'} {pub.version} at {pub.path}")
    files = pub.manifest["files"]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(pub.version),
        metadata={
            "version": pub.version,
            "path": dg.MetadataValue.path(str(pub.path)),
            "newly_written": pub.created,
            "dagster/row_count": sum(f["rows"] for f in files),
            "files": dg.MetadataValue.md(
                "| file | rows | sha256 |\n|---|---|---|\n"
                + "\n".join(f"| {f['path']} | {f['rows']} | {f['sha256'][:16]} |" for f in files)
            ),
            "sources": dg.MetadataValue.json(pub.manifest["sources"]),
        },
    )
