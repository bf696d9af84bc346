#!/usr/bin/env python3
"""Compare the two ways the engine can read a download's body over TLS, and print figures.

    python benchmarks/bench_tls_read.py [--count 4 --mb 256 --rounds 5]

nginx serves generated files over https on 127.0.0.1 (Debian: apt-get install nginx-light). Each round, the
engine's HttpClient downloads them all at once, one thread per file, as fetch.py does (sha256 of every byte,
written to disk, fsynced), twice: reading the body straight from the TLS connection (http._body_chunks, what
the engine does) and through http.client's response.read() (http._read_chunks, what it did before). The two
alternate, after a sync() each. Figures go to stdout; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from typing import Callable

from bench_sync import CpuTime, build_upstream, nginx_front

from localpypi_sync import http
from localpypi_sync.durable import sync_file_range_function
from localpypi_sync.fetch import Digest, _FdSink, writeback_starter
from upstream_fixture import self_signed_certificate, serve_upstream

READERS: dict[str, Callable] = {
    "from the TLS connection (the engine)": http._body_chunks,
    "through http.client": lambda response, sock: http._read_chunks(response),
}


def download_all(client: http.HttpClient, urls: list[str], directory: str) -> tuple[float, CpuTime]:
    """Wall seconds and this process's CPU time to download urls at once, as fetch.py does."""
    start_writeback = writeback_starter(sync_file_range_function())
    errors: list[BaseException] = []

    def one(index: int, url: str) -> None:
        fd = os.open(os.path.join(directory, str(index)), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            client.download(url, _FdSink(fd, start_writeback), [Digest("sha256")])
            os.fsync(fd)
        except BaseException as exc:  # reported below, not lost in a thread
            errors.append(exc)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=one, args=(index, url)) for index, url in enumerate(urls)]
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    if errors:
        raise SystemExit(f"download failed: {errors[0]}")
    return elapsed, CpuTime(after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not shutil.which("nginx"):
        parser.error("no nginx on PATH (Debian: apt-get install nginx-light)")
    work = tempfile.mkdtemp(prefix="localpypi-bench-tls-", dir=os.environ.get("BENCH_DIR"))
    try:
        catalog, _, _, total_bytes = build_upstream(work, 0, 0, 0, args.count, args.mb)
        cert, key = self_signed_certificate(work)
        with contextlib.ExitStack() as stack:
            upstream = stack.enter_context(serve_upstream(catalog, tls=(cert, key)))
            base = stack.enter_context(nginx_front(catalog, work, upstream.base, (cert, key)))
            urls = [base + entry.url_path for entry in catalog.projects["bigproject"]]
            figures: dict[str, list[tuple[float, CpuTime]]] = {name: [] for name in READERS}
            for _ in range(args.rounds):
                for name, reader in READERS.items():
                    target = os.path.join(work, "out")
                    os.makedirs(target)
                    os.sync()
                    client = http.HttpClient(timeout=60, retries=0, pool_size=args.count, ca_bundle=cert)
                    original, http._body_chunks = http._body_chunks, reader
                    try:
                        figures[name].append(download_all(client, urls, target))
                    finally:
                        http._body_chunks = original
                        client.close()
                        shutil.rmtree(target)
        print(f"{args.count} x {args.mb} MiB over TLS from nginx, one thread each, sha256 + fsync, "
              f"{args.rounds} rounds (median, range):")
        for name, runs in figures.items():
            seconds = [run[0] for run in runs]
            print(f"  {name}: {statistics.median(seconds):.2f}s ({min(seconds):.2f}-{max(seconds):.2f}), "
                  f"{total_bytes / statistics.median(seconds) / 1e6:.0f} MB/s, CPU user "
                  f"{statistics.median(run[1].user for run in runs):.2f}s + system "
                  f"{statistics.median(run[1].system for run in runs):.2f}s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
