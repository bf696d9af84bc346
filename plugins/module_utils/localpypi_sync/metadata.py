"""A release's dependencies, read without building anything.

In order of cost: the PEP 658 metadata file the index offers beside a wheel, the METADATA inside a wheel,
the PKG-INFO of an sdist when it declares its dependencies statically (Metadata-Version 2.2+, Requires-Dist
not dynamic). setup.py is never run: an sdist without static metadata has unknown dependencies, reported.
Results are cached by the file's sha256 under state/metadata, so a later run reads nothing again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import tarfile
import threading
import zipfile
from typing import IO, Any, Callable, Optional, Union

from packaging.metadata import parse_email
from packaging.version import InvalidVersion, Version

from .credentials import origin_of
from .fetch import Fetcher, strongest_hash
from .http import FetchError, HttpClient, RangeUnsupported
from .names import package_type
from .state import atomic_write, read_json
from .upstream import UpstreamFile

MAX_METADATA_BYTES = 8 << 20
# A wheel larger than this, with no metadata file beside it, is read with range requests rather than whole:
# a smaller one is read whole, since the mirror most often publishes that same download.
RANGES_ABOVE = 1 << 20
RANGE_CHUNK = 64 << 10


@dataclasses.dataclass(frozen=True)
class Dependencies:
    requires_dist: tuple[str, ...]
    requires_python: Optional[str]
    source: str  # metadata-file | wheel | sdist | unknown
    note: str = ""  # why the dependencies are unknown

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def parse_core_metadata(data: bytes, source: str) -> Dependencies:
    raw, _ = parse_email(data)
    requires = tuple(raw.get("requires_dist", []) or ())
    requires_python = raw.get("requires_python")
    if source == "sdist":
        try:
            static = Version(raw.get("metadata_version", "1.0")) >= Version("2.2")
        except InvalidVersion:
            static = False
        dynamic = {field.lower() for field in raw.get("dynamic", []) or ()}
        if not static or "requires-dist" in dynamic:
            return Dependencies((), requires_python, "unknown",
                                "an sdist whose metadata does not declare them statically: Metadata-Version "
                                "below 2.2 or Requires-Dist dynamic, and the mirror never builds packages")
    return Dependencies(requires, requires_python, source)


def _is_metadata_member(name: str, kind: str) -> bool:
    """A wheel's <name>.dist-info/METADATA, or an sdist's top-level <dir>/PKG-INFO."""
    parts = name.split("/")
    if len(parts) != 2:
        return False
    return parts[1] == "PKG-INFO" if kind == "sdist" else parts[0].endswith(".dist-info") and parts[1] == "METADATA"


def _missing(kind: str) -> ValueError:
    return ValueError(f"no readable {'PKG-INFO' if kind == 'sdist' else '.dist-info/METADATA'}")


def _zip_metadata(source: Union[str, IO[bytes]], kind: str) -> bytes:
    with zipfile.ZipFile(source) as archive:
        for info in archive.infolist():
            if _is_metadata_member(info.filename, kind) and info.file_size <= MAX_METADATA_BYTES:
                return archive.read(info)
    raise _missing(kind)


def _tar_metadata(path: str, kind: str) -> bytes:
    with tarfile.open(path) as archive:
        for info in archive:
            if _is_metadata_member(info.name, kind) and info.isfile() and info.size <= MAX_METADATA_BYTES:
                stream = archive.extractfile(info)
                if stream is not None:
                    return stream.read()
    raise _missing(kind)


def _read_archive_metadata(path: str, filename: str, kind: str) -> bytes:
    return _zip_metadata(path, kind) if filename.endswith((".whl", ".zip")) else _tar_metadata(path, kind)


class _RangedFile(io.RawIOBase):
    """A remote file that zipfile reads through range requests: the central directory at the end, then the
    one member it wants. Each read fetches at least RANGE_CHUNK bytes, and what was fetched is kept."""

    def __init__(self, fetch: Callable[[str], tuple[bytes, int]]) -> None:
        super().__init__()
        self._fetch = fetch
        tail, self._size = fetch(f"bytes=-{RANGE_CHUNK}")  # the end holds the central directory
        self._spans: list[tuple[int, bytes]] = [(max(0, self._size - len(tail)), tail)]
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._position + len(view), self._size)
        if end <= self._position:
            return 0
        data = self._bytes(self._position, end)
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _bytes(self, start: int, end: int) -> bytes:
        for first, data in self._spans:
            if first <= start and end <= first + len(data):
                return data[start - first:end - first]
        last = min(self._size, max(end, start + RANGE_CHUNK)) - 1
        data, _ = self._fetch(f"bytes={start}-{last}")
        self._spans.append((start, data))
        return data[: end - start]


class MetadataReader:
    """Dependencies of releases, each file's read at most once per mirror (memory, then state/metadata)."""

    def __init__(self, http: HttpClient, fetcher: Fetcher, cache_dir: str, save: bool = True) -> None:
        self.http = http
        self.fetcher = fetcher
        self.cache_dir = cache_dir
        self.save = save  # False in check mode: what earlier runs cached is read, nothing is written
        self._memory: dict[str, Dependencies] = {}
        self._lock = threading.Lock()
        self._ranges_refused: set[tuple[str, str, int]] = set()  # origins that sent a whole file for a range
        self.requests = 0

    def dependencies(self, files: list[UpstreamFile], prefer: Callable[[UpstreamFile], bool]) -> Dependencies:
        """Dependencies of one release from the cheapest of its files; prefer() ranks wheels for a target."""
        wheels = [f for f in files if package_type(f.filename) == "wheel"]
        wheels.sort(key=lambda f: (not prefer(f), not f.core_metadata))
        sdists = [f for f in files if package_type(f.filename) == "sdist"]
        errors = []
        for upstream_file in wheels[:2] + sdists[:1]:
            try:
                return self._read(upstream_file)
            except (FetchError, ValueError, OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
                errors.append(f"{upstream_file.filename}: {exc}")
        if not files:
            return Dependencies((), None, "unknown", "no files")
        return Dependencies((), None, "unknown", "; ".join(errors) or "no wheel or sdist to read")

    def _read(self, upstream_file: UpstreamFile) -> Dependencies:
        key = upstream_file.hashes.get("sha256") or strongest_hash(upstream_file.hashes)[1]
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        cached = self._load(key)
        if cached is None:
            cached = self._fetch(upstream_file)
            self._save(key, cached)
        with self._lock:
            self._memory[key] = cached
        return cached

    def _fetch(self, upstream_file: UpstreamFile) -> Dependencies:
        """Stage what is read (the metadata file, else the archive): publishing it later downloads nothing."""
        kind = package_type(upstream_file.filename)
        hashes = upstream_file.core_metadata
        if kind == "wheel" and isinstance(hashes, dict) and hashes:
            algorithm, expected = strongest_hash(hashes)
            try:
                with self._lock:
                    self.requests += 1
                staged = self.fetcher.stage(upstream_file.url + ".metadata", algorithm, expected)
                with open(staged, "rb") as stream:
                    return parse_core_metadata(stream.read(MAX_METADATA_BYTES), "metadata-file")
            except FetchError:
                pass  # a missing or mismatched metadata file: the wheel itself says the same, verified
        if (kind == "wheel" and (upstream_file.size is None or upstream_file.size > RANGES_ABOVE)
                and origin_of(upstream_file.url) not in self._ranges_refused):
            with contextlib.suppress(FetchError, ValueError, OSError, zipfile.BadZipFile):
                return parse_core_metadata(self._wheel_metadata_by_ranges(upstream_file.url), "wheel")
        algorithm, expected = strongest_hash(upstream_file.hashes)
        with self._lock:
            self.requests += 1
        staged = self.fetcher.stage(upstream_file.url, algorithm, expected)
        return parse_core_metadata(_read_archive_metadata(staged, upstream_file.filename, kind), kind)

    def _wheel_metadata_by_ranges(self, url: str) -> bytes:
        """A large wheel's METADATA without its download, when the index offers no metadata file (devpi,
        Artifactory, some proxies): two or three range requests, as uv reads it. What they return cannot be
        checked against the wheel's hash; the wheel itself is, when it is mirrored. A server that ignores
        ranges raises RangeUnsupported, and the wheel is then read whole."""
        def fetch(spec: str) -> tuple[bytes, int]:
            with self._lock:
                self.requests += 1
            return self.http.get_range(url, spec)

        try:
            remote = _RangedFile(fetch)
        except RangeUnsupported:
            with self._lock:  # then every wheel there is read whole, without asking again
                self._ranges_refused.add(origin_of(url))
            raise
        return _zip_metadata(remote, "wheel")

    def _load(self, key: str) -> Optional[Dependencies]:
        data = read_json(os.path.join(self.cache_dir, key[:2], key + ".json"))
        try:
            return Dependencies(tuple(data["requires_dist"]), data["requires_python"], data["source"],
                                data.get("note", "")) if isinstance(data, dict) else None
        except (KeyError, TypeError):
            return None

    def _save(self, key: str, dependencies: Dependencies) -> None:
        if not self.save:
            return
        path = os.path.join(self.cache_dir, key[:2], key + ".json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, json.dumps(dependencies.to_json(), sort_keys=True).encode())
