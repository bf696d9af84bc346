"""Real clients: pip and uv install from the published tree served over HTTP, nothing else reachable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from upstream_fixture import serve_mirror


@pytest.fixture
def served_mirror(make_config, sync, mirror_dir):
    result = sync(make_config(projects=["alpha", "gamma", "beta"], python_versions=["3.11"],
                              platforms=["manylinux_2_28_x86_64"]))
    assert result.ok, result.failures
    with serve_mirror(os.path.join(mirror_dir, "web")) as running:
        yield running


def clean_env():
    """No pip/uv settings of this machine leak in: the mirror must be the only source."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("PIP_", "UV_")) and key not in ("HTTP_PROXY", "HTTPS_PROXY")}


def installed_version(target, module):
    code = f"import sys; sys.path.insert(0, {str(target)!r}); import {module}; print({module}.VERSION)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_pip_installs_from_the_mirror(served_mirror, tmp_path):
    target = tmp_path / "pip-target"
    subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--no-cache-dir",
                    "--disable-pip-version-check", "--index-url", served_mirror.url, "--target", str(target),
                    "gamma", "alpha<2"],
                   check=True, capture_output=True, text=True, env=clean_env(), timeout=300)
    assert installed_version(target, "gamma") == "1.0"
    assert installed_version(target, "alpha") == "1.1"  # gamma needs alpha>=1.1, pinned below 2
    # pip used the PEP 658 metadata and the PEP 691 JSON the mirror published
    paths = [path for _, path in served_mirror.server.requests]
    assert any(path.endswith(".whl.metadata") for path in paths)
    assert any("application/vnd.pypi.simple.v1+json" in h.get("Accept", "")
               for h in served_mirror.server.request_headers)


def test_uv_installs_from_the_mirror(served_mirror, tmp_path):
    target = tmp_path / "uv-target"
    subprocess.run([sys.executable, "-m", "uv", "pip", "install", "--no-config", "--no-cache",
                    "--python", sys.executable, "--index-url", served_mirror.url, "--target", str(target),
                    "gamma", "beta"],
                   check=True, capture_output=True, text=True, env=clean_env(), timeout=300)
    assert installed_version(target, "gamma") == "1.0"
    assert installed_version(target, "alpha") == "2.0"
    assert installed_version(target, "beta") == "1.0"


def test_pip_and_uv_install_from_a_page_that_tells_a_project_status(make_config, sync, mirror_dir, catalog, tmp_path):
    """A page with a status marker is an api-version 1.4 page (PEP 792); the clients read it as before."""
    catalog.set_status("gamma", "archived", "no longer maintained")
    result = sync(make_config(projects=["alpha", "gamma"]))
    assert result.ok, result.failures
    with open(os.path.join(mirror_dir, "web", "simple", "gamma", "index.v1_json")) as stream:
        document = json.load(stream)
    assert document["meta"]["api-version"] == "1.4" and document["project-status"]["status"] == "archived"
    with serve_mirror(os.path.join(mirror_dir, "web")) as running:
        for client in (["pip", "install", "--isolated", "--no-cache-dir", "--disable-pip-version-check"],
                       ["uv", "pip", "install", "--no-config", "--no-cache", "--python", sys.executable]):
            target = tmp_path / client[0]
            installed = subprocess.run([sys.executable, "-m", *client, "--index-url", running.url,
                                        "--target", str(target), "gamma"],
                                       check=False, capture_output=True, text=True, env=clean_env(), timeout=300)
            assert installed.returncode == 0, installed.stderr
            assert installed_version(target, "gamma") == "1.0"
