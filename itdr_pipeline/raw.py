"""Find a dataset's raw files, hash them, and judge them against the official checksums.

Policy: a local file that differs from the official hash is accepted with a warning recorded in
`source_files` (users patch and subset data); a downloaded file that differs is refused
(see fetch.py). Missing required files are named with the folder where they were expected.

A source folder may hold the official archive instead of its files (`ml-latest-small.zip`): it is
unpacked once, safely, into the cache (keyed by the archive's hash) and read from there.
"""

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from itdr_pipeline.archive import extract_into, move_into_place, staging_dir
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import RawDataError
from itdr_pipeline.hashing import sha256_file, sha256_json
from itdr_pipeline.registry import DatasetSpec, Download


@dataclass(frozen=True)
class SourceFile:
    file: str  # the name as found (a registry name or one of its alternatives)
    path: Path
    bytes: int
    sha256: str
    official_sha256: str | None
    official_md5: str | None = None
    md5: str | None = None  # computed only where the publisher gives an MD5 and no SHA-256

    @property
    def status(self) -> str:
        if self.official_sha256 is not None:
            return "official" if self.sha256 == self.official_sha256 else "modified"
        if self.official_md5 is not None and self.md5 is not None:
            return "official" if self.md5 == self.official_md5 else "modified"
        return "unverified"


@dataclass(frozen=True)
class Located:
    folder: Path  # where the files are read from
    files: dict[str, Path]  # registry file name -> present file
    inspected: list[SourceFile]  # what lineage records: the files, or the archive they came from


def candidate_folders(spec: DatasetSpec, settings: Settings) -> list[Path]:
    """Where a dataset's files are looked for, in order: ITDR_RAW_DIR/<source>, then the fetch cache."""
    raw = [settings.raw_dir / spec.folder] if settings.raw_dir is not None else []
    return raw + [settings.cache / "raw" / spec.folder]


def find_folder(spec: DatasetSpec, settings: Settings) -> Path | None:
    return next((p for p in candidate_folders(spec, settings) if p.is_dir()), None)


def resolve_folder(spec: DatasetSpec, settings: Settings) -> Path:
    """Where this dataset's files are: ITDR_RAW_DIR/<source>, else the fetch cache, else an error."""
    if spec.synthetic:
        from itdr_pipeline.sources.demo import write_demo

        return write_demo(settings.cache / "raw" / spec.folder)
    if (folder := find_folder(spec, settings)) is not None:
        return folder
    tried = " or ".join(str(c) for c in candidate_folders(spec, settings))
    expected = ", ".join(f.name for f in spec.files if f.required)
    fetch = f"itdr fetch {spec.folder}" + (f" --category {spec.category}" if spec.category else "")
    raise RawDataError(
        f"{spec.id}: raw files not found (looked in {tried}; expected {expected}). "
        f"Set ITDR_RAW_DIR to the folder that contains {spec.folder}/, or run `{fetch}`."
    )


def _present(spec: DatasetSpec, folders: list[Path]) -> dict[str, Path]:
    found = {}
    for raw in spec.files:
        for folder in folders:
            hit = next((folder / n for n in raw.names if (folder / n).is_file()), None)
            if hit is not None:
                found[raw.name] = hit
                break
    return found


def _missing(spec: DatasetSpec, found: dict[str, Path]) -> list[str]:
    return [r.name for r in spec.files if r.required and r.name not in found]


def _search_folders(spec: DatasetSpec, folder: Path) -> list[Path]:
    # Files may sit in the folder or, when an archive was unpacked in place, under its top folder.
    return [folder, *(folder / d.strip_prefix.strip("/") for d in spec.downloads
                      if d.is_archive and d.strip_prefix.strip("/"))]


