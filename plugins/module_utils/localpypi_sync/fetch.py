"""Verified downloads: stream to a temp file on the mirror's filesystem, check the hash, rename."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from typing import Any, Callable, Optional

from .durable import SYNC_FILE_RANGE_WRITE, GroupSync, Unsynced, sync_file_range_function, syncfs_function
from .http import Chunk, FetchError, HttpClient, TooLarge
from .names import is_file_url, package_path
from .state import PUBLIC_DIRECTORY_MODE, make_public_directories, process_umask, remove_if_present
from .upstream import HASH_NAMES, WEAK_HASH_NAMES, UpstreamFile

READ_CHUNK = 1 << 18  # in the CPU's cache while it is hashed (see http.CHUNK_SIZE)


# a file:// upstream's file that does not match its page: on a carried disk, only the mirror that wrote it mends it
_DAMAGED_ON_DISK = ("; the upstream's copy on this machine's disk is damaged: if `export` wrote that disk, "
                    "`export --verify` to it at that mirror copies it again")


class VerifyError(FetchError):
    pass


def new_hash(algorithm: str) -> Any:
    """A hashlib object; a weak one (md5, sha1) as a checksum, which a FIPS-mode host (RHEL's) allows."""
    if algorithm in WEAK_HASH_NAMES:
        return hashlib.new(algorithm, usedforsecurity=False)
    return hashlib.new(algorithm)


class Digest:
    """One hash algorithm that can start over when a download is retried."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._hash = new_hash(algorithm)

    def reset(self) -> None:
        self._hash = new_hash(self.algorithm)

    def update(self, chunk: Chunk) -> None:
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


WRITEBACK_EVERY = 8 << 20  # bytes written between two requests to start writing them to disk
# A download smaller than this is made durable with the rest of its project, just before the page that names
# it (durable.py), not by an fsync of its own before its rename. A larger one is fsynced before its rename:
# its writeback kept pace with it (WRITEBACK_EVERY), and a syncfs would wait for every download under way.
SYNC_WITH_PROJECT_BELOW = WRITEBACK_EVERY


def writeback_starter(sync_file_range: Optional[Callable[[int, int, int, int], int]],
                      ) -> Optional[Callable[[int, int, int], object]]:
    """sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE) (see durable.sync_file_range_function), or
    None where there is none.

    It starts writing a range to disk without waiting for it, so a large download's final fsync waits for
    its last few MiB instead of all of it (the kernel would otherwise hold up to a tenth of memory dirty)."""
    if sync_file_range is None:
        return None
    return lambda fd, offset, length: sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)


class _FdSink:
    """The write end of a download: a raw descriptor, so a small file costs no more system calls than it needs
    (no fstat, seek or tell per file as a file object makes; each call hands the GIL to another thread).
    Every WRITEBACK_EVERY bytes it asks the kernel to start writing what came so far."""

    def __init__(self, fd: int, start_writeback: Optional[Callable[[int, int, int], object]]) -> None:
        self.fd = fd
        self._start_writeback = start_writeback
        self._written = 0
        self._unflushed_from = 0

    def write(self, chunk: Chunk) -> None:
        view = memoryview(chunk)
        while view:
            count = os.write(self.fd, view)
            self._written += count
            view = view[count:]
        if self._start_writeback and self._written - self._unflushed_from >= WRITEBACK_EVERY:
            self._start_writeback(self.fd, self._unflushed_from, self._written - self._unflushed_from)
            self._unflushed_from = self._written

    def restart(self) -> None:
        """Start over for a retried download."""
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.ftruncate(self.fd, 0)
        self._written = self._unflushed_from = 0


def strongest_hash(hashes: dict[str, str]) -> tuple[str, str]:
    """The hash to verify by: a strong one when the index gives one, else a weak one, which only a file that
    weak_hashes lets through the selection has."""
    for name in HASH_NAMES + WEAK_HASH_NAMES:
        if name in hashes:
            return name, hashes[name]
    raise VerifyError("no hash to verify against")


def hash_file(path: str, algorithm: str = "sha256") -> str:
    digest = new_hash(algorithm)
    with open(path, "rb") as stream:
        while True:
            chunk = stream.read(READ_CHUNK)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


@dataclasses.dataclass(frozen=True)
class PublishedFile:
    """A file as it stands in the mirror: what the index pages are written from."""

    upstream: UpstreamFile
    path: str  # relative to web/
    sha256: str
    size: int
    metadata_sha256: Optional[str]  # set when web/<path>.metadata exists and was verified


@dataclasses.dataclass
class FetchOutcome:
    published: Optional[PublishedFile] = None
    downloaded_bytes: int = 0
    downloaded: bool = False
    skipped_reason: Optional[str] = None  # over max_file_size: not an error
    error: Optional[str] = None
    # Files under web/ that this fetch renamed into place, or found there with no record, whose bytes the disk
    # may not hold yet: Fetcher.make_durable() must have them before any page names them.
    unsynced: list[Unsynced] = dataclasses.field(default_factory=list)


class Fetcher:
    def __init__(self, http: HttpClient, web_dir: str, tmp_dir: str, max_bytes: Optional[int]) -> None:
        self.http = http
        self.web_dir = web_dir
        self.tmp_dir = tmp_dir
        self.max_bytes = max_bytes
        self._staged: dict[tuple[str, str], str] = {}  # (url, expected hash) -> file stage() verified this run
        # packages/aa and packages/aa/bb known to exist: at most 65,536 entries, whatever the mirror's size.
        self._hash_dirs: set[str] = set()
        umask = process_umask()
        self._needs_chmod = bool(umask & 0o644)  # what the web server needs of a file
        self._directory_needs_chmod = bool(umask & PUBLIC_DIRECTORY_MODE)  # and of a directory
        sync_file_range = sync_file_range_function()
        self._start_writeback = writeback_starter(sync_file_range)
        self._durability = GroupSync(syncfs_function(), sync_file_range)
        self._tmp_device: Optional[int] = None  # st_dev of tmp_dir, which may not exist yet

    def make_durable(self, files: list[Unsynced]) -> None:
        """Have the files the fetches listed as unsynced on disk (see durable.py); raises OSError."""
        self._durability.make_durable(files)

    def _renamed_from_tmp(self, target: str) -> Unsynced:
        """A file just renamed from tmp_dir: on tmp_dir's file system, since a rename never crosses one."""
        if self._tmp_device is None:
            self._tmp_device = os.stat(self.tmp_dir).st_dev
        return Unsynced(target, self._tmp_device)

    def _make_parent(self, path: str) -> None:
        """Create the file's own hash directory, and its two parents the first time one is needed."""
        leaf = os.path.dirname(path)
        parent = os.path.dirname(leaf)
        if parent not in self._hash_dirs:
            make_public_directories(parent)
            self._hash_dirs.add(parent)
        try:
            os.mkdir(leaf, PUBLIC_DIRECTORY_MODE)
        except FileExistsError:
            return
        except FileNotFoundError:  # removed since (prune of an emptied directory): create it all again
            make_public_directories(leaf)
            return
        if self._directory_needs_chmod:
            os.chmod(leaf, PUBLIC_DIRECTORY_MODE)  # searchable by the web server whatever the umask

    def staged_path(self, url: str, expected: str) -> str:
        """Where a verified download waits to be published (see stage()); removed with tmp/ otherwise.
        Keyed by URL as well: two wheels may carry byte-identical metadata files."""
        url_key = hashlib.sha256(url.encode()).hexdigest()[:24]
        return os.path.join(self.tmp_dir, f"staged-{url_key}-{expected[:40]}")

    def stage(self, url: str, algorithm: str, expected: str) -> str:
        """Download and verify a file now (to read its metadata) so that publishing it later costs nothing."""
        staged = self._staged.get((url, expected))
        if staged is None or not os.path.isfile(staged):
            staged = self.staged_path(url, expected)
            self.download_verified(url, staged, algorithm, expected, None)
            self._staged[(url, expected)] = staged
        return staged

    def download_verified(self, url: str, target: str, algorithm: str, expected: str,
                          max_bytes: Optional[int], unsynced: Optional[list[Unsynced]] = None) -> tuple[int, str]:
        """Download url to target atomically; return (bytes, sha256). Raises VerifyError on mismatch.

        A file stage() fetched earlier in this run is moved into place instead of downloaded again. With
        unsynced, a download below SYNC_WITH_PROJECT_BELOW is not fsynced here: its writeback is started, and
        target is added to unsynced for make_durable(). Otherwise it is on disk before its rename."""
        staged = self._staged.pop((url, expected), None)
        if staged is not None and target != staged and os.path.isfile(staged):
            size = os.path.getsize(staged)
            if max_bytes is not None and size > max_bytes:
                raise TooLarge(f"{os.path.basename(target)}: larger than {max_bytes} bytes")
            sha256 = expected if algorithm == "sha256" else hash_file(staged)
            self._make_parent(target)
            os.replace(staged, target)
            return size, sha256
        digests = [Digest("sha256")] if algorithm == "sha256" else [Digest("sha256"), Digest(algorithm)]
        # Per process and thread: byte-identical files (two names, one hash) may be fetched at once, and thread
        # identifiers repeat across forked worker processes.
        temp_path = os.path.join(self.tmp_dir, f"{expected[:40]}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(temp_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            try:
                size = self.http.download(url, _FdSink(fd, self._start_writeback), digests, max_bytes)
                if self._needs_chmod:
                    os.fchmod(fd, 0o644)  # readable by the web server whatever the service's umask
                deferred = unsynced is not None and size < SYNC_WITH_PROJECT_BELOW
                if not deferred:
                    os.fsync(fd)  # the bytes are on disk before any page can name them
                elif self._start_writeback:
                    self._start_writeback(fd, 0, size)  # under way while the project's other files come in
            finally:
                os.close(fd)
            actual = digests[-1].hexdigest()
            if actual != expected:
                raise VerifyError(f"{os.path.basename(target)}: {algorithm} mismatch "
                                  f"(index says {expected[:16]}…, got {actual[:16]}…); not published"
                                  + (_DAMAGED_ON_DISK if is_file_url(url) else ""))
            self._make_parent(target)
            os.replace(temp_path, target)
            if deferred:
                unsynced.append(self._renamed_from_tmp(target))
            return size, digests[0].hexdigest()
        except BaseException:
            remove_if_present(temp_path)
            raise

    def _placement(self, upstream_file: UpstreamFile) -> tuple[str, str, str]:
        """(hash algorithm, expected digest, path under web/) of a file."""
        algorithm, expected = strongest_hash(upstream_file.hashes)
        sha256 = upstream_file.hashes.get("sha256", "")
        return algorithm, expected, package_path(upstream_file.url, sha256 or expected, upstream_file.filename)

    def _believed(self, trusted: Optional[PublishedFile], rehash: bool, relative: str) -> bool:
        return bool(trusted and not rehash and trusted.path == relative
                    and os.path.isfile(os.path.join(self.web_dir, relative)))

    def in_place(self, upstream_file: UpstreamFile, trusted: Optional[PublishedFile], rehash: bool) -> bool:
        """Whether fetch() would take this file as it stands, without reading a byte of it."""
        try:
            return self._believed(trusted, rehash, self._placement(upstream_file)[2])
        except (FetchError, ValueError):
            return False  # fetch() reports it

    def _existing_matches(self, target: str, algorithm: str, expected: str) -> bool:
        return os.path.isfile(target) and hash_file(target, algorithm) == expected

    def fetch(self, upstream_file: UpstreamFile, trusted: Optional[PublishedFile], rehash: bool) -> FetchOutcome:
        """Make one file present and verified under web/.

        trusted: the record of an earlier run that published this very file; it is believed without
        re-hashing unless rehash is set (verify --repair). A file found on disk with no record (an
        adopted bandersnatch tree, or a run killed after the rename) is hashed before it is reused.
        """
        outcome = FetchOutcome()
        try:
            algorithm, expected, relative = self._placement(upstream_file)
            target = os.path.join(self.web_dir, relative)
            if self._believed(trusted, rehash, relative):
                size, actual_sha256 = trusted.size, trusted.sha256
            elif self._existing_matches(target, algorithm, expected):
                size = os.path.getsize(target)
                actual_sha256 = expected if algorithm == "sha256" else hash_file(target)
                # A run killed after its rename may have left it unsynced.
                outcome.unsynced.append(Unsynced(target, os.stat(target).st_dev))
            else:
                size, actual_sha256 = self.download_verified(
                    upstream_file.url, target, algorithm, expected, self.max_bytes, outcome.unsynced)
                outcome.downloaded = True
                outcome.downloaded_bytes += size
            metadata_sha256 = self._fetch_metadata(upstream_file, target, trusted, rehash, outcome)
            outcome.published = PublishedFile(upstream_file, relative, actual_sha256, size, metadata_sha256)
        except TooLarge as exc:
            outcome.skipped_reason = str(exc)
        except FetchError as exc:
            outcome.error = str(exc)
        except OSError as exc:
            outcome.error = f"{upstream_file.filename}: {exc.strerror or exc}"
        return outcome

    def _fetch_metadata(self, upstream_file: UpstreamFile, target: str, trusted: Optional[PublishedFile],
                        rehash: bool, outcome: FetchOutcome) -> Optional[str]:
        """PEP 658 metadata beside a wheel; missing metadata is a loss of speed, not an error."""
        hashes = upstream_file.core_metadata
        if not hashes or not upstream_file.filename.endswith(".whl"):
            return None
        metadata_target = target + ".metadata"
        if isinstance(hashes, dict) and hashes:
            algorithm, expected = strongest_hash(hashes)
        else:
            algorithm, expected = "sha256", ""
        if trusted and trusted.metadata_sha256 and not rehash and os.path.isfile(metadata_target):
            return trusted.metadata_sha256
        if expected and self._existing_matches(metadata_target, algorithm, expected):
            outcome.unsynced.append(Unsynced(metadata_target, os.stat(metadata_target).st_dev))
            return hash_file(metadata_target)
        if not expected:
            return None  # the upstream offers metadata without a hash: nothing to verify it by
        size, sha256 = self.download_verified(upstream_file.url + ".metadata", metadata_target,
                                               algorithm, expected, None, outcome.unsynced)
        outcome.downloaded_bytes += size
        return sha256
