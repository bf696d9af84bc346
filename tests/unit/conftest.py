"""Fixtures: a generated upstream on 127.0.0.1, a mirror directory, a config builder."""

from __future__ import annotations

import io
from typing import Any, Callable

import pytest

from localpypi_sync.config import SyncConfig, build_config
from localpypi_sync.report import Reporter
from localpypi_sync.sync import SyncResult, SyncRun
from upstream_fixture import Catalog, self_signed_certificate, serve_upstream, standard_catalog


@pytest.fixture
def catalog(tmp_path) -> Catalog:
    return standard_catalog(str(tmp_path / "upstream-files"))


@pytest.fixture
def upstream(catalog):
    with serve_upstream(catalog) as running:
        yield running


@pytest.fixture
def tls_files(tmp_path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: (certificate, key)."""
    return self_signed_certificate(str(tmp_path))


@pytest.fixture
def mirror_dir(tmp_path) -> str:
    return str(tmp_path / "mirror")


@pytest.fixture
def make_config(upstream, mirror_dir) -> Callable[..., SyncConfig]:
    def make(**options: Any) -> SyncConfig:
        raw = {"upstream": upstream.url, "directory": mirror_dir, "projects": ["alpha"], "workers": 4,
               "retries": 2}
        raw.update(options)
        return build_config(raw)

    return make


@pytest.fixture
def sync() -> Callable[..., SyncResult]:
    def run(config: SyncConfig, **options: Any) -> SyncResult:
        options.setdefault("backoff", 0.01)
        log = io.StringIO()
        result = SyncRun(config, Reporter(stream=log, progress=False), **options).run()
        result.log = log.getvalue()  # type: ignore[attr-defined]
        return result

    return run
