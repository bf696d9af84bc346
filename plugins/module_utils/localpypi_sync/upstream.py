"""Reading an upstream simple index: PEP 691 JSON first, PEP 503 HTML as the fallback."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from html.parser import HTMLParser
from typing import Any, Optional, Union
from urllib.parse import urldefrag, urljoin, urlsplit

from .credentials import redact
from .http import FetchError, HttpClient
from .timespec import upload_seconds

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "text/html")
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
HASH_NAMES = ("sha256", "sha384", "sha512")  # the hashes pip calls strong
WEAK_HASH_NAMES = ("sha224", "sha1", "md5")  # pip and uv verify by these too; the mirror only with weak_hashes
QUARANTINED = "quarantined"
STATUS_REASON_LIMIT = 500  # characters of an index's free-form reason kept for pages and log lines
_STATUS_WORD = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_HEX = re.compile(r"^[0-9a-f]+$")


@dataclasses.dataclass(frozen=True)
class UpstreamFile:
    filename: str
    url: str
    hashes: dict[str, str]
    requires_python: Optional[str] = None
    yanked: Union[bool, str] = False
    size: Optional[int] = None
    upload_time: Optional[str] = None
    core_metadata: Union[bool, dict[str, str]] = False

    @functools.cached_property
    def uploaded(self) -> Optional[float]:
        """upload_time in seconds since the epoch, parsed once: a selection with exclude_newer asks it twice, to
        screen the file and to date what it leaves out. None where the index gives no readable time."""
        return upload_seconds(self.upload_time)

    def to_json(self) -> dict[str, Any]:
        # Field by field, not dataclasses.asdict: that deep-copies recursively, and a record holds every file.
        core_metadata = dict(self.core_metadata) if isinstance(self.core_metadata, dict) else self.core_metadata
        return {"filename": self.filename, "url": self.url, "hashes": dict(self.hashes),
                "requires_python": self.requires_python, "yanked": self.yanked, "size": self.size,
                "upload_time": self.upload_time, "core_metadata": core_metadata}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UpstreamFile:
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class ProjectStatus:
    """A project status marker (PEP 792) other than "active": the index's word on the whole project."""

    status: str
    reason: Optional[str] = None

    @property
    def quarantined(self) -> bool:
        """Held unsafe, as for malware: an index offers none of its files."""
        return self.status == QUARANTINED

    def to_json(self) -> dict[str, str]:
        return {"status": self.status, **({"reason": self.reason} if self.reason else {})}

    @classmethod
    def read(cls, status: Any, reason: Any) -> Optional[ProjectStatus]:
        """The marker from a page's fields; None for "active" or none at all, as PEP 792 reads both, and for a
        status that is no word (it goes into log lines). The reason on one line, printable, and not too long."""
        marker = status.strip().lower() if isinstance(status, str) else ""
        if not _STATUS_WORD.fullmatch(marker) or marker == "active":
            return None
        text = " ".join(reason.split()) if isinstance(reason, str) else ""
        return cls(marker, "".join(c for c in text if c.isprintable())[:STATUS_REASON_LIMIT] or None)

    @classmethod
    def from_json(cls, value: Any) -> Optional[ProjectStatus]:
        """The marker from its JSON form ({"status": ..., "reason": ...}), as PEP 792's pages and our records
        give it; None for anything else."""
        return cls.read(value.get("status"), value.get("reason")) if isinstance(value, dict) else None


@dataclasses.dataclass
class ProjectPage:
    name: str
    files: list[UpstreamFile]
    serial: Optional[int] = None
    etag: Optional[str] = None
    last_modified: Optional[str] = None
    status: Optional[ProjectStatus] = None

    @property
    def quarantined(self) -> bool:
        return self.status is not None and self.status.quarantined

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "serial": self.serial, "etag": self.etag,
                "last_modified": self.last_modified, "files": [f.to_json() for f in self.files],
                "status": self.status.to_json() if self.status else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProjectPage:
        return cls(data["name"], [UpstreamFile.from_json(f) for f in data["files"]],
                   data.get("serial"), data.get("etag"), data.get("last_modified"),
                   ProjectStatus.from_json(data.get("status")))


def quarantine_note(who: str, status: ProjectStatus) -> str:
    """What a line tells of a quarantined project (who: its name, or "it"), with the index's reason."""
    reason = f" ({status.reason})" if status.reason else ""
    return (f"the upstream quarantined {who}{reason}: it holds the project unsafe (PEP 792), as for malware, and "
            f"offers none of its files")


