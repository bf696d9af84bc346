"""Credentials written into a URL (https://user:token@host/simple/), taken as pip takes them.

They are split off when the config is read: the URL the engine uses, logs and records has none, and the
credentials go only to the origin (scheme, host, port) they were written for. A redirect to another host
(files on a CDN or object store) loses them, as urllib3 drops Authorization there.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Optional
from urllib.parse import unquote, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclasses.dataclass(frozen=True)
class Credentials:
    origin: tuple[str, str, int]
    user: str = dataclasses.field(repr=False)
    password: str = dataclasses.field(repr=False)

    def basic(self) -> str:
        """The value of an Authorization (or Proxy-Authorization) header."""
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")


def origin_of(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme, 0)


def split_credentials(url: str) -> tuple[str, Optional[Credentials]]:
    """(the URL without its user:password@, the credentials it carried, percent-decoded; None if none)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    clean = urlunsplit(parts._replace(netloc=host))
    return clean, Credentials(origin_of(clean), unquote(parts.username or ""), unquote(parts.password or ""))


def redact(url: str) -> str:
    """The URL as it may be shown: any user:password@ replaced."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
