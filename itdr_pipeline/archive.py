"""Unpack zip and tar(.gz) archives safely: no member may land outside the target, no links,
all or nothing.

Extraction is staged beside the target folder and moved in whole, so a crash never leaves half a
folder; a truncated or corrupt archive fails naming the file.
"""

import os
import shutil
import stat
import tarfile
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


ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


def is_archive(name: str) -> bool:
    return name.endswith(ARCHIVE_SUFFIXES)


def extract_into(archive: Path, root: Path, dest_dir: Path, strip_prefix: str) -> list[str]:
    """Write the archive's files under `strip_prefix` into the existing folder `root`."""
    if not archive.is_file():
        raise RawDataError(f"{archive}: archive not found")
    prefix = strip_prefix.strip("/") + "/" if strip_prefix.strip("/") else ""
    if not archive.name.endswith(".zip"):
        return _extract_tar(archive, root, dest_dir, prefix)
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


def _extract_tar(archive: Path, root: Path, dest_dir: Path, prefix: str) -> list[str]:
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for m in members:
                if m.issym() or m.islnk() or m.isdev():
                    raise RawDataError(f"{archive}: refused member {m.name!r}: links and devices are refused")
            plan = _plan_members(archive, members, prefix, dest_dir)
            for member, rel in plan:
                if not member.isfile():
                    continue
                target = root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with tf.extractfile(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise RawDataError(f"{archive}: corrupt, truncated or unsupported tar archive ({exc})") from exc
    return [rel for member, rel in plan if member.isfile()]


def _plan_members(archive: Path, infos: list, prefix: str, dest_dir: Path) -> list[tuple]:
    """Check every member (zip or tar) before anything is written; map the wanted ones to relative paths."""
    plan = []
    for info in infos:
        raw_name = info.filename if isinstance(info, zipfile.ZipInfo) else info.name
        name = raw_name.replace("\\", "/")  # Windows-made archives may use backslashes
        parts = name.split("/")
        # Strict on purpose: any `..`, absolute path or drive letter is refused, even if harmless.
        if name.startswith("/") or ".." in parts or ":" in parts[0]:
            raise RawDataError(f"{archive}: refused member {raw_name!r}: its path escapes {dest_dir}")
        if isinstance(info, zipfile.ZipInfo) and stat.S_ISLNK(info.external_attr >> 16):
            raise RawDataError(f"{archive}: refused member {raw_name!r}: symbolic links are refused")
        is_dir = info.is_dir() if isinstance(info, zipfile.ZipInfo) else info.isdir()
        if is_dir or not name.startswith(prefix):
            continue  # folders follow from their files; members outside the prefix are not ours
        rel = "/".join(p for p in name[len(prefix):].split("/") if p not in ("", "."))
        if rel:
            plan.append((info, rel))
    if not plan:
        raise RawDataError(f"{archive}: no files under {prefix or '/'!r}")
    return plan
