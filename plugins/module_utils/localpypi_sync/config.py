"""The config, read and checked: the options the schema declares (schema.OPTIONS), from the module's arguments or
the YAML config file, made into one SyncConfig with a one-line ConfigError for what is wrong.

The Ansible module builds its argument spec from the schema (schema.argument_spec()), the CLI validates YAML files
here (load_config_file()), and tests hold the module documentation and the role's argument spec to the schema.
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import functools
import hashlib
import json
import os
import re
from typing import Any, Mapping

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from . import missing_requirement
from .credentials import Credentials, redact, split_credentials
from .names import PLATFORM_PATTERN, is_file_url, upstream_root
from .reqfile import RequirementLine, RequirementsFileError, RequirementsSet, marker_problem, read_requirements
from .schema import ALL_PROJECTS, OPTIONS, OPTIONS_BY_NAME, PACKAGE_TYPES, Option
from .timespec import Cutoff, parse_cutoff


class ConfigError(ValueError):
    """A configuration problem, worded as one line for the operator."""


# The engine's selection rules, in every project's fingerprint: raised when a release makes the same config select
# other files, so that the next run re-evaluates every project, as a config change does. 2: latest per target.
# 3: markers, and whether pre-releases count, told per target.
SELECTION_RULES = 3

_SIZE_SUFFIXES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class ProjectRule:
    """What the config asks of one project: the union of its requirement lines."""

    name: str
    requirements: tuple[Requirement, ...]
    origins: tuple[str, ...] = ()  # where each requirement was written: "projects[0]", "req.txt:3"
    # Set by dependency resolution: version -> the targets it was picked for. The files kept are then
    # exactly those versions' files that install on one of those targets.
    planned: tuple[tuple[str, tuple[str, ...]], ...] | None = None

    def specifier_key(self) -> list[str]:
        if self.planned is not None:
            return [f"{version}@{','.join(targets)}" for version, targets in self.planned]
        return sorted(str(req) for req in self.requirements)


@dataclasses.dataclass(frozen=True)
class TargetPython:
    """A target CPython minor version: 3.12, or a free-threaded build such as 3.14t (its own ABI, cp314t)."""

    version: Version
    free_threaded: bool = False

    @property
    def major(self) -> int:
        return self.version.major

    @property
    def minor(self) -> int:
        return self.version.minor

    @property
    def abi(self) -> str:
        """The interpreter's own ABI tag, as wheels name it (cp37m: pymalloc, the default before 3.8)."""
        flag = "t" if self.free_threaded else "m" if self.minor < 8 else ""
        return f"cp{self.major}{self.minor}{flag}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}{'t' if self.free_threaded else ''}"


