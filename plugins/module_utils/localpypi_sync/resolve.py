"""Dependency-closed selection: the releases the requested projects need, for every target.

Each target (one Python version on one platform) is resolved on its own, with its own marker values and
wheel tags; the project pages and metadata behind them are read once for all targets. Two modes:

- ``candidates``: every release a resolution could pick - all versions each requirement allows (bounded by
  ``latest``), and, transitively, what each of those needs. With ``latest``, also what the resolver picks,
  so the requested projects still install when their newest releases do not install together.
- ``pinned``: what resolvelib (pip's resolver) picks for each target, one version per project.

The result is a ProjectRule per project whose ``planned`` field lists the versions kept and the targets they
were picked for; select.py keeps exactly the files of those versions that install on those targets.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import threading
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version
from resolvelib import AbstractProvider, BaseReporter, Resolver
from resolvelib.resolvers import ResolutionImpossible, ResolutionTooDeep, ResolverException

from .config import ProjectRule, SyncConfig
from .http import FetchError
from .metadata import MetadataReader
from .names import file_version, package_type
from .report import few
from .reqfile import MARKER_ERRORS, RequirementLine, marker_error
from .select import Target, TargetMatrix, screen_file, too_large
from .upstream import ProjectPage, ProjectStatus, UpstreamFile, not_an_index, quarantine_note

MAX_ROUNDS = 2000
_SYSTEM_NAMES = {"win32": "Windows", "darwin": "macOS", "linux": "Linux", "ios": "iOS", "android": "Android"}


@dataclasses.dataclass(frozen=True)
class Pull:
    """Why a release is in the mirror: which requirement, written where or needed by what, for which target."""

    requirement: str
    by: str
    target: str


@dataclasses.dataclass
class Plan:
    rules: dict[str, ProjectRule]
    pulls: dict[str, dict[str, list[Pull]]]  # project -> version -> pulls
    errors: list[str]
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"pulls": {name: {version: [dataclasses.asdict(p) for p in pulls]
                                 for version, pulls in versions.items()}
                          for name, versions in self.pulls.items()},
                "errors": self.errors, "warnings": self.warnings}


_ByVersion = dict[Version, list[UpstreamFile]]


class ProjectReleases:
    """Project pages read once per run and shared by every target, parsed into usable releases."""

    def __init__(self, read_page: Callable[[str], ProjectPage], config: SyncConfig) -> None:
        self._read_page = read_page
        self._config = config
        self._releases: dict[str, dict[Version, list[UpstreamFile]]] = {}
        self._yanked: dict[str, dict[Version, list[UpstreamFile]]] = {}
        self._oversize: dict[str, dict[Version, list[UpstreamFile]]] = {}  # left out by max_file_size
        self._statuses: dict[str, ProjectStatus] = {}  # PEP 792 markers other than active
        self._failures: dict[str, str] = {}
        self._locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)
        self._locks_lock = threading.Lock()

    def releases(self, name: str) -> dict[Version, list[UpstreamFile]]:
        """Version -> files; raises FetchError (remembered, so a missing project costs one request)."""
        with self._locks_lock:
            lock = self._locks[name]
        with lock:  # one request per project, even when a prefetch and the planner ask at once
            if name in self._failures:
                raise FetchError(self._failures[name])
            if name not in self._releases:
                try:
                    page = self._read_page(name)
                except FetchError as exc:
                    self._failures[name] = str(exc)
                    raise
                self._releases[name], self._yanked[name], self._oversize[name] = self._usable(name, page.files)
                if page.status is not None:
                    self._statuses[name] = page.status
            return self._releases[name]

    def files(self, name: str, version: Version) -> list[UpstreamFile]:
        return self.releases(name).get(version) or self._yanked.get(name, {}).get(version, [])

    def yanked(self, name: str) -> dict[Version, list[UpstreamFile]]:
        """Yanked releases (with include_yanked): PEP 592 lets a resolver pick one only when pinned with ==."""
        self.releases(name)
        return self._yanked.get(name, {})

    def oversize(self, name: str) -> dict[Version, list[UpstreamFile]]:
        """The files max_file_size leaves out, by release: why a project may seem to have none for a target."""
        self.releases(name)
        return self._oversize.get(name, {})

    def status(self, name: str) -> Optional[ProjectStatus]:
        """The project's status marker (PEP 792), None when active."""
        self.releases(name)
        return self._statuses.get(name)

    def known(self, name: str) -> bool:
        return name in self._releases or name in self._failures

    def prefetch(self, names: Iterable[str], pool: concurrent.futures.Executor) -> None:
        """Read the pages of names not read yet, concurrently; failures surface when the planner asks."""
        missing = [n for n in set(names) if not self.known(n)]
        for future in [pool.submit(self.releases, name) for name in missing]:
            try:
                future.result()
            except FetchError:
                pass

    def _usable(self, name: str, files: Iterable[UpstreamFile]) -> tuple[_ByVersion, _ByVersion, _ByVersion]:
        """(releases, yanked releases, files left out as too large) of the files the config lets in; refusals
        are reported at selection."""
        by_version: _ByVersion = {}
        yanked: _ByVersion = {}
        oversize: _ByVersion = {}
        for upstream_file in files:
            version, _ = screen_file(upstream_file, name, self._config)
            if version is None:
                if too_large(upstream_file, self._config):
                    version = file_version(upstream_file.filename, name)
                    if version is not None:
                        oversize.setdefault(version, []).append(upstream_file)
                continue
            # never picked by a range; screen_file has dropped it already unless include_yanked
            target = yanked if upstream_file.yanked else by_version
            target.setdefault(version, []).append(upstream_file)
        return by_version, yanked, oversize


