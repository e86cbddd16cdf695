"""Source parsers: official raw files -> canonical DuckDB tables.

A registry entry's `format` names its parser as `<module>` or `<module>:<function>` under this
package (function default: `ingest`). Modules are imported on first use, so one source's
dependencies never load for another.
"""

import importlib
from collections.abc import Callable

from itdr_pipeline.sources.base import IngestResult, SourceContext

Parser = Callable[[SourceContext], IngestResult]


def get_parser(fmt: str) -> Parser:
    module, _, function = fmt.partition(":")
    if not module.isidentifier() or (function and not function.isidentifier()):
        raise ValueError(f"malformed parser name {fmt!r}")
    return getattr(importlib.import_module(f"itdr_pipeline.sources.{module}"), function or "ingest")


__all__ = ["IngestResult", "Parser", "SourceContext", "get_parser"]
