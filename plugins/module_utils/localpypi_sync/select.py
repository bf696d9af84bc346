"""Choosing files: specifiers, pre-releases, yanked, types, target Pythons and platforms, latest N."""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Callable, Iterable, Optional

from packaging import tags
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version

from .config import ProjectRule, SyncConfig, TargetPython
from .names import UnsafeName, check_filename, file_version, package_type
from .pinned import pin_disagreements
from .report import counted, few
from .upstream import HASH_NAMES, WEAK_HASH_NAMES, UpstreamFile

_MANYLINUX_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(\w+)$")
_MUSLLINUX = re.compile(r"^musllinux_(\d+)_(\d+)_(\w+)$")
_MACOS = re.compile(r"^macosx_(\d+)_(\d+)_(\w+)$")
_IOS = re.compile(r"^ios_(\d+)_(\d+)_((\w+)_iphone(?:os|simulator))$")  # ios_13_0_arm64_iphoneos (PEP 730)
_ANDROID = re.compile(r"^android_(\d+)_(\w+)$")  # android_24_arm64_v8a (PEP 738)
_EMSCRIPTEN = re.compile(r"^(?:pyemscripten|pyodide)_\d+_\d+_wasm32$")  # PEP 783: one ABI, none older with it


def expand_platform(platform: str) -> set[str]:
    """Every platform tag a target platform installs, as packaging.tags and pip count them: a Linux target
    also takes linux_<arch> wheels (internal builds without auditwheel, some vendors' indexes), which pip
    installs on any Linux of that machine."""
    for legacy, (major, minor) in _MANYLINUX_LEGACY.items():
        if platform.startswith(legacy + "_"):
            platform = f"manylinux_{major}_{minor}_{platform[len(legacy) + 1:]}"
    match = _MANYLINUX.match(platform)
    if match:
        major, newest, arch = int(match.group(1)), int(match.group(2)), match.group(3)
        result = set()
        for minor in range(newest, -1, -1):
            result.add(f"manylinux_{major}_{minor}_{arch}")
            for legacy, version in _MANYLINUX_LEGACY.items():
                if version == (major, minor):
                    result.add(f"{legacy}_{arch}")
        return result | {f"linux_{arch}"}
    match = _MUSLLINUX.match(platform)
    if match:
        major, newest, arch = int(match.group(1)), int(match.group(2)), match.group(3)
        return {f"musllinux_{major}_{minor}_{arch}" for minor in range(newest, -1, -1)} | {f"linux_{arch}"}
    match = _MACOS.match(platform)
    if match:
        version = (int(match.group(1)), int(match.group(2)))
        return set(tags.mac_platforms(version, match.group(3)))
    match = _IOS.match(platform)
    if match:  # the iOS versions down to 12.0 on that multiarch, as packaging.tags counts them
        return set(tags.ios_platforms((int(match.group(1)), int(match.group(2))), match.group(3)))
    match = _ANDROID.match(platform)
    if match:  # the API levels down to 16 on that ABI
        return set(tags.android_platforms(int(match.group(1)), match.group(2)))
    return {platform}  # win_amd64, linux_x86_64, and pyemscripten_2026_0_wasm32, whose ABI installs no other


LATE_PATCH = 99  # no CPython minor has had so many patch releases: it stands for "the latest one"
_LINUX_ARCH = re.compile(r"^(?:many|musl)?linux(?:_\d+_\d+|1|2010|2014)?_(\w+)$")
_WINDOWS_MACHINE = {"win32": "x86", "win_amd64": "AMD64", "win_arm64": "ARM64"}
_ANDROID_MACHINE = {"arm64_v8a": "aarch64", "armeabi_v7a": "armv7l", "x86_64": "x86_64", "x86": "i686"}  # uname's


def full_version(python: TargetPython) -> str:
    """The python_full_version a target's markers see: a late patch release, as the hosts it stands for run.
    A lock file for 3.9 from `uv pip compile --universal` pins cryptography 47 for `python_full_version <=
    '3.9'` (3.9.0 only) and 50 for `> '3.9'`: a 3.9.18 host installs 50, which 3.9.0 would have left out."""
    return f"{python.major}.{python.minor}.{LATE_PATCH}"


