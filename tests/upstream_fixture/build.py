"""Generate a small but real package index: valid wheels and sdists with metadata, on disk."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import os
import re
import tarfile
import threading
import zipfile
from typing import Iterable, Optional, Union

from packaging.utils import canonicalize_name


@dataclasses.dataclass
class FixtureFile:
    project: str
    filename: str  # as listed in the index (may be hostile on purpose)
    disk_path: str
    sha256: str
    blake2b: str
    size: int
    requires_python: Optional[str] = None
    yanked: Union[bool, str] = False
    metadata: Optional[bytes] = None  # PEP 658 metadata, for wheels
    upload_time: str = "2025-01-01T00:00:00.000000Z"

    @property
    def url_path(self) -> str:
        return f"/packages/{self.blake2b[:2]}/{self.blake2b[2:4]}/{self.blake2b[4:]}/{self.filename}"


def _digest(data: bytes) -> tuple[str, str]:
    return hashlib.sha256(data).hexdigest(), hashlib.blake2b(data, digest_size=32).hexdigest()


def _metadata(name: str, version: str, requires_dist: Iterable[str], requires_python: Optional[str],
              metadata_version: str = "2.1") -> bytes:
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}",
             f"Summary: fixture {name}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    requires_dist = list(requires_dist)
    extras = sorted({m for req in requires_dist for m in re.findall(r"""extra\s*==\s*["']([^"']+)["']""", req)})
    lines += [f"Provides-Extra: {extra}" for extra in extras]
    lines += [f"Requires-Dist: {req}" for req in requires_dist]
    return ("\n".join(lines) + "\n").encode()


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel_bytes(name: str, version: str, tag: str = "py3-none-any", requires_dist: Iterable[str] = (),
                requires_python: Optional[str] = None, padding: int = 0) -> tuple[str, bytes, bytes]:
    """(filename, wheel bytes, METADATA bytes) of an installable wheel with one module."""
    dist = canonicalize_name(name).replace("-", "_")
    dist_info = f"{dist}-{version}.dist-info"
    metadata = _metadata(name, version, requires_dist, requires_python)
    contents = {
        f"{dist}/__init__.py": f'VERSION = "{version}"\nTAG = "{tag}"\n'.encode() + b"#" * padding + b"\n",
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: localpypi-fixture\nRoot-Is-Purelib: "
                               f"{'true' if tag.endswith('-any') else 'false'}\nTag: {tag}\n").encode(),
    }
    record = [_record_line(path, data) for path, data in contents.items()] + [f"{dist_info}/RECORD,,"]
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in contents.items():
            info = zipfile.ZipInfo(path, date_time=(2025, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return f"{dist}-{version}-{tag}.whl", buffer.getvalue(), metadata


# A PEP 517 backend inside each sdist, needing nothing from an index: pip and uv can build the fixture's
# sdists offline, from a mirror that holds no build tools.
_IN_TREE_BACKEND = '''"""Builds this fixture project's wheel from its PKG-INFO; needs nothing installed."""
import base64, hashlib, os, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(os.path.join(HERE, "PKG-INFO"), "rb") as stream:
        metadata = stream.read()
    fields = dict(line.split(": ", 1) for line in metadata.decode().splitlines()[:3])
    dist, version = fields["Name"].lower().replace("-", "_"), fields["Version"]
    with open(os.path.join(HERE, dist, "__init__.py"), "rb") as stream:
        module = stream.read()
    info = f"{dist}-{version}.dist-info"
    contents = {f"{dist}/__init__.py": module, f"{info}/METADATA": metadata,
                f"{info}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: fixture\\nRoot-Is-Purelib: true\\n"
                                 b"Tag: py3-none-any\\n"}
    record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
              f"{len(data)}" for path, data in contents.items()] + [f"{info}/RECORD,,"]
    contents[f"{info}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    filename = f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as archive:
        for path, data in contents.items():
            archive.writestr(path, data)
    return filename
'''
_PYPROJECT = b'''[build-system]
requires = []
build-backend = "fixture_backend"
backend-path = ["."]
'''


def sdist_bytes(name: str, version: str, requires_python: Optional[str] = None, requires_dist: Iterable[str] = (),
                metadata_version: str = "2.1") -> tuple[str, bytes]:
    """A buildable sdist; with metadata_version 2.2+ its PKG-INFO declares requires_dist statically."""
    dist = canonicalize_name(name).replace("-", "_")
    base = f"{dist}-{version}"
    members = {
        f"{base}/PKG-INFO": _metadata(name, version, requires_dist, requires_python, metadata_version),
        f"{base}/{dist}/__init__.py": f'VERSION = "{version}"\n'.encode(),
        f"{base}/pyproject.toml": _PYPROJECT,
        f"{base}/fixture_backend.py": _IN_TREE_BACKEND.encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = 1735689600
            archive.addfile(info, io.BytesIO(data))
    return f"{base}.tar.gz", buffer.getvalue()


class Catalog:
    """Projects and their files, with a serial that moves on every change, like the public index."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.projects: dict[str, list[FixtureFile]] = {}
        self.display_names: dict[str, str] = {}
        self.serials: dict[str, int] = {}
        self.statuses: dict[str, tuple[str, Optional[str]]] = {}  # project -> PEP 792 (status, reason)
        self.serial = 0
        self.by_url_path: dict[str, FixtureFile] = {}
        self.lock = threading.Lock()
        os.makedirs(root, exist_ok=True)

    def _store(self, data: bytes, filename: str) -> tuple[str, str, str]:
        sha256, blake2b = _digest(data)
        path = os.path.join(self.root, sha256[:2], sha256)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as stream:
            stream.write(data)
        return path, sha256, blake2b

    def _bump(self, project: str) -> None:
        self.serial += 1
        self.serials[project] = self.serial

    def touch(self, project: str) -> None:
        """Move the project's serial without changing its files, as an owner or description edit does."""
        with self.lock:
            self._bump(canonicalize_name(project))

    def set_status(self, project: str, status: str, reason: Optional[str] = None) -> None:
        """Mark the project as PEP 792 has it ("active" clears the mark); the serial moves, as on the public
        index. A quarantined project's pages list none of its files."""
        normalized = canonicalize_name(project)
        with self.lock:
            if status == "active":
                self.statuses.pop(normalized, None)
            else:
                self.statuses[normalized] = (status, reason)
            self._bump(normalized)

    def add_project(self, name: str) -> str:
        normalized = canonicalize_name(name)
        with self.lock:
            self.projects.setdefault(normalized, [])
            self.display_names.setdefault(normalized, name)
            self._bump(normalized)
        return normalized

    def add_bytes(self, project: str, filename: str, data: bytes, metadata: Optional[bytes] = None,
                  requires_python: Optional[str] = None, yanked: Union[bool, str] = False) -> FixtureFile:
        normalized = self.add_project(project)
        path, sha256, blake2b = self._store(data, filename)
        entry = FixtureFile(normalized, filename, path, sha256, blake2b, len(data), requires_python, yanked, metadata)
        with self.lock:
            self.projects[normalized].append(entry)
            self.by_url_path[entry.url_path] = entry
            self._bump(normalized)
        return entry

    def add_wheel(self, project: str, version: str, tag: str = "py3-none-any", requires_dist: Iterable[str] = (),
                  requires_python: Optional[str] = None, yanked: Union[bool, str] = False,
                  padding: int = 0, with_metadata: bool = True) -> FixtureFile:
        filename, data, metadata = wheel_bytes(project, version, tag, requires_dist, requires_python, padding)
        return self.add_bytes(project, filename, data, metadata if with_metadata else None, requires_python, yanked)

    def add_sdist(self, project: str, version: str, requires_python: Optional[str] = None,
                  yanked: Union[bool, str] = False, requires_dist: Iterable[str] = (),
                  metadata_version: str = "2.1") -> FixtureFile:
        filename, data = sdist_bytes(project, version, requires_python, requires_dist, metadata_version)
        return self.add_bytes(project, filename, data, None, requires_python, yanked)

    def remove_file(self, filename: str) -> None:
        with self.lock:
            for project, files in self.projects.items():
                kept = [f for f in files if f.filename != filename]
                for entry in files:
                    if entry.filename == filename:
                        self.by_url_path.pop(entry.url_path, None)
                if len(kept) != len(files):
                    self.projects[project] = kept
                    self._bump(project)

    def find(self, filename: str) -> FixtureFile:
        for files in self.projects.values():
            for entry in files:
                if entry.filename == filename:
                    return entry
        raise KeyError(filename)


def standard_catalog(root: str) -> Catalog:
    """The catalog the tests and the molecule scenarios mirror from."""
    catalog = Catalog(root)
    for version in ("1.0", "1.1", "2.0"):
        catalog.add_wheel("alpha", version)
        catalog.add_sdist("alpha", version)
    catalog.add_wheel("alpha", "2.1b1")
    catalog.add_wheel("alpha", "0.9", yanked="broken build")
    for python in ("cp311", "cp312"):
        for platform in ("manylinux_2_17_x86_64.manylinux2014_x86_64", "manylinux_2_34_x86_64", "win_amd64",
                         "macosx_11_0_arm64", "musllinux_1_2_x86_64"):
            catalog.add_wheel("beta", "1.0", f"{python}-{python}-{platform}")
    catalog.add_wheel("beta", "1.0", "cp39-abi3-manylinux_2_28_aarch64")
    catalog.add_sdist("beta", "1.0")
    catalog.add_wheel("gamma", "1.0", requires_dist=["alpha>=1.1"], requires_python=">=3.9")
    catalog.add_wheel("gamma", "0.5", requires_python="<3.8")
    catalog.add_wheel("Delta_Thing", "3.0")
    return catalog


NATIVE_PLATFORMS = ("manylinux_2_17_x86_64.manylinux2014_x86_64", "win_amd64", "macosx_11_0_arm64")


def dependency_catalog(root: str, native_platforms: Iterable[str] = NATIVE_PLATFORMS) -> Catalog:
    """A dependency graph with markers, extras, Requires-Python, platform wheels and sdist-only projects.

    app 1.0 needs lib-core>=1.0, native, winonly (Windows), oldpy (Python < 3.12), fancy-dep (extra "fancy");
    lib-core 2.0 needs Python >= 3.12 and tiny; lib-core 1.5 has no PEP 658 file (its wheel must be read);
    lib-core 0.5, 1.0, 1.4 are older releases a range may or may not allow;
    statdep is an sdist with static metadata needing tiny; dynsdist an sdist whose dependencies are unknown.
    """
    catalog = Catalog(root)
    catalog.add_wheel("app", "0.9", requires_dist=["lib-core<1.0"])
    catalog.add_wheel("app", "1.0", requires_dist=[
        "lib-core>=1.0", "native>=1.0", 'winonly; sys_platform == "win32"', 'oldpy; python_version < "3.12"',
        'fancy-dep; extra == "fancy"'])
    catalog.add_wheel("lib-core", "0.5")
    catalog.add_wheel("lib-core", "1.0")
    catalog.add_wheel("lib-core", "1.4")
    catalog.add_wheel("lib-core", "1.5", with_metadata=False)
    catalog.add_wheel("lib-core", "2.0", requires_dist=["tiny>=1"], requires_python=">=3.12")
    for python in ("cp311", "cp312"):
        for platform in native_platforms:
            catalog.add_wheel("native", "1.0", f"{python}-{python}-{platform}")
    for name in ("winonly", "oldpy", "fancy-dep", "tiny", "unrelated"):
        catalog.add_wheel(name, "1.0")
    catalog.add_sdist("statdep", "1.0", requires_dist=["tiny"], metadata_version="2.2")
    catalog.add_sdist("dynsdist", "1.0")
    return catalog
