#!/usr/bin/env python3
"""Benchmark the sync engine against a generated upstream on 127.0.0.1 and print figures.

    python benchmarks/bench_sync.py [--projects 200 --files-per-project 35 --large-count 4 --large-mb 256]

Phases: cold sync of many small files, no-op resync, cold sync of large files, and curl fetching the same
large files with the same parallelism (the ceiling for that upstream). Each engine phase runs as its own
process, so its peak RSS is its own. Where bandersnatch can be installed and supports this upstream, it is
run on the same small-file set. Figures go to stdout; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(REPO, "tests"), os.path.join(REPO, "plugins", "module_utils")]

from upstream_fixture import Catalog, serve_upstream  # noqa: E402

CPU_SECONDS: list[float] = []


def run_measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(seconds, peak RSS in MiB, stdout) of one child process; its CPU seconds go to CPU_SECONDS."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    CPU_SECONDS.append(usage.ru_utime + usage.ru_stime)
    out = process.stdout.read()
    err = process.stderr.read()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command[:4]} failed ({process.returncode}):\n{err[-2000:]}")
    return elapsed, usage.ru_maxrss // 1024, out


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


def engine_config(path: str, facts: dict, directory: str, projects: list[str], workers: int) -> str:
    config = {"upstream": facts["url"], "directory": directory, "projects": projects, "workers": workers}
    if facts["ca"]:
        config["ca_bundle"] = facts["ca"]
    with open(path, "w") as stream:
        json.dump(config, stream)
    return path


def engine(config: str) -> tuple[float, int, dict]:
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "plugins", "module_utils"))
    seconds, rss, out = run_measured([sys.executable, "-m", "localpypi_sync", "sync", "--config", config, "--json"],
                                     env)
    return seconds, rss, json.loads(out)


def curl_all(urls: list[str], workers: int, directory: str, ca: str | None) -> float:
    """Seconds for curl to fetch urls into files (what a plain download to disk costs)."""
    if not shutil.which("curl"):
        return float("nan")
    os.makedirs(directory, exist_ok=True)
    command = ["curl", "--silent", "--no-progress-meter", "--show-error", "--fail", "--parallel",
               "--parallel-max", str(workers)]
    if ca:
        command += ["--cacert", ca]
    for index, url in enumerate(urls):
        command += ["-o", os.path.join(directory, str(index)), url]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


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


def try_bandersnatch(work: str, facts: dict, projects: list[str], workers: int) -> str:
    venv = os.path.join(REPO, ".bench", "bandersnatch-venv")
    if not os.path.exists(os.path.join(venv, "bin", "bandersnatch")):
        subprocess.run([python_for_bandersnatch(), "-m", "venv", venv], check=True)
        installed = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "bandersnatch"], check=False,
                                   capture_output=True, text=True)
        if installed.returncode != 0:
            return "bandersnatch: not installable here: " + installed.stderr.strip().splitlines()[-1]
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
        return f"bandersnatch {version}: could not mirror this upstream ({tail[0][:200]})"
    mirrored = sum(len(files) for _, _, files in os.walk(os.path.join(work, "bandersnatch", "web", "packages")))
    return f"{version}: cold small-file sync of {mirrored} files in {elapsed:.2f}s = {mirrored / elapsed:.0f} files/s"


def serve_upstream_process(args: argparse.Namespace, work: str) -> None:
    """Child mode: build the upstream, serve it, print its facts as one JSON line, serve until stdin closes."""
    catalog, names, small_bytes, large_bytes = build_upstream(
        work, args.projects, args.files_per_project, args.small_kb, args.large_count, args.large_mb)
    tls = None
    if args.tls:
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        tls = (cert, key)
    with serve_upstream(catalog, tls=tls) as upstream:
        facts = {"url": upstream.url, "ca": tls[0] if tls else None, "base": upstream.base, "names": names,
                 "small_bytes": small_bytes,
                 "large_bytes": large_bytes,
                 "small_urls": [upstream.base + f.url_path for name in names for f in catalog.projects[name]],
                 "large_urls": [upstream.base + f.url_path for f in catalog.projects.get("bigproject", [])]}
        print(json.dumps(facts), flush=True)
        sys.stdin.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--files-per-project", type=int, default=35)
    parser.add_argument("--small-kb", type=int, default=4)
    parser.add_argument("--large-count", type=int, default=4)
    parser.add_argument("--large-mb", type=int, default=256)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--bandersnatch", action="store_true",
                        help="also run bandersnatch on the small set (implies --tls: it only accepts https)")
    parser.add_argument("--tls", action="store_true", help="serve the upstream over https (self-signed)")
    parser.add_argument("--serve-upstream", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.tls = args.tls or args.bandersnatch
    if args.serve_upstream:
        serve_upstream_process(args, args.serve_upstream)
        return 0
    work = tempfile.mkdtemp(prefix="localpypi-bench-", dir=os.environ.get("BENCH_DIR"))
    # The upstream lives in its own process: its memory must not count in the engine's peak RSS, and it
    # should not share a GIL with anything measured here.
    server = subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--serve-upstream", work],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        print(f"generating upstream: {args.projects} projects x {args.files_per_project} files of {args.small_kb} KiB,"
              f" {args.large_count} x {args.large_mb} MiB", flush=True)
        facts = json.loads(server.stdout.readline())
        names = facts["names"]
        small_files = args.projects * args.files_per_project
        small = engine_config(os.path.join(work, "small.json"), facts, os.path.join(work, "m-small"),
                              names, args.workers)
        seconds, rss, result = engine(small)
        assert result["ok"] and result["stats"]["files_downloaded"] == small_files, result["failures"][:3]
        print(f"cold small: {small_files} files in {seconds:.2f}s = {small_files / seconds:.0f} files/s, "
              f"{facts['small_bytes'] / seconds / 1e6:.1f} MB/s, peak RSS {rss} MiB, CPU {CPU_SECONDS[-1]:.1f}s "
              f"(workers {args.workers})")
        curl_seconds = curl_all(facts["small_urls"], args.workers, os.path.join(work, "curl-small"), facts["ca"])
        shutil.rmtree(os.path.join(work, "curl-small"), ignore_errors=True)
        print(f"curl, same small files, same parallelism (the upstream's ceiling here): "
              f"{small_files / curl_seconds:.0f} files/s")
        seconds, rss, result = engine(small)
        assert result["ok"] and not result["changed"]
        print(f"no-op small: {args.projects} projects in {seconds:.2f}s (process start included), "
              f"engine {result['stats']['duration_seconds']:.2f}s, peak RSS {rss} MiB")
        if args.large_count:
            large = engine_config(os.path.join(work, "large.json"), facts, os.path.join(work, "m-large"),
                                  ["bigproject"], args.workers)
            # curl before and after the engine, each phase after a sync(): dirty pages left by one phase
            # would otherwise slow the next one's writes, and the ratio would measure the disk's writeback.
            curl_rates = []
            for phase in ("before", "engine", "after"):
                os.sync()
                if phase == "engine":
                    seconds, rss, result = engine(large)
                    assert result["ok"], result["failures"]
                    continue
                curl_dir = os.path.join(work, "curl-" + phase)
                curl_seconds = curl_all(facts["large_urls"], args.workers, curl_dir, facts["ca"])
                curl_rates.append(facts["large_bytes"] / curl_seconds / 1e6)
                shutil.rmtree(curl_dir, ignore_errors=True)
            engine_rate = facts["large_bytes"] / seconds / 1e6
            inside_rate = facts["large_bytes"] / result["stats"]["duration_seconds"] / 1e6
            curl_rate = max(curl_rates)
            print(f"cold large: {args.large_count} x {args.large_mb} MiB in {seconds:.2f}s = {engine_rate:.0f} MB/s "
                  f"({inside_rate:.0f} MB/s without process start; sha256-verified, fsynced, published), "
                  f"peak RSS {rss} MiB")
            print(f"curl, same files, same parallelism, to disk, before/after: "
                  f"{' / '.join(f'{rate:.0f}' for rate in curl_rates)} MB/s; "
                  f"engine/curl = {engine_rate / curl_rate:.0%} (against the faster curl run)")
        if args.bandersnatch:
            print(try_bandersnatch(work, facts, names, args.workers))
    finally:
        server.stdin.close()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