def platform_environment(python: TargetPython, platform: str) -> dict[str, str]:
    """PEP 508 marker values on a CPython of that version running on that platform tag."""
    version = f"{python.major}.{python.minor}"
    env = {"implementation_name": "cpython", "implementation_version": full_version(python),
           "platform_python_implementation": "CPython", "python_version": version,
           "python_full_version": full_version(python), "platform_release": "", "platform_version": ""}
    linux = _LINUX_ARCH.match(platform)
    if linux:
        env.update(os_name="posix", sys_platform="linux", platform_system="Linux", platform_machine=linux.group(1))
    elif platform in _WINDOWS_MACHINE:
        env.update(os_name="nt", sys_platform="win32", platform_system="Windows",
                   platform_machine=_WINDOWS_MACHINE[platform])
    elif macos := _MACOS.match(platform):
        env.update(os_name="posix", sys_platform="darwin", platform_system="Darwin",
                   platform_machine="arm64" if macos.group(3) == "arm64" else "x86_64")
    elif ios := _IOS.match(platform):  # PEP 730: uname's machine; "iOS", or "iPadOS" on an iPad, which no tag tells
        env.update(os_name="posix", sys_platform="ios", platform_system="iOS", platform_machine=ios.group(4))
    elif android := _ANDROID.match(platform):  # PEP 738
        env.update(os_name="posix", sys_platform="android", platform_system="Android",
                   platform_machine=_ANDROID_MACHINE.get(android.group(2), android.group(2)))
    elif _EMSCRIPTEN.match(platform):  # PEP 776
        env.update(os_name="posix", sys_platform="emscripten", platform_system="Emscripten",
                   platform_machine="wasm32")
    else:
        env.update(os_name="posix", sys_platform=platform, platform_system="", platform_machine="")
    return env


def _interpreter_abis(pythons: Iterable[TargetPython]) -> frozenset[tuple[str, str]]:
    """(interpreter, abi) pairs each target installs, from its own ABI (cp314 or cp314t) and never from the
    ABI flags of the Python that runs the engine, which packaging.tags would use by default."""
    pairs: set[tuple[str, str]] = set()
    for python in pythons:
        version = (python.major, python.minor)
        for tag in tags.cpython_tags(version, abis=[python.abi], platforms=["any"]):
            pairs.add((tag.interpreter, tag.abi))
        for tag in tags.compatible_tags(version, f"cp{python.major}{python.minor}", platforms=["any"]):
            pairs.add((tag.interpreter, tag.abi))
    return frozenset(pairs)


@dataclasses.dataclass(frozen=True)
class Target:
    """One Python version on one platform: what dependency resolution resolves for."""

    python: TargetPython
    platform: str
    environment: dict[str, str]
    matrix: TargetMatrix

    @property
    def id(self) -> str:
        return f"{self.python}/{self.platform}"