def available(spec: DatasetSpec, settings: Settings) -> bool:
    """Whether the dataset's required files (or its official archives) are there, without hashing."""
    if spec.synthetic:
        return True
    folder = find_folder(spec, settings)
    if folder is None:
        return False
    archives = any(d.is_archive and (folder / d.filename).is_file() for d in spec.downloads)
    return archives or not _missing(spec, _present(spec, _search_folders(spec, folder)))


def locate(spec: DatasetSpec, settings: Settings) -> Located:
    """Find every file of `spec`, unpacking its official archive from the folder if that is what is there."""
    folder = resolve_folder(spec, settings)
    found = _present(spec, _search_folders(spec, folder))
    archives = [(folder / d.filename, d) for d in spec.downloads if d.is_archive and (folder / d.filename).is_file()]
    if _missing(spec, found) and archives:
        return _from_archives(spec, settings, archives)
    if missing := _missing(spec, found):
        alt = [d.filename for d in spec.downloads if d.is_archive]
        also = f" (or the archive {' / '.join(alt)})" if alt else ""
        raise RawDataError(f"{spec.id}: required file {missing[0]} is missing from {folder}{also}")
    return Located(folder, found, [_inspect(spec, name, path, settings, folder) for name, path in found.items()])


def inspect_files(spec: DatasetSpec, folder: Path, settings: Settings | None = None) -> list[SourceFile]:
    """Hash the present files of `spec` in `folder`; a missing required file is an error."""
    found = _present(spec, [folder])
    if missing := _missing(spec, found):
        raise RawDataError(f"{spec.id}: required file {missing[0]} is missing from {folder}")
    return [_inspect(spec, name, path, settings, folder) for name, path in found.items()]


def _inspect(spec: DatasetSpec, name: str, path: Path, settings: Settings | None, folder: Path) -> SourceFile:
    # The official hash is that of the file under its registry name, not of an alternative spelling.
    rel = path.relative_to(folder).as_posix() if path.is_relative_to(folder) else path.name
    official = spec.file(name).sha256 if path.name == name.rsplit("/", 1)[-1] else None
    return SourceFile(rel, path, path.stat().st_size, _sha256(path, settings), official)


def _from_archives(spec: DatasetSpec, settings: Settings, archives: list[tuple[Path, Download]]) -> Located:
    """Unpack the official archives found in the folder (each into its `target`) into the cache, once."""
    inspected, digests = [], []
    for archive, download in archives:
        digest = _sha256(archive, settings)
        md5 = _md5(archive) if download.sha256 is None and download.md5 else None
        inspected.append(SourceFile(archive.name, archive, archive.stat().st_size, digest, download.sha256,
                                    download.md5, md5))
        digests.append(digest)
    dest = settings.cache / "extracted" / spec.folder / sha256_json(digests)[:16]
    if not (dest / ".complete").is_file():
        staging = staging_dir(dest)
        try:
            for archive, download in archives:
                target = staging / download.target if download.target else staging
                target.mkdir(parents=True, exist_ok=True)
                extract_into(archive, target, dest, download.strip_prefix)
            (staging / ".complete").write_text(" ".join(a.name for a, _ in archives))
            move_into_place(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    found = _present(spec, [dest])
    if missing := _missing(spec, found):
        names = ", ".join(a.name for a, _ in archives)
        raise RawDataError(f"{spec.id}: the archive(s) {names} hold no {missing[0]}")
    members = [_inspect(spec, name, path, settings, dest) for name, path in found.items()]
    return Located(dest, found, [*inspected, *members])


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256(path: Path, settings: Settings | None) -> str:
    """sha256 of a raw file, remembered by (path, size, mtime) so multi-GB files hash once."""
    if settings is None:
        return sha256_file(path)
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    store = settings.cache / "sha256.json"
    known = json.loads(store.read_text()) if store.is_file() else {}
    if key not in known:
        known[key] = sha256_file(path)
        tmp = store.with_suffix(".tmp")
        tmp.write_text(json.dumps(known, indent=0, sort_keys=True))
        tmp.replace(store)
    return known[key]
