"""One sync run: list projects, read their pages, select, fetch, publish, prune, record."""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import os
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, TypeVar

from packaging.utils import canonicalize_name

from . import missing_requirement
from .claims import ClaimsUnreadable, read_claims
from .config import ProjectRule, SyncConfig
from .credentials import redact
from .durable import Unsynced
from .fetch import Fetcher, FetchOutcome, PublishedFile
from .http import FetchError, HttpClient
from .localfiles import make_client
from .names import UnsafeName, normalize_project, package_type
from .publish import Publisher
from .report import Reporter, counted, few
from .select import Selection, TargetMatrix, lock_scope_warnings, select_files
from .shards import Lost, map_in_processes, usable_cpus
from .state import (
    LockBusy,
    MirrorState,
    discard_staged,
    remove_if_present,
    rename_staged,
    serials_by_name,
    utc_timestamp,
)
from .upstream import (
    NotModified,
    ProjectListing,
    ProjectPage,
    ProjectStatus,
    Upstream,
    UpstreamFile,
    not_an_index,
    quarantine_note,
)

if TYPE_CHECKING:
    from .resolve import Plan

Key = TypeVar("Key")
Result = TypeVar("Result")

DETAIL_LIMIT = 200  # file names listed in results (diff, plan); counts are always complete
# Files at least this large (by the size the index gives) that must be downloaded are left for all the worker
# processes to share, in rounds (see SHARE_AFTER_BYTES): one project's large files would otherwise all go
# through the one process that read its page, whose interpreter lock they share.
LARGE_FILE_BYTES = 64 << 20
# Once the projects read have left this much in large files, processes start no new project until those
# files are fetched and their projects published (a full mirror's would otherwise wait for every project).
SHARE_AFTER_BYTES = 4 << 30


class SyncAbort(RuntimeError):
    """The run could not start (bad directory, busy lock, unreachable upstream); nothing was written."""


def _import_resolver() -> None:
    """Import what resolving needs (only runs that resolve import it), so that its absence stops the run before
    anything is written instead of failing half-way with a traceback."""
    try:
        from . import metadata, resolve  # noqa: F401, PLC0415
    except ImportError as exc:
        raise SyncAbort(f"{missing_requirement(exc, 'dependencies: true')}; nothing written") from None


@dataclasses.dataclass
class SyncStats:
    projects: int = 0
    projects_changed: int = 0
    projects_unchanged: int = 0
    projects_failed: int = 0
    projects_removed: int = 0
    files_published: int = 0
    files_downloaded: int = 0
    files_reused: int = 0
    files_skipped: int = 0
    files_refused: int = 0
    files_failed: int = 0
    files_removed: int = 0
    bytes_downloaded: int = 0
    bytes_removed: int = 0
    upstream_requests: int = 0
    projects_resolved: int = 0
    # with an exclude_newer age: projects with a file it holds back, and when the first such file is old enough
    projects_held_back: int = 0
    held_back_until: Optional[str] = None
    serial: Optional[int] = None
    duration_seconds: float = 0.0


@dataclasses.dataclass
class SyncResult:
    stats: SyncStats
    failures: list[str]
    warnings: list[str]
    changed: bool
    check_mode: bool
    added: list[str]
    removed: list[str]
    started: str = ""
    plan: Optional[dict[str, Any]] = None  # the dependency resolution, when there was one

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "changed": self.changed, "check_mode": self.check_mode, "started": self.started,
                "stats": dataclasses.asdict(self.stats), "failures": self.failures,
                "warnings": self.warnings[:DETAIL_LIMIT],
                "added": self.added[:DETAIL_LIMIT], "removed": self.removed[:DETAIL_LIMIT]}


def _published_to_json(published: PublishedFile) -> dict[str, Any]:
    return {"upstream": published.upstream.to_json(), "path": published.path, "sha256": published.sha256,
            "size": published.size, "metadata_sha256": published.metadata_sha256}


def _published_from_json(data: dict[str, Any]) -> PublishedFile:
    return PublishedFile(UpstreamFile.from_json(data["upstream"]), data["path"], data["sha256"], data["size"],
                         data.get("metadata_sha256"))


def recorded_files(record: Optional[dict[str, Any]]) -> dict[str, PublishedFile]:
    if not record:
        return {}
    return {item["upstream"]["filename"]: _published_from_json(item) for item in record.get("published", [])}


def _usable_record(record: Any, name: str) -> Optional[dict[str, Any]]:
    """A project record as written by this engine, or None: a damaged one only costs a full re-read."""
    if not isinstance(record, dict) or record.get("name") != name:
        return None
    try:
        recorded_files(record)
        if record.get("page"):
            ProjectPage.from_json(record["page"])
    except (KeyError, TypeError, ValueError):
        return None
    return record


def _recorded_page(record: Optional[dict[str, Any]]) -> Optional[ProjectPage]:
    return ProjectPage.from_json(record["page"]) if record and record.get("page") else None


@dataclasses.dataclass
class _ProjectOutcome:
    name: str
    status: str  # unchanged | changed | failed
    published: list[PublishedFile] = dataclasses.field(default_factory=list)
    removals: list[PublishedFile] = dataclasses.field(default_factory=list)
    withdrawn: list[PublishedFile] = dataclasses.field(default_factory=list)  # of a quarantined project, prune or not
    record: Optional[dict[str, Any]] = None
    errors: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    downloaded: int = 0
    reused: int = 0
    skipped: int = 0
    refused: int = 0
    failed: int = 0
    bytes: int = 0
    requests: int = 0
    serial: Optional[int] = None
    added: list[str] = dataclasses.field(default_factory=list)
    page_written: bool = False
    unsynced: list[Unsynced] = dataclasses.field(default_factory=list)  # made durable before the page names them
    pending: Optional[_Pending] = None  # large files still to fetch before the project can be published
    undated: list[str] = dataclasses.field(default_factory=list)  # see Selection.undated
    ripens: Optional[float] = None  # see Selection.ripens: as selected now, or as the record says
    stale: Optional[_StalePage] = None  # a page older than the mirror's copy, whose dropped files prune kept
    left_out: list[str] = dataclasses.field(default_factory=list)  # files it lists that the upstream deleted since


@dataclasses.dataclass(frozen=True)
class _StalePage:
    """A project page older than the one this mirror last synced: its serial below the newest on record. A
    copy of the index carried on an older disk, or a cache that lags, lists fewer files than the mirror has
    taken since, and none of them was deleted for that: prune keeps them."""

    serial: int
    newest: int
    kept: int  # files it no longer lists, which prune would have removed


