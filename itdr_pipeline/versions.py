"""Reading published versions: which one is current for a dataset, and one split of it. Export,
the CLI and the training launcher read versions through here; publish.py only writes them."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.records import split_file


def latest_version_dir(settings: Settings, dataset: str) -> Path:
    """The dataset's current version: the one the last committed run published (the catalog's)."""
    from itdr_pipeline.catalog import INSTRUCTIONS, read_state

    folder = read_state(settings).get((INSTRUCTIONS, dataset))
    if folder is None:
        raise ItdrError(f"nothing published yet for dataset {dataset!r} under {settings.home}; "
                        f"run `itdr materialize --datasets {dataset}`")
    return settings.home / folder


def read_split(version_dir: Path, task: str, profile: str, split: str) -> pa.Table:
    path = split_file(version_dir, task, profile, split)
    if not path.is_file():
        raise ItdrError(f"{version_dir.name} has no {task}/{profile} {split} split ({path} missing)")
    return pq.read_table(path)