@dataclasses.dataclass(frozen=True)
class TargetMatrix:
    """The python versions and platforms a mirror serves; empty parts mean 'any'."""

    python_versions: tuple[TargetPython, ...]
    platforms: frozenset[str]
    interpreter_abis: frozenset[tuple[str, str]]
    marker_environments: tuple[dict[str, str], ...]
    targets: tuple[Target, ...] = ()  # every python_versions x platforms pair, when both are set
    # one matrix per python x platform, an unset axis counting as one "any": what `latest` counts for
    slots: tuple[TargetMatrix, ...] = ()
    label: str = ""  # a slot's: 3.14t/manylinux_2_28_x86_64, 3.12 or win_amd64; "" when both are 'any'
    # whether every python x platform pair of it is served; not with `targets`, whose pairs are its slots
    product: bool = True
    # Requires-Python -> whether a Python here meets it: a project's files repeat a handful of these strings
    # thousands of times, and parsing one costs more than the rest of a file's selection
    _requires_python: dict[str, bool] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_config(cls, config: SyncConfig) -> TargetMatrix:
        platforms: set[str] = set()
        for platform in config.platforms:
            platforms |= expand_platform(platform)
        targets = tuple(Target(version, platform, platform_environment(version, platform),
                               cls.for_slot(version, platform))
                        for version in config.python_versions for platform in config.platforms)
        environments = (tuple(t.environment for t in targets) if targets
                        else tuple(target_environments(config.python_versions)))
        slots = tuple(cls.for_slot(version, platform) for version in config.python_versions or [None]
                      for platform in config.platforms or [None])
        if config.targets:
            return cls._with_pairs(config, platforms, targets, slots)
        return cls(config.python_versions, frozenset(platforms), _interpreter_abis(config.python_versions),
                   environments, targets, slots)

    @classmethod
    def _with_pairs(cls, config: SyncConfig, platforms: set[str], targets: tuple[Target, ...],
                    slots: tuple[TargetMatrix, ...]) -> TargetMatrix:
        """The product's slots (none when python_versions and platforms are both empty), then one per pair of
        `targets`: a file is asked of each slot, since the Pythons and platforms no longer pair freely."""
        if not config.python_versions and not config.platforms:
            slots = ()
        paired = tuple(Target(version, platform, platform_environment(version, platform),
                              cls.for_slot(version, platform)) for version, platform in config.targets)
        targets += paired
        slots += tuple(target.matrix for target in paired)
        pythons = tuple(dict.fromkeys([*config.python_versions, *(version for version, _ in config.targets)]))
        for _, platform in config.targets:
            platforms |= expand_platform(platform)
        environments = tuple(environment for slot in slots for environment in slot.marker_environments)
        return cls(pythons, frozenset(platforms), _interpreter_abis(pythons), environments, targets, slots,
                   product=False)

    @classmethod
    def for_slot(cls, python: Optional[TargetPython], platform: Optional[str]) -> TargetMatrix:
        """One Python on one platform, either of them 'any' when None. Its marker environment is the target's;
        with no platform, this host's platform values; with no Python, none (its markers then unknown)."""
        pythons = (python,) if python is not None else ()
        environments = ((platform_environment(python, platform),) if python and platform
                        else tuple(target_environments(pythons)) if python else ())
        return cls(pythons, frozenset(expand_platform(platform)) if platform else frozenset(),
                   _interpreter_abis(pythons), environments,
                   label="/".join(str(part) for part in (python, platform) if part is not None))

    @property
    def each_slot(self) -> tuple[TargetMatrix, ...]:
        """The python x platform slots, or the matrix itself when it is one (a slot's own `slots` are none)."""
        return self.slots or (self,)

    def installs(self, upstream_file: UpstreamFile) -> bool:
        """The file's Requires-Python admits one of the Pythons, and a wheel's tags one Python and platform (of
        one slot, where they do not pair freely)."""
        if not self.product:
            return any(slot.installs(upstream_file) for slot in self.slots)
        return (self.requires_python_fits(upstream_file.requires_python)
                and (package_type(upstream_file.filename) != "wheel" or self.wheel_fits(upstream_file.filename)))

    def target(self, target_id: str) -> Optional[Target]:
        return next((t for t in self.targets if t.id == target_id), None)

    def wheel_fits(self, filename: str) -> bool:
        if not self.product:
            return any(slot.wheel_fits(filename) for slot in self.slots)
        for tag in _tags_of(filename):
            python_ok = not self.python_versions or (tag.interpreter, tag.abi) in self.interpreter_abis
            if python_ok and self._platform_fits(tag):
                return True
        return False

    def _platform_fits(self, tag: tags.Tag) -> bool:
        return not self.platforms or tag.platform == "any" or tag.platform in self.platforms

    def why_none_installs(self, files: Iterable[UpstreamFile]) -> str:
        """In a few words, why none of a release's files installs here: for an error line."""
        files = list(files)
        fitting = [f for f in files if self.requires_python_fits(f.requires_python)]
        if not fitting:
            return f"requires Python {next((f.requires_python for f in files if f.requires_python), '?')}"
        wheel_tags = [tag for f in fitting if package_type(f.filename) == "wheel" for tag in _tags_of(f.filename)]
        if not wheel_tags:
            return "has no file that installs here"
        here = {f"{tag.interpreter}-{tag.abi}" for tag in wheel_tags if self._platform_fits(tag)}
        if here:
            return f"has wheels for this platform only for {few(here)}"
        return f"has wheels only for {few(self._nearest_first({tag.platform for tag in wheel_tags}))}"

    def only_elsewhere(self, files: Iterable[UpstreamFile]) -> Optional[str]:
        """The one sys_platform that every file is a wheel for, when no target platform is of it (pywin32's
        win32 for a Linux target): what a marker on the requirement would say. None otherwise."""
        systems = set()
        for upstream_file in files:
            if package_type(upstream_file.filename) != "wheel":
                return None  # an sdist installs anywhere: not a matter of platform
            systems.update(_sys_platform(tag.platform) for tag in _tags_of(upstream_file.filename))
        if len(systems) != 1 or None in systems:
            return None
        system = systems.pop()
        return None if any(_sys_platform(platform) == system for platform in self.platforms) else system

    def _nearest_first(self, platforms: Iterable[str]) -> list[str]:
        """The platforms of the same system and machine as this one's first (macosx_14_0_arm64 before
        manylinux_2_28_aarch64 for a macosx_11_0_arm64 target): the ones an operator would pick instead."""
        def likeness(platform: str) -> int:
            system, machine = _system_and_machine(platform)
            return max((int(system == own[0]) + int(machine == own[1])
                        for own in map(_system_and_machine, self.platforms)), default=0)
        return sorted(platforms, key=lambda platform: (-likeness(platform), platform))

    def requires_python_fits(self, requires_python: Optional[str]) -> bool:
        if not requires_python or not self.python_versions:
            return True
        if requires_python not in self._requires_python:
            self._requires_python[requires_python] = _requires_python_admits(requires_python, self.python_versions)
        return self._requires_python[requires_python]


