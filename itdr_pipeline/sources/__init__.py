"""Source parsers: official raw files -> canonical DuckDB tables, keyed by registry `format`."""

from collections.abc import Callable
from pathlib import Path

import duckdb

from itdr_pipeline.sources.base import IngestResult
from itdr_pipeline.sources.movielens import ingest_ml100k

Parser = Callable[[duckdb.DuckDBPyConnection, str, Path, float], IngestResult]

PARSERS: dict[str, Parser] = {
    "movielens-100k": ingest_ml100k,
}

__all__ = ["PARSERS", "IngestResult", "Parser"]