@dataclasses.dataclass
class _StaleTally:
    """The projects whose stale pages held prune back, told in one warning for the run: a full mirror fed from
    an older disk would otherwise warn once per project."""

    projects: list[tuple[str, _StalePage]] = dataclasses.field(default_factory=list)
    gone: list[str] = dataclasses.field(default_factory=list)  # unlisted by an older root index, and kept
    left_out: list[tuple[str, list[str]]] = dataclasses.field(default_factory=list)  # deleted since its page
    projects_left_out: list[str] = dataclasses.field(default_factory=list)  # deleted since the project list
    listing_serial: Optional[int] = None
    check_mode: bool = False

    SHOWN = 5

    def add(self, project: str, stale: Optional[_StalePage], left_out: list[str]) -> None:
        if stale is not None:
            self.projects.append((project, stale))
        if left_out:
            self.left_out.append((project, left_out))

    def warnings(self) -> list[str]:
        told = []
        verb = "would keep" if self.check_mode else "kept"
        hint = ("a stale copy of the index removes nothing; if this upstream replaces the one the mirror followed, "
                "rerun with force_prune")
        if self.projects:
            files = sum(stale.kept for _, stale in self.projects)
            shown = few([f"{name} ({stale.serial} < {stale.newest})" for name, stale in sorted(self.projects)],
                        self.SHOWN)
            told.append(f"prune {verb} {counted(files, 'file')} of {counted(len(self.projects), 'project')} whose "
                        f"upstream pages are older than the ones this mirror last synced (serial below the newest "
                        f"on record): {shown}; {hint}")
        if self.gone:
            told.append(f"prune {verb} {counted(len(self.gone), 'project')} that the upstream's project list, older "
                        f"than this mirror (serial {self.listing_serial}), does not name: "
                        f"{few(set(self.gone), self.SHOWN)}; {hint}")
        if self.left_out:
            files = [name for _, names in self.left_out for name in names]
            projects = few([f"{project} ({few(names, 2)})" for project, names in sorted(self.left_out)], self.SHOWN)
            told.append(f"{'would leave' if self.check_mode else 'left'} out {counted(len(files), 'file')} of "
                        f"{counted(len(self.left_out), 'project')} that the upstream's pages, older than the ones "
                        f"this mirror last synced, still list but a later page no longer did (prune removed them): "
                        f"{projects}; {hint}")
        if self.projects_left_out:
            told.append(f"{'would leave' if self.check_mode else 'left'} out "
                        f"{counted(len(self.projects_left_out), 'project')} that the upstream's project list, older "
                        f"than this mirror (serial {self.listing_serial}), still names but a later list no longer did "
                        f"(prune removed them): {few(self.projects_left_out, self.SHOWN)}; {hint}")
        return told


@dataclasses.dataclass
class _UndatedTally:
    """The files exclude_newer left out for want of an upload time, told in one warning for the run: an
    upstream that serves only HTML dates none, and a full mirror of it would otherwise warn once per project."""

    projects: int = 0
    files: int = 0
    first_projects: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # (name, files), as told
    first_files: list[str] = dataclasses.field(default_factory=list)  # the first project's, for a run of one

    SHOWN = 5

    def add(self, project: str, filenames: list[str]) -> None:
        if not filenames:
            return
        if not self.projects:
            self.first_files = filenames
        if self.projects < self.SHOWN:
            self.first_projects.append((project, len(filenames)))
        self.projects += 1
        self.files += len(filenames)

    def warning(self) -> Optional[str]:
        if not self.projects:
            return None
        said = (f"exclude_newer leaves out {counted(self.files, 'file')} the index gives no upload time for "
                f"(PEP 700; pages in HTML give none)")
        if self.projects == 1:
            return f"project {self.first_projects[0][0]}: {said}: {few(self.first_files, 3)}"
        more = f" and {self.projects - self.SHOWN} more" if self.projects > self.SHOWN else ""
        told = ", ".join(f"{name} ({files})" for name, files in sorted(self.first_projects))
        return f"{said}, in {self.projects} projects: {told}{more}"


@dataclasses.dataclass
class _Pending:
    """A project whose selection is made and whose other files are fetched; results[i] is None where the
    chosen file i is a large download left to the shared phase."""

    chosen: list[UpstreamFile]
    previous: dict[str, PublishedFile]
    results: list[Optional[FetchOutcome]]
    page: ProjectPage
    fingerprint: str
    ripens: Optional[float] = None  # see Selection.ripens
    newest_serial: Optional[int] = None  # see _newest_serial
    stale: bool = False  # its page is older than the newest on record: prune removes none of its files
    deleted: dict[str, int] = dataclasses.field(default_factory=dict)  # see _recorded_deletions, as now known

    def waiting(self) -> list[int]:
        return [index for index, result in enumerate(self.results) if result is None]

    def waiting_bytes(self) -> int:
        return sum(self.chosen[index].size or 0 for index in self.waiting())