def _marker_applies(requirement: Requirement, environment: Mapping[str, str], extras: Iterable[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**environment, "extra": extra}) for extra in ("", *extras))


_Release = tuple[str, Version, frozenset[str]]  # name, version, the extras asked of it


@dataclasses.dataclass(eq=False)
class _Need:
    """One requirement met while walking a target's dependencies, with the releases that could meet it."""

    requirement: Requirement
    by: str  # where it was written, or "name version" of the release that needs it
    candidates: list[_Release] = dataclasses.field(default_factory=list)
    open: bool = False  # excluded, or its page unreadable: taken as met

    def met(self, viable: set[_Release]) -> bool:
        return self.open or any(release in viable for release in self.candidates)


def _viable(needs_of: Mapping[_Release, list[_Need]]) -> set[_Release]:
    """The releases that install with all they need: every one, less those with a need no viable release
    meets, until nothing more goes (a cycle of releases that need each other stays)."""
    viable = set(needs_of)
    shrinking = True
    while shrinking:
        gone = {release for release in viable if not all(need.met(viable) for need in needs_of[release])}
        viable -= gone
        shrinking = bool(gone)
    return viable


def _blocker(release: _Release, needs_of: Mapping[_Release, list[_Need]], viable: set[_Release],
             unavailable: Callable[[Requirement], str]) -> str:
    """Why the newest release cannot install: the first of its needs that nothing meets."""
    name, version, _ = release
    for need in needs_of[release]:
        if not need.met(viable):
            tail = " with what it needs in turn" if need.candidates else unavailable(need.requirement)
            return f"{name} {version} needs {_shown(need.requirement)}, and no release of it installs there{tail}"
    return f"{name} {version} cannot install there"


