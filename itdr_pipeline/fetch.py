"""Download official dataset archives and unpack them safely into the raw cache.

Policy (see raw.py): a downloaded archive must match its published sha256, and every extracted
file with an official hash must match it, else it is refused. Downloads resume from a `.part`
file; extraction is staged beside the target folder and moved in whole, so a crash never leaves
half a folder. Not safe against two processes fetching the same file at the same time.
"""

import os
import re
import shutil
import stat
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import requests
from tqdm import tqdm

from itdr_pipeline.archive import extract_into, move_into_place, staging_dir, extract_zip
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ChecksumError, ItdrError, RawDataError
from itdr_pipeline.hashing import sha256_file
from itdr_pipeline.raw import inspect_files
from itdr_pipeline.registry import DatasetSpec

_CHUNK = 1 << 16
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-\d+/(\d+|\*)$")


def download(url: str, dest: Path, sha256: str, *, progress: bool = True, timeout: float = 60) -> Path:
    """Fetch `url` into `dest`, resuming a previous `.part`; refuse it unless its sha256 matches."""
    _check_url(url)
    expected = sha256.lower()
    if not _SHA256.match(expected):
        raise ItdrError(f"invalid sha256 {sha256!r} for {url}: expected 64 hex digits")
    if dest.is_file() and sha256_file(dest) == expected:
        return dest  # already fetched and verified
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    if not _stream(url, part, offset, progress=progress, timeout=timeout):
        # The server cannot continue this .part (416, or another range than asked for). Keep it
        # if it is already complete (a crash between the last byte and the rename), else restart.
        if not (part.is_file() and sha256_file(part) == expected):
            part.unlink(missing_ok=True)
            if not _stream(url, part, 0, progress=progress, timeout=timeout):
                raise ItdrError(f"download failed: {url} answered a byte range that was not asked for")
    actual = sha256_file(part)
    if actual != expected:
        part.unlink()  # a corrupt .part must not be resumed next time
        raise ChecksumError(f"refused {url}: sha256 {actual} does not match the published {expected}")
    os.replace(part, dest)
    return dest


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
    """Download, verify and unpack `spec`'s official archives into the raw cache; return the folder.

    Extracted files are checked against the official per-file hashes before they are moved in,
    so a refused download never replaces (or creates) `cache/raw/<id>`.
    """
    if not spec.downloads:
        raise ItdrError(f"{spec.id} has no official download; place its files under ITDR_RAW_DIR/{spec.id}")
    archives = []
    for d in spec.downloads:
        if Path(d.filename).name != d.filename or d.filename in ("", ".", ".."):
            raise ItdrError(f"{spec.id}: download filename {d.filename!r} must be a plain file name")
        dest = settings.cache / "downloads" / d.filename
        archives.append((download(d.url, dest, d.sha256, progress=progress), d.strip_prefix))
    folder = settings.cache / "raw" / spec.id
    staging = staging_dir(folder)
    try:
        for archive, strip_prefix in archives:
            extract_into(archive, staging, folder, strip_prefix)
        _verify_official(spec, staging)
        move_into_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # a refused extraction is removed here
    return folder


def _verify_official(spec: DatasetSpec, folder: Path) -> None:
    # Downloaded files must be the official ones; only local files may differ (see raw.py).
    for f in inspect_files(spec, folder):
        if f.status == "modified":
            raise ChecksumError(
                f"refused {spec.id}/{f.file} from the download: "
                f"sha256 {f.sha256} does not match the official {f.official_sha256}"
            )
