"""pip requirements files, read as pip reads them: requirements, constraints, nesting. Nothing is executed."""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional

from packaging.markers import Marker, UndefinedComparison, UndefinedEnvironmentName, default_environment
from packaging.requirements import InvalidRequirement, Requirement

from .upstream import HASH_NAMES


class RequirementsFileError(ValueError):
    """A requirements file that cannot be mirrored; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class RequirementLine:
    requirement: Requirement
    origin: str  # "path:line", for error messages and --explain
    hashes: frozenset[str] = frozenset()  # pip's --hash options, as "sha256:<hex>": any file of the release
    # a lock's files: (filename, its hashes as "sha256:<hex>"), each for that file alone
    file_hashes: tuple[tuple[str, frozenset[str]], ...] = ()
    index: Optional[str] = None  # the index a lock took the package from (PEP 751's packages.index)


@dataclasses.dataclass
class RequirementsSet:
    requirements: list[RequirementLine] = dataclasses.field(default_factory=list)
    constraints: list[RequirementLine] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  # options that mean nothing to a mirror
    # a lock file's path, and the marker of where it installs at all (its requires-python and environments)
    scopes: list[tuple[str, Marker]] = dataclasses.field(default_factory=list)
    # the files read as constraints (their real paths), each with the -c line that named it
    constraint_files: list[tuple[str, str]] = dataclasses.field(default_factory=list)


_COMMENT = re.compile(r"(^|\s+)#.*$")
_ENV_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
# Options that choose where or how pip installs; the mirror decides those, so they are noted and skipped.
_INSTALL_OPTIONS = frozenset({
    "-i", "--index-url", "--extra-index-url", "--no-index", "-f", "--find-links", "--trusted-host", "--pre",
    "--prefer-binary", "--only-binary", "--no-binary", "--require-hashes", "--use-feature", "--progress-bar",
})
_NESTING_OPTIONS = {"-r": "requirement", "--requirement": "requirement",
                    "-c": "constraint", "--constraint": "constraint"}
# Per-requirement options pip allows after the requirement (--hash=..., --config-settings=...).
_TRAILING_OPTIONS = re.compile(r"\s+--?[A-Za-z][\w-]*(?:[= ]\S+)?(?=\s|$)")
_HASH_OPTION = re.compile(r"\s--hash[= ](\S+)")
_HEX = re.compile(r"[0-9a-f]+")
_ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations, drop comments, expand ${VAR}: pip's own preprocessing order."""
    result: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, physical in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if physical.endswith("\\") and not physical.lstrip().startswith("#"):
            pending.append(physical[:-1])
            continue
        pending.append(physical)
        line = _COMMENT.sub("", "".join(pending)).strip()
        pending = []
        if line:
            result.append((start, _ENV_VAR.sub(lambda m: os.environ.get(m.group(1), m.group(0)), line)))
    if pending:
        line = _COMMENT.sub("", "".join(pending)).strip()
        if line:
            result.append((start, line))
    return result


def _split_option(line: str) -> tuple[str, Optional[str]]:
    """'-r file', '-rfile', '--requirement=file' -> ('-r', 'file'); '--pre' -> ('--pre', None)."""
    if line.startswith("--"):
        name, sep, value = line.partition("=")
        if not sep:
            name, _, value = line.partition(" ")
        return name.strip(), value.strip() or None
    name, value = line[:2], line[2:].strip()
    return name, value or None


def _hashes(text: str, origin: str) -> frozenset[str]:
    """The requirement's --hash values, checked as pip checks them: an algorithm pip takes, and hex digits."""
    found = set()
    for value in _HASH_OPTION.findall(" " + text):
        algorithm, _, digest = value.lower().partition(":")
        if algorithm not in HASH_NAMES or not _HEX.fullmatch(digest):
            raise RequirementsFileError(f"{origin}: --hash={value}: expected <algorithm>:<hex digest>, with one of "
                                        f"the algorithms pip takes ({', '.join(HASH_NAMES)})")
        found.add(f"{algorithm}:{digest}")
    return frozenset(found)


def _parse_line(text: str, origin: str) -> RequirementLine:
    """A requirement line, with the hashes its --hash options pin."""
    return RequirementLine(_parse_requirement(text, origin), origin, _hashes(text, origin))


