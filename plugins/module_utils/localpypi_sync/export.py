"""Copy the mirror's published tree to a directory on another disk, to be carried to a site with no network to
the internet and read there as an upstream (`file:///media/disk/pypi/web/simple/`).

The copy is made under the mirror's lock, so no sync changes the tree while it is read, and in the order a
sync publishes: a project's files, then its pages, then the root pages, and only then what the mirror no
longer has is deleted from the disk. Each file is written beside its place and renamed into it. So a disk
pulled out in the middle, or one that fills up, holds pages that name only files it holds: the importing
site reads it as it was before this export, with the projects finished so far. A file already on the disk
at its path with its size is not copied again: the path holds the file's sha256 (packages/aa/bb/<hash>/),
and the importing run verifies every file it takes by that hash; with verify_disk, the files already there are
hashed too, and one damaged on the disk is copied again (the importing run named it). A file that is copied is
hashed as it is read, and one whose bytes are not those its page names (damaged on the mirror's disk) stays off
the carried disk, with its project's new pages: found here, `verify --repair` fetches it again; found at the
site, it could not be.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
from typing import Callable, Optional

from .fetch import READ_CHUNK, hash_file, new_hash
from .inventory import served_files, served_projects
from .state import TEMP_PREFIX, MirrorState, remove_if_present

# the disk cannot take a file, and none after it: the export stops at the first
_DISK_STOPS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO)


class ExportAbort(Exception):
    """The export cannot start: the target is not there, or overlaps the mirror, or the mirror has no tree."""


class DamagedFile(Exception):
    """A file of the mirror whose bytes are not those its page names: it is not copied."""


def copy_hashed(source: str, target: str) -> str:
    """Copy a file, and return the sha256 of the bytes copied: read once, for both."""
    digest = new_hash("sha256")
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while True:
            chunk = reader.read(READ_CHUNK)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)
            writer.write(chunk)


@dataclasses.dataclass
class ExportReport:
    target: str  # the web/ directory written
    check_mode: bool = False
    projects: int = 0
    files_copied: int = 0
    bytes_copied: int = 0
    files_present: int = 0
    pages_written: int = 0
    files_removed: int = 0
    projects_removed: int = 0
    damaged_on_disk: list[str] = dataclasses.field(default_factory=list)  # under web/: hashed, and copied again
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"ok": self.ok, "check_mode": self.check_mode, "target": self.target, "projects": self.projects,
                "files_copied": self.files_copied, "bytes_copied": self.bytes_copied,
                "files_present": self.files_present, "pages_written": self.pages_written,
                "files_removed": self.files_removed, "projects_removed": self.projects_removed,
                "damaged_on_disk": self.damaged_on_disk, "problems": self.problems}


def export_mirror(directory: str, target_root: str, *, lock_timeout: float = 0.0, check_mode: bool = False,
                  verify_disk: bool = False, copy: Callable[[str, str], str] = copy_hashed) -> ExportReport:
    """Make <target_root>/web a copy of the mirror's web/ tree, under the mirror's lock; with verify_disk, a file
    already on the disk is hashed before it is taken as copied (it reads the whole disk)."""
    web = os.path.join(directory, "web")
    target_web = os.path.join(target_root, "web")
    _check_target(directory, target_root)
    if not os.path.isfile(os.path.join(web, "simple", "index.html")):
        raise ExportAbort(f"no mirror to export: {os.path.join(web, 'simple', 'index.html')} does not exist (has a "
                          f"sync run here, and is `directory` the mirror's?)")
    state = MirrorState(directory)
    try:
        # LockBusy when a sync runs: it would change the tree as it is copied; the task tells a timer's sync
        # that finds the lock held, status and health that an export holds it, not a sync that hangs
        state.lock(lock_timeout, task=f"export to {target_root}")
    except PermissionError as exc:
        raise ExportAbort(f"cannot take the mirror's lock ({exc.strerror}: {exc.filename}); run export as root, or "
                          f"as the mirror's user with write access to the disk") from None
    try:
        return _Export(web, target_web, check_mode, verify_disk, copy).run()
    finally:
        state.unlock(leave_for_next=True)  # a sync killed before: the next sync still cleans up after it


def _check_target(directory: str, target_root: str) -> None:
    if not os.path.isabs(target_root):
        raise ExportAbort(f"--to {target_root}: give an absolute path (the disk's mount point, or a directory on it)")
    if not os.path.isdir(target_root):
        raise ExportAbort(f"--to {target_root}: no such directory on this machine; is the disk that holds it "
                          f"mounted?")
    mirror, target = os.path.realpath(directory), os.path.realpath(target_root)
    if target == mirror or target.startswith(mirror + os.sep) or mirror.startswith(target + os.sep):
        raise ExportAbort(f"--to {target_root}: overlaps this mirror's directory {directory}; give a directory on "
                          f"the disk to carry")


class _Export:
    def __init__(self, web: str, target_web: str, check_mode: bool, verify_disk: bool,
                 copy: Callable[[str, str], str]) -> None:
        self.web = web
        self.target_web = target_web
        self.verify_disk = verify_disk
        self.copy = copy
        self.report = ExportReport(target_web, check_mode)
        self.kept_paths: set[str] = set()  # relative to web/: what the copy's pages name
        self.stopped = False  # the disk refused a write that every later one would meet

    def run(self) -> ExportReport:
        try:
            self._run()
        finally:
            if not self.report.check_mode:
                os.sync()  # on the disk before it is unplugged; one sync for all, as an fsync per file would crawl
        return self.report

    def _run(self) -> None:
        projects = served_projects(self.web)
        self.report.projects = len(projects)
        for project in projects:
            if self.stopped:
                self.report.problems.append("export stopped there: the projects not reached, and the root page, "
                                            "are on the disk as the last export left them")
                break
            self._export_project(project)
        if self.report.problems:  # the disk's root page and what it lists stay as they were: nothing is deleted
            return
        try:
            self._copy_pages(os.path.join(self.web, "simple"), os.path.join(self.target_web, "simple"))
            self._remove_projects_gone(set(projects))
            self._remove_files_gone()
            self._copy_pages(self.web, self.target_web)  # last-modified: when the exported run began
        except OSError as exc:
            self.report.problems.append(f"root index: cannot write it or clear what is gone on the disk: "
                                        f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))

    def _export_project(self, project: str) -> None:
        """The project's files, then its pages; pages that would name a file not copied stay as they were."""
        try:
            served = list(served_files(self.web, project))
        except (OSError, ValueError, KeyError) as exc:
            self.report.problems.append(f"project {project}: unreadable index.v1_json: {exc}")
            return
        wanted = [(file.path, file.sha256) for file in served]  # (path under web/, the sha256 its page names)
        wanted += [(file.path + ".metadata", file.metadata_sha256) for file in served if file.metadata_sha256]
        self.kept_paths.update(path for path, _ in wanted)
        failed = False
        for path, sha256 in wanted:
            try:
                self._copy_file(path, sha256)
            except DamagedFile:
                failed = True
                self.report.problems.append(f"project {project}: {os.path.basename(path)}: damaged in the mirror "
                                            f"(its sha256 is not the one its page names), so not copied (run "
                                            f"`verify --repair`)")
            except OSError as exc:
                failed = True
                self.report.problems.append(self._copy_problem(project, path, exc))
                if exc.errno in _DISK_STOPS:
                    self.stopped = True
                    break
        if failed:
            return
        try:
            self._copy_pages(os.path.join(self.web, "simple", project),
                             os.path.join(self.target_web, "simple", project))
        except OSError as exc:
            self.report.problems.append(f"project {project}: its pages: cannot copy them to the disk: "
                                        f"{exc.strerror or exc}")
            self.stopped = exc.errno in _DISK_STOPS

    def _copy_problem(self, project: str, path: str, exc: OSError) -> str:
        name = os.path.basename(path)
        if isinstance(exc, FileNotFoundError) and exc.filename == os.path.join(self.web, path):
            return f"project {project}: {name}: missing in the mirror, so not copied (run `verify --repair`)"
        return f"project {project}: {name}: cannot copy it to the disk: {exc.strerror or exc}"

    def _copy_file(self, path: str, sha256: str) -> None:
        source, target = os.path.join(self.web, path), os.path.join(self.target_web, path)
        size = os.stat(source).st_size
        counted = not path.endswith(".metadata")  # files as sync counts them: a wheel's metadata file is its part
        try:
            present = os.stat(target).st_size == size
        except FileNotFoundError:
            present = False
        if present and self.verify_disk and hash_file(target) != sha256:
            self.report.damaged_on_disk.append(path)
        elif present:
            self.report.files_present += counted
            return
        self.report.files_copied += counted
        self.report.bytes_copied += size
        if self.report.check_mode:
            return
        os.makedirs(os.path.dirname(target), exist_ok=True)
        staged = os.path.join(os.path.dirname(target), TEMP_PREFIX + os.path.basename(target))
        try:
            if self.copy(source, staged) != sha256:
                raise DamagedFile(path)
            os.replace(staged, target)
        except BaseException:
            remove_if_present(staged)
            raise

    def _copy_pages(self, source_dir: str, target_dir: str) -> None:
        """The regular files of a directory (a project's pages, the root pages), each renamed into place.

        Not state.stage_write: its chmod fails on a FAT disk mounted with a mask (EPERM), and the disk to carry
        is often one; its fsync per file is what the one os.sync() at the end replaces."""
        on_disk = self._clear_leftovers(target_dir)
        for entry in sorted(os.scandir(source_dir), key=lambda entry: entry.name):
            if entry.name.startswith(TEMP_PREFIX) or not entry.is_file(follow_symlinks=False):
                continue
            with open(entry.path, "rb") as stream:
                data = stream.read()
            target = os.path.join(target_dir, entry.name)
            if entry.name in on_disk and _read(target) == data:
                continue
            self.report.pages_written += 1
            if self.report.check_mode:
                continue
            os.makedirs(target_dir, exist_ok=True)
            staged = os.path.join(target_dir, TEMP_PREFIX + entry.name)
            try:
                with open(staged, "wb") as stream:
                    stream.write(data)
                os.replace(staged, target)
            except BaseException:
                remove_if_present(staged)
                raise

    def _clear_leftovers(self, target_dir: str) -> set[str]:
        """The names in a page directory on the disk, once the temp pages an export killed there (kill -9, the
        disk pulled out) left are removed: nothing reads them, but they would stay on the disk for good."""
        try:
            entries = list(os.scandir(target_dir))
        except FileNotFoundError:
            return set()
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX) and not self.report.check_mode and entry.is_file(
                    follow_symlinks=False):
                remove_if_present(entry.path)
        return {entry.name for entry in entries if not entry.name.startswith(TEMP_PREFIX)}

    def _remove_projects_gone(self, projects: set[str]) -> None:
        """The pages of projects the mirror no longer serves; the root page copied before lists none of them."""
        simple = os.path.join(self.target_web, "simple")
        if not os.path.isdir(simple):
            return
        for entry in sorted(os.scandir(simple), key=lambda entry: entry.name):
            if not entry.is_dir(follow_symlinks=False) or entry.name in projects:
                continue
            self.report.projects_removed += 1
            if not self.report.check_mode:
                shutil.rmtree(entry.path)

    def _remove_files_gone(self) -> None:
        """Files under packages/ that no page of the copy names, and the directories they leave empty."""
        packages = os.path.join(self.target_web, "packages")
        for root, _, files in os.walk(packages, topdown=False):
            for name in files:
                path = os.path.join(root, name)
                if os.path.relpath(path, self.target_web) in self.kept_paths:
                    continue
                if not name.startswith(TEMP_PREFIX) and not name.endswith(".metadata"):  # counted as sync does
                    self.report.files_removed += 1
                if not self.report.check_mode:
                    os.unlink(path)
            if root != packages and not self.report.check_mode:
                try:
                    os.rmdir(root)
                except OSError:
                    pass  # not empty


def _read(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        return None