def _requires_python_admits(requires_python: str, python_versions: Iterable[TargetPython]) -> bool:
    try:
        specifier = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True  # pip ignores what it cannot parse; so do we
    return any(specifier.contains(Version(full_version(v)), prereleases=True)
               or specifier.contains(Version(f"{v.major}.{v.minor}.0"), prereleases=True)
               for v in python_versions)


def _tags_of(filename: str) -> frozenset[tags.Tag]:
    try:
        return parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return frozenset()


def _sys_platform(platform: str) -> Optional[str]:
    """The sys_platform of a wheel's platform tag (win32 of win_amd64, linux of manylinux_2_28_x86_64); None
    for `any` and the unknown."""
    system = platform.partition("_")[0]
    if system.startswith("win"):
        return "win32"
    if system.startswith(("manylinux", "musllinux", "linux")):
        return "linux"
    return {"macosx": "darwin", "ios": "ios", "android": "android", "pyemscripten": "emscripten",
            "pyodide": "emscripten", "emscripten": "emscripten"}.get(system)


def _system_and_machine(platform: str) -> tuple[str, str]:
    """("macosx", "arm64") of macosx_11_0_arm64, ("manylinux", "64") of manylinux_2_28_x86_64: near enough to
    tell platforms alike."""
    return platform.partition("_")[0], platform.rpartition("_")[2]


@dataclasses.dataclass(frozen=True)
class Selection:
    chosen: list[UpstreamFile]
    refused: list[str]  # one line each: unsafe names, missing hashes
    skipped: int
    uncovered: list[str] = dataclasses.field(default_factory=list)  # one line: targets left with no file
    # with an exclude_newer age: when the next file it left out for being too new becomes old enough
    ripens: Optional[float] = None
    undated: list[str] = dataclasses.field(default_factory=list)  # files exclude_newer left out, having no date
    contradicted: list[str] = dataclasses.field(default_factory=list)  # one line: hashes a requirement pins differ


def _final_releases(screened: Iterable[tuple[UpstreamFile, Optional[Version]]]
                    ) -> Optional[tuple[tuple[Version, tuple[UpstreamFile, ...]], ...]]:
    """The final releases among the files, newest first, each with its files; None when there is no
    pre-release among them, so nothing for a slot to tell (and no file of theirs to look at)."""
    by_version: dict[Version, list[UpstreamFile]] = {}
    prerelease = False
    for upstream_file, version in screened:
        if version is not None:
            prerelease = prerelease or version.is_prerelease
            if not version.is_prerelease:
                by_version.setdefault(version, []).append(upstream_file)
    if not prerelease:
        return None
    return tuple((version, tuple(by_version[version])) for version in sorted(by_version, reverse=True))


