import json

import dagster as dg
from pydantic import Field

from assets.metadata import table_metadata
from assets.resources import DATASETS, ItdrSettings, partition, record
from itdr_pipeline import catalog
from data_contracts import load_contract
from itdr_pipeline.filters import FilterConfig, apply_filters
from itdr_pipeline.ingest import require_audited
from itdr_pipeline.publish import CODE_VERSION


class FilterSettings(dg.Config):
    since: str | None = Field(default=None, description="Keep interactions at or after this ISO date (UTC).")
    until: str | None = Field(default=None, description="Keep interactions before this ISO date (UTC).")
    min_rating: float | None = Field(default=None, description="Keep explicit ratings >= this (unrated rows kept).")
    user_core: int = Field(default=0, description="Iterative k-core: every kept user has >= this many interactions.")
    item_core: int = Field(default=0, description="Iterative k-core: every kept item has >= this many interactions.")
    min_history: int = Field(default=0, description="Finally drop users with fewer interactions than this.")

    def filters(self) -> FilterConfig:
        return FilterConfig(self.since, self.until, self.min_rating, self.user_core, self.item_core, self.min_history)


@dg.asset(
    deps=["interactions"],
    partitions_def=DATASETS,
    group_name="filter",
    kinds={"duckdb"},
    code_version=CODE_VERSION,
)
def filtered_interactions(context: dg.AssetExecutionContext, config: FilterSettings, itdr: ItdrSettings):
    """The interactions every task renders from (and RecBole exports): time window, rating threshold, k-core."""
    cfg = config.filters()
    settings = itdr.settings()
    with partition(context, itdr) as con:
        require_audited(con, context.partition_key)
        report = apply_filters(con, context.partition_key, cfg)
        meta = table_metadata(con, load_contract("interactions"), context.partition_key, "src_row", report.dropped,
                              table="filtered_interactions")
        record(context, settings, catalog.snapshot(con, settings, ["filtered_interactions", "filter_runs"],
                                                   context.partition_key))
    if report.k_core_rounds:
        context.log.info(f"k-core converged after {report.k_core_rounds} rounds")
    return dg.MaterializeResult(
        metadata={**meta, "k_core_rounds": report.k_core_rounds,
                  "filters": dg.MetadataValue.json(json.loads(json.dumps(cfg.as_dict())))},
    )
