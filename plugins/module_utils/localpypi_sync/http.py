"""A pooled HTTP client with retries, backoff and streaming downloads (urllib3 underneath; downloads on
persistent http.client connections where no proxy is set, see connections.py)."""

from __future__ import annotations

import dataclasses
import http.client
import io
import random
import socket
import time
from typing import Callable, Iterator, Mapping, Optional, Protocol, Union
from urllib.parse import urljoin

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from . import __version__
from .connections import Connections, split_target
from .credentials import Credentials, origin_of

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# 256 KiB: a chunk is decrypted, hashed and written while it is still in the CPU's cache; with 1 MiB chunks,
# copying them into the page cache took twice the kernel time (measured with perf on 4 x 256 MiB).
CHUNK_SIZE = 1 << 18
MAX_PAGE_BYTES = 256 << 20
# What http.client's reader may hold past a response's headers must fit in one chunk (see _body_chunks):
# io.DEFAULT_BUFFER_SIZE is 8 KiB in every Python this runs on.
READ_AHEAD_FITS_A_CHUNK = io.DEFAULT_BUFFER_SIZE <= CHUNK_SIZE
# Retries are this module's own (with backoff, counted per download); urllib3 only follows redirects. The
# pool's retries=False would also turn redirects off: a 3xx would come back as the answer.
FOLLOW_REDIRECTS = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5)


class FetchError(Exception):
    """A request that failed for good (after retries); the message is one line."""


class TooLarge(FetchError):
    """A download ran past the configured size limit."""


class WriteFailed(FetchError):
    """A download's bytes could not be written here (a full disk, a quota): fetching again cannot help."""


class RangeUnsupported(FetchError):
    """The server answered a range request with something else (the whole file): read the file instead."""


Chunk = Union[bytes, memoryview]  # a memoryview is valid only until the next chunk is read


class Sink(Protocol):
    """Where a download's bytes go."""

    def write(self, chunk: Chunk) -> None: ...

    def restart(self) -> None:
        """Drop what was written: the download is retried from its first byte."""


@dataclasses.dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