class SyncRun:
    def __init__(self, config: SyncConfig, reporter: Reporter, *, check_mode: bool = False,
                 only_projects: Optional[Iterable[str]] = None, rehash: bool = False,
                 http: Optional[HttpClient] = None, backoff: float = 0.5,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock  # the wall clock: when a run began, for records, exclude_newer and last-modified
        self.reporter = reporter
        self.check_mode = check_mode
        self.only_projects = {canonicalize_name(p) for p in only_projects} if only_projects else None
        self.rehash = rehash
        self.state = MirrorState(config.directory)
        self.http = http or make_client(config.upstream, timeout=config.timeout, retries=config.retries,
                                        pool_size=config.workers * 2, ca_bundle=config.ca_bundle,
                                        proxy=config.proxy, backoff=backoff,
                                        credentials=config.upstream_credentials,
                                        proxy_credentials=config.proxy_credentials)
        self.upstream = Upstream(self.http, config.upstream)
        self.matrix = TargetMatrix.from_config(config)
        self.publisher = Publisher(self.state.web)
        self.fetcher = Fetcher(self.http, self.state.web, self.state.tmp, config.max_file_size)
        self._file_pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._page_lock = threading.Lock()
        self._rules: dict[str, ProjectRule] = {rule.name: rule for rule in config.projects}
        self._answers: dict[str, ProjectPage | NotModified] = {}  # pages read while resolving, used once
        self._quarantined: set[str] = set()  # projects a page read while resolving says are quarantined
        self._listing: Optional[ProjectListing] = None  # a full mirror's: the upstream's root index
        self._deleted_projects: dict[str, int] = {}  # see MirrorState.load_deleted_projects, as this run knows
        self._deleted_projects_read: dict[str, int] = {}  # as the file said at the start: saved only if changed
        self._projects_left_out: list[str] = []  # named by an older list than the one that dropped them
        self._removing_deleted: dict[str, int] = {}  # gone projects that the upstream's list no longer names
        self._plan: Optional[Plan] = None
        self._workers_lost = False
        self._started = 0.0  # when run() began: what web/last-modified says of a successful run

    # -- entry ------------------------------------------------------------------------------
    def run(self) -> SyncResult:
        started = self._started = self._clock()
        began = time.monotonic()
        self.config = self.config.at_start(started)  # an exclude_newer age becomes a moment, the same all run
        stats = SyncStats()
        failures: list[str] = []
        if self.config.dependencies:
            _import_resolver()
        if not self.check_mode:
            try:
                self.state.prepare()
                self.state.lock(self.config.lock_timeout)
            except PermissionError as exc:
                raise SyncAbort(str(exc)) from None
            except LockBusy as exc:
                raise SyncAbort(f"{exc}; wait for it or set lock_timeout") from None
        try:
            result = self._run_locked(stats, failures)
        except SyncAbort as exc:
            if not self.check_mode:
                self._record_abort(started, str(exc))
            raise
        finally:
            if not self.check_mode:
                self.state.unlock()
            self.http.close()
        stats.duration_seconds = round(time.monotonic() - began, 3)
        result.started = utc_timestamp(started)
        if not self.check_mode:
            record = self._run_record(result.to_dict())
            try:
                self.state.save_last_run(record, partial=self.only_projects is not None)
            except OSError as exc:  # the mirror is as the run left it; only `status` will not show this run
                result.failures.append(_disk_error("the run's record", exc))
                self.reporter.failure(result.failures[-1])
        self.reporter.event("summary", result="ok" if result.ok else "failed", changed=result.changed,
                            **dataclasses.asdict(stats))
        return result

    def _record_abort(self, started: float, reason: str) -> None:
        record = self._run_record({"started": utc_timestamp(started), "reason": reason})
        with contextlib.suppress(OSError):  # the abort itself is the news; a full disk must not hide it
            self.state.save_abort(record)

    def _run_record(self, fields: dict[str, Any]) -> dict[str, Any]:
        """What `status` shows of a run: fields, when it finished, the index it read (without a login: another
        site's carried disk, perhaps), and the projects it was limited to."""
        record = {**fields, "finished": utc_timestamp(), "upstream": redact(self.config.upstream)}
        if self.only_projects is not None:
            record["only_projects"] = sorted(self.only_projects)
        return record

    def _run_locked(self, stats: SyncStats, failures: list[str]) -> SyncResult:
        warnings: list[str] = [*self.config.notes, *lock_scope_warnings(self.config.lock_scopes, self.matrix)]
        self._read_claims(warnings)  # first: nothing is asked of the upstream before its names are known
        try:
            self.upstream.check_reachable()
        except FetchError as exc:
            raise SyncAbort(f"upstream {exc}") from None
        if not self.check_mode:
            leftovers = self.state.clean_tmp()
            if leftovers:
                self.reporter.event("cleanup", removed_partial_downloads=leftovers)
            if self.state.interrupted_before:
                self._sweep_temp_files()
        for note in warnings:
            self.reporter.warning(note)
        withdrawn = self._withdraw_claimed(warnings)
        if self.config.dependencies:
            self._resolve(stats, failures, warnings)
        wanted = self._wanted_projects(warnings, stats)
        failures.extend(self._unselected_names(wanted))
        stats.projects = len(wanted)
        self.reporter.start(len(wanted))
        added: list[str] = []
        removed: list[str] = []
        deferred: list[_ProjectOutcome] = []
        changed = bool(withdrawn)
        undated = _UndatedTally()
        stale = _StaleTally(check_mode=self.check_mode)
        held_back_until: Optional[float] = None
        for outcome in self._project_outcomes(wanted):
            stats.upstream_requests += outcome.requests
            stats.files_downloaded += outcome.downloaded
            stats.files_reused += outcome.reused
            stats.files_skipped += outcome.skipped
            stats.files_refused += outcome.refused
            stats.files_failed += outcome.failed
            stats.bytes_downloaded += outcome.bytes
            if outcome.serial is not None:
                stats.serial = max(stats.serial or 0, outcome.serial)
            failures.extend(outcome.errors)
            for error in outcome.errors:
                self.reporter.failure(error)
            warnings.extend(outcome.warnings)
            for warning in outcome.warnings:
                self.reporter.warning(warning)
            undated.add(outcome.name, outcome.undated)
            stale.add(outcome.name, outcome.stale, outcome.left_out)
            if outcome.ripens is not None and outcome.ripens > self._started:  # not one a failed read left ripe
                held_back_until = outcome.ripens if held_back_until is None else min(held_back_until, outcome.ripens)
                stats.projects_held_back += 1
            added.extend(outcome.added)
            if outcome.removals:
                deferred.append(outcome)  # counted and told once the prune is settled: it may be refused
                continue
            _count_removed(outcome.withdrawn, stats, removed)
            if self._conclude(outcome, stats, len(outcome.withdrawn)):
                changed = True
        stats.held_back_until = utc_timestamp(held_back_until) if held_back_until is not None else None
        undated_warning = undated.warning()
        if undated_warning:
            warnings.append(undated_warning)
            self.reporter.warning(undated_warning)
        gone_projects = self._projects_to_drop(set(wanted), stale, stats)
        stale.projects_left_out = self._projects_left_out
        if self._listing is not None:
            stale.listing_serial = self._listing.serial
        for warning in stale.warnings():
            warnings.append(warning)
            self.reporter.warning(warning)
        if self._settle_removals(deferred, gone_projects, stats, failures, removed):
            changed = True
        if self.config.mirror_all and not self.check_mode and self._deleted_projects != self._deleted_projects_read:
            self.state.save_deleted_projects(self._deleted_projects)
        self.reporter.finish()
        if not self.check_mode:
            try:
                changed = self._finish_tree(changed, stats, synced=not failures and self.only_projects is None)
            except OSError as exc:  # a full disk, say: the projects' pages are in place, the root page as it was
                failures.append(_disk_error("root index", exc))
                self.reporter.failure(failures[-1])
        return SyncResult(stats, failures, warnings, changed, self.check_mode, sorted(added), sorted(removed),
                          plan=self._plan.to_json() if self._plan else None)

    def _conclude(self, outcome: _ProjectOutcome, stats: SyncStats, removed: int = 0) -> bool:
        """Count the project's status and the files it serves, and tell it; True if it changed."""
        if outcome.status == "failed":
            stats.projects_failed += 1
        elif outcome.status == "changed":
            stats.projects_changed += 1
        else:
            stats.projects_unchanged += 1
        files = len(outcome.published) + (len(outcome.added) if self.check_mode else 0)  # a check's are to come
        stats.files_published += files
        self.reporter.project_done(outcome.name, outcome.status, files=files,
                                   downloaded=outcome.downloaded, bytes=outcome.bytes,
                                   removed=removed or None, failed=outcome.failed or None)
        return outcome.status == "changed" or bool(outcome.withdrawn)  # a failed project may have withdrawn files

    # -- projects ---------------------------------------------------------------------------
    def _wanted_projects(self, warnings: list[str], stats: SyncStats) -> dict[str, Optional[int]]:
        """Project name -> the serial the upstream's root index lists for it (None when unknown)."""
        wanted: dict[str, Optional[int]] = {}
        if self.config.mirror_all:
            try:
                listing = self.upstream.project_list()
            except FetchError as exc:
                raise SyncAbort(f"upstream project list: {exc}") from None
            stats.upstream_requests += 1
            self._listing = listing
            if not listing.projects:
                raise SyncAbort(f"upstream {redact(self.config.upstream)}: its root index lists no project, so a "
                                f"full mirror has nothing to follow; nothing synced; "
                                f"{not_an_index(self.config.upstream, named=False)}")
            for raw_name, serial in listing.projects:
                try:
                    wanted[normalize_project(raw_name)] = serial
                except UnsafeName as exc:
                    warnings.append(f"upstream root index: {exc}")
            self._leave_out_deleted_projects(wanted, listing)
        for name in self._rules:
            if self.config.is_claimed(name):
                note = f"{name} is claimed by the private index; not mirrored from the upstream"
                warnings.append(note)
                self.reporter.warning(note)
            wanted.setdefault(name, None)
        for name in self._quarantined:  # no resolution keeps it, and yet what is mirrored of it must go
            if self._load_record(name) is not None:
                wanted.setdefault(name, None)
        return {name: serial for name, serial in sorted(wanted.items())
                if not self.config.withheld(name)
                and (self.only_projects is None or name in self.only_projects)}

    def _leave_out_deleted_projects(self, wanted: dict[str, Optional[int]], listing: ProjectListing) -> None:
        """Drop from a full mirror's list the projects prune removed because a newer list than this one no
        longer named them; forget those that a list as new names again (or any, with force_prune)."""
        self._deleted_projects_read = self.state.load_deleted_projects()
        self._deleted_projects = dict(self._deleted_projects_read)
        for name, serial in list(self._deleted_projects.items()):
            if name not in wanted:
                continue
            if not self.config.force_prune and listing.serial is not None and listing.serial < serial:
                del wanted[name]
                self._projects_left_out.append(name)
            else:
                del self._deleted_projects[name]

    def _unselected_names(self, wanted: dict[str, Optional[int]]) -> list[str]:
        """A failure for each name a run over some projects was given that this config does not select: a typo
        in `--project` must not pass for a project brought up to date."""
        failures = [f"project {name}: not selected by this config, so not synced"
                    for name in sorted((self.only_projects or set()) - set(wanted))]
        for failure in failures:
            self.reporter.failure(failure)
        return failures

    # -- names a private index claims -------------------------------------------------------
    def _read_claims(self, warnings: list[str]) -> None:
        if not self.config.private_directory:
            return
        try:
            claims = read_claims(self.config.private_directory)
        except ClaimsUnreadable as exc:
            raise SyncAbort(f"{exc}; nothing synced, since the names the private index claims are unknown") from None
        for path in claims.unreadable_files:
            warnings.append(f"private_directory: no project name in {path!r}; that file claims nothing")
        self.config = dataclasses.replace(self.config, claimed=claims.names)
        self.reporter.event("claims", private_projects=len(claims.names))

    def _withdraw_claimed(self, warnings: list[str]) -> list[str]:
        """Take down the mirrored pages of claimed names at once, prune or not: clients must never get them."""
        simple = os.path.join(self.state.web, "simple")
        if not (self.config.claimed or self.config.private_projects) or not os.path.isdir(simple):
            return []
        withdrawn = sorted(entry.name for entry in os.scandir(simple)
                           if entry.is_dir() and self.config.is_claimed(entry.name))
        for name in withdrawn:
            note = f"{name}: withdrew the mirrored page; the private index claims the name"
            warnings.append(note)
            self.reporter.warning(note)
            if not self.check_mode:
                self.publisher.remove_project(name)
        return withdrawn

    def _project_outcomes(self, wanted: dict[str, Optional[int]]) -> Iterator[_ProjectOutcome]:
        """Every wanted project's outcome, as each finishes. Projects that left large files for later come once
        those files are fetched by all processes together: after the projects read so far, in rounds of at
        most SHARE_AFTER_BYTES of large files, so that none waits for the whole run."""
        names = list(wanted)
        while names:
            untaken: list[str] = []
            yield from self._round(names, wanted, untaken)
            names = untaken

    def _round(self, names: list[str], wanted: dict[str, Optional[int]],
               untaken: list[str]) -> Iterator[_ProjectOutcome]:
        pending: list[_ProjectOutcome] = []
        pending_bytes = 0

        def enough() -> bool:
            return pending_bytes >= SHARE_AFTER_BYTES

        for outcome in self._read_and_fetch(names, wanted, enough, untaken):
            if outcome.pending is None:
                yield outcome
            else:
                pending.append(outcome)
                pending_bytes += outcome.pending.waiting_bytes()
        if pending:
            yield from self._finish_pending(pending)

    def _read_and_fetch(self, names: list[str], wanted: dict[str, Optional[int]], stop: Callable[[], bool],
                        untaken: list[str]) -> Iterator[_ProjectOutcome]:
        """Outcomes of the named projects as each finishes: in this process, or shared among processes. In
        processes, once stop() is true no new project is started; those never started go to untaken."""
        processes = self._process_count(len(names))
        if processes == 1:
            yield from self._outcomes_here(iter(names), wanted, self.config.workers)
            return
        workers_each = -(-self.config.workers // processes)
        self.reporter.event("processes", processes=processes, workers_each=workers_each)

        def work(names: Iterator[str]) -> Iterator[tuple[str, _ProjectOutcome]]:
            self._reconnect()  # the parent's pooled connections stay the parent's
            return ((outcome.name, outcome) for outcome in self._outcomes_here(names, wanted, workers_each))

        for name, result in map_in_processes(work, names, processes, stop, untaken):
            if isinstance(result, Lost):
                self._workers_lost = True
                yield _ProjectOutcome(name, "failed", errors=[f"project {name}: not synced: {result.reason}"])
            else:
                yield result

    def _sweep_temp_files(self) -> None:
        removed = self.state.sweep_temp_files()
        if removed:
            self.reporter.event("cleanup", removed_partial_pages=removed)

    def _process_count(self, units: int) -> int:
        wanted = self.config.processes or usable_cpus()
        return max(1, min(wanted, self.config.workers, units))

    def _defers(self, upstream_file: UpstreamFile, trusted: Optional[PublishedFile]) -> bool:
        """Whether a file is left for the shared phase: a large download, when there are processes to share."""
        return ((upstream_file.size or 0) >= LARGE_FILE_BYTES and self._process_count(2) > 1
                and not self.fetcher.in_place(upstream_file, trusted, self.rehash))

    def _finish_pending(self, pending: list[_ProjectOutcome]) -> Iterator[_ProjectOutcome]:
        """Fetch the large files the projects left, shared among processes, and publish each project as soon
        as its last one is in. This process runs no thread when it forks: the first phase's pools are closed."""
        jobs = [(number, index) for number, outcome in enumerate(pending) for index in outcome.pending.waiting()]
        left = collections.Counter(number for number, _ in jobs)  # files each project still waits for
        processes = self._process_count(len(jobs))
        self.reporter.event("large_files", files=len(jobs), processes=processes)

        def fetch(job: tuple[int, int]) -> tuple[tuple[int, int], FetchOutcome]:
            state = pending[job[0]].pending
            upstream_file = state.chosen[job[1]]
            try:
                return job, self.fetcher.fetch(upstream_file, state.previous.get(upstream_file.filename), self.rehash)
            except Exception as exc:  # one file's surprise fails that file, not the run
                return job, FetchOutcome(error=f"{upstream_file.filename}: internal error {type(exc).__name__}: {exc}")

        if processes == 1:
            fetched: Iterable[tuple[tuple[int, int], Any]] = _map_bounded(
                fetch, iter(jobs), self.config.workers, self.config.workers)
        else:
            # Each process takes only its share at first, so the first to start does not take every file.
            in_flight = min(-(-self.config.workers // processes), -(-len(jobs) // processes))

            def work(keys: Iterator[tuple[int, int]]) -> Iterator[tuple[tuple[int, int], FetchOutcome]]:
                self._reconnect()
                return _map_bounded(fetch, keys, in_flight, in_flight)

            fetched = map_in_processes(work, jobs, processes)
        for (number, index), answer in fetched:
            state = pending[number].pending
            if isinstance(answer, Lost):
                self._workers_lost = True
                state.results[index] = FetchOutcome(error=f"{state.chosen[index].filename}: not fetched: "
                                                          f"{answer.reason}")
            else:
                state.results[index] = answer
            left[number] -= 1
            if not left[number]:
                outcome = pending[number]
                outcome.pending = None
                _contained(outcome, functools.partial(self._conclude_selection, outcome, state))
                yield outcome

    def _reconnect(self) -> None:
        self.http = self.http.fresh()
        self.upstream = Upstream(self.http, self.config.upstream)
        self.fetcher.http = self.http

    def _outcomes_here(self, names: Iterator[str], wanted: dict[str, Optional[int]],
                       workers: int) -> Iterator[_ProjectOutcome]:
        with concurrent.futures.ThreadPoolExecutor(workers, "fetch") as file_pool:
            self._file_pool = file_pool
            yield from _map_bounded(lambda name: self._process_project(name, wanted[name]), names, workers,
                                    workers * 2)

    def _process_project(self, name: str, listed_serial: Optional[int]) -> _ProjectOutcome:
        outcome = _ProjectOutcome(name, "unchanged")
        _contained(outcome, lambda: self._sync_project(name, listed_serial, outcome))
        return outcome

    def _sync_project(self, name: str, listed_serial: Optional[int], outcome: _ProjectOutcome) -> None:
        record = self._load_record(name)
        rule = self._rules.get(name)
        fingerprint = self.config.selection_fingerprint(rule)
        outcome.ripens = _recorded_ripens(record)  # unless it is selected again below
        settled = bool(record and record.get("complete") and record.get("fingerprint") == fingerprint
                       and not self.rehash and not _ripe(record, self._started) and os.path.isfile(
                           os.path.join(self.publisher.project_dir(name), "index.html")))
        if settled:
            outcome.published = list(recorded_files(record).values())
        if settled and listed_serial is not None and record.get("serial") == listed_serial:
            outcome.serial = listed_serial  # the root index says nothing moved: not even a request
            status = _recorded_status(record)
            if status is not None and status.quarantined:
                self._tell_quarantine(name, rule, status, outcome)  # still asked for by name
            return
        cached_page = _recorded_page(record)
        with self._page_lock:
            answer = self._answers.pop(name, None)
        if answer is None:
            outcome.requests += 1
            answer = self._ask_upstream(name, cached_page)
        if isinstance(answer, NotModified):
            page = cached_page
            if answer.serial is not None:
                page.serial = answer.serial
        else:
            page = answer
            settled = (settled and cached_page is not None and cached_page.files == page.files
                       and cached_page.status == page.status)
        outcome.serial = page.serial
        if settled:
            newest_serial = self._newest_serial(record, page.serial)
            updated = {**record, "page": page.to_json(), "serial": page.serial,  # new validators, same content
                       "newest_serial": newest_serial}
            if updated != record and not self.check_mode:  # an upstream with no validators sends the same again
                self.state.save_project(name, updated)
        elif rule is not None and not page.quarantined and not any(package_type(f.filename) for f in page.files):
            # a project the config names, with no file at all: most likely not the index's page (a proxy whose
            # login expired answers every address with its sign-in page), and pip would find nothing in it
            outcome.status = "failed"
            outcome.published = list(recorded_files(record).values())  # its page, left as it was, serves them
            outcome.errors.append(f"project {name}: the upstream's page for it lists no package file, so its page "
                                  f"here is left as it was; {not_an_index(self.config.upstream)}")
            return
        else:
            self._apply_selection(name, rule, page, record, fingerprint, outcome)
        if page.quarantined:
            assert page.status is not None
            self._tell_quarantine(name, rule, page.status, outcome)

    def _tell_quarantine(self, name: str, rule: Optional[ProjectRule], status: ProjectStatus,
                         outcome: _ProjectOutcome) -> None:
        """A failure on every run for a project the config asks for, which no client can install now; for
        another (a full mirror's), a warning when its files are withdrawn."""
        withdrawn = len(outcome.withdrawn)
        said = f"project {name}: {quarantine_note('it', status)}"
        if withdrawn:
            verb = "would withdraw" if self.check_mode else "withdrew"
            said += f"; {verb} the {counted(withdrawn, 'file')} mirrored here"
        if rule is not None:
            outcome.status = "failed"
            outcome.errors.append(f"{said}; take it out of the config until the upstream lifts the quarantine")
        elif withdrawn:
            outcome.warnings.append(said)

    def _apply_selection(self, name: str, rule: Optional[ProjectRule], page: ProjectPage,
                         record: Optional[dict[str, Any]], fingerprint: str, outcome: _ProjectOutcome) -> None:
        selection: Selection = select_files(page.files, name, rule, self.config, self.matrix)
        outcome.skipped += selection.skipped
        outcome.refused += len(selection.refused)
        # no "no file matches the config" for a quarantined project: the error says why
        outcome.warnings.extend(selection.refused + ([] if page.quarantined else selection.uncovered)
                                + selection.contradicted)
        outcome.undated = selection.undated
        outcome.ripens = selection.ripens
        previous = recorded_files(record)
        deleted = _recorded_deletions(record)
        holding = _deletions_holding(deleted, page, self.config.force_prune)
        chosen = [f for f in selection.chosen if f.filename not in holding]  # an older page does not bring them back
        outcome.left_out = sorted(f.filename for f in selection.chosen if f.filename in holding)
        new_names = [f.filename for f in chosen if f.filename not in previous]
        newest_serial = self._newest_serial(record, page.serial)
        stale = self._stale(page, newest_serial)
        if self.check_mode:
            outcome.added = new_names
            outcome.downloaded = len(new_names)
            outcome.bytes = sum(f.size or 0 for f in chosen if f.filename not in previous)
            chosen_names = {f.filename for f in chosen}
            dropped = [p for n, p in previous.items() if n not in chosen_names]
            if page.quarantined:
                outcome.withdrawn = dropped
            elif stale and dropped:
                outcome.stale = _StalePage(page.serial, newest_serial, len(dropped))
            elif self._pruning:
                outcome.removals = dropped
            restated = page.status != _recorded_status(record)  # its pages would tell a new status
            outcome.status = ("changed" if new_names or outcome.withdrawn or outcome.removals or restated
                              else "unchanged")
            # what it serves and keeps; with outcome.added, what a real run would publish
            outcome.published = [p for n, p in previous.items()
                                 if n in chosen_names or not (outcome.removals or outcome.withdrawn)]
            return
        state = _Pending(chosen, previous, self._fetch_all(chosen, previous), page, fingerprint,
                         selection.ripens, newest_serial, stale,
                         _deletions_kept(deleted, page, holding))
        if state.waiting():
            outcome.pending = state  # published when its large files are in (see _finish_pending)
            return
        self._conclude_selection(outcome, state)

    def _conclude_selection(self, outcome: _ProjectOutcome, state: _Pending) -> None:
        """Count the fetched files, keep what the project still serves, and publish its pages."""
        name, previous, page = outcome.name, state.previous, state.page
        published: dict[str, PublishedFile] = {}
        for upstream_file, result in zip(state.chosen, state.results):
            assert result is not None
            outcome.unsynced.extend(result.unsynced)
            if result.published:
                published[upstream_file.filename] = result.published
                if result.downloaded:
                    outcome.downloaded += 1
                    outcome.added.append(upstream_file.filename)
                else:
                    outcome.reused += 1
                outcome.bytes += result.downloaded_bytes
            elif result.skipped_reason:
                outcome.skipped += 1
            else:
                outcome.failed += 1
                outcome.errors.append(f"project {name}: {result.error}")
                if upstream_file.filename in previous:  # keep the verified copy we already serve
                    published[upstream_file.filename] = previous[upstream_file.filename]
        kept = 0  # files a stale page no longer lists
        for filename, old in previous.items():
            if filename in published:
                continue
            if page.quarantined:  # withdrawn as the upstream withdrew them (PEP 792), prune or not
                outcome.withdrawn.append(old)
            elif self._pruning and not state.stale:
                outcome.removals.append(old)
            elif os.path.isfile(os.path.join(self.state.web, old.path)):
                published[filename] = old
                if state.stale:
                    kept += 1
        if kept:
            outcome.stale = _StalePage(page.serial, state.newest_serial, kept)
        deleted = dict(state.deleted)
        if page.serial is not None:  # what prune removes because the upstream deleted it must not come back
            listed = {f.filename for f in page.files}
            deleted.update((old.upstream.filename, page.serial) for old in outcome.removals
                           if old.upstream.filename not in listed)
        outcome.published = list(published.values())
        # a project that serves more than its page lists, or less (files deleted since), is selected again on the
        # next run, which prunes it or takes them then if its page is no longer stale (or with force_prune), and
        # says again why not if it is
        complete = not outcome.failed and not kept and not outcome.left_out
        outcome.record = {
            "name": name, "fingerprint": state.fingerprint, "complete": complete, "serial": page.serial,
            "newest_serial": state.newest_serial,
            # A project with failures forgets its validators so the next run reads it again in full.
            "page": page.to_json() if complete else {**page.to_json(), "etag": None, "last_modified": None},
            "published": [_published_to_json(p) for p in outcome.published],
        }
        if deleted:
            outcome.record["deleted"] = _newest_deletions(deleted)
        if state.ripens is not None:  # then the project is selected again, its page changed or not
            outcome.record["ripens"] = state.ripens
        if not outcome.removals:
            try:
                self._commit_project(name, outcome, page.serial)
            except BaseException:
                outcome.withdrawn = []  # its old pages stay, and every file they name
                raise
            # once the pages that named them are gone; no other project names them, their names begin with its
            self._delete_files(outcome.withdrawn)
        outcome.status = "failed" if outcome.errors else (
            "changed" if outcome.page_written or outcome.removals or outcome.withdrawn or outcome.added
            else "unchanged")

    def _commit_project(self, name: str, outcome: _ProjectOutcome, serial: Optional[int]) -> None:
        """Pages first (their files exist by now), then the record that says they are done.

        The files, the new pages and the record are made durable together, by one group sync (durable.py),
        before the first rename: a journal commit for the project and the others committing meanwhile, not
        one for each page."""
        if not outcome.published and outcome.failed:
            return  # nothing could be fetched: no empty page that would hide the project from clients
        try:
            self._stage_and_rename(name, outcome, serial)
        except BaseException:
            self.publisher.remove_empty_project_dir(name)  # a first commit that failed leaves no trace
            outcome.published = list(recorded_files(self._load_record(name)).values())  # what is served still
            raise

    def _stage_and_rename(self, name: str, outcome: _ProjectOutcome, serial: Optional[int]) -> None:
        """Stage the pages and the record, make them durable with the files, then rename them in order."""
        pages = self.publisher.stage_project(name, outcome.published, serial, _recorded_status(outcome.record))
        staged = [*pages]
        try:
            staged.append(self.state.stage_project(name, outcome.record))
            self.fetcher.make_durable([*outcome.unsynced, *(write.unsynced() for write in staged)])
        except BaseException:
            discard_staged(staged)
            raise
        outcome.unsynced = []
        rename_staged(staged)  # removes the rest itself if one fails
        outcome.page_written = bool(pages)

    def _fetch_all(self, chosen: list[UpstreamFile],
                   previous: dict[str, PublishedFile]) -> list[Optional[FetchOutcome]]:
        """Fetch the chosen files, except large downloads left for the shared phase (None)."""
        assert self._file_pool is not None
        futures = [None if self._defers(f, previous.get(f.filename))
                   else self._file_pool.submit(self.fetcher.fetch, f, previous.get(f.filename), self.rehash)
                   for f in chosen]
        return [future and future.result() for future in futures]

    def _load_record(self, name: str) -> Optional[dict[str, Any]]:
        return _usable_record(self.state.load_project(name), name)

    def _ask_upstream(self, name: str, cached_page: Optional[ProjectPage]) -> ProjectPage | NotModified:
        """The project's page, conditionally on the validators of the copy on record."""
        return self.upstream.project(name, cached_page.etag if cached_page else None,
                                     cached_page.last_modified if cached_page else None)

    # -- dependency resolution --------------------------------------------------------------
    def _read_page_for_plan(self, name: str) -> ProjectPage:
        """One conditional request per project, whose answer the sync of that project then uses."""
        cached_page = _recorded_page(self._load_record(name))
        answer = self._ask_upstream(name, cached_page)
        page = cached_page if isinstance(answer, NotModified) else answer
        with self._page_lock:
            self._answers[name] = answer
            self._plan_requests += 1
            if page.quarantined:
                self._quarantined.add(name)
        return page

    def _resolve(self, stats: SyncStats, failures: list[str], warnings: list[str]) -> None:
        # Imported here: only a run that resolves dependencies needs resolvelib, packaging.metadata and tarfile,
        # and every run would pay for importing them (about 13 ms of the engine's 0.15 s start).
        from .metadata import MetadataReader  # noqa: PLC0415
        from .resolve import Planner, ProjectReleases  # noqa: PLC0415

        self._plan_requests = 0
        with contextlib.ExitStack() as scratch:
            fetcher = self.fetcher
            if self.check_mode:  # nothing under the mirror: metadata downloads go to a scratch directory
                fetcher = Fetcher(self.http, self.state.web,
                                  scratch.enter_context(tempfile.TemporaryDirectory(prefix="localpypi-check-")), None)
            # check mode reads what earlier runs learnt (else it would download it all again) and writes nothing
            reader = MetadataReader(self.http, fetcher, os.path.join(self.state.state, "metadata"),
                                    save=not self.check_mode)
            planner = Planner(self.config, self.matrix, ProjectReleases(self._read_page_for_plan, self.config),
                              reader)
            started = time.time()
            plan = planner.plan()
        stats.upstream_requests += self._plan_requests + reader.requests
        stats.projects_resolved = len(plan.rules)
        self._plan = plan
        self._rules = plan.rules
        for error in plan.errors:
            failures.append(error)
            self.reporter.failure(error)
        for warning in plan.warnings:
            warnings.append(warning)
            self.reporter.warning(warning)
        if plan.errors and self.config.prune:
            note = "prune skipped this run: the resolution has errors, so it may have missed releases still needed"
            warnings.append(note)
            self.reporter.warning(note)
        self.reporter.event("resolve", mode=self.config.resolution, targets=len(self.matrix.targets),
                            projects=len(plan.rules), errors=len(plan.errors),
                            requests=self._plan_requests + reader.requests,
                            seconds=round(time.time() - started, 3))
        if not self.check_mode:
            self.state.save_plan(plan.to_json())

    # -- prune ------------------------------------------------------------------------------
    @property
    def _pruning(self) -> bool:
        """Prune only on a complete picture: a resolution with errors may have missed what is still needed."""
        return self.config.prune and not (self._plan is not None and self._plan.errors)

    def _projects_to_drop(self, wanted: set[str], stale: _StaleTally, stats: SyncStats) -> list[str]:
        """The recorded projects that prune removes; those an older project list lacks are kept, and counted
        among the projects the mirror serves, unchanged."""
        if not self._pruning or self.only_projects is not None:
            return []
        gone = [name for name in self.state.recorded_projects() if name not in wanted]
        listing = self._listing
        if listing is not None and listing.serial is not None:  # on record once removed (_settle_removals)
            self._removing_deleted = {name: listing.serial for name in gone  # not withheld: not on the list
                                      if not self.config.withheld(name)}
        if listing is None or listing.serial is None or self.config.force_prune:
            return gone
        dropped = []
        for name in gone:  # one the config now leaves out goes; one an older list lacks may have come since it
            record = self._load_record(name)
            newest = _recorded_newest(record)
            if not self.config.withheld(name) and newest is not None and newest > listing.serial:
                stale.gone.append(name)
                stats.projects += 1
                stats.projects_unchanged += 1
                stats.files_published += len(recorded_files(record))
            else:
                dropped.append(name)
        return dropped

    def _stale(self, page: ProjectPage, newest_serial: Optional[int]) -> bool:
        """Whether prune must keep what the page no longer lists: it is older than one this mirror synced. Never
        with force_prune, which makes the page's serial the newest."""
        return (self._pruning and page.serial is not None and newest_serial is not None
                and page.serial < newest_serial)

    def _newest_serial(self, record: Optional[dict[str, Any]], page_serial: Optional[int]) -> Optional[int]:
        """The newest serial of the project's page this mirror has synced; with force_prune, the page's: the
        operator says this upstream is the one to follow now, whatever its serials."""
        recorded = _recorded_newest(record)
        if page_serial is None:
            return recorded
        if recorded is None or self.config.force_prune:
            return page_serial
        return max(recorded, page_serial)

    def _settle_removals(self, deferred: list[_ProjectOutcome], gone_projects: list[str], stats: SyncStats,
                         failures: list[str], removed_names: list[str]) -> bool:
        gone_records = {name: self._load_record(name) for name in gone_projects}
        removals = _removals(deferred, gone_records)
        if not removals:
            return False
        total = self._count_mirror_files()
        fraction = len(removals) / max(total, 1)
        allowed = fraction <= self.config.prune_max_fraction or self.config.force_prune
        if not allowed:
            message = (f"prune refused: it would delete {len(removals)} of {total} files "
                       f"({fraction:.0%} > prune_max_fraction {self.config.prune_max_fraction:.0%}); "
                       "check the config, then rerun with force_prune to allow it")
            failures.append(message)
            self.reporter.failure(message)
        changed = False
        for outcome in deferred:
            if not allowed:  # keep serving what would have gone (a check's outcome has no record)
                outcome.published = outcome.published + outcome.removals
                if not self.check_mode:
                    outcome.record["published"] = [_published_to_json(p) for p in outcome.published]
                    outcome.record["complete"] = False
                    deleted = outcome.record.pop("deleted", {})
                    for refused in outcome.removals:  # still served: not deleted here
                        deleted.pop(refused.upstream.filename, None)
                    if deleted:
                        outcome.record["deleted"] = deleted
            if not self.check_mode:
                self._commit_deferred(outcome, failures)
            if not allowed and outcome.status == "changed" and not (outcome.page_written or outcome.added):
                outcome.status = "unchanged"  # its removals were its only change, and they are refused
            if self._conclude(outcome, stats, len(outcome.removals) if allowed else 0):
                changed = True
        # nothing when refused; else less the removals of a page that could not be written
        removals = _removals(deferred, gone_records) if allowed else []
        if not removals:
            return changed
        still_referenced = self._referenced_paths(exclude=set(gone_records))
        for name in gone_records:
            stats.projects_removed += 1
            if not self.check_mode:
                self.publisher.remove_project(name)
                self.state.forget_project(name)
                if name in self._removing_deleted:  # an older list that names it must not bring it back
                    self._deleted_projects[name] = self._removing_deleted[name]
        _count_removed(removals, stats, removed_names)
        self._delete_files([p for p in removals if p.path not in still_referenced])
        self.reporter.event("prune", files=len(removals), projects=len(gone_records))
        return True

    def _delete_files(self, removals: list[PublishedFile]) -> None:
        """Delete files no page names any more, with their metadata files and emptied hash directories."""
        if self.check_mode:
            return
        for published in removals:
            path = os.path.join(self.state.web, published.path)
            remove_if_present(path)
            remove_if_present(path + ".metadata")
            self._remove_empty_parents(os.path.dirname(path))

    def _commit_deferred(self, outcome: _ProjectOutcome, failures: list[str]) -> None:
        """Publish the narrowed pages of a project that prunes; if they cannot be written, the project fails
        alone, and its old pages, with every file they name, stay."""
        errors_before = len(outcome.errors)
        _contained(outcome, lambda: self._commit_project(outcome.name, outcome, outcome.record.get("serial")))
        if len(outcome.errors) == errors_before:
            return
        outcome.removals = []
        for error in outcome.errors[errors_before:]:
            failures.append(error)
            self.reporter.failure(error)

    def _referenced_paths(self, exclude: set[str]) -> set[str]:
        """Paths still named by some project's record (a file may be shared by two projects)."""
        referenced: set[str] = set()
        for name in self.state.recorded_projects():
            if name not in exclude:
                record = self._load_record(name)
                referenced.update(p.path for p in recorded_files(record).values())
        return referenced

    def _count_mirror_files(self) -> int:
        packages = os.path.join(self.state.web, "packages")
        count = 0
        for _, _, files in os.walk(packages):
            count += sum(1 for f in files if not f.endswith(".metadata"))
        return count

    def _remove_empty_parents(self, directory: str) -> None:
        packages = os.path.join(self.state.web, "packages")
        while directory.startswith(packages + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)

    # -- root -------------------------------------------------------------------------------
    def _finish_tree(self, changed: bool, stats: SyncStats, synced: bool) -> bool:
        """The root pages; web/last-modified when the run synced all it follows; then the temp files nothing
        kept. True if the tree changed: the time alone is no change.

        web/last-modified tells when the last successful sync began, as PEP 381 and bandersnatch have it: a
        monitor that reads it over HTTP learns that the mirror is current, and so a run that found nothing new
        writes it too, and a failed one or one over some projects only does not."""
        if self._write_root(stats.serial):
            changed = True
        if synced:
            self.publisher.write_last_modified(self._started)
        self.state.clean_tmp()  # files staged for metadata that no selection kept
        if self._workers_lost:  # a worker process that died may have been writing a page
            self._sweep_temp_files()
        return changed

    def _write_root(self, serial: Optional[int]) -> bool:
        """The root pages; a run over some projects only never lowers the serial that the page already has."""
        if self.only_projects is not None:
            serial = max((s for s in (serial, self.publisher.root_serial()) if s is not None), default=None)
        simple = os.path.join(self.state.web, "simple")
        projects = [entry.name for entry in os.scandir(simple)
                    if entry.is_dir() and os.path.isfile(os.path.join(entry.path, "index.html"))]
        return self.publisher.write_root(projects, serial)


def _removals(deferred: list[_ProjectOutcome],
              gone_records: dict[str, Optional[dict[str, Any]]]) -> list[PublishedFile]:
    """What a prune removes: the files the projects' new pages drop, and all of the projects that go."""
    removals = [published for outcome in deferred for published in outcome.removals]
    for record in gone_records.values():
        removals.extend(recorded_files(record).values())
    return removals


def _count_removed(removals: list[PublishedFile], stats: SyncStats, removed_names: list[str]) -> None:
    """Count files a run removes (pruned, or withdrawn for a quarantine) in its stats and its list of names."""
    for published in removals:
        removed_names.append(published.upstream.filename)
        stats.files_removed += 1
        stats.bytes_removed += published.size


def _recorded_newest(record: Optional[dict[str, Any]]) -> Optional[int]:
    """The newest serial on record (records written before it was kept have the serial of their page)."""
    for key in ("newest_serial", "serial"):
        value = record.get(key) if record else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _recorded_deletions(record: Optional[dict[str, Any]]) -> dict[str, int]:
    """The files prune removed because the upstream deleted them: filename -> the serial of the first page that
    no longer listed them. A page older than that which lists one again (an older carried disk, a lagging
    cache) does not bring it back; force_prune, or a page as new, does."""
    return serials_by_name(record.get("deleted") if record else None)


def _deletions_holding(deleted: dict[str, int], page: ProjectPage, forced: bool) -> dict[str, int]:
    """The deletions the page is older than, which keep the files it lists out; none with force_prune, or for a
    page without a serial to compare."""
    if forced or page.serial is None:
        return {}
    return {name: serial for name, serial in deleted.items() if page.serial < serial}


def _deletions_kept(deleted: dict[str, int], page: ProjectPage, holding: dict[str, int]) -> dict[str, int]:
    """The deletions still on record once the page is read: those it does not list, and those it is older than
    (holding). One that any other page lists again is forgotten: the upstream has the file again."""
    listed = {f.filename for f in page.files}
    return {name: serial for name, serial in deleted.items() if name not in listed or name in holding}


_DELETIONS_KEPT = 1000  # per project: an index that deletes every old dev build would grow the record for ever


def _newest_deletions(deleted: dict[str, int]) -> dict[str, int]:
    return dict(sorted(deleted.items(), key=lambda item: (item[1], item[0]))[-_DELETIONS_KEPT:])


def _recorded_ripens(record: Optional[dict[str, Any]]) -> Optional[float]:
    ripens = record.get("ripens") if record else None
    return ripens if isinstance(ripens, (int, float)) and not isinstance(ripens, bool) else None


def _ripe(record: Optional[dict[str, Any]], now: float) -> bool:
    """A file that exclude_newer left out as too new is old enough now."""
    ripens = _recorded_ripens(record)
    return ripens is not None and ripens <= now


def _recorded_status(record: Optional[dict[str, Any]]) -> Optional[ProjectStatus]:
    """The status of the page on record, read without the files: what the project's pages tell (PEP 792)."""
    page = record.get("page") if record else None
    return ProjectStatus.from_json(page.get("status")) if isinstance(page, dict) else None


def _disk_error(what: str, exc: OSError) -> str:
    return f"{what}: cannot write it: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")


def _contained(outcome: _ProjectOutcome, action: Callable[[], None]) -> None:
    """Run one project's work; whatever it raises fails that project, with a reason, and not the run."""
    try:
        action()
    except FetchError as exc:
        outcome.status = "failed"
        outcome.errors.append(str(exc))
    except OSError as exc:
        outcome.status = "failed"
        outcome.errors.append(f"project {outcome.name}: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    except Exception as exc:  # one project's surprise must not stop the others; it is reported
        outcome.status = "failed"
        outcome.errors.append(f"project {outcome.name}: internal error {type(exc).__name__}: {exc}")


def _map_bounded(function: Callable[[Key], Result], keys: Iterator[Key], threads: int,
                 in_flight: int) -> Iterator[Result]:
    """function over keys on `threads` threads, with at most `in_flight` keys taken (no unbounded futures;
    a key taken from a shared counter is one no other process can take)."""
    with concurrent.futures.ThreadPoolExecutor(threads, "work") as pool:
        running: set[concurrent.futures.Future] = set()
        for key in keys:
            running.add(pool.submit(function, key))
            if len(running) >= in_flight:
                done, running = concurrent.futures.wait(running, return_when="FIRST_COMPLETED")
                yield from (future.result() for future in done)
        for future in concurrent.futures.as_completed(running):
            yield future.result()


def run_sync(config: SyncConfig, reporter: Optional[Reporter] = None, **options: Any) -> SyncResult:
    return SyncRun(config, reporter or Reporter(quiet=True), **options).run()