@dataclasses.dataclass(frozen=True)
class SyncConfig:
    upstream: str
    directory: str
    projects: tuple[ProjectRule, ...]
    mirror_all: bool
    constraints: tuple[RequirementLine, ...]
    dependencies: bool
    extras: tuple[str, ...]
    resolution: str
    notes: tuple[str, ...]  # requirements-file options that mean nothing to a mirror
    exclude: tuple[str, ...]
    python_versions: tuple[TargetPython, ...]
    platforms: tuple[str, ...]
    package_types: frozenset[str]
    prereleases: bool
    latest: int
    include_yanked: bool
    max_file_size: int | None
    workers: int
    processes: int
    prune: bool
    prune_max_fraction: float
    force_prune: bool
    ca_bundle: str | None
    proxy: str | None  # without its login: see proxy_credentials
    timeout: float
    retries: int
    lock_timeout: float
    raw: Mapping[str, Any]
    private_directory: str | None = None
    private_projects: tuple[str, ...] = ()
    claimed: frozenset[str] = frozenset()  # read from private_directory at the start of a run
    upstream_credentials: Credentials | None = None  # the login written into the upstream URL
    proxy_credentials: Credentials | None = None
    weak_hashes: bool = False  # files whose index gives only md5, sha1 or sha224 are verified by it
    exclude_newer: Cutoff | None = None
    cutoff: float | None = None  # exclude_newer at the moment the run began, which the run sets
    exclude_newer_except: tuple[str, ...] = ()
    # the requirement and constraint lines that pin hashes: every package a lock takes from an index among them
    hash_pins: tuple[RequirementLine, ...] = ()
    lock_scopes: tuple[tuple[str, Marker], ...] = ()  # each lock file, and where it installs at all
    targets: tuple[tuple[TargetPython, str], ...] = ()  # python/platform pairs beyond python_versions x platforms

    def at_start(self, started: float) -> SyncConfig:
        """The config as a run that began at started applies it: exclude_newer made a fixed moment."""
        return dataclasses.replace(self, cutoff=self.exclude_newer.at(started)) if self.exclude_newer else self

    def cutoff_for(self, name: str) -> float | None:
        """The run's exclude_newer moment for one project's files; None where there is none or it is excepted."""
        return None if _matches(name, self.exclude_newer_except) else self.cutoff

    def is_excluded(self, name: str) -> bool:
        return _matches(name, self.exclude)

    def is_claimed(self, name: str) -> bool:
        """True when a private index owns the name: the upstream's project of that name is never mirrored."""
        return name in self.claimed or _matches(name, self.private_projects)

    def withheld(self, name: str) -> str | None:
        """Why a project is never mirrored (claimed privately, or excluded), or None."""
        if self.is_claimed(name):
            return "claimed by the private index"
        if self.is_excluded(name):
            return "excluded by the config"
        return None

    def rule_for(self, name: str) -> ProjectRule | None:
        for rule in self.projects:
            if rule.name == name:
                return rule
        return None

    def constraints_for(self, name: str) -> tuple[Requirement, ...]:
        return tuple(line.requirement for line in self.constraint_lines_for(name))

    def constraint_lines_for(self, name: str) -> tuple[RequirementLine, ...]:
        """The constraints on the project, with where each was written."""
        return self._constraints_by_name.get(name, ())

    def hash_pins_for(self, name: str) -> tuple[RequirementLine, ...]:
        return self._hash_pins_by_name.get(name, ())

    # Asked for each project a run selects, and for each one's fingerprint on every run: grouped once, not
    # searched line by line, which for a long lock file is lines x projects name normalizations a run.
    @functools.cached_property
    def _constraints_by_name(self) -> dict[str, tuple[RequirementLine, ...]]:
        return _by_name(self.constraints)

    @functools.cached_property
    def _hash_pins_by_name(self) -> dict[str, tuple[RequirementLine, ...]]:
        return _by_name(self.hash_pins)

    def locked_elsewhere(self, name: str) -> list[str]:
        """The indexes other than the upstream that a lock took the project from (a +cpu build from PyTorch's
        own index, say): where to look when the upstream has no such release."""
        return sorted({redact(line.index) for line in self.hash_pins_for(name)
                       if line.index and line.index.rstrip("/") != self.upstream.rstrip("/")})

    def selection_fingerprint(self, rule: ProjectRule | None) -> str:
        """A digest of everything that decides which files one project gets."""
        selecting = {opt.name: self.raw.get(opt.name) for opt in OPTIONS if opt.selects and opt.name != "projects"
                     and not (opt.added_later and not self.raw.get(opt.name))}
        selecting["upstream"] = self.upstream
        selecting["selection_rules"] = SELECTION_RULES
        selecting["rule"] = rule.specifier_key() if rule else [ALL_PROJECTS]
        selecting["constraints"] = sorted(str(c) for c in self.constraints_for(rule.name)) if rule else []
        pins = self.hash_pins_for(rule.name) if rule else ()
        if pins:  # not a choice of files, but what they are held to when chosen: new hashes, a new look
            selecting["hash_pins"] = sorted([sorted(line.hashes), sorted((n, sorted(h)) for n, h in line.file_hashes)]
                                            for line in pins)
        encoded = json.dumps(selecting, sort_keys=True, default=str).encode()
        return hashlib.sha256(encoded).hexdigest()


