"""Downloaded files made durable before a page names them: in groups, one syncfs for the projects waiting."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
import threading

import pytest
from test_sync import temp_files

from localpypi_sync import durable, fetch
from localpypi_sync.durable import GroupSync, Unsynced, syncfs_function
from localpypi_sync.publish import Publisher
from localpypi_sync.state import MirrorState


class GatedSyncfs:
    """A syncfs that returns only when the test lets it; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.entered = threading.Semaphore(0)
        self.release = threading.Semaphore(0)

    def __call__(self, fd: int) -> int:
        self.calls += 1
        self.entered.release()
        assert self.release.acquire(timeout=10)
        return 0


def files(tmp_path, count: int, prefix: str) -> list[Unsynced]:
    written = []
    for number in range(count):
        path = tmp_path / f"{prefix}{number}"
        path.write_bytes(b"x")
        written.append(Unsynced(str(path), path.stat().st_dev))
    return written


def test_projects_that_ask_while_a_syncfs_runs_share_the_next_one(tmp_path):
    """A syncfs that started before a project asked may have missed its files: the project waits for the next
    one, and the projects that asked meanwhile wait for that same one, so three projects cost one syncfs."""
    syncfs = GatedSyncfs()
    group = GroupSync(syncfs, durable.sync_file_range_function())
    first = threading.Thread(target=group.make_durable, args=(files(tmp_path, 1, "a"),))
    first.start()
    assert syncfs.entered.acquire(timeout=10)  # the first syncfs runs
    later = [threading.Thread(target=group.make_durable, args=(files(tmp_path, 2, f"b{n}-"),)) for n in range(3)]
    for thread in later:
        thread.start()
    syncfs.release.release()  # the first returns
    first.join(timeout=10)
    assert not first.is_alive()
    assert syncfs.entered.acquire(timeout=10)  # the second starts, for the three that waited
    for thread in later:
        thread.join(timeout=0.2)
        assert thread.is_alive()  # not done before the syncfs that covers them
    syncfs.release.release()
    for thread in later:
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert syncfs.calls == 2


def test_without_syncfs_each_file_is_fsynced_and_a_missing_one_fails(tmp_path):
    group = GroupSync(None, None)
    group.make_durable(files(tmp_path, 3, "c"))
    with pytest.raises(FileNotFoundError):
        group.make_durable([Unsynced(str(tmp_path / "gone"), os.stat(tmp_path).st_dev)])


def test_the_syncfs_call_is_accepted_by_the_kernel(tmp_path):
    syncfs = syncfs_function()
    if syncfs is None:
        pytest.skip("no syncfs on this system")
    fd = os.open(str(tmp_path), os.O_RDONLY)
    try:
        assert syncfs(fd) == 0
    finally:
        os.close(fd)
    assert syncfs(-1) == -1


def test_a_writeback_error_of_a_file_is_reported_naming_it(tmp_path):
    def failing_sync_file_range(fd, offset, length, flags):
        ctypes.set_errno(errno.EIO)
        return -1

    path = files(tmp_path, 1, "e")[0].path
    with pytest.raises(OSError) as raised:
        durable.written_path(path, failing_sync_file_range)
    assert raised.value.errno == errno.EIO and raised.value.filename == path


def test_a_file_system_without_sync_file_range_gets_an_fsync(tmp_path, monkeypatch):
    def unsupported(fd, offset, length, flags):
        ctypes.set_errno(errno.EINVAL)
        return -1

    fsynced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: fsynced.append(fd) or real_fsync(fd))
    durable.written_path(files(tmp_path, 1, "h")[0].path, unsupported)
    assert len(fsynced) == 1


def test_a_failed_syncfs_falls_back_to_an_fsync_per_file(tmp_path, monkeypatch):
    waited = []
    group = GroupSync(lambda fd: -1, lambda fd, offset, length, flags: waited.append(fd) or 0)
    fsynced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: fsynced.append(fd) or real_fsync(fd))
    group.make_durable(files(tmp_path, 3, "f"))
    assert len(fsynced) == 3 and not waited


def test_files_on_two_file_systems_get_a_syncfs_each(tmp_path):
    """packages/ may hold a mount point: a syncfs covers one file system only."""
    other = "/dev/shm"
    if not os.path.isdir(other) or os.stat(other).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system to write to")
    synced_devices = []
    real_syncfs = syncfs_function()
    group = GroupSync(lambda fd: synced_devices.append(os.fstat(fd).st_dev) or real_syncfs(fd),
                      durable.sync_file_range_function())
    with tempfile.NamedTemporaryFile(dir=other) as elsewhere:
        group.make_durable([*files(tmp_path, 2, "g"), Unsynced(elsewhere.name, os.stat(other).st_dev)])
    assert sorted(synced_devices) == sorted({os.stat(tmp_path).st_dev, os.stat(other).st_dev})