def _requirement_allows(rule: Optional[ProjectRule], version: Version, taken: tuple[bool, ...],
                        environments: tuple[dict[str, str], ...]) -> bool:
    if rule is None:
        return taken[0] or not version.is_prerelease
    for requirement, allow_pre in zip(rule.requirements, taken):
        if not _marker_holds(requirement.marker, environments, unknown=True):
            continue
        if requirement.specifier.contains(version, prereleases=allow_pre):
            return True
    return False


def _marker_holds(marker: Optional[Marker], environments: tuple[dict[str, str], ...], unknown: bool) -> bool:
    """The marker holds in one of the environments; `unknown` when there are none to tell by (no Python set):
    a requirement then holds, and a constraint restricts nothing."""
    if marker is None:
        return True
    if not environments:
        return unknown
    return any(marker.evaluate(env) for env in environments)


@dataclasses.dataclass(frozen=True)
class _Takes:
    """Which files of a project its requirements and constraints take, on which python x platform slot. A
    marker holds on some slots only: `numpy==1.26.4; python_version < "3.12"` beside `numpy==2.1.0;
    python_version >= "3.12"` (a universal lock's fork) takes 1.26.4 for 3.11 and 2.1.0 for 3.12, and neither's
    wheels for the other Python. A constraint (`-c`) applies where its marker holds, as pip applies it; on a slot
    whose Python is not set, its marker cannot be told, and it restricts nothing there. Without markers, every
    slot takes the same releases, and a file is asked of the whole matrix at once."""

    rule: Optional[ProjectRule]
    constraints: tuple[Requirement, ...]
    matrix: TargetMatrix
    # final releases, newest first; None without a pre-release to take or leave (_final_releases)
    finals: Optional[tuple[tuple[Version, tuple[UpstreamFile, ...]], ...]]
    prereleases: bool  # the config's: pre-releases count everywhere
    _allowed: dict[tuple[int, Version], bool] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    _taken: dict[int, tuple[bool, ...]] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def per_slot(self) -> bool:
        """Whether slots take different releases: a marker holds on some only, or pre-releases count on some
        only (a new Python's wheels in a release candidate alone)."""
        requirements = self.rule.requirements if self.rule is not None else ()
        return (any(line.marker is not None for line in (*requirements, *self.constraints))
                or len({self.taken(slot) for slot in self.slots}) > 1)

    @functools.cached_property
    def slots(self) -> tuple[TargetMatrix, ...]:
        return self.matrix.each_slot

    def taken(self, slot: TargetMatrix) -> tuple[bool, ...]:
        """For each of the rule's requirements (or for the whole project, without a rule), whether its
        pre-releases count on the slot: when the config says so, when its specifier names one (foo==2.0b1), or
        when no final release that satisfies it has a file that installs there. pip 26 reads PEP 440 so, over the
        files its target can install: `lib>=1.0` with only 2.0b1 installs 2.0b1, and so does `lib` on a Python
        whose wheels only a release candidate has yet, with --only-binary."""
        if id(slot) not in self._taken:
            specifiers = ([line.specifier for line in self.rule.requirements] if self.rule is not None
                          else [SpecifierSet()])
            finals = self.finals
            self._taken[id(slot)] = tuple(
                finals is not None and (
                    self.prereleases or bool(specifier.prereleases)
                    or not any(specifier.contains(version) and any(map(slot.installs, files))
                               for version, files in finals))
                for specifier in specifiers)
        return self._taken[id(slot)]

    def allows(self, slot: TargetMatrix, version: Version) -> bool:
        """The requirements take the release for that slot (when all slots take the same: for any)."""
        environments = slot.marker_environments if self.per_slot else self.matrix.marker_environments
        key = (id(slot) if self.per_slot else 0, version)
        if key not in self._allowed:
            self._allowed[key] = (
                _requirement_allows(self.rule, version, self.taken(slot if self.per_slot else self.slots[0]),
                                    environments)
                and all(c.specifier.contains(version, prereleases=True) for c in self.constraints
                        if _marker_holds(c.marker, environments, unknown=False)))
        return self._allowed[key]

    def on(self, slot: TargetMatrix, upstream_file: UpstreamFile, version: Version) -> bool:
        """The file is taken for that slot, and installs there."""
        return self.allows(slot, version) and slot.installs(upstream_file)

    def __call__(self, upstream_file: UpstreamFile, version: Version) -> bool:
        """The file is taken for a slot it installs on."""
        if not self.per_slot:
            return self.allows(self.matrix, version) and self.matrix.installs(upstream_file)
        return any(self.on(slot, upstream_file, version) for slot in self.slots)


