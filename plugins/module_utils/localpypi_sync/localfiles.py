"""An upstream on this machine's disk: a mirror tree (this engine's or bandersnatch's), carried from a connected
site on a disk, read through file:// URLs and answered as the web server that serves such a tree answers."""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Any, Iterator, Mapping, Optional

from urllib3 import HTTPHeaderDict

from .http import CHUNK_SIZE, MAX_PAGE_BYTES, FetchError, HttpClient, RangeUnsupported, Response, _FileResponse
from .names import file_url_path, is_file_url, upstream_root
from .upstream import JSON_TYPE


class LocalFilesClient(HttpClient):
    """An HttpClient that answers file:// URLs from the disk, under local_root only: a page that names a file
    elsewhere (file:///etc/..., or a path climbing out with "..") is refused, never read. Other URLs (a lock
    file's second index, say) go to the network as before. A page is chosen as the web server would choose it
    (index.v1_json when JSON is asked for and there, index.html otherwise), and carries an ETag of its bytes, so
    an unchanged project costs the read of its page and no work."""

    def __init__(self, *, local_root: str, **settings: Any) -> None:
        super().__init__(**settings)
        self._settings["local_root"] = local_root  # fresh() passes it on
        self._root = os.path.normpath(local_root)

    def _path(self, url: str) -> str:
        try:
            path = file_url_path(url)
        except ValueError as exc:
            raise FetchError(f"{url}: {exc}") from None
        if path != self._root and not path.startswith(self._root.rstrip("/") + "/"):
            raise FetchError(f"{url}: outside the upstream's directory {self._root}; not read")
        return path

    def get(self, url: str, headers: Optional[Mapping[str, str]] = None) -> Response:
        if not is_file_url(url):
            return super().get(url, headers)
        asked = HTTPHeaderDict(headers or {})
        path = self._path(url)
        content_type = "application/octet-stream"
        if os.path.isdir(path):
            url = url if url.endswith("/") else url + "/"  # what a web server's redirect gives: links resolve
            json_page = os.path.join(path, "index.v1_json")
            if JSON_TYPE in asked.get("Accept", "") and os.path.isfile(json_page):
                path, content_type = json_page, JSON_TYPE
            else:
                path, content_type = os.path.join(path, "index.html"), "text/html; charset=utf-8"
        try:
            with open(path, "rb") as stream:
                if os.fstat(stream.fileno()).st_size > MAX_PAGE_BYTES:
                    raise FetchError(f"{url}: index page larger than {MAX_PAGE_BYTES} bytes")
                body = stream.read()
        except (FileNotFoundError, NotADirectoryError):
            return Response(404, HTTPHeaderDict({"Content-Type": "text/plain"}), b"", url)
        except OSError as exc:
            raise FetchError(f"{url}: cannot read it: {exc.strerror or exc}") from None
        # Of the bytes, not of size and time: a USB disk's FAT keeps times to 2 s, and a copy may keep them.
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        answer = HTTPHeaderDict({"Content-Type": content_type, "ETag": etag})
        if asked.get("If-None-Match") == etag:
            return Response(304, answer, b"", url)
        return Response(200, answer, body, url)

    def get_range(self, url: str, spec: str) -> tuple[bytes, int]:
        if not is_file_url(url):
            return super().get_range(url, spec)
        path = self._path(url)
        try:
            with open(path, "rb") as stream:
                size = os.fstat(stream.fileno()).st_size
                first, last = _byte_range(spec, size)
                stream.seek(first)
                return stream.read(last - first + 1), size
        except OSError as exc:
            raise FetchError(f"{url}: cannot read it: {exc.strerror or exc}") from None

    def head(self, url: str) -> int:
        """200 for a directory or file there; an upstream directory that is missing raises, naming the likely
        cause (check_reachable only asks this)."""
        if not is_file_url(url):
            return super().head(url)
        path = self._path(url)
        if not os.path.exists(path):
            raise FetchError(f"{url}: no such directory on this machine; is the disk that holds it mounted?")
        if not os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)):
            raise FetchError(f"{url}: not readable by this user (uid {os.getuid()})")
        return 200

    def _open_file(self, url: str) -> _FileResponse:
        if not is_file_url(url):
            return super()._open_file(url)
        path = self._path(url)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise FetchError(f"{url}: no such file on the upstream's disk") from None
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            os.close(fd)
            raise FetchError(f"{url}: not a regular file")
        return _FileResponse(200, HTTPHeaderDict({"Content-Length": str(status.st_size)}), _file_chunks(fd),
                             lambda complete: os.close(fd))


def _file_chunks(fd: int) -> Iterator[memoryview]:
    """The file's bytes in chunks of CHUNK_SIZE, each a view of one buffer valid until the next is taken (as the
    network client gives them). A read error (a failing disk) raises OSError, which download() retries."""
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while True:
        count = os.readv(fd, [buffer])
        if not count:
            return
        yield view[:count]


def _byte_range(spec: str, size: int) -> tuple[int, int]:
    """(first, last) byte a Range value asks of a file of size bytes, as a web server serves it: bytes=a-b, a-
    or -n, clamped to the file. RangeUnsupported for any other form, or a range that starts past the end."""
    unit, _, span = spec.partition("=")
    first, _, last = span.strip().partition("-")
    if unit.strip() != "bytes" or not (first.isdigit() or last.isdigit()) or "," in span:
        raise RangeUnsupported(f"range {spec!r}: not one byte range")
    if not first:
        return max(0, size - int(last)), size - 1
    start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start > end:
        raise RangeUnsupported(f"range {spec!r}: past the end of a file of {size} bytes")
    return start, end


def make_client(upstream: str, **settings: Any) -> HttpClient:
    """The client for an upstream: one that also reads the disk for a file:// upstream."""
    root = upstream_root(upstream)
    return LocalFilesClient(local_root=root, **settings) if root is not None else HttpClient(**settings)