def test_files_pages_and_records_are_on_disk_before_their_renames(make_config, sync, mirror_dir, monkeypatch):
    """Small files are renamed into place without an fsync of their own; a project's new pages and record are
    written beside the old ones without one too. All are made durable together before the first page is
    renamed: by a syncfs that started after they were written, and a wait for each file's writeback (which
    reports its errors), or by an fsync. Then the pages are renamed, then the record that says they are done.
    So are files found in place with no record (a run killed after their rename)."""
    events: list[tuple[str, object, str]] = []  # (what, inode, path)
    files_named: dict[str, list[int]] = {}  # project -> inodes of the files its new pages name
    real_fsync, real_replace = os.fsync, os.replace

    def recorded_fsync(fd: int) -> None:
        real_fsync(fd)
        events.append(("fsync", os.fstat(fd).st_ino, ""))

    def recorded_replace(source, target) -> None:
        real_replace(source, target)
        events.append(("renamed", os.stat(target).st_ino, str(target)))

    def recorded_syncfs():
        real = durable.syncfs_function()
        return lambda fd: events.append(("syncfs", None, "")) or real(fd)

    def recorded_sync_file_range():
        real = durable.sync_file_range_function()

        def call(fd, offset, length, flags):
            if flags & durable.SYNC_FILE_RANGE_WAIT_AFTER:
                events.append(("waited", os.fstat(fd).st_ino, ""))
            return real(fd, offset, length, flags)

        return call

    real_stage_pages, real_stage_record = Publisher.stage_project, MirrorState.stage_project

    def recorded_stage_pages(self, project, published, serial, status=None):
        files_named[project] = [os.stat(os.path.join(mirror_dir, "web", p.path)).st_ino for p in published]
        staged = real_stage_pages(self, project, published, serial, status)
        events.extend(("staged", os.stat(write.temp).st_ino, write.target) for write in staged)
        return staged

    def recorded_stage_record(self, name, record):
        staged = real_stage_record(self, name, record)
        events.append(("staged", os.stat(staged.temp).st_ino, staged.target))
        return staged

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(os, "replace", recorded_replace)
    monkeypatch.setattr(fetch, "syncfs_function", recorded_syncfs)
    monkeypatch.setattr(fetch, "sync_file_range_function", recorded_sync_file_range)
    monkeypatch.setattr(Publisher, "stage_project", recorded_stage_pages)
    monkeypatch.setattr(MirrorState, "stage_project", recorded_stage_record)
    real_make_durable = fetch.Fetcher.make_durable

    def checked_make_durable(self, files):  # each file named with its own file system, for its syncfs
        assert all(unsynced.device == os.stat(unsynced.path).st_dev for unsynced in files)
        return real_make_durable(self, files)

    monkeypatch.setattr(fetch.Fetcher, "make_durable", checked_make_durable)

    def durable_before(index: int, inode: int) -> bool:
        before = events[:index]
        if ("fsync", inode) in [(kind, number) for kind, number, _ in before]:
            return True
        written = max((at for at, (kind, number, _) in enumerate(before)
                       if kind in ("renamed", "staged") and number == inode), default=-1)
        synced = [at for at, (kind, _, _) in enumerate(before) if kind == "syncfs" and at > written]
        return bool(synced) and any(kind == "waited" and number == inode for kind, number, _ in before[synced[0]:])

    def renames_of(directory: str) -> list[tuple[int, int, str]]:
        return [(at, number, path) for at, (kind, number, path) in enumerate(events)
                if kind == "renamed" and os.path.dirname(path) == directory]

    def assert_durable_before_their_renames() -> None:
        assert files_named
        for project, inodes in files_named.items():
            pages = renames_of(os.path.join(mirror_dir, "web", "simple", project))
            records = [(at, number, path) for at, number, path in renames_of(os.path.join(mirror_dir, "state",
                                                                                          "projects"))
                       if os.path.basename(path) == f"{project}.json"]
            assert pages and len(records) == 1
            for at, own_inode, _ in [*pages, *records]:
                assert durable_before(at, own_inode)
                assert all(durable_before(at, inode) for inode in inodes)
            assert max(at for at, _, _ in pages) < records[0][0]

    config = make_config(projects=["alpha", "beta", "gamma"], processes=1, workers=3)
    assert sync(config).ok
    assert_durable_before_their_renames()
    assert any(kind == "syncfs" for kind, _, _ in events)
    # The records gone, the files are found in place and must be on disk before the pages name them again.
    records = os.path.join(mirror_dir, "state", "projects")
    for name in os.listdir(records):
        os.unlink(os.path.join(records, name))
    shutil.rmtree(os.path.join(mirror_dir, "web", "simple"))
    events.clear()
    files_named.clear()
    assert sync(config).ok
    assert_durable_before_their_renames()


def test_a_write_error_before_a_commit_publishes_nothing_of_the_project(make_config, sync, mirror_dir, monkeypatch):
    """The disk reports an error for a project's files or pages: its pages and record stay as they were, no
    temp file is left, the project is named as failed, and the others are published."""
    real_make_durable = fetch.Fetcher.make_durable

    def failing_for_beta(self, files):
        if any(os.path.basename(os.path.dirname(unsynced.path)) == "beta" for unsynced in files):
            raise OSError(errno.EIO, os.strerror(errno.EIO), files[0].path)
        return real_make_durable(self, files)

    monkeypatch.setattr(fetch.Fetcher, "make_durable", failing_for_beta)
    result = sync(make_config(projects=["alpha", "beta"]))
    assert not result.ok and result.stats.projects_failed == 1
    assert [failure.split(":")[0] for failure in result.failures] == ["project beta"]
    beta_pages = os.path.join(mirror_dir, "web", "simple", "beta")
    assert not os.path.exists(beta_pages)  # not even an empty directory from its failed first commit
    assert not os.path.exists(os.path.join(mirror_dir, "state", "projects", "beta.json"))
    assert os.path.exists(os.path.join(mirror_dir, "web", "simple", "alpha", "index.v1_json"))
    assert not temp_files(mirror_dir)