def _by_name(lines: tuple[RequirementLine, ...]) -> dict[str, tuple[RequirementLine, ...]]:
    """The lines by the project each names (normalized as PEP 503 has it), each project's in their order."""
    grouped: dict[str, list[RequirementLine]] = {}
    for line in lines:
        grouped.setdefault(canonicalize_name(line.requirement.name), []).append(line)
    return {name: tuple(group) for name, group in grouped.items()}


def default_upstream() -> str:
    """The public index URL as pip itself defines it (never written into this code)."""
    try:
        from pip._internal.models.index import PyPI  # noqa: PLC0415 - optional, only for the default
    except ImportError as exc:  # pragma: no cover - pip is always in the venv the role makes
        raise ConfigError("upstream is not set and pip is not importable to supply its default index") from exc
    return PyPI.simple_url


def parse_size(value: Any, option: str = "max_file_size") -> int | None:
    if value is None or value in ("", 0):
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{option}: expected a size such as 500M, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{option}: must not be negative")
        return value
    match = _SIZE_PATTERN.match(str(value))
    if not match:
        raise ConfigError(f"{option}: expected a size such as 500M or 2G, got {value!r}")
    return int(match.group(1)) * _SIZE_SUFFIXES[match.group(2).upper()]


def _coerce(option: Option, value: Any) -> Any:
    """Check one value against its declared kind; return it in canonical form."""
    if value is None:
        return None
    kind = option.kind
    if kind in ("str", "path"):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{option.name}: expected a non-empty string, got {value!r}")
        if option.choices and value.strip() not in option.choices:
            raise ConfigError(f"{option.name}: {value.strip()!r} is not one of {', '.join(option.choices)}")
        return value.strip()
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{option.name}: expected true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{option.name}: expected a whole number, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{option.name}: expected a number, got {value!r}")
        return float(value)
    if kind == "list":
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{option.name}: expected a list, got {value!r}")
        items = []
        for index, item in enumerate(value):
            if isinstance(item, float):  # python_versions: [3.10] in YAML, or in an Ansible variable
                raise ConfigError(f"{option.name}[{index}]: got the number {item!r}; write it quoted, as YAML reads "
                                  "an unquoted 3.10 as the number 3.1")
            if not isinstance(item, str) or not item.strip():
                raise ConfigError(f"{option.name}[{index}]: expected a non-empty string, got {item!r}")
            items.append(item.strip())
        if option.choices:
            for item in items:
                if item not in option.choices:
                    raise ConfigError(f"{option.name}: {item!r} is not one of {', '.join(option.choices)}")
        return items
    if kind == "size":
        parse_size(value, option.name)
        return value
    if kind == "moment":
        if value == "":
            return None
        try:
            parse_cutoff(value)
        except ValueError as exc:
            raise ConfigError(f"{option.name}: {exc}") from None
        return value.isoformat() if isinstance(value, (datetime.date, datetime.datetime)) else str(value).strip()
    raise AssertionError(f"unknown option kind {kind}")  # pragma: no cover


def _parse_projects(lines: list[str], file_lines: list[RequirementLine]) -> tuple[tuple[ProjectRule, ...], bool]:
    mirror_all = False
    grouped: dict[str, list[tuple[Requirement, str]]] = {}
    for line in file_lines:
        grouped.setdefault(canonicalize_name(line.requirement.name), []).append((line.requirement, line.origin))
    for index, line in enumerate(lines):
        if line == ALL_PROJECTS:
            mirror_all = True
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            reason = " ".join(str(exc).split())
            raise ConfigError(f"projects[{index}]: invalid requirement {line!r}: {reason}") from None
        if requirement.url:
            raise ConfigError(f"projects[{index}]: {line!r}: direct URL references cannot be mirrored")
        problem = marker_problem(requirement)
        if problem:
            raise ConfigError(f"projects[{index}]: {line!r}: {problem}")
        grouped.setdefault(canonicalize_name(requirement.name), []).append((requirement, f"projects[{index}]"))
    rules = tuple(ProjectRule(name, tuple(r for r, _ in pairs), tuple(o for _, o in pairs))
                  for name, pairs in sorted(grouped.items()))
    return rules, mirror_all


