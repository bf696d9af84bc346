"""Files made durable in groups: one syncfs for all the projects waiting at once, not a journal commit per file.

On a file system with a journal, each fsync waits for a journal commit of its own: on a new xfs, a cold sync of
small files spent 30% of its time in them (README). So a project's small files are renamed into place without
an fsync, and made durable just before the page that names them: the first project to ask starts a syncfs of
the mirror's file system, and the projects that ask meanwhile wait for the next one, which covers them all.

syncfs writes the data, commits the journal and flushes the disk's cache, but it reports a writeback error only
from Linux 5.8 on, and never names the file. So each file is then asked for its own writeback errors with
sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER), which has nothing left to write by then. (An fsync there
would cost a flush of the disk's cache per file on xfs, whose log has nothing to commit for it.) Where there is
no syncfs, or it fails, each file is fsynced.
"""

from __future__ import annotations

import collections
import errno
import os
import threading
from typing import Callable, NamedTuple, Optional, Sequence

SYNC_FILE_RANGE_WAIT_BEFORE, SYNC_FILE_RANGE_WRITE, SYNC_FILE_RANGE_WAIT_AFTER = 1, 2, 4


class Unsynced(NamedTuple):
    """A file whose bytes the disk may not hold yet, and the file system it is on (st_dev), which the writer
    knows without a stat of its own."""

    path: str
    device: int


def libc_function(name: str, argument_types: list[str]) -> Optional[Callable[..., int]]:
    """A C library function by name, its arguments typed by ctypes' names for them (it returns -1 and sets
    errno on error), or None where there is none. Called through ctypes, it releases the GIL as a system call
    does."""
    try:
        import ctypes  # noqa: PLC0415 - only where files are written

        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (ImportError, OSError, AttributeError):
        return None
    function.argtypes = [getattr(ctypes, type_name) for type_name in argument_types]
    return function


def syncfs_function() -> Optional[Callable[[int], int]]:
    """Linux's syncfs(fd), or None."""
    return libc_function("syncfs", ["c_int"])


def sync_file_range_function() -> Optional[Callable[[int, int, int, int], int]]:
    """Linux's sync_file_range(fd, offset, length, flags), or None."""
    return libc_function("sync_file_range", ["c_int", "c_int64", "c_int64", "c_uint"])


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# sync_file_range's answers where a file system does not offer it: the file is fsynced instead.
UNSUPPORTED = frozenset({errno.EINVAL, errno.ESPIPE, errno.EOPNOTSUPP, errno.ENOSYS})


def written_path(path: str, sync_file_range: Callable[[int, int, int, int], int]) -> None:
    """Wait for path's data to be written, and raise OSError for a writeback error of that file."""
    import ctypes  # noqa: PLC0415 - there, since sync_file_range is

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
        if sync_file_range(fd, 0, 0, flags) != 0:
            number = ctypes.get_errno()
            if number not in UNSUPPORTED:
                raise OSError(number, os.strerror(number), path)
            os.fsync(fd)
    finally:
        os.close(fd)


class GroupSync:
    """make_durable() for the threads of one process, with a syncfs for each file system the files are on
    (packages/ may hold mount points). A process forks only while none of its threads runs (see sync.py), so a
    forked child starts with the lock free and no syncfs under way."""

    def __init__(self, syncfs: Optional[Callable[[int], int]],
                 sync_file_range: Optional[Callable[[int, int, int, int], int]]) -> None:
        self._syncfs = syncfs if sync_file_range is not None else None
        self._sync_file_range = sync_file_range
        self._condition = threading.Condition()
        # Per file system (st_dev): syncfs calls started in this process, counted; how many of them have
        # returned; the last one that failed.
        self._started: dict[int, int] = collections.defaultdict(int)
        self._finished: dict[int, int] = collections.defaultdict(int)
        self._failed: dict[int, int] = collections.defaultdict(int)

    def make_durable(self, files: Sequence[Unsynced]) -> None:
        """Return once every file's data is on disk. Raises OSError (a file gone, EIO): then a page must not
        name them."""
        if self._syncfs is None:
            for unsynced in files:
                fsync_path(unsynced.path)
            return
        by_device: dict[int, list[str]] = collections.defaultdict(list)
        for unsynced in files:
            by_device[unsynced.device].append(unsynced.path)
        assert self._sync_file_range is not None
        for device, on_device in by_device.items():
            if self._sync_file_system(device, on_device[0]):
                for path in on_device:
                    written_path(path, self._sync_file_range)
            else:
                for path in on_device:
                    fsync_path(path)

    def _sync_file_system(self, device: int, path: str) -> bool:
        """Wait for a syncfs of device that starts after this call: start it, or wait for the one another
        thread starts. Whether it succeeded."""
        with self._condition:
            needed = self._started[device] + 1
            while self._finished[device] < needed:
                if self._started[device] > self._finished[device] or self._started[device] >= needed:
                    self._condition.wait()  # one runs: wait for it
                    continue
                self._started[device] = needed  # none runs: this thread starts the one the others wait for
                self._condition.release()
                succeeded = False
                try:
                    succeeded = self._run_syncfs(path)
                finally:
                    self._condition.acquire()
                    self._finished[device] = needed
                    if not succeeded:
                        self._failed[device] = needed
                    self._condition.notify_all()
            return self._failed[device] != needed

    def _run_syncfs(self, path: str) -> bool:
        """One syncfs of path's file system; False if it failed (the fsyncs that follow then name the file)."""
        assert self._syncfs is not None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            return self._syncfs(fd) == 0
        finally:
            os.close(fd)
