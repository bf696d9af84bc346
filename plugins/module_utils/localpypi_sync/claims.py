"""Project names a private index claims.

A claimed name is never read from the upstream, never resolved there, and a page the mirror already
serves for it is withdrawn: whoever publishes that name upstream (the dependency-confusion attack)
never reaches a client through this mirror. The names come from the private index's package directory
(pypiserver keeps every uploaded file there, flat or in subdirectories) and from the config's
``private_projects``, which can reserve names, or a prefix glob, before anything is uploaded.
"""

from __future__ import annotations

import dataclasses
import os
import re

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from .names import SDIST_SUFFIXES

# name-version.ext for legacy archives and eggs: the name ends at the first "-" followed by a digit
_LEGACY_ARCHIVE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*?)-\d[^/]*$")
_ARCHIVE_SUFFIXES = (".whl", ".egg", *SDIST_SUFFIXES)


class ClaimsUnreadable(RuntimeError):
    """The private directory cannot be listed: no claimed name is known, so nothing may be synced."""


@dataclasses.dataclass(frozen=True)
class Claims:
    names: frozenset[str]
    unreadable_files: tuple[str, ...]  # archives whose name says no project: reported, not guessed


def project_of(filename: str) -> str | None:
    """The normalized project a distribution file belongs to, or None when its name says none."""
    try:
        if filename.endswith(".whl"):
            return canonicalize_name(parse_wheel_filename(filename)[0])
        if filename.endswith((".tar.gz", ".zip")):
            return canonicalize_name(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename):
        pass
    if filename.endswith(".whl"):
        return None
    match = _LEGACY_ARCHIVE.match(filename)  # .tar.bz2, .egg, odd separators
    return canonicalize_name(match.group("name")) if match else None


def read_claims(directory: str) -> Claims:
    """Every project with a distribution file under directory (hidden entries skipped, as pypiserver does)."""
    if not os.path.isdir(directory):
        raise ClaimsUnreadable(f"private_directory {directory} is not a directory")
    names: set[str] = set()
    unreadable: list[str] = []

    def fail(error: OSError) -> None:
        raise ClaimsUnreadable(f"private_directory: cannot list {error.filename}: {error.strerror}")

    for root, dirs, files in os.walk(directory, onerror=fail):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for filename in files:
            if filename.startswith(".") or not filename.endswith(_ARCHIVE_SUFFIXES):
                continue  # signatures, metadata and the like belong to some archive
            project = project_of(filename)
            if project is None:
                unreadable.append(os.path.relpath(os.path.join(root, filename), directory))
            else:
                names.add(project)
    return Claims(frozenset(names), tuple(sorted(unreadable)))
