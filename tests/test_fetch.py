"""fetch.py against a local HTTP server: resume, checksums, zip-slip, corrupt archives. No internet."""

import dataclasses
import hashlib
import io
import re
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ChecksumError, ItdrError, RawDataError
from itdr_pipeline.fetch import download, extract_zip, fetch_dataset
from itdr_pipeline.hashing import sha256_file
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import Download, get_dataset
from itdr_pipeline.warehouse import connect
from tests.conftest import SHARED_RAW

ML100K_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "raw" / "ml-100k"
ML100K_FILES = ("u.data", "u.item", "u.user", "u.genre")
U_DATA_SHA256 = "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    files: dict[str, bytes]
    log: list[tuple[str, str | None]]  # (path, Range header) of every request
    sent: dict[str, int]  # body bytes sent per path


class _Handler(BaseHTTPRequestHandler):
    """Serves `server.files`; honours `Range: bytes=N-` except under /norange/."""

    server: _Server

    def do_GET(self) -> None:
        range_header = self.headers.get("Range")
        self.server.log.append((self.path, range_header))
        ignore_range = self.path.startswith("/norange/")
        body = self.server.files.get(self.path.removeprefix("/norange"))
        if body is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match is None or ignore_range:
            self._send(200, body, {})
            return
        start = int(match.group(1))
        if start >= len(body):
            self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"})
            return
        self._send(206, body[start:], {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        # Counted before the write: the client may assert as soon as it has the body.
        self.server.sent[self.path] = self.server.sent.get(self.path, 0) + len(body)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> _Server:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.log, httpd.sent = {}, [], {}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    request.addfinalizer(stop)
    return httpd


def _serve(server: _Server, path: str, body: bytes) -> str:
    server.files[path] = body
    return f"http://127.0.0.1:{server.server_port}{path}"


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def ml100k_members() -> dict[str, bytes]:
    missing = [n for n in ML100K_FILES if not (ML100K_DIR / n).is_file()]
    if missing:
        # Never skip: CI has these files, and a silently skipped download test proves nothing.
        pytest.fail(f"real MovieLens-100K files {missing} not found in {ML100K_DIR}; restore them")
    members = {"ml-100k/": b""}  # a directory entry, as in the official archive
    members.update({f"ml-100k/{n}": (ML100K_DIR / n).read_bytes() for n in ML100K_FILES})
    return members


@pytest.fixture(scope="module")
def ml100k_zip(ml100k_members: dict[str, bytes]) -> bytes:
    return _zip(ml100k_members)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_download_verifies_and_renames(server: _Server, ml100k_zip: bytes, tmp_path: Path) -> None:
    url = _serve(server, "/plain.zip", ml100k_zip)
    dest = tmp_path / "dl" / "ml-100k.zip"
    assert download(url, dest, _sha(ml100k_zip), progress=True) == dest
    assert sha256_file(dest) == _sha(ml100k_zip)
    assert not dest.with_name("ml-100k.zip.part").exists()
    # A verified file is not fetched again.
    requests_before = len(server.log)
    assert download(url, dest, _sha(ml100k_zip).upper(), progress=False) == dest
    assert len(server.log) == requests_before


def test_wrong_checksum_is_refused_and_cleaned_up(server: _Server, ml100k_zip: bytes, tmp_path: Path) -> None:
    url = _serve(server, "/wrong.zip", ml100k_zip)
    dest = tmp_path / "ml-100k.zip"
    with pytest.raises(ChecksumError, match=r"refused .*/wrong\.zip.*" + _sha(ml100k_zip) + ".*" + "0" * 64):
        download(url, dest, "0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []  # neither dest nor .part


def test_resume_sends_range_and_appends(server: _Server, ml100k_zip: bytes, tmp_path: Path) -> None:
    url = _serve(server, "/resume.zip", ml100k_zip)
    dest = tmp_path / "ml-100k.zip"
    half = len(ml100k_zip) // 2
    _write(tmp_path / "ml-100k.zip.part", ml100k_zip[:half])
    download(url, dest, _sha(ml100k_zip), progress=False)
    assert ("/resume.zip", f"bytes={half}-") in server.log
    assert server.sent["/resume.zip"] == len(ml100k_zip) - half  # only the tail travelled
    assert dest.read_bytes() == ml100k_zip


def test_server_ignoring_range_restarts_from_zero(server: _Server, ml100k_zip: bytes, tmp_path: Path) -> None:
    url = _serve(server, "/norange/ignored.zip", ml100k_zip)
    server.files["/ignored.zip"] = ml100k_zip
    dest = tmp_path / "ml-100k.zip"
    half = len(ml100k_zip) // 2
    _write(tmp_path / "ml-100k.zip.part", ml100k_zip[:half])
    download(url, dest, _sha(ml100k_zip), progress=False)
    assert ("/norange/ignored.zip", f"bytes={half}-") in server.log  # asked, answered with 200
    assert dest.read_bytes() == ml100k_zip  # not half + whole


def test_complete_part_is_kept_and_oversized_part_restarts(
    server: _Server, ml100k_zip: bytes, tmp_path: Path
) -> None:
    url = _serve(server, "/complete.zip", ml100k_zip)
    part = _write(tmp_path / "a.zip.part", ml100k_zip)  # crash after the last byte: server says 416
    download(url, tmp_path / "a.zip", _sha(ml100k_zip), progress=False)
    assert (tmp_path / "a.zip").read_bytes() == ml100k_zip and not part.exists()
    assert server.sent["/complete.zip"] == 0  # nothing downloaded again
    _write(tmp_path / "b.zip.part", ml100k_zip + b"junk")  # 416, wrong hash: start over
    download(url, tmp_path / "b.zip", _sha(ml100k_zip), progress=False)
    assert (tmp_path / "b.zip").read_bytes() == ml100k_zip
    assert server.sent["/complete.zip"] == len(ml100k_zip)


def test_http_error_and_bad_scheme(server: _Server, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{server.server_port}/missing.zip"
    with pytest.raises(ItdrError, match=r"missing\.zip answered HTTP 404"):
        download(url, tmp_path / "x.zip", "0" * 64, progress=False)
    with pytest.raises(ItdrError, match="only http"):
        download("file:///etc/passwd", tmp_path / "x.zip", "0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def _ml100k_spec(url: str, zip_bytes: bytes):
    d = Download(url=url, filename="ml-100k.zip", sha256=_sha(zip_bytes), strip_prefix="ml-100k/")
    return dataclasses.replace(get_dataset("ml-100k"), downloads=(d,))


def test_fetch_dataset_end_to_end(server: _Server, ml100k_zip: bytes, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, raw_dir=None)
    spec = _ml100k_spec(_serve(server, "/e2e/ml-100k.zip", ml100k_zip), ml100k_zip)
    folder = fetch_dataset(spec, settings, progress=False)
    assert folder == tmp_path / "cache" / "raw" / "ml-100k"
    assert sorted(p.name for p in folder.iterdir()) == sorted(ML100K_FILES)
    assert sha256_file(folder / "u.data") == U_DATA_SHA256
    for raw in spec.files:
        assert sha256_file(folder / raw.name) == raw.sha256
    # Idempotent: a second fetch reuses the verified download and replaces the folder whole.
    requests_before = len(server.log)
    assert fetch_dataset(spec, settings, progress=False) == folder
    assert len(server.log) == requests_before
    assert sorted(p.name for p in (tmp_path / "cache" / "raw").iterdir()) == ["ml-100k"]  # no staging left


def test_fetch_dataset_refuses_tampered_file(
    server: _Server, ml100k_members: dict[str, bytes], tmp_path: Path
) -> None:
    u_data = bytearray(ml100k_members["ml-100k/u.data"])
    u_data[0] ^= 0x01  # '1' -> '0': still parses, but is not the official file
    tampered = _zip({**ml100k_members, "ml-100k/u.data": bytes(u_data)})
    spec = _ml100k_spec(_serve(server, "/tampered/ml-100k.zip", tampered), tampered)
    with pytest.raises(ChecksumError, match=r"refused ml-100k/u\.data .*" + U_DATA_SHA256):
        fetch_dataset(spec, Settings(home=tmp_path, raw_dir=None), progress=False)
    assert list((tmp_path / "cache" / "raw").iterdir()) == []  # the extraction was removed


def test_fetch_dataset_without_download(tmp_path: Path) -> None:
    expected = "demo has no official download; place its files under ITDR_RAW_DIR/demo"
    with pytest.raises(ItdrError, match=f"^{re.escape(expected)}$"):
        fetch_dataset(get_dataset("demo"), Settings(home=tmp_path, raw_dir=None))


@pytest.mark.parametrize("evil", ["../evil.txt", "ml-100k/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt"])
def test_zip_slip_is_refused(evil: str, tmp_path: Path) -> None:
    archive = _write(tmp_path / "in" / "evil.zip", _zip({"ml-100k/u.genre": b"a|0\n", evil: b"pwned"}))
    dest = tmp_path / "out" / "ds"
    with pytest.raises(RawDataError, match=re.escape(f"{archive}: refused member {evil!r}")):
        extract_zip(archive, dest, strip_prefix="ml-100k/")
    assert not dest.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no staging folder, nothing outside
    assert [p for p in tmp_path.rglob("*evil.txt")] == []


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("ml-100k/link")
    link.external_attr = 0o120777 << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(link, "/etc/passwd")
    archive = _write(tmp_path / "link.zip", buffer.getvalue())
    with pytest.raises(RawDataError, match="symbolic links"):
        extract_zip(archive, tmp_path / "out", strip_prefix="ml-100k/")
    assert not (tmp_path / "out").exists()


def test_extract_strips_prefix_and_skips_others(tmp_path: Path) -> None:
    data = _zip({"ml-100k/": b"", "ml-100k/a.txt": b"a", "ml-100k/sub/b.txt": b"b", "README": b"x"})
    archive = _write(tmp_path / "a.zip", data)
    dest = _write(tmp_path / "out" / "stale.txt", b"old").parent  # replaced whole, not merged
    paths = extract_zip(archive, dest, strip_prefix="ml-100k")
    assert paths == [dest / "a.txt", dest / "sub" / "b.txt"]
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == ["a.txt", "sub/b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "out"]


def test_truncated_and_corrupt_zips_are_refused(ml100k_zip: bytes, tmp_path: Path) -> None:
    truncated = _write(tmp_path / "truncated.zip", ml100k_zip[: len(ml100k_zip) // 2])
    with pytest.raises(RawDataError, match=re.escape(f"{truncated}: corrupt")):
        extract_zip(truncated, tmp_path / "out1", strip_prefix="ml-100k/")
    # Flip one stored byte: the central directory is intact, the CRC check on read fails.
    stored = bytearray(_zip({"ml-100k/u.genre": b"unknown|0\nAction|1\n"}, zipfile.ZIP_STORED))
    stored[stored.index(b"Action")] ^= 0x20
    corrupt = _write(tmp_path / "crc.zip", bytes(stored))
    with pytest.raises(RawDataError, match=re.escape(f"{corrupt}: corrupt")):
        extract_zip(corrupt, tmp_path / "out2", strip_prefix="ml-100k/")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crc.zip", "truncated.zip"]


# ----------------------------------------------------------------------------------------------
# md5-only and unpublished checksums, tar archives, and the ml-latest-small zip from ../shared
# ----------------------------------------------------------------------------------------------
LATEST_ZIP = SHARED_RAW / "ml-latest-small" / "ml-latest-small.zip"


def _latest_zip() -> bytes:
    if not LATEST_ZIP.is_file():
        pytest.fail(f"real data missing: {LATEST_ZIP}")
    return LATEST_ZIP.read_bytes()


def test_md5_only_download_is_verified_then_ingested(server: _Server, tmp_path: Path) -> None:
    body = _latest_zip()
    md5 = hashlib.md5(body).hexdigest()
    url = _serve(server, "/md5/ml-latest-small.zip", body)
    d = Download(url=url, filename="ml-latest-small.zip", sha256=None, md5=md5, strip_prefix="ml-latest-small/")
    spec = dataclasses.replace(get_dataset("ml-latest-small"), downloads=(d,))
    settings = Settings(home=tmp_path, raw_dir=None).ensure()
    folder = fetch_dataset(spec, settings, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["README.txt", "links.csv", "movies.csv", "ratings.csv",
                                                        "tags.csv"]
    with connect(settings.warehouse) as con:
        report = ingest_dataset(con, spec, settings)
    assert report.result.row_counts["interactions"] == 100836
    assert {f.file: f.status for f in report.files}["ratings.csv"] == "official"
    bad = dataclasses.replace(spec, downloads=(dataclasses.replace(d, md5="0" * 32, filename="other.zip"),))
    with pytest.raises(ChecksumError, match=f"md5 {md5} does not match the published 0{{32}}"):
        fetch_dataset(bad, settings, progress=False)


def test_download_without_published_checksum_is_kept_with_a_warning(
    server: _Server, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    body = _latest_zip()
    url = _serve(server, "/nosum/ml-latest-small.zip", body)
    d = Download(url=url, filename="ml-latest-small.zip", sha256=None, strip_prefix="ml-latest-small/")
    spec = dataclasses.replace(get_dataset("ml-latest-small"), downloads=(d,))
    folder = fetch_dataset(spec, Settings(home=tmp_path, raw_dir=None), progress=False)
    assert (folder / "ratings.csv").stat().st_size == 2_483_723
    assert f"warning: {url} has no published checksum" in capsys.readouterr().err


def _tar(members: dict[str, bytes], symlink: tuple[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink[0])
            info.type, info.linkname = tarfile.SYMTYPE, symlink[1]
            tf.addfile(info)
    return buffer.getvalue()


def test_tar_gz_is_unpacked_and_escapes_are_refused(tmp_path: Path) -> None:
    good = _write(tmp_path / "in" / "a.tar.gz", _tar({"top/x.tsv": b"1\t2\n", "top/sub/y.tsv": b"3\n"}))
    paths = extract_zip(good, tmp_path / "out", strip_prefix="top/")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in paths) == ["sub/y.tsv", "x.tsv"]
    assert (tmp_path / "out" / "x.tsv").read_bytes() == b"1\t2\n"
    evil = _write(tmp_path / "in" / "evil.tar.gz", _tar({"top/x.tsv": b"1", "top/../../evil": b"pwned"}))
    with pytest.raises(RawDataError, match="escapes"):
        extract_zip(evil, tmp_path / "out2", strip_prefix="top/")
    link = _write(tmp_path / "in" / "link.tar.gz", _tar({"top/x.tsv": b"1"}, symlink=("top/l", "/etc/passwd")))
    with pytest.raises(RawDataError, match="links and devices are refused"):
        extract_zip(link, tmp_path / "out3", strip_prefix="top/")
    truncated = _write(tmp_path / "in" / "cut.tar.gz", good.read_bytes()[:40])
    with pytest.raises(RawDataError, match=r"cut\.tar\.gz: corrupt, truncated"):
        extract_zip(truncated, tmp_path / "out4", strip_prefix="top/")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out2").exists()


def test_fetch_one_category_then_another_into_the_shared_source_folder(server: _Server, tmp_path: Path) -> None:
    """Amazon 2018 per category: plain .json.gz files served from copies of ../shared, no checksum published."""
    shared = SHARED_RAW / "amazon-reviews-2018"
    settings = Settings(home=tmp_path, raw_dir=None).ensure()
    specs = {}
    for category in ("Gift_Cards", "Magazine_Subscriptions"):
        base = get_dataset(f"amazon-reviews-2018.{category.lower().replace('_', '-')}")
        downloads = tuple(
            Download(url=_serve(server, f"/amazon/{name}", (shared / name).read_bytes()), filename=name, sha256=None)
            for name in (f"{category}_5.json.gz", f"meta_{category}.json.gz"))
        specs[category] = dataclasses.replace(base, downloads=downloads)
        assert fetch_dataset(specs[category], settings, progress=False) == tmp_path / "cache" / "raw" / base.folder
    folder = tmp_path / "cache" / "raw" / "amazon-reviews-2018"
    assert sorted(p.name for p in folder.iterdir()) == [
        "Gift_Cards_5.json.gz", "Magazine_Subscriptions_5.json.gz", "meta_Gift_Cards.json.gz",
        "meta_Magazine_Subscriptions.json.gz"]  # the second category did not replace the first
    with connect(settings.warehouse) as con:
        report = ingest_dataset(con, specs["Gift_Cards"], settings)
    assert report.result.row_counts["interactions"] == 2972
    assert {f.file: f.status for f in report.files}["Gift_Cards_5.json.gz"] == "official"  # pinned known hash
