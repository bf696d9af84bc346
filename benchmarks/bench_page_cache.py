#!/usr/bin/env python3
"""What this machine charges for the steps of a large download that are not the engine's own: hashing, first
touches of memory, and copies into the page cache by write size. Prints figures; asserts nothing.

    python benchmarks/bench_page_cache.py [--rounds 3] [--mib 1024] [--dir DIR]

The write phase writes MiB of data to a file in DIR (default: a temp dir) in 64 KiB, 256 KiB and 1 MiB writes,
the sizes taking turns in each round after a sync() and a pause, and prints the kernel time of each. On a VM
that hands freed memory back to its host, first touches cost a host fault each, and the figures swing.
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import os
import resource
import tempfile
import time

WRITE_SIZES = (64 << 10, 256 << 10, 1 << 20)
PAGE = mmap.PAGESIZE


def kernel_seconds() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def hash_rate(algorithm: str, total: int) -> float:
    """GB/s of hashlib's algorithm over total bytes in 256 KiB updates (the engine's chunk)."""
    chunk = os.urandom(256 << 10)
    digest = hashlib.new(algorithm)
    started = time.perf_counter()
    for _ in range(total // len(chunk)):
        digest.update(chunk)
    return total / (time.perf_counter() - started) / 1e9


def touch_seconds(total: int) -> float:
    """Kernel seconds to touch total bytes of fresh anonymous memory, one byte per page."""
    before = kernel_seconds()
    memory = mmap.mmap(-1, total)
    for offset in range(0, total, PAGE):
        memory[offset] = 1
    memory.close()
    return kernel_seconds() - before


def write_seconds(path: str, total: int, write_size: int) -> float:
    """Kernel seconds to write total bytes to a new file in writes of write_size (no fsync)."""
    data = os.urandom(write_size)
    before = kernel_seconds()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(total // write_size):
            os.write(fd, data)
    finally:
        os.close(fd)
    return kernel_seconds() - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--dir", help="where the written file goes (default: a temp dir)")
    args = parser.parse_args()
    total = args.mib << 20
    print(f"sha256: {hash_rate('sha256', total):.2f} GB/s in 256 KiB updates", flush=True)
    touches = [touch_seconds(total) for _ in range(args.rounds)]
    print(f"touch {args.mib} MiB of fresh memory: " + ", ".join(f"{s:.2f}" for s in touches) + " s kernel time",
          flush=True)
    by_size: dict[int, list[float]] = {size: [] for size in WRITE_SIZES}
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        path = os.path.join(work, "data")
        for _ in range(args.rounds):
            for size in WRITE_SIZES:
                if os.path.exists(path):
                    os.remove(path)  # its pages go back to the allocator, as a deleted download's would
                os.sync()
                time.sleep(3)  # long enough for a VM's free page reporting to hand them to the host
                by_size[size].append(write_seconds(path, total, size))
    for size, seconds in by_size.items():
        print(f"write {args.mib} MiB in {size >> 10} KiB writes: " + ", ".join(f"{s:.2f}" for s in seconds)
              + " s kernel time", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
