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

import os
import threading
from typing import Callable, Optional, Sequence

SYNC_FILE_RANGE_WAIT_BEFORE, SYNC_FILE_RANGE_WRITE, SYNC_FILE_RANGE_WAIT_AFTER = 1, 2, 4


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


def written_path(path: str, sync_file_range: Callable[[int, int, int, int], int]) -> None:
    """Wait for path's data to be written, and raise OSError for a writeback error of that file."""
    import ctypes  # noqa: PLC0415 - there, since sync_file_range is

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
        if sync_file_range(fd, 0, 0, flags) != 0:
            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number), path)
    finally:
        os.close(fd)


class GroupSync:
    """make_durable() for the threads of one process. A process forks only while none of its threads runs
    (see sync.py), so a forked child starts with the lock free and no syncfs under way."""

    def __init__(self, syncfs: Optional[Callable[[int], int]],
                 sync_file_range: Optional[Callable[[int, int, int, int], int]]) -> None:
        self._syncfs = syncfs if sync_file_range is not None else None
        self._sync_file_range = sync_file_range
        self._condition = threading.Condition()
        self._started = 0  # syncfs calls started in this process, counted
        self._finished = 0  # of which this many have returned
        self._failed = 0  # the last one that failed
        self.syncfs_calls = 0  # for the tests: how many were made

    def make_durable(self, paths: Sequence[str]) -> None:
        """Return once every path's data is on disk. Raises OSError (a file gone, EIO): then a page must not
        name them."""
        if not paths:
            return
        if self._syncfs is not None and self._sync_file_system(paths[0]):
            assert self._sync_file_range is not None
            for path in paths:
                written_path(path, self._sync_file_range)
            return
        for path in paths:
            fsync_path(path)

    def _sync_file_system(self, path: str) -> bool:
        """Wait for a syncfs that starts after this call: start it, or wait for the one another thread starts.
        Whether it succeeded."""
        with self._condition:
            needed = self._started + 1
            while self._finished < needed:
                if self._started > self._finished or self._started >= needed:  # one runs: wait for it
                    self._condition.wait()
                    continue
                self._started = needed  # none runs: this thread starts the one the others wait for
                self._condition.release()
                succeeded = False
                try:
                    succeeded = self._run_syncfs(path)
                finally:
                    self._condition.acquire()
                    self._finished = needed
                    if not succeeded:
                        self._failed = needed
                    self._condition.notify_all()
            return self._failed != needed

    def _run_syncfs(self, path: str) -> bool:
        """One syncfs of path's file system; False if it failed (the fsyncs that follow then name the file)."""
        assert self._syncfs is not None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            self.syncfs_calls += 1
            return self._syncfs(fd) == 0
        finally:
            os.close(fd)
