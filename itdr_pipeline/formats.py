"""Export formats behind one interface: `itdr export --format <id>` and the library call
`export(settings, format_id, dataset, out, ...)` look a format up here and nothing else.

A format is an `OutputFormat`: its id, what it writes, whether it needs a (task, profile) cell,
and a writer `(settings, request) -> {file name: rows}` that builds its folder beside the target
and renames it into place (so a failed export leaves the target as it was) and refuses targets
inside ITDR_HOME (export.check_export_target). Adding one is one writer and one entry in FORMATS
(docs/how-to-add.md).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError


@dataclass(frozen=True)
class ExportRequest:
    dataset: str
    out: Path
    force: bool = False
    task: str | None = None  # cell formats only
    profile: str = "temporal"


@dataclass(frozen=True)
class OutputFormat:
    id: str
    description: str
    needs_cell: bool  # True: one (task, profile) of the latest published version; False: the whole dataset
    writer: Callable[[Settings, ExportRequest], dict[str, int]]

    def folder(self, request: ExportRequest) -> Path:
        """Where the files land: the folder itself for cell formats, <out>/<dataset>/ otherwise."""
        return request.out if self.needs_cell else request.out / request.dataset


def _alpaca(settings: Settings, request: ExportRequest) -> dict[str, int]:
    from itdr_pipeline.export import export_alpaca

    assert request.task is not None
    counts = export_alpaca(settings, request.dataset, request.task, request.profile, request.out, request.force)
    return {f"{split}.json": n for split, n in counts.items()}


def _recbole(settings: Settings, request: ExportRequest) -> dict[str, int]:
    from itdr_pipeline.recbole import export_recbole

    counts = export_recbole(settings, request.dataset, request.out, request.force)
    return {f"{request.dataset}.{suffix}": n for suffix, n in counts.items()}


FORMATS: dict[str, OutputFormat] = {f.id: f for f in (
    OutputFormat("alpaca", "the latest published splits of one cell as Alpaca / LLaMA-Factory JSON "
                           "(train.json, valid.json, test.json)", True, _alpaca),
    OutputFormat("recbole", "the dataset's filtered interactions, users and items as RecBole atomic files "
                            "(.inter, .user, .item), for classic recommenders", False, _recbole),
)}


def get_format(format_id: str) -> OutputFormat:
    try:
        return FORMATS[format_id]
    except KeyError:
        raise ItdrError(f"unknown format {format_id!r}; known: {', '.join(FORMATS)}") from None


def export(settings: Settings, format_id: str, request: ExportRequest) -> tuple[Path, dict[str, int]]:
    """Write one export; returns the folder written and rows per file."""
    fmt = get_format(format_id)
    if fmt.needs_cell and not request.task:
        raise ItdrError(f"--task is required for --format {fmt.id} (e.g. --task preference)")
    if not fmt.needs_cell and request.task:
        raise ItdrError(f"--format {fmt.id} exports the whole dataset: drop --task")
    return fmt.folder(request), fmt.writer(settings, request)
