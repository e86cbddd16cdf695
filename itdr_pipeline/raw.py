"""Find a dataset's raw files, hash them, and judge them against the official checksums.

Policy: a local file that differs from the official hash is accepted with a warning recorded in
`source_files` (users patch and subset data); a downloaded file that differs is refused
(see fetch.py). Missing required files are named with the folder where they were expected.
"""

from dataclasses import dataclass
from pathlib import Path

from itdr_pipeline.config import Settings
from itdr_pipeline.errors import RawDataError
from itdr_pipeline.hashing import sha256_file
from itdr_pipeline.registry import DatasetSpec


@dataclass(frozen=True)
class SourceFile:
    file: str
    path: Path
    bytes: int
    sha256: str
    official_sha256: str | None

    @property
    def status(self) -> str:
        if self.official_sha256 is None:
            return "unverified"
        return "official" if self.sha256 == self.official_sha256 else "modified"


def candidate_folders(spec: DatasetSpec, settings: Settings) -> list[Path]:
    """Where a dataset's files are looked for, in order: ITDR_RAW_DIR/<id>, then the fetch cache."""
    return ([settings.raw_dir / spec.id] if settings.raw_dir is not None else []) + [settings.cache / "raw" / spec.id]


def find_folder(spec: DatasetSpec, settings: Settings) -> Path | None:
    return next((p for p in candidate_folders(spec, settings) if p.is_dir()), None)


def resolve_folder(spec: DatasetSpec, settings: Settings) -> Path:
    """Where this dataset's files are: ITDR_RAW_DIR/<id>, else the fetch cache, else an error."""
    if spec.synthetic:
        from itdr_pipeline.sources.demo import write_demo

        return write_demo(settings.cache / "raw" / spec.id)
    if (folder := find_folder(spec, settings)) is not None:
        return folder
    candidates = candidate_folders(spec, settings)
    expected = ", ".join(f.name for f in spec.files if f.required)
    tried = " or ".join(str(c) for c in candidates)
    raise RawDataError(
        f"{spec.id}: raw files not found (looked in {tried}; expected {expected}). "
        f"Set ITDR_RAW_DIR to the folder that contains {spec.id}/, or run `itdr fetch {spec.id}`."
    )


def inspect_files(spec: DatasetSpec, folder: Path) -> list[SourceFile]:
    out = []
    for raw in spec.files:
        path = folder / raw.name
        if not path.is_file():
            if raw.required:
                raise RawDataError(f"{spec.id}: required file {raw.name} is missing from {folder}")
            continue
        out.append(SourceFile(raw.name, path, path.stat().st_size, sha256_file(path), raw.sha256))
    return out
