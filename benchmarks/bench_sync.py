#!/usr/bin/env python3
"""Benchmark the sync engine against a generated upstream on 127.0.0.1 and print figures.

    python benchmarks/bench_sync.py [--projects 200 --files-per-project 35 --large-count 4 --large-mb 256]

The engine runs as the sync role installs it: its package copied and compiled to bytecode. Phases: cold sync of many
small files, no-op resync, export of that mirror to another directory (three times), cold sync of large files, and curl
fetching the same large files with the same parallelism (the ceiling for that upstream). Each engine phase runs as
its own process, so its peak memory is its own (its worker processes included). Where bandersnatch can be installed
and supports this upstream, it is run on the same small-file set. --nginx puts nginx in front of the Python upstream
to serve the files, as a CDN would, leaving this machine's cores to the tools measured; --link-rate also makes them
wait for a link of that rate, as a remote upstream would. Figures go to stdout; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import pwd
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Iterator, NamedTuple, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(REPO, "tests"), os.path.join(REPO, "plugins", "module_utils")]

from localpypi_sync.shards import usable_cpus  # noqa: E402
from upstream_fixture import Catalog, self_signed_certificate, serve_upstream  # noqa: E402


class CpuTime(NamedTuple):
    """CPU seconds a finished child process used (its own children included once they were waited for)."""

    user: float
    system: float

    @classmethod
    def of(cls, usage: resource.struct_rusage) -> CpuTime:
        return cls(usage.ru_utime, usage.ru_stime)

    @property
    def total(self) -> float:
        return self.user + self.system

    def __str__(self) -> str:
        return f"{self.total:.2f}s ({self.user:.2f} user + {self.system:.2f} system)"


def run_measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str, CpuTime]:
    """(seconds, peak memory in MiB, stdout, CPU time) of one child process.

    Peak memory is the highest sum of PSS over the child and its worker processes, sampled every 50 ms
    (forked workers share pages with their parent: PSS counts each shared page once in total), or the
    child's own peak RSS where that is higher."""
    started = time.perf_counter()
    errors = tempfile.TemporaryFile("w+")  # not a pipe: a full one would stall the child while stdout is read
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=env, text=True)
    peak_pss = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak_pss[0] = max(peak_pss[0], sum(pss_kib(pid) for pid in descendants(process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    done.set()
    sampler.join()
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        errors.seek(0)
        raise SystemExit(f"{command[:4]} failed ({process.returncode}):\n{errors.read()[-2000:]}")
    return elapsed, max(usage.ru_maxrss, peak_pss[0]) // 1024, out, CpuTime.of(usage)


def pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as stream:
        for line in stream:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def build_upstream(root: str, projects: int, files_per_project: int, small_kb: int, large_count: int,
                   large_mb: int) -> tuple[Catalog, list[str], int, int]:
    catalog = Catalog(os.path.join(root, "files"))
    small_bytes = 0
    names = []
    for index in range(projects):
        name = f"bench{index:04d}"
        names.append(name)
        for version in range(files_per_project):
            data = os.urandom(small_kb * 1024)
            catalog.add_bytes(name, f"{name}-1.{version}-py3-none-any.whl", data)
            small_bytes += len(data)
    large_bytes = 0
    chunk = os.urandom(1 << 20)
    for index in range(large_count):
        path = os.path.join(root, f"large{index}")
        with open(path, "wb") as stream:
            for block in range(large_mb):
                stream.write(chunk[:-8] + block.to_bytes(4, "big") + index.to_bytes(4, "big"))
        with open(path, "rb") as stream:
            data = stream.read()
        catalog.add_bytes("bigproject", f"bigproject-{index}.0-py3-none-any.whl", data)
        large_bytes += len(data)
        del data
        os.unlink(path)
    return catalog, names, small_bytes, large_bytes


def engine_config(path: str, facts: dict, directory: str, projects: list[str], workers: int, processes: int) -> str:
    config = {"upstream": facts["url"], "directory": directory, "projects": projects, "workers": workers,
              "processes": processes}
    if facts["ca"]:
        config["ca_bundle"] = facts["ca"]
    with open(path, "w") as stream:
        json.dump(config, stream)
    return path


def install_engine(work: str) -> str:
    """The engine's package copied under work and compiled to bytecode, as the sync role installs it: the
    timed runs then import it as the service does, not compiling it first (this checkout may never have been
    imported, or PYTHONDONTWRITEBYTECODE may be set). Returns the directory to put on PYTHONPATH."""
    lib = os.path.join(work, "lib")
    package = os.path.join(lib, "localpypi_sync")
    shutil.copytree(os.path.join(REPO, "plugins", "module_utils", "localpypi_sync"), package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "timestamp", package],
                   check=True)
    return lib


def engine(config: str, lib: str) -> tuple[float, int, dict, CpuTime]:
    env = dict(os.environ, PYTHONPATH=lib)
    seconds, rss, out, cpu = run_measured(
        [sys.executable, "-m", "localpypi_sync", "sync", "--config", config, "--json"], env)
    return seconds, rss, json.loads(out), cpu


def export_small(config: str, lib: str, disk: str, files: int) -> None:
    """`export` of the small-file mirror to a directory on the same disk, again, and again with --verify (every
    file on the disk hashed): what a carried disk's export costs the engine (a USB disk is slower)."""
    os.makedirs(disk)
    env = dict(os.environ, PYTHONPATH=lib)
    for phase, options in (("cold", []), ("repeated", []), ("repeated --verify", ["--verify"])):
        os.sync()
        seconds, rss, out, _ = run_measured(
            [sys.executable, "-m", "localpypi_sync", "export", "--config", config, "--to", disk, "--json", *options],
            env)
        report = json.loads(out)
        assert report["ok"] and report["files_copied"] == (files if phase == "cold" else 0), report["problems"][:3]
        print(f"export {phase}: {files} files in {seconds:.2f}s = {files / seconds:.0f} files/s "
              f"({report['files_copied']} copied; process start and the closing sync() included), "
              f"peak memory {rss} MiB")


def curl_all(urls: list[str], workers: int, directory: str, ca: str | None) -> tuple[float, Optional[CpuTime]]:
    """Seconds and CPU time for curl to fetch urls into files (what a plain download to disk costs); NaN and
    None where there is no curl."""
    if not shutil.which("curl"):
        return float("nan"), None
    os.makedirs(directory, exist_ok=True)
    command = ["curl", "--silent", "--no-progress-meter", "--show-error", "--fail", "--parallel",
               "--parallel-max", str(workers)]
    if ca:
        command += ["--cacert", ca]
    for index, url in enumerate(urls):
        command += ["-o", os.path.join(directory, str(index)), url]
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"curl failed ({os.waitstatus_to_exitcode(status)})")
    return elapsed, CpuTime.of(usage)


def python_for_bandersnatch() -> str:
    """bandersnatch 8 needs Python >= 3.12: this interpreter, one on PATH, or one of pyenv's."""
    if sys.version_info >= (3, 12):
        return sys.executable
    candidates = [shutil.which(f"python3.{minor}") for minor in range(20, 11, -1)]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.1[2-9]*", "bin", "python3")), reverse=True)
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys, venv; assert sys.version_info >= (3, 12)"],
                               check=False, capture_output=True)
        if probe.returncode == 0:
            return candidate
    return sys.executable  # pip will then install the newest bandersnatch this Python supports