class HttpClient:
    def __init__(
        self,
        *,
        timeout: float,
        retries: int,
        pool_size: int,
        ca_bundle: Optional[str] = None,
        proxy: Optional[str] = None,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        credentials: Optional[Credentials] = None,
        proxy_credentials: Optional[Credentials] = None,
    ) -> None:
        """proxy without its login (proxy_credentials); credentials go with every request to their origin."""
        self._settings = {"timeout": timeout, "retries": retries, "pool_size": pool_size, "ca_bundle": ca_bundle,
                          "proxy": proxy, "backoff": backoff, "backoff_max": backoff_max,
                          "credentials": credentials, "proxy_credentials": proxy_credentials}
        self._credentials = credentials
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        options = {
            "num_pools": 16,
            "maxsize": pool_size,
            "block": False,
            "retries": False,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
            "headers": {"User-Agent": f"localpypi-sync/{__version__}"},
        }
        if ca_bundle:
            options["ca_certs"] = ca_bundle
        if proxy and proxy_credentials:
            options["proxy_headers"] = {"Proxy-Authorization": proxy_credentials.basic()}
        self._pool = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        self._user_agent = options["headers"]["User-Agent"]
        # Through a proxy every request goes through urllib3, which speaks to proxies.
        self._direct: Optional[Connections] = None if proxy else Connections(timeout, ca_bundle)

    def fresh(self) -> HttpClient:
        """A client with the same settings and its own connections (for a forked process)."""
        return type(self)(**self._settings)

    def close(self) -> None:
        self._pool.clear()
        if self._direct is not None:
            self._direct.close()

    def _headers(self, url: str, extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
        """A request's headers: ours, the login where url is on its origin, then the caller's. (urllib3 sends
        the headers given in place of the pool's, so User-Agent is set here each time.)"""
        headers = {"User-Agent": self._user_agent}
        if self._credentials is not None and origin_of(url) == self._credentials.origin:
            headers["Authorization"] = self._credentials.basic()
        headers.update(extra or {})
        return headers

    def _sleep_before(self, attempt: int, retry_after: Optional[str] = None) -> None:
        delay = min(self.backoff_max, self.backoff * (2 ** attempt)) * (0.5 + random.random() / 2)
        if retry_after and retry_after.isdigit():
            delay = min(self.backoff_max, max(delay, float(retry_after)))
        time.sleep(delay)

    def _with_retries(self, url: str, action: Callable[[int], Response]) -> Response:
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep_before(attempt - 1)
            try:
                return action(attempt)
            except _Retryable as exc:
                last_error = str(exc)
            except (TooLarge, WriteFailed):
                raise
            except (Urllib3Error, http.client.HTTPException, OSError) as exc:
                last_error = _describe(exc)
        raise FetchError(f"{url}: {last_error} (after {self.retries + 1} attempts)")

    def get(self, url: str, headers: Optional[Mapping[str, str]] = None) -> Response:
        """GET a small document (an index page); 5xx and network errors are retried."""

        def attempt(_: int) -> Response:
            response = self._pool.request(
                "GET", url, headers=self._headers(url, headers), preload_content=False, retries=FOLLOW_REDIRECTS,
            )
            try:
                if response.status in RETRY_STATUSES:
                    raise _Retryable(f"HTTP {response.status}")
                body = bytearray()
                for chunk in response.stream(CHUNK_SIZE):
                    body += chunk
                    if len(body) > MAX_PAGE_BYTES:
                        raise FetchError(f"{url}: index page larger than {MAX_PAGE_BYTES} bytes")
                final_url = urljoin(url, response.geturl() or url)  # after redirects
                return Response(response.status, response.headers, bytes(body), final_url)
            finally:
                response.release_conn()

        return self._with_retries(url, attempt)

    def get_range(self, url: str, spec: str) -> tuple[bytes, int]:
        """GET part of a file, spec being a Range value (bytes=a-b, or bytes=-n for the last n): the bytes and
        the whole file's size. A server that answers with anything but that part raises RangeUnsupported, and
        a whole file it sends instead is not read."""
        size = 0

        def attempt(_: int) -> Response:
            nonlocal size
            response = self._pool.request(
                "GET", url, headers=self._headers(url, {"Range": spec, "Accept-Encoding": "identity"}),
                preload_content=False, retries=FOLLOW_REDIRECTS,
            )
            try:
                if response.status in RETRY_STATUSES:
                    raise _Retryable(f"HTTP {response.status}")
                wanted = _content_range(response.headers.get("Content-Range", ""))
                if response.status != 206 or wanted is None or wanted[1] - wanted[0] >= MAX_PAGE_BYTES:
                    response.close()  # the connection too: what is left of a whole file stays unread
                    raise RangeUnsupported(f"{url}: HTTP {response.status} to a range request")
                body = response.read(decode_content=False)
                if len(body) != wanted[1] - wanted[0] + 1:
                    raise _Retryable(f"truncated range ({len(body)} of {wanted[1] - wanted[0] + 1} bytes)")
                size = wanted[2]
                return Response(206, response.headers, body, url)
            finally:
                response.release_conn()

        return self._with_retries(url, attempt).body, size

    def head(self, url: str) -> int:
        """Status of a HEAD request, without retries: used to tell an unreachable upstream early."""
        try:
            response = self._pool.request("HEAD", url, headers=self._headers(url), retries=FOLLOW_REDIRECTS)
        except (Urllib3Error, OSError) as exc:
            raise FetchError(f"{url}: unreachable ({_describe(exc)})") from None
        return response.status

    def download(
        self,
        url: str,
        sink: Sink,
        digesters: list,
        max_bytes: Optional[int] = None,
    ) -> int:
        """Stream url into sink, feeding every digester; restart from zero on each retry. Returns the size."""
        written = 0

        def attempt(number: int) -> Response:
            nonlocal written
            written = 0
            if number:
                sink.restart()
                for digester in digesters:
                    digester.reset()
            with self._open_file(url) as response:
                if response.status in RETRY_STATUSES:
                    raise _Retryable(f"HTTP {response.status}")
                if response.status != 200:
                    raise FetchError(f"{url}: HTTP {response.status}")
                declared = response.headers.get("Content-Length")
                if max_bytes is not None and declared and declared.isdigit() and int(declared) > max_bytes:
                    raise TooLarge(f"{url}: {declared} bytes is over max_file_size ({max_bytes})")
                for chunk in response.chunks:
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:
                        raise TooLarge(f"{url}: over max_file_size ({max_bytes} bytes)")
                    try:
                        sink.write(chunk)
                    except OSError as exc:
                        raise WriteFailed(f"{url}: cannot write it to the mirror's disk: {exc.strerror or exc} "
                                          "(not retried)") from None
                    for digester in digesters:
                        digester.update(chunk)
                if declared and declared.isdigit() and written != int(declared):
                    raise _Retryable(f"truncated body ({written} of {declared} bytes)")
                response.complete = True
                return Response(200, response.headers, b"", url)

        self._with_retries(url, attempt)
        return written

    def _open_file(self, url: str) -> _FileResponse:
        """GET url for a download. The bytes are as served, like pip: the index's hash is of the file itself,
        even where a server labels a .tar.gz "Content-Encoding: gzip" (not decoding also halves the CPU)."""
        scheme, netloc, target = split_target(url)
        headers = self._headers(url)
        if self._direct is not None and scheme in ("http", "https") and "@" not in netloc:
            opened = self._open_direct(scheme, netloc, target, headers)
            if opened is not None:
                return opened
        response = self._pool.request("GET", url, headers=headers, preload_content=False, retries=FOLLOW_REDIRECTS)
        return _FileResponse(response.status, response.headers,
                             response.stream(CHUNK_SIZE, decode_content=False),
                             lambda complete: response.release_conn())

    def _open_direct(self, scheme: str, netloc: str, target: str,
                     headers: dict[str, str]) -> Optional[_FileResponse]:
        """The response on this thread's own connection; None for a redirect, which urllib3 then follows."""
        assert self._direct is not None
        while True:
            connection, reused = self._direct.connection(scheme, netloc)
            try:
                connection.request("GET", target, headers=headers)
                # Taken before getresponse(): a response that closes the connection takes the socket along.
                sock = connection.sock
                response = connection.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._direct.discard(scheme, netloc)
                if reused:
                    continue  # the server closed the idle connection meanwhile: not a failure, connect anew
                raise
            except BaseException:
                self._direct.discard(scheme, netloc)
                raise
            if 300 <= response.status < 400 and response.getheader("Location"):
                self._direct.discard(scheme, netloc)
                return None

            def finish(complete: bool, response: http.client.HTTPResponse = response) -> None:
                if not complete or response.will_close:
                    self._direct.discard(scheme, netloc)

            return _FileResponse(response.status, response.headers, _body_chunks(response, sock), finish)


@dataclasses.dataclass
class _FileResponse:
    """A download's response, from either client: read its chunks inside `with`."""

    status: int
    headers: Mapping[str, str]
    chunks: Iterator[Chunk]
    finish: Callable[[bool], None]  # called with whether the body was read to its end
    complete: bool = False

    def __enter__(self) -> _FileResponse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish(self.complete)


def _read_chunks(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while True:
        chunk = response.read(CHUNK_SIZE)
        if not chunk:
            return
        yield chunk


def _body_chunks(response: http.client.HTTPResponse, sock: Optional[socket.socket]) -> Iterator[Chunk]:
    """A download's body, in chunks of CHUNK_SIZE bytes (the last may be shorter), each one valid only until
    the next is taken: they are views of one buffer.

    A body with a Content-Length on a connection that stays open, as index servers send files, is read from
    the socket itself once http.client has handed over the bytes it read past the headers. On TLS, a read
    returns one record, 16 KiB at most, and each read through http.client passes four Python calls
    (BufferedReader, SocketIO, SSLSocket.recv_into, SSLSocket.read). Read this way, 4 x 256 MiB over TLS took
    13% less time and 0.3 CPU-s less (benchmarks/bench_tls_read.py). Any other body is read by http.client.
    If the server closes the connection early, the chunks stop short and download() reports the short body.
    """
    size = response.length
    if (sock is None or size is None or response.chunked or response.will_close
            or not READ_AHEAD_FITS_A_CHUNK):
        yield from _read_chunks(response)
        return
    read_into = _socket_reader(sock)
    buffer = memoryview(bytearray(min(size, CHUNK_SIZE)))
    ahead = response.fp.read1(len(buffer)) if size else b""  # all that http.client's reader holds
    filled = len(ahead)
    buffer[:filled] = ahead
    unread = size - filled  # bytes of the body still in the socket
    while filled or unread:
        end = min(len(buffer), filled + unread)
        while filled < end:
            count = read_into(buffer[filled:end])
            if not count:  # closed by the server before the end of the body
                if filled:
                    yield buffer[:filled]
                return
            filled += count
            unread -= count
        yield buffer[:filled]
        filled = 0
    response.close()  # read to its end: the connection takes the next request


def _socket_reader(sock: socket.socket) -> Callable[[memoryview], int]:
    """How to read from the socket into a buffer: recv_into, or on TLS the read() of the C object under
    ssl.SSLSocket (CPython's `_sslobj`, there since Python 3.7), which SSLSocket.recv_into calls through two
    Python functions. It honours the socket's timeout as they do. A connection closed without the TLS
    close_notify raises SSLEOFError where SSLSocket would return nothing: either way the attempt fails and is
    retried."""
    tls_read = getattr(getattr(sock, "_sslobj", None), "read", None)
    if tls_read is not None:
        return lambda view: tls_read(len(view), view)
    return sock.recv_into


class _Retryable(Exception):
    pass


def _content_range(value: str) -> Optional[tuple[int, int, int]]:
    """(first, last, size) of a Content-Range such as "bytes 0-99/1000"; None for any other form."""
    unit, _, rest = value.strip().partition(" ")
    span, _, size = rest.partition("/")
    first, _, last = span.partition("-")
    if unit != "bytes" or not (first.isdigit() and last.isdigit() and size.isdigit()) or int(first) > int(last):
        return None
    return int(first), int(last), int(size)


def _describe(exc: BaseException) -> str:
    """One line naming the root cause of a network error."""
    reason = exc
    while getattr(reason, "reason", None) is not None and reason is not reason.reason:
        reason = reason.reason
    text = str(reason) or type(reason).__name__
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.splitlines()[0][:200]