def _parse_requirement(text: str, origin: str) -> Requirement:
    text = _TRAILING_OPTIONS.sub("", " " + text).strip() if " -" in text else text
    if "://" in text.split(";")[0] and "@" not in text.split(";")[0]:
        raise RequirementsFileError(f"{origin}: {text!r} is a URL; only named requirements can be mirrored")
    if "@" not in text.split(";")[0] and (
            text.startswith((".", "/", "~")) or text.split(";")[0].strip().endswith(_ARCHIVE_SUFFIXES)):
        raise RequirementsFileError(f"{origin}: {text!r} is a local path or archive; only named requirements "
                                    "can be mirrored")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise RequirementsFileError(f"{origin}: invalid requirement {text!r}: {' '.join(str(exc).split())}") from None
    if requirement.url:
        raise RequirementsFileError(f"{origin}: {text!r} is a direct URL reference; it cannot be mirrored")
    problem = marker_problem(requirement)
    if problem:
        raise RequirementsFileError(f"{origin}: {text!r}: {problem}")
    return requirement


def marker_problem(requirement: Requirement) -> Optional[str]:
    """Why the requirement's marker cannot be evaluated, as pip cannot evaluate it either: one that asks for
    `dependency_groups` or `extras` (PEP 751's, for a lock file's packages only), a `~=` with one number. None
    when it can. Told once, where the requirement is read, and not as an internal error on every target."""
    if requirement.marker is None:
        return None
    try:
        requirement.marker.evaluate({**default_environment(), "extra": ""})
    except MARKER_ERRORS as exc:
        return marker_error(exc)
    return None


MARKER_ERRORS = (UndefinedEnvironmentName, UndefinedComparison)  # what evaluating a marker that parsed can raise


def marker_error(exc: Exception) -> str:
    """One of MARKER_ERRORS, as a clause that reads the same on every host."""
    if isinstance(exc, UndefinedEnvironmentName):
        return f"its marker asks for {exc}, which only a lock file's packages may (PEP 751)"
    return "its marker has a comparison that cannot be evaluated (such as ~= with a single number)"


def read_requirements(path: str) -> RequirementsSet:
    """Read a requirements file and the files it nests (-r, -c), relative to each including file."""
    result = RequirementsSet()
    _read_into(os.path.abspath(path), "requirement", result, [], "")
    return result


def _read_into(path: str, kind: str, result: RequirementsSet, stack: list[str], included_at: str) -> None:
    real = os.path.realpath(path)
    if real in stack:
        chain = " -> ".join(os.path.basename(p) for p in [*stack, real])
        raise RequirementsFileError(f"{path}: requirements files include each other ({chain})")
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as exc:
        where = f"{included_at}: " if included_at else ""
        raise RequirementsFileError(f"{where}cannot read requirements file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RequirementsFileError(f"{path}: not UTF-8 text") from None
    stack = [*stack, real]
    for number, line in _logical_lines(text):
        origin = f"{path}:{number}"
        if not line.startswith("-"):
            target = result.requirements if kind == "requirement" else result.constraints
            target.append(_parse_line(line, origin))
            continue
        name, value = _split_option(line)
        if name in _NESTING_OPTIONS:
            if not value:
                raise RequirementsFileError(f"{origin}: {name} needs a file name")
            if "://" in value:
                raise RequirementsFileError(f"{origin}: {name} {value}: only local files can be read")
            nested = value if os.path.isabs(value) else os.path.join(os.path.dirname(path), value)
            # pip reads a file nested in a constraints file as constraints too
            nested_kind = "constraint" if kind == "constraint" else _NESTING_OPTIONS[name]
            if nested_kind == "constraint":
                result.constraint_files.append((os.path.realpath(nested), origin))
            _read_into(nested, nested_kind, result, stack, origin)
        elif name in ("-e", "--editable"):
            raise RequirementsFileError(f"{origin}: editable requirements ({line}) cannot be mirrored: they name a "
                                        "local or VCS checkout that no index holds. Remove the line; `uv export "
                                        "--no-emit-project` leaves a project's own line out")
        elif name in _INSTALL_OPTIONS:
            result.notes.append(f"{origin}: {name} ignored: the mirror's configuration decides that")
        else:
            raise RequirementsFileError(f"{origin}: unknown option {name}")