def _read_requirements_files(paths: list[str], base_dir: str) -> RequirementsSet:
    merged = RequirementsSet()
    located = {written: _config_path(written, base_dir) for written in paths}
    for path in located.values():
        try:
            found = _read_lock_file(path) if _looks_like_lock_file(path) else read_requirements(path)
        except RequirementsFileError as exc:
            raise ConfigError(f"requirements_files: {exc}") from None
        merged.requirements += found.requirements
        merged.constraints += found.constraints
        merged.notes += found.notes
        merged.scopes += found.scopes
        merged.constraint_files += found.constraint_files
    named_by = dict(merged.constraint_files)
    for written, path in located.items():
        origin = named_by.get(os.path.realpath(path))
        if origin:
            merged.notes.append(
                f"requirements_files: {written} is read as requirements, and {origin} names it as constraints (-c): "
                f"each project it pins is mirrored as if requested; list only the files of what is wanted (a file "
                f"that only has to be beside them: the sync role's sync_requirements_includes)")
    return merged


def _looks_like_lock_file(path: str) -> bool:
    """Named pylock.*.toml: read as a lock file (PEP 751), which then checks the rest of its name."""
    name = os.path.basename(path)
    return name.startswith("pylock.") and name.endswith(".toml")


def _read_lock_file(path: str) -> RequirementsSet:
    try:
        from .lockfile import read_lock_file  # noqa: PLC0415 - only configs that name a lock file need TOML
    except ImportError as exc:
        raise RequirementsFileError(missing_requirement(exc, f"reading {path}")) from None
    return read_lock_file(path)


def _parse_python_versions(values: list[str]) -> tuple[TargetPython, ...]:
    return tuple(_parse_python_version(value, "python_versions") for value in values)


def _parse_python_version(value: str, option: str) -> TargetPython:
    free_threaded = value[-1:] in ("t", "T")
    try:
        version = Version(value[:-1] if free_threaded else value)
    except InvalidVersion:
        raise ConfigError(f"{option}: {value!r} is not a version such as 3.11 or 3.14t") from None
    if len(version.release) != 2 or version.major != 3 or str(version) != f"{version.major}.{version.minor}":
        raise ConfigError(f"{option}: {value!r} must name a Python 3 minor version such as 3.11")
    if version.minor < 2:  # no wheel targets these; Ansible turns an unquoted 3.10 into '3.1'
        unquoted = (f"; for {version}0 write '{version}0' quoted, as YAML reads an unquoted {version}0 as the number "
                    f"{version}") if option == "python_versions" else ""
        raise ConfigError(f"{option}: {value!r} would be Python {version}, older than any wheel{unquoted}")
    if free_threaded and version < Version("3.13"):
        raise ConfigError(f"{option}: {value!r}: free-threaded CPython starts at 3.13")
    return TargetPython(version, free_threaded)


def _parse_platforms(values: list[str]) -> tuple[str, ...]:
    return tuple(_parse_platform(value, "platforms") for value in values)


def _parse_platform(value: str, option: str) -> str:
    if not PLATFORM_PATTERN.fullmatch(value):
        raise ConfigError(
            f"{option}: {value!r} is not a platform tag such as manylinux_2_28_x86_64, "
            "musllinux_1_2_aarch64, win_amd64, macosx_11_0_arm64, linux_x86_64, ios_13_0_arm64_iphoneos, "
            "android_24_arm64_v8a or pyemscripten_2026_0_wasm32"
        )
    return value


