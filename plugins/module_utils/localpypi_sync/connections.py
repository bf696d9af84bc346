"""Persistent connections for downloads: one per worker thread and origin, on the standard library's http.client.

Downloads are the engine's hot path: a cold sync of small files is one request per file, and urllib3's pool
manager parses, re-encodes and looks up every URL, checks the connection out of a locked pool and back, and
wraps the response, which cost about a third of the CPU of a small file. A worker thread here keeps its own
connection to each origin, so a request is only http.client's. Pages, proxies and redirects still go through
urllib3 (HttpClient), which handles them fully.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from typing import Optional
from urllib.parse import quote, urlsplit

# Characters left as they are in a request target: those a URL may hold, and "%" so escapes stay escapes.
_TARGET_SAFE = "/%:@!$&'()*+,;=-._~?"


class Connections:
    def __init__(self, timeout: float, ca_bundle: Optional[str]) -> None:
        self._timeout = timeout
        self._ca_bundle = ca_bundle
        self._context: Optional[ssl.SSLContext] = None
        self._local = threading.local()
        self._opened: set[http.client.HTTPConnection] = set()  # every thread's, for close()
        self._lock = threading.Lock()

    def _tls_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._context is None:
                # Verified as urllib3 verifies: the system's CAs, or the configured bundle; host names checked.
                self._context = ssl.create_default_context(cafile=self._ca_bundle)
            return self._context

    def _table(self) -> dict[tuple[str, str], http.client.HTTPConnection]:
        table = getattr(self._local, "table", None)
        if table is None:
            table = self._local.table = {}
        return table

    def connection(self, scheme: str, netloc: str) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection to the origin, and whether it has served a request before."""
        table = self._table()
        existing = table.get((scheme, netloc))
        if existing is not None:
            return existing, True
        if scheme == "https":
            created: http.client.HTTPConnection = http.client.HTTPSConnection(
                netloc, timeout=self._timeout, context=self._tls_context())
        else:
            created = http.client.HTTPConnection(netloc, timeout=self._timeout)
        table[(scheme, netloc)] = created
        with self._lock:
            self._opened.add(created)
        return created, False

    def discard(self, scheme: str, netloc: str) -> None:
        """Close this thread's connection to the origin (after an error, or a body not read to its end)."""
        connection = self._table().pop((scheme, netloc), None)
        if connection is not None:
            connection.close()
            with self._lock:
                self._opened.discard(connection)

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, set()
        for connection in opened:
            connection.close()


def split_target(url: str) -> tuple[str, str, str]:
    """(scheme, host[:port], request target) of an absolute http(s) URL; the fragment is dropped."""
    parts = urlsplit(url)
    target = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_TARGET_SAFE)
    return parts.scheme, parts.netloc, target
