"""PEP 751 lock files (pylock.toml), read as requirements: each package an index serves, at its locked version."""

from __future__ import annotations

import pathlib
import sys
from typing import Any, Optional

from packaging.markers import Marker, UndefinedEnvironmentName, default_environment
from packaging.pylock import Package, Pylock, PylockUnsupportedVersionError, PylockValidationError, is_valid_pylock_path
from packaging.requirements import Requirement
from packaging.utils import parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from .pinned import hash_values
from .reqfile import RequirementLine, RequirementsFileError, RequirementsSet

if sys.version_info >= (3, 11):
    import tomllib as toml
else:  # pragma: no cover - the engine's requirements.txt installs tomli there
    import tomli as toml


def _load_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as stream:
            return toml.load(stream)
    except OSError as exc:
        raise RequirementsFileError(f"cannot read lock file {path}: {exc.strerror}") from None
    except toml.TOMLDecodeError as exc:
        raise RequirementsFileError(f"{path}: not TOML: {exc}") from None


def read_lock_file(path: str) -> RequirementsSet:
    """Every package of the lock that an installer takes from an index, as name==version with the lock's
    marker. A marker that asks for an extra or a dependency group is left out: a mirror serves them all, so
    such a package is mirrored for every target. A package installed from a directory needs nothing from the
    mirror; one from a VCS or an archive URL is noted, since a client off the internet cannot fetch it."""
    if not is_valid_pylock_path(pathlib.Path(path)):
        raise RequirementsFileError(f"{path}: a lock file is named pylock.toml or pylock.<name>.toml (PEP 751), "
                                    f"with no dot in <name>")
    try:
        lock = Pylock.from_dict(_load_toml(path))
    except (PylockValidationError, PylockUnsupportedVersionError) as exc:
        raise RequirementsFileError(f"{path}: not a lock file as PEP 751 defines one: {exc}") from None
    result = RequirementsSet()
    scope = _lock_scope(lock)
    if scope is not None:
        result.scopes.append((path, scope))
    for index, package in enumerate(lock.packages):
        origin = f"{path}:packages[{index}]"
        if package.directory is not None:
            continue
        source = package.vcs or package.archive
        if source is not None:
            result.notes.append(f"{origin}: {package.name} comes from {source.url or source.path}, not from an "
                                f"index: not mirrored, and a client that installs this lock fetches it from there")
            continue
        version = package.version or _version_of_files(package)
        requirement = Requirement(f"{package.name}=={version}")
        requirement.marker = _both(scope, _environment_marker(package.marker))
        result.requirements.append(RequirementLine(requirement, origin, file_hashes=_file_hashes(package),
                                                   index=package.index))
    return result


def _file_hashes(package: Package) -> tuple[tuple[str, frozenset[str]], ...]:
    """Each of the package's files with the hashes the lock gives it (PEP 751 asks for at least one)."""
    files = [*(package.wheels or ()), *([package.sdist] if package.sdist is not None else [])]
    return tuple((file.filename, hash_values(file.hashes)) for file in files)


def _version_of_files(package: Package) -> Version:
    """The version its wheel or sdist file names, for a lock that leaves packages.version out (PEP 751 asks a
    package from an index for one of them, and Pylock.from_dict has checked their names)."""
    if package.wheels:
        return parse_wheel_filename(package.wheels[0].filename)[1]
    assert package.sdist is not None
    return parse_sdist_filename(package.sdist.filename)[1]


def _lock_scope(lock: Pylock) -> Optional[Marker]:
    """Where the lock installs at all, as one marker: on a Python its requires-python admits, and in one of its
    environments. A client elsewhere refuses the lock, so its packages are mirrored for the targets within."""
    parts = [f"python_full_version {spec.operator} '{spec.version}'" for spec in lock.requires_python or ()]
    if lock.environments:
        parts.append(" or ".join(f"({environment})" for environment in lock.environments))
    return _environment_marker(Marker(" and ".join(f"({part})" for part in parts))) if parts else None


def _both(first: Optional[Marker], second: Optional[Marker]) -> Optional[Marker]:
    if first is None or second is None:
        return first or second
    return Marker(f"({first}) and ({second})")


def _environment_marker(marker: Optional[Marker]) -> Optional[Marker]:
    """The marker, if it asks only of the environment (python, platform); None if it also asks which extras or
    dependency groups are installed (PEP 751's additions), which a mirror of them all takes as yes."""
    if marker is None:
        return None
    try:
        marker.evaluate({**default_environment(), "extra": ""})
    except UndefinedEnvironmentName:
        return None
    return marker
