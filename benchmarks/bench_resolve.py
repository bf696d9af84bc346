#!/usr/bin/env python3
"""Benchmark dependency-closed mirroring: network requests and time, against `pip download` once per target.

    python benchmarks/bench_resolve.py [--projects 150 --requirements 30 --seed 7]

A generated upstream on 127.0.0.1 holds a random dependency graph: projects with several releases, pure and
platform wheels, Requires-Dist with specifiers and markers (sys_platform, python_version), PEP 658 metadata
files. A requirements file names --requirements of them. The engine mirrors their dependency closure for
4 targets (Python 3.11/3.12 x manylinux_2_28_x86_64/win_amd64), in both resolution modes; then `pip download`
fetches the same requirements once per target, as one would without the engine. The upstream counts every
request. Figures go to stdout; nothing here asserts anything.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(REPO, "tests"), os.path.join(REPO, "plugins", "module_utils")]

from localpypi_sync.config import build_config  # noqa: E402
from localpypi_sync.report import Reporter  # noqa: E402
from localpypi_sync.sync import SyncRun  # noqa: E402
from upstream_fixture import Catalog, serve_upstream  # noqa: E402

PYTHONS = ["3.11", "3.12"]
PLATFORMS = ["manylinux_2_28_x86_64", "win_amd64"]
WHEEL_PLATFORMS = {"manylinux_2_28_x86_64": "manylinux_2_17_x86_64.manylinux2014_x86_64", "win_amd64": "win_amd64"}


def build_graph(catalog: Catalog, projects: int, rng: random.Random) -> list[str]:
    """Projects p0000.. depend only on higher-numbered ones, so the graph has no cycles."""
    names = [f"p{index:04d}" for index in range(projects)]
    for index, name in enumerate(names):
        native = rng.random() < 0.25
        for minor in range(rng.randint(2, 5)):
            version = f"1.{minor}"
            requires = []
            later = names[index + 1:]
            for dependency in rng.sample(later, min(len(later), rng.choice([0, 1, 2, 2, 3]))):
                marker = rng.choice(["", "", "", '; sys_platform == "win32"', '; python_version < "3.12"'])
                requires.append(f"{dependency}>=1.{rng.randint(0, 1)}{marker}")
            if native:
                for python in ("cp311", "cp312"):
                    for platform in WHEEL_PLATFORMS.values():
                        catalog.add_wheel(name, version, f"{python}-{python}-{platform}", requires_dist=requires)
            else:
                catalog.add_wheel(name, version, requires_dist=requires)
    return names


def count_gets(running, since: int) -> tuple[int, int, int]:
    """(GET requests, of which pages, of which metadata files) since an index in the request log."""
    paths = [path for method, path in running.server.requests[since:] if method == "GET"]
    pages = sum(1 for p in paths if p.startswith("/simple/"))
    metadata = sum(1 for p in paths if p.endswith(".metadata"))
    return len(paths), pages, metadata


def run_engine(running, directory: str, requirements: str, mode: str) -> tuple[float, int, int, int, int]:
    config = build_config({"upstream": running.url, "directory": directory, "requirements_files": [requirements],
                           "dependencies": True, "resolution": mode, "python_versions": PYTHONS,
                           "platforms": PLATFORMS, "workers": 8})
    since = len(running.server.requests)
    started = time.perf_counter()
    result = SyncRun(config, Reporter(stream=io.StringIO(), progress=False)).run()
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"engine failed: {result.failures[:3]}")
    return (elapsed, *count_gets(running, since), result.stats.files_published)


def run_pip_download(running, requirements: str, scratch: str) -> tuple[float, int, int, int, int]:
    since = len(running.server.requests)
    started = time.perf_counter()
    files = set()
    for python in PYTHONS:
        for platform in PLATFORMS:
            dest = os.path.join(scratch, f"pip-{python}-{platform}")
            platforms = [platform, "manylinux2014_x86_64"] if platform.startswith("manylinux") else [platform]
            subprocess.run([sys.executable, "-m", "pip", "download", "--isolated", "--no-cache-dir", "--quiet",
                            "--disable-pip-version-check", "--index-url", running.url, "--dest", dest,
                            "--only-binary", ":all:", *(f"--platform={p}" for p in platforms),
                            "--python-version", python, "--implementation", "cp", "-r", requirements],
                           check=True, capture_output=True, text=True)
            files.update(os.listdir(dest))
    elapsed = time.perf_counter() - started
    return (elapsed, *count_gets(running, since), len(files))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=150)
    parser.add_argument("--requirements", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay the upstream adds to every request, like a distant index")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    scratch = tempfile.mkdtemp(prefix="localpypi-bench-resolve-")
    try:
        catalog = Catalog(os.path.join(scratch, "upstream"))
        names = build_graph(catalog, args.projects, rng)
        requirements = os.path.join(scratch, "requirements.txt")
        with open(requirements, "w") as stream:
            stream.writelines(f"{name}\n" for name in rng.sample(names[: args.projects // 2], args.requirements))
        print(f"upstream: {args.projects} projects, {sum(len(f) for f in catalog.projects.values())} files; "
              f"{args.requirements} requirements; targets: {len(PYTHONS) * len(PLATFORMS)}; "
              f"upstream latency {args.latency_ms:g} ms per request")
        print(f"{'run':44} {'seconds':>8} {'GETs':>6} {'pages':>6} {'metadata':>9} {'files':>6}")
        with serve_upstream(catalog) as running:
            running.server.faults.latency = args.latency_ms / 1000
            for mode in ("pinned", "candidates"):
                directory = os.path.join(scratch, f"mirror-{mode}")
                row = run_engine(running, directory, requirements, mode)
                print(f"{'engine, resolution: ' + mode + ', cold':44} {row[0]:8.2f} {row[1]:6d} {row[2]:6d} "
                      f"{row[3]:9d} {row[4]:6d}")
                row = run_engine(running, directory, requirements, mode)
                print(f"{'engine, resolution: ' + mode + ', no-op':44} {row[0]:8.2f} {row[1]:6d} {row[2]:6d} "
                      f"{row[3]:9d} {row[4]:6d}")
            row = run_pip_download(running, requirements, scratch)
            print(f"{'pip download, once per target (4 runs)':44} {row[0]:8.2f} {row[1]:6d} {row[2]:6d} "
                  f"{row[3]:9d} {row[4]:6d}")
        print("GETs: every request the upstream served, pages and metadata files included; "
              "files: distinct files published (engine) or downloaded (pip)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
