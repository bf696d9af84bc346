"""What the engine remembers between runs: the lock, per-project records, the last run's stats."""

from __future__ import annotations

import calendar
import contextlib
import errno
import fcntl
import json
import os
import pwd
import re
import tempfile
import time
from typing import Any, NamedTuple, Optional, Sequence

from .durable import Unsynced

STATE_DIR = "state"
WEB_DIR = "web"
TMP_DIR = "tmp"
TEMP_PREFIX = ".tmp-"  # atomic_write's temp files, beside the file they replace
PUBLIC_DIRECTORY_MODE = 0o755  # what the web server, another user, needs of each directory under web/


class LockBusy(RuntimeError):
    pass


def process_umask() -> int:
    """The umask, read without changing it (os.umask would, for a moment, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o777  # unknown: assume the worst, so every file is chmod-ed explicitly


def make_public_directories(path: str) -> None:
    """os.makedirs, with each directory it creates 0755 whatever the umask (files are made 0644 the same way).

    A run with a strict umask (027 on a hardened host, inherited through sudo) made them 0750, and the web
    server, which is not in the service user's group, answered 403 for every page and file in them.
    """
    if not path or os.path.isdir(path):  # "": the current directory, above a relative path's first part
        return
    parent = os.path.dirname(path)
    if parent != path:
        make_public_directories(parent)
    try:
        os.mkdir(path, PUBLIC_DIRECTORY_MODE)
    except FileExistsError:
        return  # made meanwhile by another thread; or a file, on which the caller's next step fails
    os.chmod(path, PUBLIC_DIRECTORY_MODE)


_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"
# the line lock() writes into the lock file; a line without the task is a sync's, as before exports
_LOCK_HOLDER = re.compile(r"pid (\d+) since (\S+)(?: (.+))?")
_LOCK_LINE_MAX = 1000  # bytes of the lock file read: the line, with an export's path
SYNC_TASK = "sync"


def utc_timestamp(seconds: Optional[float] = None) -> str:
    """2026-11-27T02:08:18Z: how records and the lock say when."""
    return time.strftime(_TIMESTAMP, time.gmtime(seconds))


def timestamp_seconds(timestamp: Any) -> Optional[float]:
    """A record's utc_timestamp as seconds since the epoch; None if it is not one."""
    try:
        return float(calendar.timegm(time.strptime(str(timestamp), _TIMESTAMP)))
    except ValueError:
        return None