class Planner:
    def __init__(self, config: SyncConfig, matrix: TargetMatrix, releases: ProjectReleases,
                 reader: MetadataReader) -> None:
        self.config = config
        self.matrix = matrix
        self.releases = releases
        self.reader = reader
        self._kept: dict[str, dict[Version, set[str]]] = collections.defaultdict(lambda: collections.defaultdict(set))
        self._pulls: dict[str, dict[str, list[Pull]]] = collections.defaultdict(lambda: collections.defaultdict(list))
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._unknown: dict[tuple[str, Version], str] = {}  # releases whose dependencies are unknown, and why
        # (name, target, specifiers) -> versions: a resolver asks the same question many times over
        self._versions: dict[tuple[str, str, tuple[str, ...]], list[Version]] = {}

    def _prefetch_pages(self, requirements: Iterable[Requirement]) -> None:
        names = {canonicalize_name(r.name) for r in requirements}
        self.releases.prefetch([n for n in names if not self.config.withheld(n)], self._pool)

    def _prefetch_dependencies(self, name: str, versions: Iterable[Version], target: Target) -> None:
        """Read the metadata of several releases at once (the reader caches; the planner then asks in order)."""
        futures = [self._pool.submit(self.reader.dependencies, self.releases.files(name, v),
                                     target.matrix.installs)
                   for v in versions]
        for future in futures:
            try:
                future.result()
            except FetchError:
                pass  # the planner's own call reports it

    # -- shared ---------------------------------------------------------------------------------
    def top_level(self, target: Target) -> list[tuple[Requirement, str]]:
        found = []
        for rule in self.config.projects:
            origins = rule.origins or ("projects",) * len(rule.requirements)
            for written, origin in zip(rule.requirements, origins):
                if self.excluded(rule.name, origin):
                    continue
                if _marker_applies(written, target.environment, ()):
                    requirement = Requirement(str(written))  # a copy the resolver may tell apart by id
                    requirement.extras |= set(self.config.extras)
                    found.append((requirement, origin))
        return found

    def versions(self, name: str, target: Target, specifiers: Sequence[SpecifierSet]) -> list[Version]:
        """Releases of name that satisfy every specifier and install on the target, newest first."""
        key = (name, target.id, tuple(sorted(str(spec) for spec in specifiers)))
        if key not in self._versions:
            allowed = self._allowed(name, target, specifiers)
            installable = [version for version, files in allowed.items()
                           if any(target.matrix.installs(f) for f in files)]
            self._versions[key] = sorted(self._as_pip_takes(installable, specifiers), reverse=True)
        return list(self._versions[key])

    def _as_pip_takes(self, versions: Iterable[Version], specifiers: Sequence[SpecifierSet]) -> list[Version]:
        """PEP 440 as pip 26 applies it: pre-releases when asked for (`prereleases`, or a specifier that names
        one), or when no final release would do (`lib>=1.0` with only 2.0b1 installs 2.0b1)."""
        versions = list(versions)
        if self.config.prereleases or any(spec.prereleases for spec in specifiers):
            return versions
        return [version for version in versions if not version.is_prerelease] or versions

    def _allowed(self, name: str, target: Target, specifiers: Sequence[SpecifierSet],
                 candidates: Optional[_ByVersion] = None) -> _ByVersion:
        """Releases of name (or of candidates) that satisfy every specifier and the constraints whose markers
        hold on the target, wherever they install, pre-releases among them (_as_pip_takes tells which count)."""
        constraints = [line.requirement for line in self._constraints_on(name, target)]
        if candidates is None:
            candidates = dict(self.releases.releases(name))
            pinned = {Version(s.version) for spec in specifiers for s in spec
                      if s.operator in ("==", "===") and "*" not in s.version}
            for version, files in self.releases.yanked(name).items():
                if version in pinned:
                    candidates.setdefault(version, []).extend(files)
        return {version: files for version, files in candidates.items()
                if all(spec.contains(version, prereleases=True) for spec in specifiers)
                and all(c.specifier.contains(version, prereleases=True) for c in constraints)}

    def _taken(self, name: str, target: Target, specifiers: Sequence[SpecifierSet],
               candidates: Optional[_ByVersion] = None) -> _ByVersion:
        """_allowed, less the pre-releases among them that pip would pass over."""
        allowed = self._allowed(name, target, specifiers, candidates)
        return {version: allowed[version] for version in self._as_pip_takes(allowed, specifiers)}

    def unavailable(self, requirement: Requirement, target: Target, requested: bool = False) -> str:
        """When no release that satisfies the requirement installs on the target, what the newest of them
        offers instead (a wheel for a newer macOS, a newer Requires-Python), as "; ..." for an error line.
        For a requested project built for another system only (pywin32), also the marker that asks for it
        there alone."""
        name = canonicalize_name(requirement.name)
        specifiers = [requirement.specifier]
        try:
            if self.versions(name, target, specifiers):
                return ""
            allowed = self._taken(name, target, specifiers)
            oversize = self._taken(name, target, specifiers, self.releases.oversize(name))
        except FetchError:
            return ""
        newest = max([*allowed, *oversize], default=None)
        if newest is None:
            if self.releases.releases(name) or self.releases.yanked(name) or self.releases.oversize(name):
                return self._constrained(name, target, specifiers)  # or the requirement says why
            status = self.releases.status(name)
            if status is not None and status.quarantined:
                return f"; {quarantine_note(name, status)}"
            return f"; the upstream lists no package file of {name}: {not_an_index(self.config.upstream)}"
        if any(target.matrix.installs(f) for f in oversize.get(newest, [])):
            return f"; {name} {newest}, the newest it allows, has files that install there only over max_file_size"
        if newest not in allowed:  # only files over max_file_size, none of them for this target
            newest = max(allowed, default=None)
            if newest is None:
                return ""
        hint = f"; {name} {newest}, the newest it allows, {target.matrix.why_none_installs(allowed[newest])}"
        system = target.matrix.only_elsewhere(allowed[newest]) if requested and not requirement.marker else None
        if system:
            hint += (f"; to mirror it for {_SYSTEM_NAMES.get(system, system)} only, write it with a marker: "
                     f"'{requirement}; sys_platform == \"{system}\"'")
        return hint

    def _constrained(self, name: str, target: Target, specifiers: Sequence[SpecifierSet]) -> str:
        """When the constraints that apply on the target rule out every release the specifiers allow, which ones,
        as "; ...": the requirement alone (`pandas`) would not tell why none is allowed. "" otherwise."""
        lines = self._constraints_on(name, target)
        if not lines or not any(all(spec.contains(version, prereleases=True) for spec in specifiers)
                                for version in self.releases.releases(name)):
            return ""
        return (f"; the constraints that apply there rule out every release asked for: "
                f"{few([f'{_shown(line.requirement)} ({line.origin})' for line in lines], 3)}")

    def _constraints_on(self, name: str, target: Target) -> list[RequirementLine]:
        """The constraints on the project whose markers hold on the target, as pip there applies them."""
        return [line for line in self.config.constraint_lines_for(name)
                if _marker_applies(line.requirement, target.environment, ())]

    def dependencies(self, name: str, version: Version, target: Target,
                     extras: Iterable[str]) -> list[Requirement]:
        files = self.releases.files(name, version)
        found = self.reader.dependencies(files, prefer=target.matrix.installs)
        if found.source == "unknown":  # told at the end, for the releases kept: a resolution tries many more
            self._unknown.setdefault((name, version), found.note)
        needed = []
        for text in found.requires_dist:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                self._warn(f"{name} {version}: unreadable Requires-Dist {text!r} skipped")
                continue
            # a dependency guarded by `extra == "x"` is needed only when x was asked for
            try:
                applies = _marker_applies(requirement, target.environment, extras)
            except MARKER_ERRORS as exc:
                self._warn(f"{name} {version}: Requires-Dist {text!r} skipped: {marker_error(exc)}")
                continue
            if applies:
                needed.append(requirement)
        return needed

    def keep(self, name: str, version: Version, pull: Pull) -> None:
        self._kept[name][version].add(pull.target)
        if pull not in self._pulls[name][str(version)]:
            self._pulls[name][str(version)].append(pull)

    def excluded(self, name: str, by: str) -> bool:
        """True for a name the mirror never takes from the upstream (excluded, or claimed privately)."""
        reason = self.config.withheld(name)
        if reason:
            self._warn(f"{name} is {reason}, though {by} needs it; not mirrored")
            return True
        return False

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def plan(self) -> Plan:
        with concurrent.futures.ThreadPoolExecutor(self.config.workers, "resolve") as self._pool:
            for target in self.matrix.targets:
                if self.config.resolution == "pinned":
                    self._pinned(target)
                else:
                    self._candidates(target)
        self._warn_unknown()
        rules = {name: ProjectRule(name, (), (), tuple(
                    (str(version), tuple(sorted(targets))) for version, targets in sorted(versions.items())))
                 for name, versions in sorted(self._kept.items())}
        pulls = {name: dict(versions) for name, versions in sorted(self._pulls.items())}
        return Plan(rules, pulls, self.errors, self.warnings)

    def _warn_unknown(self) -> None:
        """One warning per project and reason for the kept releases whose dependencies are unknown: all
        releases of an old project can be sdists without static metadata, and 30 lines of one warning hide
        the rest."""
        unknown: dict[tuple[str, str], list[Version]] = collections.defaultdict(list)
        for (name, version), note in self._unknown.items():
            if version in self._kept.get(name, {}):
                unknown[name, note].append(version)
        for (name, note), versions in sorted(unknown.items()):
            if len(versions) == 1:
                self._warn(f"{name} {versions[0]}: dependencies unknown, {note}; list what it needs in projects")
            else:
                self._warn(f"{name} {few(map(str, sorted(versions)), 5)}: dependencies unknown, {note}; "
                           f"list what they need in projects")

    # -- candidates: every release a resolution could pick -------------------------------------
    def _candidates(self, target: Target) -> None:
        """Every release each requirement allows (newest `latest`) that installs on the target with what it
        needs, transitively. A release whose needs cannot install there (an old one pinning a dependency that
        has no wheel for a newer Python) is passed over, as pip's resolver passes over it; only a requested
        project left with no such release is an error."""
        top = [_Need(requirement, origin) for requirement, origin in self.top_level(target)]
        needs_of = self._expand(target, top)
        viable = _viable(needs_of)
        reached: set[_Release] = set()
        stack = list(top)
        while stack:  # keep what the requested projects reach through releases that can install
            need = stack.pop()
            for release in need.candidates:
                if release not in viable:
                    continue
                self.keep(release[0], release[1], Pull(str(need.requirement), need.by, target.id))
                if release not in reached:
                    reached.add(release)
                    stack.extend(needs_of[release])
        resolved = self._assure_installable(target, top, viable) if self.config.latest else set()
        unavailable = functools.partial(self.unavailable, target=target)
        for need in top:
            if need.met(viable) or id(need.requirement) in resolved:
                continue
            name = canonicalize_name(need.requirement.name)
            if not need.candidates:
                self.errors.append(f"target {target.id}: no release of {name} satisfies {_shown(need.requirement)} "
                                   f"and installs there (from {need.by})"
                                   f"{unavailable(need.requirement, requested=True)}")
            else:
                self.errors.append(f"target {target.id}: no release of {name} satisfies {_shown(need.requirement)} and "
                                   f"installs there with what it needs (from {need.by}): "
                                   f"{_blocker(need.candidates[0], needs_of, viable, unavailable)}")

    def _assure_installable(self, target: Target, top: list[_Need], viable: set[_Release]) -> set[int]:
        """With `latest`, the newest releases need not install together: a newest dependency may need what
        another requested project rules out, or the newest release of a project may not install on the
        target at all. pip then backtracks to older releases, which the mirror must hold too: keep what the
        resolver picks. Returns the ids of the top-level requirements a resolution met."""
        failed = self._resolve_requested(target, [need.requirement for need in top],
                                         {id(need.requirement): need.by for need in top})
        for need in top:
            if id(need.requirement) in failed and need.met(viable):  # unmet ones get the plan's own error
                self._warn(f"target {target.id}: {failed[id(need.requirement)]}")
        return {id(need.requirement) for need in top} - set(failed)

    def _expand(self, target: Target, top: list[_Need]) -> dict[_Release, list[_Need]]:
        """Walk the requirements breadth-first from the top: each need gets its candidate releases, and each
        release its own needs."""
        queue = collections.deque(top)
        needs_of: dict[_Release, list[_Need]] = {}
        while queue:
            if not self.releases.known(canonicalize_name(queue[0].requirement.name)):
                self._prefetch_pages(need.requirement for need in queue)  # the frontier, concurrently
            need = queue.popleft()
            requirement, name = need.requirement, canonicalize_name(need.requirement.name)
            if self.excluded(name, need.by):
                need.open = True  # met elsewhere (a private index), or by nothing the mirror holds
                continue
            try:
                versions = self.versions(name, target, [requirement.specifier])
            except FetchError as exc:
                self.errors.append(f"target {target.id}: {requirement} (from {need.by}): {exc}")
                need.open = True
                continue
            extras = frozenset(requirement.extras)
            versions = versions[: self.config.latest or None]
            self._prefetch_dependencies(name, [v for v in versions if (name, v, extras) not in needs_of], target)
            for version in versions:
                release = (name, version, extras)
                need.candidates.append(release)
                if release not in needs_of:
                    needs_of[release] = [_Need(dependency, f"{name} {version}")
                                         for dependency in self.dependencies(name, version, target, extras)]
                    queue.extend(needs_of[release])
        return needs_of

    # -- pinned: what the resolver picks ----------------------------------------------------------
    def _pinned(self, target: Target) -> None:
        top = self.top_level(target)
        self._prefetch_pages(req for req, _ in top)
        failed = self._resolve_requested(target, [req for req, _ in top], {id(req): origin for req, origin in top})
        self.errors.extend(f"target {target.id}: {failure}" for failure in failed.values())

    def _resolve_requested(self, target: Target, requirements: list[Requirement],
                           origins: dict[int, str]) -> dict[int, str]:
        """Keep what the resolver picks for the requested projects installed together. When that fails, publish
        what can be: each requirement on its own, then those that resolve alone together again, and warn when
        even they do not install together. Returns why each requirement that cannot install alone fails."""
        together = self._resolve(target, requirements, origins)
        if together is None:
            return {}
        if len(requirements) == 1:
            return {id(requirements[0]): together}
        alone = {id(requirement): self._resolve(target, [requirement], origins) for requirement in requirements}
        failed = {key: failure for key, failure in alone.items() if failure is not None}
        installable = [requirement for requirement in requirements if id(requirement) not in failed]
        if failed:
            together = self._resolve(target, installable, origins) if len(installable) > 1 else None
        if together is not None:
            self._warn(f"target {target.id}: the requested projects cannot be installed together ({together}); "
                       f"each is kept installable on its own")
        return failed

    def _resolve(self, target: Target, requirements: list[Requirement], origins: dict[int, str]) -> Optional[str]:
        """Keep what the resolver picks for the requirements installed together; None, or why it cannot.

        Where a pick has no wheel for the target and an older release has one (greenlet 3.2.5 came with no
        Windows wheel), also keep what `pip --prefer-binary` picks: the way round a build that fails without
        a compiler must work from the mirror as it does online."""
        try:
            result = Resolver(_Provider(self, target), BaseReporter()).resolve(requirements, max_rounds=MAX_ROUNDS)
        except ResolutionImpossible as exc:
            return f"cannot satisfy {self._impossible(exc.causes, origins, target)}"
        except ResolutionTooDeep:
            return (f"resolution of {', '.join(map(str, requirements))} gave up after {MAX_ROUNDS} rounds of trying "
                    f"other releases: pin what to install in a constraints file (-c), as `uv pip compile` writes it")
        except ResolverException as exc:
            return f"resolution of {', '.join(map(str, requirements))} failed: {type(exc).__name__}"
        self._keep_result(result, target, origins, "")
        if any(self._wheel_elsewhere(candidate, target) for candidate in result.mapping.values()):
            binary = _Provider(self, target, prefer_binary=True)
            try:
                preferred = Resolver(binary, BaseReporter()).resolve(requirements, max_rounds=MAX_ROUNDS)
            except ResolverException:  # the same releases in another order: the first resolution's picks stand
                return None
            self._keep_result(preferred, target, origins, ", a wheel preferred", already=result.mapping)
        return None

    def _keep_result(self, result: Any, target: Target, origins: dict[int, str], why: str,
                     already: Mapping[str, _Candidate] = MappingProxyType({})) -> None:
        """Keep the resolution's picks, with who asked for each; the ones `already` kept the same are told once."""
        for identifier, candidate in result.mapping.items():
            if identifier in already and already[identifier].version == candidate.version:
                continue
            for information in result.criteria[identifier].information:
                by = _describe_parent(information.parent) or origins.get(id(information.requirement), "projects")
                if by == _describe_parent(candidate):
                    continue  # name[x] needs name at its own version: not a reason of its own
                self.keep(candidate.name, candidate.version,
                          Pull(str(information.requirement), by + why, target.id))

    def has_wheel(self, name: str, version: Version, target: Target) -> bool:
        return any(package_type(f.filename) == "wheel" and target.matrix.installs(f)
                   for f in self.releases.files(name, version))

    def _wheel_elsewhere(self, candidate: _Candidate, target: Target) -> bool:
        """The pick installs on the target from its sdist only, and another release has a wheel for it."""
        if "wheel" not in self.config.package_types or self.has_wheel(candidate.name, candidate.version, target):
            return False
        return any(self.has_wheel(candidate.name, version, target)
                   for version in self.releases.releases(candidate.name) if version != candidate.version)

    def _impossible(self, causes: Sequence[Any], origins: dict[int, str], target: Target) -> str:
        """One clause per project that nothing can be had of: the requirement of the newest release that asks
        for it (the operator's own first), why no release meets it there, and how many more ask for it.
        psycopg[binary] on a free-threaded Python has 64 releases that pin a psycopg-binary with no wheel
        there: that is one clause, not 64 of about 220 characters each."""
        asked: dict[str, dict[tuple[str, str], Any]] = collections.defaultdict(dict)  # project -> (text, by)
        for cause in causes:
            by = _describe_parent(cause.parent) or origins.get(id(cause.requirement), "projects")
            asked[canonicalize_name(cause.requirement.name)].setdefault((_shown(cause.requirement), by), cause)
        clauses = []
        for name, by_text in sorted(asked.items()):
            (text, by), first = max(by_text.items(), key=lambda item: _asker_rank(item[1].parent))
            clause = f"{text} (from {by}){self.unavailable(first.requirement, target, first.parent is None)}"
            if len(by_text) > 1:
                askers = {cause.parent.name if cause.parent else key[1]
                          for key, cause in by_text.items() if cause is not first}
                clause += f"; likewise {len(by_text) - 1} more requirements on {name} (from {few(askers, 3)})"
            clauses.append(clause)
        return ", ".join(clauses)


