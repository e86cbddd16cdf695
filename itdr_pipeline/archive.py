"""Unpack zip archives safely: no member may land outside the target, no symlinks, all or nothing.

Extraction is staged beside the target folder and moved in whole, so a crash never leaves half a
folder; a truncated or corrupt archive fails naming the file.
"""

import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

from itdr_pipeline.errors import RawDataError

_CHUNK = 1 << 16


def extract_zip(archive: Path, dest_dir: Path, strip_prefix: str = "") -> list[Path]:
    """Unpack `archive`'s files under `strip_prefix` into `dest_dir` (replacing it); return them.

    Members that would land outside `dest_dir` and symbolic links are refused, not skipped.
    """
    staging = staging_dir(dest_dir)
    try:
        names = extract_into(archive, staging, dest_dir, strip_prefix)
        move_into_place(staging, dest_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already after a successful move
    return [dest_dir / name for name in names]


def staging_dir(dest_dir: Path) -> Path:
    # Beside the target, on the same file system, so the final move is a rename.
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".partial", dir=dest_dir.parent))


def move_into_place(staging: Path, dest_dir: Path) -> None:
    # A rename cannot replace a non-empty folder: park the old one aside, swap, then delete it.
    parked = None
    if dest_dir.exists() or dest_dir.is_symlink():
        parked = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".old", dir=dest_dir.parent))
        os.replace(dest_dir, parked / dest_dir.name)
    os.replace(staging, dest_dir)
    if parked is not None:
        shutil.rmtree(parked, ignore_errors=True)


def extract_into(archive: Path, root: Path, dest_dir: Path, strip_prefix: str) -> list[str]:
    """Write the archive's files under `strip_prefix` into the existing folder `root`."""
    if not archive.is_file():
        raise RawDataError(f"{archive}: archive not found")
    prefix = strip_prefix.strip("/") + "/" if strip_prefix.strip("/") else ""
    try:
        with zipfile.ZipFile(archive) as zf:
            plan = _plan_members(archive, zf.infolist(), prefix, dest_dir)
            for info, rel in plan:
                target = root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)  # raises BadZipFile on a CRC mismatch
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise RawDataError(f"{archive}: corrupt, truncated or unsupported zip ({exc})") from exc
    return [rel for _, rel in plan]


def _plan_members(
    archive: Path, infos: list[zipfile.ZipInfo], prefix: str, dest_dir: Path
) -> list[tuple[zipfile.ZipInfo, str]]:
    """Check every member before anything is written; map the wanted ones to relative paths."""
    plan = []
    for info in infos:
        name = info.filename.replace("\\", "/")  # Windows-made archives may use backslashes
        parts = name.split("/")
        # Strict on purpose: any `..`, absolute path or drive letter is refused, even if harmless.
        if name.startswith("/") or ".." in parts or ":" in parts[0]:
            raise RawDataError(f"{archive}: refused member {info.filename!r}: its path escapes {dest_dir}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise RawDataError(f"{archive}: refused member {info.filename!r}: symbolic links are refused")
        if info.is_dir() or not name.startswith(prefix):
            continue  # folders follow from their files; members outside the prefix are not ours
        rel = "/".join(p for p in name[len(prefix):].split("/") if p not in ("", "."))
        if rel:
            plan.append((info, rel))
    if not plan:
        raise RawDataError(f"{archive}: no files under {prefix or '/'!r}")
    return plan
