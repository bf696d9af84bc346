"""Downloads on the engine's own connections: a body read straight from the socket, whole and verified."""

from __future__ import annotations

import hashlib
import os
import ssl
import threading

import pytest

from localpypi_sync import http
from localpypi_sync.fetch import Digest
from localpypi_sync.http import FetchError, HttpClient
from upstream_fixture import serve_upstream

SIZES = [0, 1, 8191, http.CHUNK_SIZE, http.CHUNK_SIZE + 1, 3 * http.CHUNK_SIZE + 7]


class Collected:
    """A sink that keeps the chunks' sizes and the bytes (copied: a chunk is only valid until the next)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.sizes: list[int] = []

    def write(self, chunk) -> None:
        self.data += chunk
        self.sizes.append(len(chunk))

    def restart(self) -> None:
        self.data.clear()
        self.sizes.clear()


@pytest.fixture(params=["http", "https"])
def served(request, catalog):
    """(the running upstream, a client for it, the catalog) over plain http and over TLS."""
    tls = request.getfixturevalue("tls_files") if request.param == "https" else None
    with serve_upstream(catalog, tls=tls) as running:
        client = HttpClient(timeout=5, retries=1, pool_size=2, ca_bundle=tls[0] if tls else None, backoff=0.01)
        try:
            yield running, client, catalog
        finally:
            client.close()


def add_file(catalog, size: int, name: str = "") -> tuple[str, bytes]:
    data = os.urandom(size)
    filename = name or f"sized-{size}-py3-none-any.whl"
    catalog.add_bytes("sized", filename, data)
    return catalog.find(filename).url_path, data


def test_every_body_size_arrives_whole_in_full_chunks_on_one_connection(served):
    running, client, catalog = served
    files = [add_file(catalog, size) for size in SIZES]
    for url_path, data in files:
        sink, digest = Collected(), Digest("sha256")
        assert client.download(running.base + url_path, sink, [digest]) == len(data)
        assert bytes(sink.data) == data and digest.hexdigest() == hashlib.sha256(data).hexdigest()
        assert all(size == http.CHUNK_SIZE for size in sink.sizes[:-1]), sink.sizes
    # read to their ends, the bodies left the connection ready for the next request
    assert running.server.connections == 1


def test_a_tls_body_is_read_from_the_tls_connection_not_through_http_client(catalog, tls_files, monkeypatch):
    """Through http.client, each TLS record (16 KiB at most) costs a call of SSLSocket.recv_into and three more
    Python calls; the body is read below them (the reads ahead of the body aside)."""
    url_path, data = add_file(catalog, 4 << 20)
    client_thread = threading.get_ident()
    calls = []
    original = ssl.SSLSocket.recv_into

    def counted(self, *args, **kwargs):
        if threading.get_ident() == client_thread:
            calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLSocket, "recv_into", counted)
    with serve_upstream(catalog, tls=tls_files) as running:
        client = HttpClient(timeout=5, retries=0, pool_size=2, ca_bundle=tls_files[0])
        sink = Collected()
        try:
            client.download(running.base + url_path, sink, [])
        finally:
            client.close()
    assert bytes(sink.data) == data
    assert len(calls) <= 2, len(calls)  # 256 or more through http.client


def test_a_body_cut_short_without_notice_is_retried(served):
    running, client, catalog = served
    url_path, data = add_file(catalog, 2 * http.CHUNK_SIZE + 5)
    running.server.faults.cut_silently[os.path.basename(url_path)] = 1
    sink = Collected()
    assert client.download(running.base + url_path, sink, []) == len(data)
    assert bytes(sink.data) == data
    assert running.server.faults.cut_silently[os.path.basename(url_path)] == 0  # it was cut once
    assert running.server.connections == 2


def test_a_body_that_stalls_fails_by_the_timeout(served):
    running, client, catalog = served
    url_path, _ = add_file(catalog, 2 * http.CHUNK_SIZE)
    running.server.faults.stall_files.add(os.path.basename(url_path))
    running.server.faults.stall_seconds = 8
    quick = HttpClient(timeout=0.5, retries=0, pool_size=2, ca_bundle=client._settings["ca_bundle"])
    try:
        with pytest.raises(FetchError, match="timed out"):
            quick.download(running.base + url_path, Collected(), [])
    finally:
        quick.close()



def test_content_range_is_read_only_in_its_one_form():
    from localpypi_sync.http import _content_range  # noqa: PLC0415

    assert _content_range("bytes 0-99/1000") == (0, 99, 1000)
    assert _content_range(" bytes 900-999/1000 ") == (900, 999, 1000)
    for value in ("", "bytes */1000", "bytes 0-99/*", "items 0-9/10", "bytes 99-0/1000", "bytes -1-5/9"):
        assert _content_range(value) is None, value