def remove_if_present(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class LockHolder(NamedTuple):
    """The run a lock file names: the process, since when, whether that process still runs, and what it does."""

    pid: str
    since: str
    running: bool  # False: a run killed, or cut short by a restart, that no run has followed
    task: str = SYNC_TASK  # or "export to /media/disk/pypi": what holds the mirror when no sync can run

    @property
    def doing(self) -> str:
        """" (export to /media/disk/pypi)" after the pid, when what holds the lock is no sync."""
        return "" if self.task == SYNC_TASK else f" ({self.task})"

    @property
    def to_finish(self) -> str:
        """What finishes the work of a holder killed (running False)."""
        return ("the next run takes up its work" if self.task == SYNC_TASK else
                "its disk holds part of that export (pages that name only files it holds): export again")


def serials_by_name(value: Any) -> dict[str, int]:
    """A {name: serial} mapping as a record holds it (deletions: a file's, a project's), without what is not one."""
    if not isinstance(value, dict):
        return {}
    return {name: serial for name, serial in value.items()
            if isinstance(name, str) and isinstance(serial, int) and not isinstance(serial, bool)}


def _holder_fields(line: str) -> Optional[tuple[str, str, str]]:
    """(pid, since, task) of a lock file's line; a line without a task is a sync's."""
    found = _LOCK_HOLDER.match(line.strip())
    return (found.group(1), found.group(2), found.group(3) or SYNC_TASK) if found else None


def _held_by(line: str, root: str) -> str:
    """Who holds the lock, as a sync or an export that finds it held says: "an export to /media/disk/pypi holds
    the lock on /srv/pypi (pid 4242 since 2026-11-28T02:00:00Z)"."""
    fields = _holder_fields(line)
    if fields is None:
        return f"another sync holds the lock on {root} ({line or 'another process'})"
    pid, since, task = fields
    return f"{'another sync' if task == SYNC_TASK else 'an ' + task} holds the lock on {root} (pid {pid} since {since})"


def _holder_runs(pid: int, since: Optional[float]) -> bool:
    """False when no process has the pid, or when the one that has it started after the lock was taken (since):
    the pid went to another process after the run ended, as it does after a reboot, where pids start again
    low. A process of another user, or one not to be asked about, counts as running."""
    if pid <= 0:  # kill(0) would ask about this process group, not a process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    started = process_start_seconds(pid)
    return started is None or since is None or started <= since + _START_SLACK_SECONDS


# the lock's time is in whole seconds, and the kernel's boot time too: a holder may seem to start that much later
_START_SLACK_SECONDS = 5


def process_start_seconds(pid: int) -> Optional[float]:
    """When the process started, in seconds since the epoch, from Linux's /proc; None where that cannot be read
    (another system, a /proc that hides other users' processes)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stream:
            stat = stream.read()
        with open("/proc/stat", encoding="ascii", errors="replace") as stream:
            boot = next((line.split()[1] for line in stream if line.startswith("btime ")), None)
        ticks_per_second = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    return start_from_stat(stat, boot, ticks_per_second)


def start_from_stat(stat: str, boot: Optional[str], ticks_per_second: int) -> Optional[float]:
    """The start time in /proc/<pid>/stat (field 22, in clock ticks after boot) as seconds since the epoch. The
    command name, field 2, is in parentheses and may hold spaces and parentheses itself: the fields are counted
    after its last closing one."""
    fields = stat.rpartition(")")[2].split()
    try:
        return int(boot or "") + int(fields[19]) / ticks_per_second
    except (IndexError, ValueError, ZeroDivisionError):
        return None


class StagedWrite(NamedTuple):
    """A file's new content, written beside it and not yet renamed over it."""

    temp: str
    target: str
    device: int  # st_dev of the temp file's file system

    def unsynced(self) -> Unsynced:
        return Unsynced(self.temp, self.device)


def _write_beside(path: str, data: bytes, mode: int, durable: bool) -> StagedWrite:
    directory = os.path.dirname(path)
    make_public_directories(directory)
    handle, temp_path = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
            device = os.fstat(stream.fileno()).st_dev
        os.chmod(temp_path, mode)
    except BaseException as exc:
        remove_if_present(temp_path)
        # a failed write names no file: say which (a full disk fails any of them)
        if isinstance(exc, OSError) and exc.filename is None:
            raise OSError(exc.errno, exc.strerror, path) from exc
        raise
    return StagedWrite(temp_path, path, device)


def atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write data beside path, fsync it, then rename over path: readers see old or new, never half."""
    staged = _write_beside(path, data, mode, durable=True)
    rename_staged([staged])


def stage_write(path: str, data: bytes, mode: int = 0o644) -> StagedWrite:
    """Write data beside path, without an fsync: it must be made durable (durable.py) before rename_staged(),
    and renamed or discard_staged() by the caller."""
    return _write_beside(path, data, mode, durable=False)


def rename_staged(staged: Sequence[StagedWrite]) -> None:
    """Rename each staged write over its target, in order; on failure, none of the rest is left behind."""
    try:
        for write in staged:
            os.replace(write.temp, write.target)
    except BaseException:
        discard_staged(staged)
        raise


def discard_staged(staged: Sequence[StagedWrite]) -> None:
    for write in staged:
        remove_if_present(write.temp)  # gone already where it was renamed


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def write_json(path: str, data: Any) -> None:
    atomic_write(path, _json_bytes(data))


def read_json(path: str) -> Optional[Any]:
    try:
        with open(path, "rb") as stream:
            return json.load(stream)
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # a damaged record is treated as absent: the project is simply re-synced


class MirrorState:
    """The directory layout of one mirror root and the records kept in it."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.web = os.path.join(root, WEB_DIR)
        self.state = os.path.join(root, STATE_DIR)
        self.tmp = os.path.join(root, TMP_DIR)
        self._lock_fd: Optional[int] = None
        # What the lock file said when the lock was taken: a holder's line there means that run ended without
        # unlocking (killed), and may have left half-written pages' temp files beside the pages.
        self._interrupted_holder = b""

    # -- layout -----------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the directories, failing with one line when the root is not writable or not this user's."""
        self._refuse_root_in_foreign_tree()
        for path in (self.web, os.path.join(self.web, "simple"), os.path.join(self.web, "packages"),
                     os.path.join(self.state, "projects"), self.tmp):
            try:
                make_public_directories(path)
            except OSError as exc:
                raise PermissionError(f"directory {self.root}: cannot create {path}: {exc.strerror}") from None
        if not os.access(self.root, os.W_OK) or not os.access(self.web, os.W_OK):
            raise PermissionError(f"directory {self.root}: not writable by this user")

    def _refuse_root_in_foreign_tree(self) -> None:
        """Refuse root's writing run in a mirror another user owns (the service user the timer runs as).

        Root passes every permission check, so its run would succeed, and leave root's directories (a new
        project's, a new hash shard's) where the owner's next run has to write: that run, and every one after,
        would fail on them until someone chowns the tree back.
        """
        try:
            owner = os.stat(self.root).st_uid
        except OSError:
            return  # absent: root creates it, and owns it; unreachable: creating it fails with its own line
        if os.geteuid() != 0 or owner == 0:
            return
        try:
            name = sudo_name = pwd.getpwuid(owner).pw_name
        except KeyError:  # a uid with no account here (a mirror directory restored from elsewhere)
            name, sudo_name = f"uid {owner}", f"'#{owner}'"
        raise PermissionError(
            f"directory {self.root} belongs to {name}, and this run is root's: what it wrote would be root's, "
            f"and {name}'s runs (the timer's) could not change it; run as {name} (sudo -u {sudo_name} ...)")

    def clean_tmp(self) -> int:
        """Remove downloads a killed run left behind; they were never published."""
        removed = 0
        if not os.path.isdir(self.tmp):
            return 0
        for entry in os.scandir(self.tmp):
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed += 1
        return removed

    def sweep_temp_files(self) -> int:
        """Remove the temp files of pages and records a killed writer left beside them (atomic_write's)."""
        simple = os.path.join(self.web, "simple")
        directories = [self.web, simple, self.state, os.path.join(self.state, "projects"),
                       os.path.join(self.state, "metadata")]
        if os.path.isdir(simple):
            directories += [entry.path for entry in os.scandir(simple) if entry.is_dir(follow_symlinks=False)]
        removed = 0
        for directory in directories:
            if not os.path.isdir(directory):
                continue
            for entry in os.scandir(directory):
                if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                    remove_if_present(entry.path)
                    removed += 1
        return removed

    # -- lock -------------------------------------------------------------------------------
    def lock(self, timeout: float, task: str = SYNC_TASK) -> None:
        """Hold the mirror, waiting up to timeout seconds; task: what holds it, for the others to tell
        (a sync run that finds it held, status, health)."""
        os.makedirs(self.state, exist_ok=True)
        path = os.path.join(self.state, "lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    line = os.pread(fd, _LOCK_LINE_MAX, 0).decode(errors="replace").strip()
                    os.close(fd)
                    raise LockBusy(_held_by(line, self.root)) from None  # the caller says how to wait longer
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        self._interrupted_holder = os.pread(fd, _LOCK_LINE_MAX, 0).strip()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {utc_timestamp()} {task}".encode(), 0)  # what lock_holder() reads
        self._lock_fd = fd

    @property
    def interrupted_before(self) -> bool:
        """The run that held the lock before this one was killed (see _interrupted_holder)."""
        return bool(self._interrupted_holder)

    def lock_holder(self) -> Optional[LockHolder]:
        """The run the lock file names: one in progress, or one killed before it could unlock (whose pid no
        process has then). Read, never taken: whoever asks must not make the timer's run find the lock busy."""
        try:
            with open(os.path.join(self.state, "lock"), encoding="utf-8", errors="replace") as stream:
                fields = _holder_fields(stream.read(_LOCK_LINE_MAX))
        except FileNotFoundError:
            return None
        if fields is None:
            return None
        pid, since, task = fields
        return LockHolder(pid, since, _holder_runs(int(pid), timestamp_seconds(since)), task)

    def unlock(self, leave_for_next: bool = False) -> None:
        """Release the lock. leave_for_next: this holder did not take up a killed run's work (an export), so
        the lock file keeps saying that one was killed, for the next sync to finish it."""
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            if leave_for_next and self._interrupted_holder:
                os.pwrite(self._lock_fd, self._interrupted_holder, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- records ----------------------------------------------------------------------------
    def project_record_path(self, name: str) -> str:
        return os.path.join(self.state, "projects", name + ".json")

    def load_project(self, name: str) -> Optional[dict[str, Any]]:
        return read_json(self.project_record_path(name))

    def save_project(self, name: str, record: dict[str, Any]) -> None:
        write_json(self.project_record_path(name), record)

    def stage_project(self, name: str, record: dict[str, Any]) -> StagedWrite:
        """save_project() up to the rename, left to the caller (see stage_write)."""
        return stage_write(self.project_record_path(name), _json_bytes(record))

    def forget_project(self, name: str) -> None:
        remove_if_present(self.project_record_path(name))

    def recorded_projects(self) -> list[str]:
        directory = os.path.join(self.state, "projects")
        if not os.path.isdir(directory):
            return []
        return sorted(entry[:-5] for entry in os.listdir(directory) if entry.endswith(".json"))

    def save_plan(self, plan: dict[str, Any]) -> None:
        write_json(os.path.join(self.state, "plan.json"), plan)

    def load_plan(self) -> Optional[dict[str, Any]]:
        return read_json(os.path.join(self.state, "plan.json"))

    def save_last_run(self, record: dict[str, Any], partial: bool = False) -> None:
        """The record of a run over every configured project, or (partial) over some of them: `sync --project`,
        `verify --repair`. A partial run keeps its own file, so it never stands for the whole mirror; a full run
        supersedes it. Either supersedes the record of an earlier run that stopped before syncing. A full run's
        record keeps when the last one with no error finished (last_success), carried over a failed run."""
        if not partial:
            record = {**record, "last_success": _last_success(record, self.load_last_run())}
        write_json(self._last_run_path(partial), record)
        superseded = [self._abort_path()] + ([] if partial else [self._last_run_path(partial=True)])
        for path in superseded:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def load_deleted_projects(self) -> dict[str, int]:
        """The projects a full mirror's prune removed because the upstream's list no longer named them: name ->
        the serial of that list. An older list that names one again does not bring it back."""
        return serials_by_name(read_json(os.path.join(self.state, "deleted-projects.json")))

    def save_deleted_projects(self, deleted: dict[str, int]) -> None:
        path = os.path.join(self.state, "deleted-projects.json")
        if deleted:
            write_json(path, dict(sorted(deleted.items())))
        else:
            remove_if_present(path)

    def load_last_run(self, partial: bool = False) -> Optional[dict[str, Any]]:
        return read_json(self._last_run_path(partial))

    def save_abort(self, record: dict[str, Any]) -> None:
        """A run that stopped before syncing anything (an unreachable upstream): it has no run record, and
        without this one `status` would show only the last run that got through, however old. The next run
        that gets through removes it."""
        write_json(self._abort_path(), record)

    def load_abort(self) -> Optional[dict[str, Any]]:
        return read_json(self._abort_path())

    def _abort_path(self) -> str:
        return os.path.join(self.state, "last-abort.json")

    def _last_run_path(self, partial: bool) -> str:
        return os.path.join(self.state, "last-partial-run.json" if partial else "last-run.json")

    def bandersnatch_serial(self) -> Optional[int]:
        """The serial of a bandersnatch mirror adopted in place (its root 'status' file)."""
        try:
            with open(os.path.join(self.root, "status"), encoding="ascii") as stream:
                text = stream.read().strip()
        except (OSError, UnicodeDecodeError):
            return None
        return int(text) if text.isdigit() else None


def _last_success(record: dict[str, Any], previous: Optional[dict[str, Any]]) -> Optional[str]:
    """When the last full run with no error finished: this one, or as the previous record had it (a record
    from before last_success was kept tells it by its own outcome)."""
    if record.get("ok"):
        return record.get("finished")
    if not previous:
        return None
    return previous.get("last_success") or (previous.get("finished") if previous.get("ok") else None)
