from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from duckdb import DuckDBPyConnection
from dagster_duckdb import DuckDBResource

from itdr_pipeline.config import Settings
from itdr_pipeline.registry import dataset_ids
from itdr_pipeline.warehouse import ensure_schema

DATASETS = dg.StaticPartitionsDefinition(dataset_ids())
# Every asset that writes the DuckDB file runs in this pool; its limit is 1 (see instance.py),
# because DuckDB allows one writer process per file.
DUCKDB_POOL = "duckdb"


class ItdrSettings(dg.ConfigurableResource):
    """Where state lives: ITDR_HOME (warehouse, published versions, cache) and ITDR_RAW_DIR."""

    home: str
    raw_dir: str | None = None

    def settings(self) -> Settings:
        return Settings(home=Path(self.home), raw_dir=Path(self.raw_dir) if self.raw_dir else None).ensure()


def build_resources(settings: Settings) -> dict[str, object]:
    return {
        "itdr": ItdrSettings(home=str(settings.home), raw_dir=str(settings.raw_dir) if settings.raw_dir else None),
        "duckdb": DuckDBResource(database=str(settings.warehouse)),
        # Training runs out of process (assets/training.py); swap this client to run it elsewhere.
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    }


@contextmanager
def warehouse(duckdb: DuckDBResource) -> Iterator[DuckDBPyConnection]:
    """A warehouse connection with the canonical schema in place."""
    with duckdb.get_connection() as con:
        ensure_schema(con)
        yield con
