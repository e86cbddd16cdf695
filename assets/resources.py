from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from duckdb import DuckDBPyConnection

from assets import interrupts
from itdr_pipeline import catalog
from itdr_pipeline.config import Settings
from itdr_pipeline.raw import available
from itdr_pipeline.registry import REGISTRY

# The datasets a user has, not the registry's 86 ids: a partition is added when its raw files are
# found (by `itdr ui`, `itdr materialize`, the raw_files_changed sensor and the weekly schedule).
DATASETS = dg.DynamicPartitionsDefinition(name="datasets")


def present_datasets(settings: Settings) -> list[str]:
    """Registry ids whose required raw files (or official archives) are there, and the synthetic demo."""
    return [spec.id for spec in REGISTRY.values() if spec.synthetic or available(spec, settings)]


def add_partitions(instance: dg.DagsterInstance, keys: list[str]) -> list[str]:
    """Add the dataset partitions the instance does not have yet; returns the ones added."""
    missing = [k for k in dict.fromkeys(keys) if not instance.has_dynamic_partition(DATASETS.name, k)]
    if missing:
        instance.add_dynamic_partitions(DATASETS.name, missing)
    return missing


class ItdrSettings(dg.ConfigurableResource):
    """Where state lives: ITDR_HOME (working files, catalog, published versions, cache) and ITDR_RAW_DIR."""

    home: str
    raw_dir: str | None = None

    def settings(self) -> Settings:
        return Settings(home=Path(self.home), raw_dir=Path(self.raw_dir) if self.raw_dir else None).ensure()


def build_resources(settings: Settings) -> dict[str, object]:
    return {
        "itdr": ItdrSettings(home=str(settings.home), raw_dir=str(settings.raw_dir) if settings.raw_dir else None),
        # Training runs out of process (assets/training.py); swap this client to run it elsewhere.
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    }


@contextmanager
def partition(context: dg.AssetExecutionContext, itdr: ItdrSettings) -> Iterator[DuckDBPyConnection]:
    """The partition's private working file. Runs of other partitions proceed in parallel; another
    run of the same partition waits (the lock dies with its holder, so a crash never blocks)."""
    interrupts.raise_if_interrupted()
    with catalog.partition(itdr.settings(), context.partition_key, log=context.log.info) as con:
        yield con


def _downstream_in_run(context: dg.AssetExecutionContext) -> bool:
    layer = context.job_def.asset_layer
    selected, graph = set(layer.selected_asset_keys), layer.asset_graph
    todo, seen = list(context.selected_asset_keys), set()
    while todo:
        for child in graph.get(todo.pop()).child_keys:
            if child in selected and child not in context.selected_asset_keys:
                return True
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return False


def record(context: dg.AssetExecutionContext, settings: Settings, entries: catalog.State) -> None:
    """Hand this step's snapshots to the catalog: staged while an asset downstream of it is still
    to run in this run, committed together with the run's staged ones by its last step."""
    stage = catalog.RunStage(settings, context.run.run_id)
    interrupts.raise_if_interrupted()  # a Ctrl-C whose exception Dagster's handler lost commits nothing
    if _downstream_in_run(context):
        stage.add(entries)
    else:
        stage.commit(entries)
        context.log.info("committed to the catalog: readers now see this run's tables")