def target_environments(python_versions: Iterable[TargetPython]) -> list[dict[str, str]]:
    """Marker environments for the target Pythons when no platforms are named (platform markers are left
    at this host's values)."""
    environments = []
    for version in python_versions:
        env = dict(default_environment())
        env["python_version"] = f"{version.major}.{version.minor}"
        env["python_full_version"] = env["implementation_version"] = full_version(version)
        environments.append(env)
    return environments


def lock_scope_warnings(scopes: Iterable[tuple[str, Marker]], matrix: TargetMatrix) -> list[str]:
    """A warning for each lock file that installs on none, or not all, of the python x platform targets (its
    requires-python and environments). On none, nothing of it is mirrored, and without this, silently: a
    requirement whose marker holds on no target asks for nothing, and gets no "no file matches" either."""
    warnings = []
    for path, scope in scopes:
        outside = [slot.label for slot in matrix.slots
                   if slot.marker_environments and not any(scope.evaluate(env) for env in slot.marker_environments)]
        if not outside:
            continue
        holds = ("holds on none of the targets (python_versions x platforms): nothing of it is mirrored"
                 if len(outside) == len(matrix.slots) else
                 f"does not hold on {few(outside, 5)}: a client there cannot install from it")
        warnings.append(f"{path}: the lock installs only where {scope} (its requires-python and environments), "
                        f"which {holds}")
    return warnings


def _planned_fits(target_ids: Optional[tuple[str, ...]], filename: str, kind: str, matrix: TargetMatrix) -> bool:
    """A resolved version's file (target_ids None: the version was not resolved): an sdist, or a wheel that
    installs on a target the version was picked for."""
    if target_ids is None:
        return False
    if kind != "wheel":
        return True
    return any(target is not None and target.matrix.wheel_fits(filename) for target in map(matrix.target, target_ids))


def screen_file(upstream_file: UpstreamFile, project: str, config: SyncConfig) -> tuple[Optional[Version],
                                                                                       Optional[str]]:
    """(version, None) for a file the config's types, size and yanked rule let in. (None, reason) for a file
    refused for safety (an unsafe name, no hash to verify by); (None, None) for one the config leaves out."""
    try:
        check_filename(upstream_file.filename)
    except UnsafeName as exc:
        return None, f"project {project}: {exc}"
    if not any(name in upstream_file.hashes for name in HASH_NAMES):
        weak = next((name for name in WEAK_HASH_NAMES if name in upstream_file.hashes), None)
        if weak is None:
            return None, f"project {project}: {upstream_file.filename}: the index gives no sha256 to verify it by"
        if not config.weak_hashes:
            return None, (f"project {project}: {upstream_file.filename}: the index gives only an {weak} hash, "
                          f"which the mirror verifies by only with weak_hashes (pypiserver before 2.0 gives md5 "
                          f"unless started with --hash-algo sha256)")
    version = file_version(upstream_file.filename, project)
    if (
        package_type(upstream_file.filename) not in config.package_types
        or version is None
        or (upstream_file.yanked and not config.include_yanked)
        or too_large(upstream_file, config)
        or too_new(upstream_file, config.cutoff_for(project))
    ):
        return None, None
    return version, None


def too_new(upstream_file: UpstreamFile, cutoff: Optional[float]) -> bool:
    """Uploaded after the run's exclude_newer moment for its project (cutoff), or at no time the index gives
    (as uv has it)."""
    if cutoff is None:
        return False
    uploaded = upstream_file.uploaded
    return uploaded is None or uploaded > cutoff