def not_an_index(upstream: str, named: bool = True) -> str:
    """The question an error asks when the upstream's answers hold no package file at all; named=False where the
    line has named the upstream already."""
    return (f"is {redact(upstream) if named else 'it'} a package index? A proxy whose login has expired answers "
            f"every address with its own sign-in page")


@dataclasses.dataclass
class ProjectListing:
    """The projects the upstream's root index lists, each with its serial where the upstream tells it, and the
    index's serial when the list was read (None when unknown): a list older than a project this mirror synced
    says nothing about whether that project is still there."""

    projects: list[tuple[str, Optional[int]]]
    serial: Optional[int] = None


class NotModified:
    """The upstream answered 304: the cached page is still current."""

    def __init__(self, serial: Optional[int]) -> None:
        self.serial = serial


class ProjectNotFound(FetchError):
    pass


def _clean_hashes(hashes: Any) -> dict[str, str]:
    if not isinstance(hashes, dict):
        return {}
    return {name: value.lower() for name, value in hashes.items()
            if isinstance(name, str) and isinstance(value, str) and _HEX.match(value.lower())}


def _serial_value(value: Any) -> Optional[int]:
    """A serial given as a number or as digits (a proxy in front of the public index re-serializes it so)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():  # not "²", which int() refuses
        return int(value)
    return None


def _serial(headers: Any) -> Optional[int]:
    return _serial_value(headers.get("X-PyPI-Last-Serial"))


def meta_serial(document: Any) -> Optional[int]:
    """The serial a PEP 691 document's meta gives ("_last-serial"), the public index's and our own pages'."""
    meta = document.get("meta") if isinstance(document, dict) else None
    return _serial_value(meta.get("_last-serial")) if isinstance(meta, dict) else None


def _metadata_field(value: Any) -> Union[bool, dict[str, str]]:
    if isinstance(value, dict):
        return _clean_hashes(value) or True
    return bool(value)


def parse_json_project(name: str, body: bytes,
                       page_url: str) -> tuple[list[UpstreamFile], Optional[int], Optional[ProjectStatus]]:
    """The files a PEP 691 page lists, the serial its meta gives (the public index's "_last-serial"), and its
    project status (PEP 792: "project-status", beside "meta")."""
    data = json.loads(body)
    serial = meta_serial(data)
    status = ProjectStatus.from_json(data.get("project-status"))
    files = []
    for entry in data.get("files", []):
        metadata = entry.get("core-metadata", entry.get("data-dist-info-metadata", False))
        size = entry.get("size")
        files.append(UpstreamFile(
            filename=str(entry.get("filename", "")),
            url=urljoin(page_url, str(entry.get("url", ""))),
            hashes=_clean_hashes(entry.get("hashes")),
            requires_python=entry.get("requires-python") or None,
            yanked=entry.get("yanked", False) if isinstance(entry.get("yanked"), (bool, str)) else False,
            size=size if isinstance(size, int) and size >= 0 else None,
            upload_time=entry.get("upload-time") if isinstance(entry.get("upload-time"), str) else None,
            core_metadata=_metadata_field(metadata),
        ))
    return files, serial, status


class _AnchorCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, Optional[str]], str]] = []
        self.meta: dict[str, str] = {}  # <meta name=... content=...>, as PEP 629 and PEP 792 give them
        self._current: Optional[dict[str, Optional[str]]] = None
        self._text: list[str] = []
        self.asks_password = False  # an <input type=password>: a sign-in form, which no index page has

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        if tag == "input" and str(dict(attrs).get("type") or "").lower() == "password":
            self.asks_password = True
        elif tag == "meta":
            named = dict(attrs)
            if named.get("name") and named.get("content") is not None:
                self.meta.setdefault(str(named["name"]).lower(), str(named["content"]))
        elif tag == "a":
            self._current = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current, "".join(self._text).strip()))
            self._current = None


def _html_metadata(attrs: dict[str, Optional[str]]) -> Union[bool, dict[str, str]]:
    value = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
    if value is None:
        return False
    if "=" in value:
        algorithm, _, digest = value.partition("=")
        return _clean_hashes({algorithm: digest}) or True
    return value.lower() != "false"