class BandersnatchOutcome(NamedTuple):
    """What the bandersnatch phase printed, and its rate where it mirrored (None where it could not)."""

    message: str
    files_per_second: Optional[float]


def try_bandersnatch(work: str, facts: dict, projects: list[str], workers: int) -> BandersnatchOutcome:
    venv = os.path.join(REPO, ".bench", "bandersnatch-venv")
    if not os.path.exists(os.path.join(venv, "bin", "bandersnatch")):
        subprocess.run([python_for_bandersnatch(), "-m", "venv", venv], check=True)
        installed = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "bandersnatch"], check=False,
                                   capture_output=True, text=True)
        if installed.returncode != 0:
            return BandersnatchOutcome(
                "bandersnatch: not installable here: " + installed.stderr.strip().splitlines()[-1], None)
    version = subprocess.run([os.path.join(venv, "bin", "bandersnatch"), "--version"], check=False,
                             capture_output=True, text=True).stdout.strip()
    config = os.path.join(work, "bandersnatch.conf")
    with open(config, "w") as stream:
        stream.write(f"""[mirror]
directory = {work}/bandersnatch
master = {facts["base"]}
workers = {min(workers, 10)}
timeout = 30
stop-on-error = false
hash-index = false
json = false
verifiers = 3
simple-format = ALL

[plugins]
enabled =
    allowlist_project

[allowlist]
packages =
""" + "".join(f"    {name}\n" for name in projects))
    started = time.perf_counter()
    env = dict(os.environ, SSL_CERT_FILE=facts["ca"])
    result = subprocess.run([os.path.join(venv, "bin", "bandersnatch"), "--config", config, "mirror"],
                            check=False, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return BandersnatchOutcome(f"bandersnatch {version}: could not mirror this upstream ({tail[0][:200]})", None)
    mirrored = sum(len(files) for _, _, files in os.walk(os.path.join(work, "bandersnatch", "web", "packages")))
    return BandersnatchOutcome(
        f"{version}: cold small-file sync of {mirrored} files in {elapsed:.2f}s = {mirrored / elapsed:.0f} files/s",
        mirrored / elapsed)


NGINX_CONF = """worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
{user}
events {{ }}
http {{
    access_log off;
    upstream python_upstream {{
        server {backend};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        keepalive_requests 100000;
        location /packages/ {{ root {static}; }}
        location / {{
            proxy_pass https://python_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def nginx_front(catalog: Catalog, work: str, backend: str, tls: tuple[str, str]) -> Iterator[str]:
    """nginx serving /packages/ from disk and passing the rest to the Python upstream: its base URL.

    The Python upstream spends CPU on every file; a real index serves files from a CDN on other machines.
    With nginx (written in C) in front, the two tools measured get most of this machine's cores."""
    static = os.path.join(work, "static")
    for entry in catalog.by_url_path.values():
        target = os.path.join(static, entry.url_path.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.link(entry.disk_path, target)
        if entry.metadata is not None:
            with open(target + ".metadata", "wb") as stream:
                stream.write(entry.metadata)
    os.chmod(work, 0o755)  # nginx's worker reads the files
    port = free_port()
    user = f"user {pwd.getpwuid(os.getuid()).pw_name};" if os.getuid() == 0 else ""
    config = os.path.join(work, "nginx.conf")
    with open(config, "w") as stream:
        stream.write(NGINX_CONF.format(work=work, user=user, port=port, cert=tls[0], key=tls[1], static=static,
                                       backend=backend.split("://", 1)[1]))
    server = subprocess.Popen(["nginx", "-p", work, "-c", config], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        yield f"https://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextlib.contextmanager
def loopback_link(mbit: int) -> Iterator[None]:
    """Shape all of this host's loopback traffic to mbit Mbit/s (a kernel token bucket, tc-tbf), as a link to a
    remote upstream would, and restore it afterwards. Needs root and tc; refuses if lo already has a qdisc."""
    if not mbit:
        yield
        return
    shown = subprocess.run(["tc", "qdisc", "show", "dev", "lo"], check=True, capture_output=True, text=True).stdout
    if not shown.startswith("qdisc noqueue"):
        raise SystemExit(f"--link-rate: lo already has a queueing discipline, left alone: {shown.strip()}")
    subprocess.run(["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", f"{mbit}mbit", "burst", "8mb",
                    "latency", "50ms"], check=True)
    try:
        yield
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)


FRESH_FILESYSTEM_BYTES = 8 << 30  # a sparse image: the upstream's files, the engine's, curl's and bandersnatch's


@contextlib.contextmanager
def fresh_filesystem(kind: str) -> Iterator[Optional[str]]:
    """Where the run keeps its files: with kind (xfs, ext4), a new file system of that kind on a loop device,
    as the storage role gives a mirror its own volume; otherwise BENCH_DIR, or the system's temp directory.

    A host's file system carries the history of earlier runs: ext4 without a journal skips the inodes freed in
    the last minutes whenever it creates one, so a run that follows another run's deletes is slower for every
    tool (see the README). A fresh file system is the same for every run. Needs root and mkfs.<kind>."""
    if not kind:
        yield os.environ.get("BENCH_DIR")
        return
    holder = tempfile.mkdtemp(prefix="localpypi-bench-fs-", dir=os.environ.get("BENCH_DIR"))
    image, mountpoint = os.path.join(holder, "image"), os.path.join(holder, "mnt")
    try:
        os.mkdir(mountpoint)
        with open(image, "wb") as stream:
            stream.truncate(FRESH_FILESYSTEM_BYTES)
        subprocess.run([f"mkfs.{kind}", "-q", "-F" if kind.startswith("ext") else "-f", image], check=True)
        # Direct I/O: the loop device writes to the image's blocks, not through a second page cache.
        device = subprocess.run(["losetup", "--direct-io=on", "--find", "--show", image], check=True,
                                capture_output=True, text=True).stdout.strip()
        try:
            subprocess.run(["mount", device, mountpoint], check=True)
            try:
                yield mountpoint
            finally:
                subprocess.run(["umount", mountpoint], check=False)
        finally:
            subprocess.run(["losetup", "--detach", device], check=False)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def serve_upstream_process(args: argparse.Namespace, work: str) -> None:
    """Child mode: build the upstream, serve it, print its facts as one JSON line, serve until stdin closes."""
    catalog, names, small_bytes, large_bytes = build_upstream(
        work, args.projects, args.files_per_project, args.small_kb, args.large_count, args.large_mb)
    tls = None
    if args.tls:
        tls = self_signed_certificate(work)
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(serve_upstream(catalog, tls=tls))
        base = upstream.base
        if args.nginx:
            base = stack.enter_context(nginx_front(catalog, work, upstream.base, tls))
        facts = {"url": base + "/simple/", "ca": tls[0] if tls else None, "base": base, "names": names,
                 "small_bytes": small_bytes,
                 "large_bytes": large_bytes,
                 "small_urls": [base + f.url_path for name in names for f in catalog.projects[name]],
                 "large_urls": [base + f.url_path for f in catalog.projects.get("bigproject", [])]}
        print(json.dumps(facts), flush=True)
        sys.stdin.read()


def descendants(root: int) -> list[int]:
    """root and every process below it (the upstream, and the nginx it started)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stream:
                parents[int(entry)] = int(stream.read().rsplit(")", 1)[1].split()[1])
    found = [root]
    for pid in found:  # grows while it is walked
        found += [child for child, parent in parents.items() if parent == pid]
    return found


def server_cpu_seconds(server_pid: int) -> float:
    """CPU seconds the upstream's processes used so far (to show what the measured tool left of the machine)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in descendants(server_pid):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--files-per-project", type=int, default=35)
    parser.add_argument("--small-kb", type=int, default=4)
    parser.add_argument("--large-count", type=int, default=4)
    parser.add_argument("--large-mb", type=int, default=256)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--processes", type=int, default=0, help="the engine's processes option (0: one per core)")
    parser.add_argument("--nginx", action="store_true",
                        help="serve the files with nginx in front of the Python upstream (implies --tls)")
    parser.add_argument("--link-rate", type=int, default=0, metavar="MBIT",
                        help="shape all of this host's loopback traffic to MBIT Mbit/s while the script runs (tc-tbf; "
                             "root), so the tools wait for a link as they would for a remote upstream")
    parser.add_argument("--filesystem", choices=["xfs", "ext4"],
                        help="keep the run's files on a new file system of this kind on a loop device, the same for "
                             "every run (root; mkfs.xfs or mkfs.ext4)")
    parser.add_argument("--bandersnatch", action="store_true",
                        help="also run bandersnatch on the small set (implies --tls: it only accepts https)")
    parser.add_argument("--tls", action="store_true", help="serve the upstream over https (self-signed)")
    parser.add_argument("--serve-upstream", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.tls = args.tls or args.bandersnatch or args.nginx
    if args.filesystem and (os.geteuid() != 0 or not shutil.which(f"mkfs.{args.filesystem}")):
        parser.error(f"--filesystem: needs root and mkfs.{args.filesystem}")
    if args.nginx and not shutil.which("nginx"):
        parser.error("--nginx: no nginx on PATH (Debian: apt-get install nginx-light)")
    if args.serve_upstream:
        serve_upstream_process(args, args.serve_upstream)
        return 0
    with loopback_link(args.link_rate), fresh_filesystem(args.filesystem) as directory:
        return measure(args, directory)


# curl's slower large-file run getting less than this share of its faster one: writing did not cost the same
# through the run, and the engine/curl ratio is not a fair figure.
UNSTEADY_CURL_SHARE = 0.85


def measure(args: argparse.Namespace, directory: Optional[str]) -> int:
    work = tempfile.mkdtemp(prefix="localpypi-bench-", dir=directory)
    # The upstream lives in its own process: its memory must not count in the engine's peak RSS, and it
    # should not share a GIL with anything measured here.
    server = subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--serve-upstream", work],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        print(f"generating upstream: {args.projects} projects x {args.files_per_project} files of {args.small_kb} KiB,"
              f" {args.large_count} x {args.large_mb} MiB", flush=True)
        facts = json.loads(server.stdout.readline())
        lib = install_engine(work)
        names = facts["names"]
        small_files = args.projects * args.files_per_project
        small = engine_config(os.path.join(work, "small.json"), facts, os.path.join(work, "m-small"),
                              names, args.workers, args.processes)
        os.sync()  # the upstream's generated files are on disk: no writeback competes with the tools measured
        upstream_cpu = server_cpu_seconds(server.pid)
        seconds, rss, result, cpu = engine(small, lib)
        upstream_cpu = server_cpu_seconds(server.pid) - upstream_cpu
        assert result["ok"] and result["stats"]["files_downloaded"] == small_files, result["failures"][:3]
        small_rate = small_files / seconds
        print(f"cold small: {small_files} files in {seconds:.2f}s = {small_rate:.0f} files/s, "
              f"{facts['small_bytes'] / seconds / 1e6:.1f} MB/s, peak memory {rss} MiB, CPU {cpu.total:.1f}s "
              f"(workers {args.workers}, processes {args.processes or 'one per core'}); "
              f"the upstream meanwhile used {upstream_cpu:.1f} CPU-s of this machine's {usable_cpus()} cores")
        if args.bandersnatch:  # right after the engine: the same state of the disk and page cache for both
            os.sync()
            upstream_cpu = server_cpu_seconds(server.pid)
            outcome = try_bandersnatch(work, facts, names, args.workers)
            upstream_cpu = server_cpu_seconds(server.pid) - upstream_cpu
            print(f"{outcome.message}; the upstream meanwhile used {upstream_cpu:.1f} CPU-s")
            if outcome.files_per_second:
                print(f"engine/bandersnatch = {small_rate / outcome.files_per_second:.2f}x "
                      f"(files/s, same files, same workers; target: 2x)")
        # Kept until the end: a file system may make creating files slower right after many were deleted
        # (ext4 without a journal skips recently freed inodes), and the tools after this phase would pay.
        curl_seconds, _ = curl_all(facts["small_urls"], args.workers, os.path.join(work, "curl-small"), facts["ca"])
        print(f"curl, same small files, same parallelism (the upstream's ceiling here): "
              f"{small_files / curl_seconds:.0f} files/s")
        seconds, rss, result, _ = engine(small, lib)
        assert result["ok"] and not result["changed"]
        print(f"no-op small: {args.projects} projects in {seconds:.2f}s (process start included), "
              f"engine {result['stats']['duration_seconds']:.2f}s, peak memory {rss} MiB")
        export_small(small, lib, os.path.join(work, "disk"), small_files)
        if args.large_count:
            large = engine_config(os.path.join(work, "large.json"), facts, os.path.join(work, "m-large"),
                                  ["bigproject"], args.workers, args.processes)
            # curl before and after the engine, each phase after a sync(): dirty pages left by one phase
            # would otherwise slow the next one's writes, and the ratio would measure the disk's writeback.
            curl_rates, curl_cpu = [], []
            for phase in ("before", "engine", "after"):
                os.sync()
                if phase == "engine":
                    upstream_cpu = server_cpu_seconds(server.pid)
                    seconds, rss, result, cpu = engine(large, lib)
                    upstream_cpu = server_cpu_seconds(server.pid) - upstream_cpu
                    assert result["ok"], result["failures"]
                    continue
                curl_dir = os.path.join(work, "curl-" + phase)
                curl_seconds, curl_phase_cpu = curl_all(facts["large_urls"], args.workers, curl_dir, facts["ca"])
                curl_rates.append(facts["large_bytes"] / curl_seconds / 1e6)
                curl_cpu.append(str(curl_phase_cpu or "n/a"))
                shutil.rmtree(curl_dir, ignore_errors=True)
            engine_rate = facts["large_bytes"] / seconds / 1e6
            inside_rate = facts["large_bytes"] / result["stats"]["duration_seconds"] / 1e6
            curl_rate = max(curl_rates)
            print(f"cold large: {args.large_count} x {args.large_mb} MiB in {seconds:.2f}s = {engine_rate:.0f} MB/s "
                  f"({inside_rate:.0f} MB/s without process start; sha256-verified, fsynced, published), "
                  f"peak memory {rss} MiB, CPU {cpu}; the upstream meanwhile used "
                  f"{upstream_cpu:.2f} CPU-s")
            print(f"curl, same files, same parallelism, to disk, before/after: "
                  f"{' / '.join(f'{rate:.0f}' for rate in curl_rates)} MB/s, "
                  f"CPU {' / '.join(curl_cpu)}; "
                  f"engine/curl = {engine_rate / curl_rate:.0%} (against the faster curl run)")
            slower_share = min(curl_rates) / curl_rate
            if slower_share < UNSTEADY_CURL_SHARE:
                print(f"warning: curl's slower run got {slower_share:.0%} of its faster one: "
                      f"writing to this disk did not cost the same through the run (another run's writeback, or "
                      f"a VM's page cache; see the README's caveats), so engine/curl is not a fair figure; "
                      f"run again after a pause")
    finally:
        server.stdin.close()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