def _shown(requirement: Requirement) -> str:
    """A requirement as an error line shows it: its marker held where the line applies, so it is left out."""
    if requirement.marker is None:
        return str(requirement)
    bare = Requirement(str(requirement))
    bare.marker = None
    return str(bare)


def _asker_rank(parent: Optional[_Candidate]) -> tuple[bool, Version, str]:
    """The operator's own requirement ranks first, then the newest release's."""
    return (True, Version("0"), "") if parent is None else (False, parent.version, parent.name)


def _describe_parent(parent: Optional[_Candidate]) -> str:
    return f"{parent.name} {parent.version}" if parent is not None else ""


@dataclasses.dataclass(frozen=True)
class _Candidate:
    name: str
    version: Version
    extras: frozenset[str]


class _Provider(AbstractProvider):
    """resolvelib's view of the upstream for one target; identifiers are name or name[extras]."""

    def __init__(self, planner: Planner, target: Target, prefer_binary: bool = False) -> None:
        self.planner = planner
        self.target = target
        self.prefer_binary = prefer_binary  # pip's --prefer-binary: a release with a wheel before a newer one

    def identify(self, requirement_or_candidate: Any) -> str:
        name = canonicalize_name(requirement_or_candidate.name)
        extras = sorted(canonicalize_name(e) for e in requirement_or_candidate.extras)
        return f"{name}[{','.join(extras)}]" if extras else name

    def get_preference(self, identifier: str, resolutions: Mapping, candidates: Mapping, information: Mapping,
                       backtrack_causes: Sequence) -> int:
        return sum(1 for _ in candidates[identifier])

    def find_matches(self, identifier: str, requirements: Mapping[str, Iterator[Requirement]],
                     incompatibilities: Mapping[str, Iterator[_Candidate]]) -> list[_Candidate]:
        wanted = list(requirements[identifier])
        if not wanted:
            return []
        name = canonicalize_name(wanted[0].name)
        extras = frozenset(canonicalize_name(e) for e in wanted[0].extras)
        if self.planner.excluded(name, "a resolution"):
            return []
        bad = {c.version for c in incompatibilities[identifier]}
        specifiers = [r.specifier for r in wanted]
        if extras:  # name[x] is a release of name: what is asked of name narrows it too, as pip has it
            specifiers += [r.specifier for r in requirements.get(name, ())]
        try:
            versions = self.planner.versions(name, self.target, specifiers)
        except FetchError as exc:
            self.planner._warn(f"target {self.target.id}: {exc}")
            return []
        if self.prefer_binary:  # a stable sort: newest first among those with a wheel, then among the rest
            versions.sort(key=lambda version: not self.planner.has_wheel(name, version, self.target))
        return [_Candidate(name, v, extras) for v in versions if v not in bad]

    def is_satisfied_by(self, requirement: Requirement, candidate: _Candidate) -> bool:
        return requirement.specifier.contains(candidate.version, prereleases=True)

    def get_dependencies(self, candidate: _Candidate) -> list[Requirement]:
        needed = self.planner.dependencies(candidate.name, candidate.version, self.target, candidate.extras)
        if candidate.extras:  # name[x] pins the same release as name
            needed = [Requirement(f"{candidate.name}=={candidate.version}"), *needed]
        parent = _describe_parent(candidate)
        needed = [r for r in needed if not self.planner.excluded(canonicalize_name(r.name), parent)]
        self.planner._prefetch_pages(needed)  # the resolver visits them next
        return needed