def parse_html_project(name: str, body: bytes, page_url: str) -> tuple[list[UpstreamFile], Optional[ProjectStatus]]:
    """The files a PEP 503 page lists, and its project status (PEP 792: the "pypi:project-status" meta tag)."""
    collector = _AnchorCollector()
    collector.feed(body.decode("utf-8", errors="replace"))
    files = []
    for attrs, text in collector.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urldefrag(urljoin(page_url, href))
        algorithm, _, digest = fragment.partition("=")
        yanked_attr = attrs.get("data-yanked")
        filename = text or urlsplit(url).path.rsplit("/", 1)[-1]
        files.append(UpstreamFile(
            filename=filename,
            url=url,
            hashes=_clean_hashes({algorithm: digest}) if digest else {},
            requires_python=attrs.get("data-requires-python") or None,
            yanked=False if yanked_attr is None else (yanked_attr or True),
            core_metadata=_html_metadata(attrs),
        ))
    return files, ProjectStatus.read(collector.meta.get("pypi:project-status"),
                                     collector.meta.get("pypi:project-status-reason"))


def parse_html_root(body: bytes) -> list[str]:
    """The project names a PEP 503 root page links. A page that asks for a password is a sign-in page (a proxy's,
    whose login has expired), and its links (help, a password reset) would read as projects: it is refused."""
    collector = _AnchorCollector()
    collector.feed(body.decode("utf-8", errors="replace"))
    if collector.asks_password:
        raise ValueError("it is a sign-in page (a form that asks for a password), not a list of projects")
    return [text for _, text in collector.anchors if text]


class Upstream:
    def __init__(self, http: HttpClient, base_url: str) -> None:
        self.http = http
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"

    def check_reachable(self) -> None:
        """Fail early, in one line, on an upstream that cannot be reached or that wants a login."""
        status = self.http.head(self.base_url)
        if status == 401:
            raise FetchError(f"{self.base_url}: HTTP 401: the index wants a login; write it into the upstream URL "
                             "as pip takes it (https://user:token@host/simple/), or check the one written there")
        if status == 407:
            raise FetchError(f"{self.base_url}: HTTP 407: the proxy wants a login; write it into the proxy URL "
                             "(http://user:password@proxy:3128), or check the one written there")

    def project_url(self, name: str) -> str:
        return urljoin(self.base_url, name + "/")

    def project(self, name: str, etag: Optional[str] = None,
                last_modified: Optional[str] = None) -> Union[ProjectPage, NotModified]:
        headers = {"Accept": ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        url = self.project_url(name)
        response = self.http.get(url, headers)
        if response.status == 304:
            return NotModified(_serial(response.headers))
        if response.status == 404:
            raise ProjectNotFound(f"project {name}: not found upstream (HTTP 404 at {url})")
        if response.status != 200:
            raise FetchError(f"project {name}: HTTP {response.status} at {url}")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        page_serial = None
        try:
            if content_type == JSON_TYPE:
                files, page_serial, status = parse_json_project(name, response.body, response.url)
            else:
                files, status = parse_html_project(name, response.body, response.url)
        except (ValueError, AttributeError, TypeError) as exc:
            raise FetchError(f"project {name}: unreadable index page at {url}: {exc}") from None
        if status is not None and status.quarantined:
            files = []  # PEP 792: no file of it is offered, even by an index that still lists some
        header_serial = _serial(response.headers)
        return ProjectPage(name, files, page_serial if header_serial is None else header_serial,
                           response.headers.get("ETag"), response.headers.get("Last-Modified"), status)

    def project_list(self) -> ProjectListing:
        """Every project the upstream lists, and the index's serial: its header's, its page's or, at the least,
        the highest serial a project in it has."""
        response = self.http.get(self.base_url, {"Accept": ACCEPT})
        if response.status != 200:
            raise FetchError(f"{self.base_url}: HTTP {response.status}")  # the caller names what was read
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type == JSON_TYPE:
            data = json.loads(response.body)
            projects = [(str(entry.get("name", "")), _serial_value(entry.get("_last-serial")))
                        for entry in data.get("projects", [])]
            known = [serial for serial in (_serial(response.headers), meta_serial(data), *(s for _, s in projects))
                     if serial is not None]
            return ProjectListing(projects, max(known, default=None))
        try:
            names = parse_html_root(response.body)
        except ValueError as exc:
            raise FetchError(f"{self.base_url}: {exc}; nothing synced; "
                             f"{not_an_index(self.base_url, named=False)}") from None
        return ProjectListing([(name, None) for name in names], _serial(response.headers))