def _exclude_newer_dating(files: list[UpstreamFile], project: str, config: SyncConfig,
                          wanted: Callable[[UpstreamFile, Version], bool]) -> tuple[list[str], Optional[float]]:
    """The files exclude_newer leaves out for want of an upload time, and, with an age, when the first file
    left out as too new becomes old enough: its project is then selected again. Of the files the config would
    take but for exclude_newer (wanted: its requirements and targets), as no others are held back: a new wheel
    for Windows in a mirror for Linux is no reason to tell of a holdback, or to select the project again."""
    cutoff = config.cutoff_for(project)
    if cutoff is None or config.exclude_newer is None:
        return [], None
    uncut: Optional[SyncConfig] = None  # the config as screening would read it without exclude_newer
    held_back = []
    for upstream_file in files:
        if upstream_file.uploaded is not None and upstream_file.uploaded <= cutoff:
            continue
        uncut = uncut or dataclasses.replace(config, cutoff=None)
        version, _ = screen_file(upstream_file, project, uncut)
        if version is not None and wanted(upstream_file, version):
            held_back.append(upstream_file)
    undated = [f.filename for f in held_back if f.uploaded is None]
    age = config.exclude_newer.age
    younger = [f.uploaded for f in held_back if f.uploaded is not None]
    return undated, (min(younger) + age if age is not None and younger else None)


def too_large(upstream_file: UpstreamFile, config: SyncConfig) -> bool:
    return (config.max_file_size is not None and upstream_file.size is not None
            and upstream_file.size > config.max_file_size)


def select_files(files: Iterable[UpstreamFile], project: str, rule: Optional[ProjectRule],
                 config: SyncConfig, matrix: TargetMatrix) -> Selection:
    refused: list[str] = []
    # resolved versions -> the targets each was picked for; None when the rule's specifiers decide
    planned = ({Version(v): ids for v, ids in rule.planned} if rule is not None and rule.planned is not None
               else None)
    skipped = 0
    candidates: dict[Version, list[UpstreamFile]] = {}
    screened: list[tuple[UpstreamFile, Optional[Version]]] = []
    for upstream_file in files:
        version, refusal = screen_file(upstream_file, project, config)
        if refusal:
            refused.append(refusal)
        else:
            screened.append((upstream_file, version))
    takes = _Takes(rule, config.constraints_for(project), matrix,
                   _final_releases(screened) if planned is None else None, config.prereleases)
    for upstream_file, version in screened:
        if (
            version is None
            or (planned is None and not takes(upstream_file, version))
            # a resolution's picks met the constraints that apply on the targets they were picked for
            or (planned is not None and not (
                _planned_fits(planned.get(version), upstream_file.filename, package_type(upstream_file.filename),
                              matrix)
                and matrix.installs(upstream_file)))
        ):
            skipped += 1
            continue
        candidates.setdefault(version, []).append(upstream_file)
    versions = sorted(candidates, reverse=True)
    chosen = [f for v in versions for f in candidates[v]]
    if config.latest and planned is None:  # resolution has applied latest already, per requirement
        kept = _newest_per_slot(candidates, versions, config.latest, takes)
        chosen = [f for f in chosen if id(f) in kept]
    # a resolution names the targets it cannot satisfy itself, and pulls a dependency for some targets only;
    # a full mirror asks for no project in particular (and would warn of every Windows-only one)
    chosen_by_version = _by_version(chosen, candidates)
    uncovered = (_uncovered(project, rule, chosen_by_version, takes, config, len(refused))
                 if planned is None and rule is not None else [])

    def wanted(upstream_file: UpstreamFile, version: Version) -> bool:
        """Taken by the requirements (a resolution's picks are its own) and installable on a target."""
        return matrix.installs(upstream_file) if planned is not None else takes(upstream_file, version)

    undated, ripens = _exclude_newer_dating([f for f, _ in screened], project, config, wanted)
    contradicted = pin_disagreements(project, config.hash_pins_for(project), chosen_by_version)
    return Selection(chosen, refused, skipped + sum(map(len, candidates.values())) - len(chosen), uncovered,
                     ripens, undated, contradicted)


def _by_version(chosen: list[UpstreamFile], candidates: dict[Version, list[UpstreamFile]]
                ) -> dict[Version, list[UpstreamFile]]:
    """The chosen files by their version, newest first."""
    chosen_ids = set(map(id, chosen))
    return {version: [f for f in files if id(f) in chosen_ids]
            for version, files in sorted(candidates.items(), reverse=True)}


