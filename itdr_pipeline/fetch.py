"""Download official dataset files and archives and unpack them safely into the raw cache.

Policy (see raw.py): a download must match its published sha256 (or md5, where that is all the
publisher gives), and every extracted file with an official hash must match it, else it is
refused. A download with no published checksum is kept, with a warning; its sha256 is recorded
as `unverified` in lineage. Downloads resume from a `.part`
file; extraction is staged beside the target folder and moved in whole, so a crash never leaves
half a folder. Not safe against two processes fetching the same file at the same time.
"""

import hashlib
import os
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import requests
from tqdm import tqdm

from itdr_pipeline.archive import extract_into, extract_zip, move_into_place, staging_dir
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ChecksumError, ItdrError
from itdr_pipeline.hashing import sha256_file
from itdr_pipeline.raw import inspect_files
from itdr_pipeline.registry import DatasetSpec, Download

__all__ = ["download", "extract_zip", "fetch_dataset"]

_CHUNK = 1 << 16
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-\d+/(\d+|\*)$")


def download(url: str, dest: Path, sha256: str | None, *, md5: str | None = None, progress: bool = True,
             timeout: float = 60) -> Path:
    """Fetch `url` into `dest`, resuming a previous `.part`; refuse it unless its published checksum
    (sha256, else md5) matches. With neither published, the file is kept and its sha256 recorded."""
    _check_url(url)
    algo, expected = ("sha256", sha256.lower()) if sha256 else ("md5", md5.lower()) if md5 else (None, None)
    if algo == "sha256" and not _SHA256.match(expected):
        raise ItdrError(f"invalid sha256 {sha256!r} for {url}: expected 64 hex digits")
    if algo == "md5" and not _MD5.match(expected):
        raise ItdrError(f"invalid md5 {md5!r} for {url}: expected 32 hex digits")

    def verified(path: Path) -> bool:
        return path.is_file() and (algo is None or _digest(path, algo) == expected)

    if verified(dest):
        return dest  # already fetched and verified
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    if not _stream(url, part, offset, progress=progress, timeout=timeout):
        # The server cannot continue this .part (416, or another range than asked for). Keep it
        # if it is already complete (a crash between the last byte and the rename), else restart.
        if not (algo is not None and verified(part)):
            part.unlink(missing_ok=True)
            if not _stream(url, part, 0, progress=progress, timeout=timeout):
                raise ItdrError(f"download failed: {url} answered a byte range that was not asked for")
    if algo is not None and (actual := _digest(part, algo)) != expected:
        part.unlink()  # a corrupt .part must not be resumed next time
        raise ChecksumError(f"refused {url}: {algo} {actual} does not match the published {expected}")
    os.replace(part, dest)
    return dest


def _digest(path: Path, algo: str) -> str:
    if algo == "sha256":
        return sha256_file(path)
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ItdrError(f"refused {url!r}: only http:// and https:// URLs are downloaded")


def _stream(url: str, part: Path, offset: int, *, progress: bool, timeout: float) -> bool:
    """Write the response body to `part`, appending at `offset` on a 206; False if it cannot resume."""
    # identity: a transparently decompressed body would not match the byte ranges we ask for.
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code == 416 and offset:
                return False
            if response.status_code >= 400:
                raise ItdrError(f"download failed: {url} answered HTTP {response.status_code}")
            if response.status_code == 206:
                start, total = _content_range(url, response.headers.get("Content-Range", ""))
                if start != offset:
                    return False
            else:  # a 200 carries the whole file (e.g. a server that ignores Range): start over
                start, length = 0, response.headers.get("Content-Length", "")
                total = int(length) if length.isdigit() else None
            _write_body(response, part, start, total, progress)
    except requests.RequestException as exc:
        # The .part is kept: the next call resumes from where this one stopped.
        raise ItdrError(f"download failed: {url}: {type(exc).__name__}: {exc}") from exc
    return True


def _content_range(url: str, header: str) -> tuple[int, int | None]:
    match = _CONTENT_RANGE.match(header.strip())
    if match is None:
        raise ItdrError(f"download failed: {url} answered 206 with a malformed Content-Range {header!r}")
    total = match.group(2)
    return int(match.group(1)), (int(total) if total.isdigit() else None)


def _write_body(
    response: requests.Response, part: Path, start: int, total: int | None, progress: bool
) -> None:
    bar = tqdm(
        total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
        desc=part.name.removesuffix(".part"), disable=not progress or not sys.stderr.isatty(),
    )
    with bar, part.open("ab" if start else "wb") as handle:
        for chunk in response.iter_content(chunk_size=_CHUNK):
            handle.write(chunk)
            bar.update(len(chunk))
        handle.flush()
        os.fsync(handle.fileno())  # the bytes are on disk before the rename makes them official


def fetch_dataset(spec: DatasetSpec, settings: Settings, *, progress: bool = True) -> Path:
    """Download, verify and place `spec`'s official files in the raw cache; return the source folder.

    Archives are unpacked together into a staging folder and their files checked against the
    official per-file hashes before the folder is moved in whole, so a refused download never
    replaces (or creates) `cache/raw/<source>`. A plain file (one category of a per-category
    source) is downloaded straight into the source folder (verified, then renamed), so fetching
    one category never touches another.
    """
    if not spec.downloads:
        raise ItdrError(f"{spec.id} has no official download; place its files under ITDR_RAW_DIR/{spec.folder}")
    folder = settings.cache / "raw" / spec.folder
    archives = []
    for d in spec.downloads:
        if Path(d.filename).name != d.filename or d.filename in ("", ".", ".."):
            raise ItdrError(f"{spec.id}: download filename {d.filename!r} must be a plain file name")
        if d.sha256 is None and d.md5 is None:
            print(f"warning: {d.url} has no published checksum; its sha256 is recorded as unverified",
                  file=sys.stderr)
        if d.is_archive:
            dest = settings.cache / "downloads" / spec.folder / d.filename
            archives.append((download(d.url, dest, d.sha256, md5=d.md5, progress=progress), d))
        else:
            _known_file(spec, d.filename)
            download(d.url, folder / d.filename, d.sha256, md5=d.md5, progress=progress)
    if archives:
        _unpack(spec, archives, folder)
    return folder


def _known_file(spec: DatasetSpec, name: str) -> None:
    try:
        spec.file(name)
    except KeyError:
        raise ItdrError(f"{spec.id}: download {name} is not one of its registry files") from None


def _unpack(spec: DatasetSpec, archives: list[tuple[Path, Download]], folder: Path) -> None:
    staging = staging_dir(folder)
    try:
        for archive, d in archives:
            target = staging / d.target if d.target else staging
            if d.target and (".." in Path(d.target).parts or Path(d.target).is_absolute()):
                raise ItdrError(f"{spec.id}: download target {d.target!r} must stay inside the source folder")
            target.mkdir(parents=True, exist_ok=True)
            extract_into(archive, target, folder, d.strip_prefix)
        _verify_official(spec, staging)
        move_into_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # a refused extraction is removed here


def _verify_official(spec: DatasetSpec, folder: Path) -> None:
    # Downloaded files must be the official ones; only local files may differ (see raw.py).
    for f in inspect_files(spec, folder):
        if f.status == "modified":
            raise ChecksumError(
                f"refused {spec.id}/{f.file} from the download: "
                f"sha256 {f.sha256} does not match the official {f.official_sha256}"
            )