def _parse_targets(values: list[str], pythons: tuple[TargetPython, ...],
                   platforms: tuple[str, ...]) -> tuple[tuple[TargetPython, str], ...]:
    """Each python/platform pair once, and none that the product of python_versions and platforms covers (an
    empty one of them counting as any)."""
    pairs: list[tuple[TargetPython, str]] = []
    for index, value in enumerate(values):
        python, slash, platform = value.partition("/")
        if not slash or not python or not platform:
            raise ConfigError(f"targets[{index}]: {value!r} is not a pair such as 3.12/manylinux_2_28_x86_64 "
                              f"(a Python, a slash, a platform tag)")
        pair = (_parse_python_version(python.strip(), f"targets[{index}]"),
                _parse_platform(platform.strip(), f"targets[{index}]"))
        covered = (bool(pythons or platforms) and (not pythons or pair[0] in pythons)
                   and (not platforms or pair[1] in platforms))
        if pair not in pairs and not covered:
            pairs.append(pair)
    return tuple(pairs)


def build_config(raw_input: Mapping[str, Any], base_dir: str | None = None) -> SyncConfig:
    """Validate a mapping of options (from YAML or from the module) into a SyncConfig."""
    if not isinstance(raw_input, Mapping):
        raise ConfigError("the configuration must be a mapping of option names to values")
    unknown = sorted(set(raw_input) - set(OPTIONS_BY_NAME))
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r} (known options: {', '.join(sorted(OPTIONS_BY_NAME))})")
    values: dict[str, Any] = {}
    for option in OPTIONS:
        value = raw_input.get(option.name)
        if value is None:
            value = option.default
        if value is None and option.required:
            raise ConfigError(f"{option.name}: required option is missing")
        values[option.name] = _coerce(option, value)

    directory = _config_path(values["directory"], base_dir)
    upstream, upstream_credentials = split_credentials(values["upstream"] or default_upstream())
    if is_file_url(upstream):
        _check_local_upstream(upstream, directory)
    elif not re.match(r"^https?://[^/\s]+", upstream):
        raise ConfigError(f"upstream: {redact(values['upstream'])!r} is not an http(s) or file:// URL")
    proxy, proxy_credentials = split_credentials(values["proxy"]) if values["proxy"] else (None, None)
    files = _read_requirements_files(values["requirements_files"], base_dir or os.getcwd())
    notes = files.notes
    rules, mirror_all = _parse_projects(values["projects"], files.requirements)
    if not rules and not mirror_all:
        raise ConfigError("projects: empty; list requirement strings, or '*' for a full mirror"
                          + (" (the requirements files name none)" if values["requirements_files"] else ""))
    if values["dependencies"]:
        if mirror_all:
            raise ConfigError("dependencies: a full mirror ('*' in projects) already holds every dependency")
        if (not values["python_versions"] or not values["platforms"]) and (
                values["python_versions"] or values["platforms"] or not values["targets"]):
            raise ConfigError("dependencies: set python_versions and platforms, or name every python/platform pair "
                              "in targets: the targets to resolve for")
    for name in ("workers", "retries", "latest", "processes"):
        if values[name] < (1 if name == "workers" else 0):
            raise ConfigError(f"{name}: must be at least {1 if name == 'workers' else 0}")
    if not 0 < values["prune_max_fraction"] <= 1:
        raise ConfigError("prune_max_fraction: must be greater than 0 and at most 1")
    if values["timeout"] <= 0:
        raise ConfigError("timeout: must be greater than 0")
    if not values["package_types"]:
        raise ConfigError(f"package_types: empty; choose from {', '.join(PACKAGE_TYPES)}")
    if values["exclude_newer_except"] and not values["exclude_newer"]:
        notes.append("exclude_newer_except: without exclude_newer, nothing is held back to except from")
    pythons = _parse_python_versions(values["python_versions"])
    platforms = _parse_platforms(values["platforms"])
    ca_bundle = values["ca_bundle"]
    if ca_bundle and not os.path.isfile(ca_bundle):
        raise ConfigError(f"ca_bundle: {ca_bundle} is not a readable file")
    canonical_raw = dict(values)
    canonical_raw["upstream"] = upstream
    canonical_raw["proxy"] = proxy
    return SyncConfig(
        upstream=upstream.rstrip("/") + "/",
        directory=directory,
        projects=rules,
        mirror_all=mirror_all,
        constraints=tuple(files.constraints),
        dependencies=values["dependencies"],
        extras=tuple(sorted({canonicalize_name(e) for e in values["extras"]})),
        resolution=values["resolution"],
        notes=tuple(notes),
        exclude=_name_patterns(values["exclude"]),
        python_versions=pythons,
        platforms=platforms,
        targets=_parse_targets(values["targets"], pythons, platforms),
        package_types=frozenset(values["package_types"]),
        prereleases=values["prereleases"],
        latest=values["latest"],
        include_yanked=values["include_yanked"],
        weak_hashes=values["weak_hashes"],
        exclude_newer=parse_cutoff(values["exclude_newer"]) if values["exclude_newer"] else None,
        exclude_newer_except=_name_patterns(values["exclude_newer_except"]),
        max_file_size=parse_size(values["max_file_size"]),
        workers=values["workers"],
        processes=values["processes"],
        prune=values["prune"],
        prune_max_fraction=values["prune_max_fraction"],
        force_prune=values["force_prune"],
        ca_bundle=ca_bundle,
        proxy=proxy,
        timeout=values["timeout"],
        retries=values["retries"],
        lock_timeout=values["lock_timeout"],
        raw=canonical_raw,
        private_directory=_config_path(values["private_directory"], base_dir) if values["private_directory"] else None,
        private_projects=_name_patterns(values["private_projects"]),
        upstream_credentials=upstream_credentials,
        proxy_credentials=proxy_credentials,
        hash_pins=tuple(line for line in [*files.requirements, *files.constraints] if line.hashes or line.file_hashes),
        lock_scopes=tuple(files.scopes),
    )