def _uncovered(project: str, rule: ProjectRule, chosen: dict[Version, list[UpstreamFile]], takes: _Takes,
               config: SyncConfig, refused: int) -> list[str]:
    """A warning when some python x platform the config asks this project for gets no file from it: the
    mirror then looks complete, and a client there finds nothing to install. None when the requirement's
    markers hold on no target (colorama; sys_platform == 'win32', mirrored for Linux): as pip on such a target
    ignores it, nothing is asked for. Files refused for safety are counted in it: the config is then not
    what to check first."""
    asked = [slot for slot in takes.matrix.slots if _asked_for(rule, slot)]
    if not asked:
        return []
    if not any(chosen.values()):
        checks = "python_versions, platforms and exclude_newer" if config.cutoff_for(project) is not None else (
            "python_versions and platforms")
        if refused:
            return [f"project {project}: no file matches the config, and {counted(refused, 'file')} of it "
                    f"{'was' if refused == 1 else 'were'} refused (above); clients will find none"]
        elsewhere = config.locked_elsewhere(project)
        if elsewhere:
            checks += (f"; the lock took it from {few(elsewhere, 2)}, not from the upstream: a release only there "
                       f"cannot be mirrored from here")
        specifiers = "specifiers and constraints" if takes.constraints else "specifiers"
        return [f"project {project}: no file matches the config; clients will find none (check its {specifiers}, "
                f"package_types, {checks})"]
    missing = [slot.label for slot in asked
               if slot.label and not any(takes.on(slot, f, version)
                                         for version, files in chosen.items() for f in files)]
    if not missing:
        return []
    return [f"project {project}: no selected file installs on {', '.join(missing)}; clients there will find none"]


def slots_taking(files: Iterable[UpstreamFile], project: str, rule: Optional[ProjectRule], config: SyncConfig,
                 matrix: TargetMatrix) -> dict[str, list[str]]:
    """For explain, without a resolution: by filename, the python x platform slots each file is taken for (where
    the requirements and constraints of its version hold, and it installs). Pre-releases count as the files
    given tell; a slot of 'any' python and platform is "any"."""
    files = list(files)
    versions = {f.filename: file_version(f.filename, project) for f in files}
    takes = _Takes(rule, config.constraints_for(project), matrix,
                   _final_releases((f, versions[f.filename]) for f in files), config.prereleases)
    return {f.filename: [slot.label or "any" for slot in takes.slots
                         if versions[f.filename] is not None and takes.on(slot, f, versions[f.filename])]
            for f in files}


def slots_asking(requirement: Requirement, matrix: TargetMatrix, constraint: bool = False) -> list[str]:
    """The python x platform slots on which the requirement's marker holds. Where it cannot be told (no Python
    set), a requirement holds and a constraint does not, as selection takes them (_Takes)."""
    return [slot.label or "any" for slot in matrix.each_slot
            if _marker_holds(requirement.marker, slot.marker_environments, unknown=not constraint)]


def _asked_for(rule: ProjectRule, slot: TargetMatrix) -> bool:
    """The project's requirement applies on that slot (its markers, where the slot's environment is known)."""
    return any(_marker_holds(requirement.marker, slot.marker_environments, unknown=True)
               for requirement in rule.requirements)


def _newest_per_slot(candidates: dict[Version, list[UpstreamFile]], newest_first: list[Version], latest: int,
                     takes: _Takes) -> set[int]:
    """ids of the files `latest` keeps: for each python x platform, the files that install there of the newest
    `latest` releases that have one, as pip on that target would choose. A release whose files for a slot are
    all yanked takes no place there (pip passes it over), though one newer than the last kept stays, marked.
    When those releases have only sdists for a slot, the newest release with a wheel for it is kept too, as
    `pip --prefer-binary` would choose: the way round a build that needs a compiler."""
    kept: set[int] = set()
    for slot in takes.slots:
        releases = 0
        wheel_kept = False
        for version in newest_first:
            installable = [f for f in candidates[version] if takes.on(slot, f, version)]
            if not installable:
                continue
            counts = not all(f.yanked for f in installable)
            has_wheel = counts and any(package_type(f.filename) == "wheel" for f in installable)
            if releases < latest:
                kept.update(map(id, installable))
                releases += counts
                wheel_kept = wheel_kept or has_wheel
            elif has_wheel:  # its wheels only: the sdist of a release newer than it is kept already
                kept.update(id(f) for f in installable if package_type(f.filename) == "wheel")
                wheel_kept = True
            if releases == latest and wheel_kept:
                break
    return kept
