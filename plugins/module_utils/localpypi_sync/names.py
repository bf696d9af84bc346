"""Names and paths: what a project or file may be called, and where a file lives on disk."""

from __future__ import annotations

import os
import posixpath
import re
from typing import Optional
from urllib.parse import unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

PLATFORM_PATTERN = re.compile(
    r"^(?:manylinux_\d+_\d+_\w+|manylinux(?:1|2010|2014)_\w+|musllinux_\d+_\d+_\w+|win32|win_\w+"
    r"|macosx_\d+_\d+_\w+|linux_\w+|any"
    # iOS (PEP 730), Android (PEP 738), and the Pyodide runtime on Emscripten (PEP 783; pyodide_ before it)
    r"|ios_\d+_\d+_\w+_iphone(?:os|simulator)|android_\d+_\w+|(?:pyemscripten|pyodide)_\d+_\d+_wasm32)$"
)
# PEP 508 names; the simple API cannot name anything else.
_PROJECT_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
# Distribution filenames as the index allows them (PEP 427/625 and legacy sdists): no separators,
# no markup, no leading dot.
_SAFE_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!~-]*$")
# bandersnatch mirrors the public index's URL paths: packages/aa/bb/<60 hex>/<filename>.
_HASHED_URL_PATH = re.compile(r"/packages/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{60})/([^/]+)$")

SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar")


class UnsafeName(ValueError):
    """A name from the upstream that must never reach the disk or a page."""


def normalize_project(name: str) -> str:
    if not _PROJECT_NAME.fullmatch(name):
        raise UnsafeName(f"invalid project name {name!r}")
    return canonicalize_name(name)


def check_filename(filename: str) -> str:
    if (
        not filename
        or len(filename) > 255
        or not _SAFE_FILENAME.fullmatch(filename)
        or ".." in filename
        or filename.endswith(".metadata")
    ):
        raise UnsafeName(f"refused unsafe filename {filename!r}")
    return filename


def package_type(filename: str) -> Optional[str]:
    if filename.endswith(".whl"):
        return "wheel"
    if filename.endswith(SDIST_SUFFIXES):
        return "sdist"
    return None


def file_version(filename: str, project: str) -> Optional[Version]:
    """The release a distribution file belongs to, or None when its name says nothing parseable."""
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        pass
    # Legacy sdists (.tar.bz2, odd separators): the version is what follows the project name.
    for suffix in SDIST_SUFFIXES:
        if filename.endswith(suffix):
            stem = filename[: -len(suffix)]
            for cut in range(len(stem) - 1, 0, -1):
                if stem[cut] == "-" and canonicalize_name(stem[:cut]) == project:
                    try:
                        return Version(stem[cut + 1:])
                    except ValueError:
                        return None
    return None


def package_path(url: str, sha256: str, filename: str) -> str:
    """Path of a file under web/, in bandersnatch's layout.

    Files whose upstream URL already has the public index's shape keep that path, so an existing
    bandersnatch mirror is adopted file for file; others are placed by their sha256.
    """
    match = _HASHED_URL_PATH.search(unquote(urlsplit(url).path))
    if match and match.group(4) == filename:
        first, second, rest = match.group(1), match.group(2), match.group(3)
    else:
        first, second, rest = sha256[:2], sha256[2:4], sha256[4:]
    return posixpath.join("packages", first, second, rest, filename)


def is_file_url(url: str) -> bool:
    return url[:7].lower() == "file://"


def file_url_path(url: str) -> str:
    """The absolute path a file URL names, normalized (no "..", no trailing slash). ValueError for a URL on another
    host, which this machine cannot read."""
    parts = urlsplit(url)
    if parts.netloc.lower() not in ("", "localhost"):
        raise ValueError(f"a file URL names this machine's disk (file:///path), not {parts.netloc!r}")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise ValueError("a file URL needs an absolute path (file:///path)")
    return os.path.normpath(path)


def upstream_root(upstream: str) -> Optional[str]:
    """The directory a file upstream's files are read from: the one above its simple/ directory, where packages/
    sits as a mirror's web/ tree holds them. None for an http(s) upstream."""
    return os.path.dirname(file_url_path(upstream)) if is_file_url(upstream) else None