def _check_local_upstream(upstream: str, directory: str) -> None:
    """A file:// upstream names the simple/ directory of a mirror tree on this machine, whose files are read from
    the directory above it (web/, holding packages/ beside simple/): not the root, and not this mirror's own tree.
    It need not exist yet: the disk that holds it may be mounted for a run only, which then checks it."""
    try:
        root = upstream_root(upstream)
    except ValueError as exc:
        raise ConfigError(f"upstream: {upstream!r}: {exc}") from None
    example = "(file:///media/disk/pypi/web/simple/)"
    if root is None or root == "/":
        raise ConfigError(f"upstream: {upstream!r}: name the simple/ directory of a mirror tree {example}; its "
                          "files are read from the directory above it, which cannot be /")
    mirror, tree = os.path.realpath(directory), os.path.realpath(root)
    if os.path.commonpath([mirror, tree]) in (mirror, tree):
        raise ConfigError(f"upstream: {upstream!r} overlaps this mirror's directory {directory}: a mirror cannot "
                          "read its own tree as its upstream")


def _config_path(written: str, base_dir: str | None) -> str:
    """A path from the config: ~ expanded, relative to the config file's directory (absolute paths kept)."""
    return os.path.normpath(os.path.join(base_dir or os.getcwd(), os.path.expanduser(written)))


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _name_patterns(values: list[str]) -> tuple[str, ...]:
    """Project names normalized; globs lower-cased and kept as globs."""
    return tuple(canonicalize_name(p) if not any(c in p for c in "*?[") else p.lower() for p in values)


def load_config_file(path: str, overrides: Mapping[str, Any] | None = None) -> SyncConfig:
    """The config a YAML file gives, with overrides (the command line's) put over its options before they are
    checked."""
    import yaml  # noqa: PLC0415 - only the CLI reads YAML

    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}".replace("\n", " ")) from None
    if raw is None:
        raise ConfigError(f"config {path} is empty")
    if overrides and isinstance(raw, dict):
        raw = {**raw, **overrides}
    return build_config(raw, base_dir=os.path.dirname(os.path.abspath(path)))
