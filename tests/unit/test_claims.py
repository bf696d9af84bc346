"""Names a private index claims: never taken from the upstream, withdrawn when already mirrored."""

from __future__ import annotations

import json
import os

import pytest
from test_resolve import TARGETS

from localpypi_sync.claims import project_of, read_claims
from localpypi_sync.config import build_config
from localpypi_sync.sync import SyncAbort
from upstream_fixture import dependency_catalog, serve_upstream


def page_path(mirror_dir: str, project: str) -> str:
    return os.path.join(mirror_dir, "web", "simple", project, "index.html")


def root_listing(mirror_dir: str) -> set[str]:
    with open(os.path.join(mirror_dir, "web", "simple", "index.v1_json"), encoding="utf-8") as handle:
        return {project["name"] for project in json.load(handle)["projects"]}


def package_files(mirror_dir: str) -> list[str]:
    packages = os.path.join(mirror_dir, "web", "packages")
    return sorted(os.path.relpath(os.path.join(d, f), packages) for d, _, fs in os.walk(packages) for f in fs)


def asked_for(upstream, project: str) -> bool:
    return any(path.rstrip("/").endswith(f"/simple/{project}") for _, path in upstream.server.requests)


@pytest.fixture
def private_dir(tmp_path) -> str:
    directory = tmp_path / "private" / "packages"
    directory.mkdir(parents=True)
    return str(directory)


def upload(private_dir: str, filename: str) -> None:
    with open(os.path.join(private_dir, filename), "wb") as handle:
        handle.write(b"private")


@pytest.mark.parametrize(("filename", "project"), [
    ("Acme_Utils-1.0-py3-none-any.whl", "acme-utils"),
    ("acme_utils-1.0.tar.gz", "acme-utils"),
    ("acme.tools-2.0.zip", "acme-tools"),
    ("Old-Name-0.3.tar.bz2", "old-name"),
    ("legacy_pkg-1.2-py3.9.egg", "legacy-pkg"),
    ("not-a-wheel.whl", None),
    ("README.tar.gz", None),
])
def test_project_of_a_distribution_file(filename, project):
    assert project_of(filename) == project


def test_claims_walk_subdirectories_and_skip_what_is_no_archive(private_dir):
    os.makedirs(os.path.join(private_dir, "team-a"))
    upload(os.path.join(private_dir, "team-a"), "alpha-9.0-py3-none-any.whl")
    upload(private_dir, "gamma-1.0.tar.gz")
    upload(private_dir, "gamma-1.0.tar.gz.asc")
    upload(private_dir, ".hidden-1.0.tar.gz")
    upload(private_dir, "odd.whl")
    claims = read_claims(private_dir)
    assert claims.names == {"alpha", "gamma"}
    assert claims.unreadable_files == ("odd.whl",)


def test_a_claimed_project_is_never_asked_of_the_upstream(make_config, sync, upstream, mirror_dir, private_dir):
    upload(private_dir, "alpha-0.1-py3-none-any.whl")
    result = sync(make_config(projects=["alpha", "beta"], private_directory=private_dir))
    assert result.ok, result.failures
    assert not asked_for(upstream, "alpha")
    assert not os.path.exists(page_path(mirror_dir, "alpha"))
    assert root_listing(mirror_dir) == {"beta"}
    assert any("alpha is claimed by the private index" in w for w in result.warnings)


def test_a_mirrored_page_is_withdrawn_once_the_name_is_claimed_and_back_when_released(
        make_config, sync, mirror_dir, private_dir):
    config = make_config(projects=["alpha", "beta"], private_directory=private_dir)
    assert sync(config).ok
    assert os.path.exists(page_path(mirror_dir, "alpha"))
    files_before = package_files(mirror_dir)

    upload(private_dir, "alpha-0.1.tar.gz")
    preview = sync(config, check_mode=True)
    assert preview.changed and os.path.exists(page_path(mirror_dir, "alpha"))  # check mode writes nothing

    withdrawal = sync(config)
    assert withdrawal.ok and withdrawal.changed
    assert any("alpha: withdrew the mirrored page" in w for w in withdrawal.warnings)
    assert not os.path.exists(page_path(mirror_dir, "alpha"))
    assert root_listing(mirror_dir) == {"beta"}
    assert package_files(mirror_dir) == files_before  # without prune the files stay, unreachable from any page

    os.remove(os.path.join(private_dir, "alpha-0.1.tar.gz"))
    released = sync(config)
    assert released.ok and released.stats.files_downloaded == 0  # republished from the files kept
    assert os.path.exists(page_path(mirror_dir, "alpha"))
    assert root_listing(mirror_dir) == {"alpha", "beta"}


def test_prune_removes_the_files_of_a_claimed_project(make_config, sync, mirror_dir, private_dir):
    config = make_config(projects=["alpha", "beta"], prune=True, force_prune=True, private_directory=private_dir)
    assert sync(config).ok
    upload(private_dir, "alpha-0.1.tar.gz")
    result = sync(config)
    assert result.ok
    assert result.stats.projects_removed == 1
    assert not any(name.startswith("alpha") for _, _, files in os.walk(os.path.join(mirror_dir, "web"))
                   for name in files)


def test_private_projects_reserve_names_and_prefixes_before_any_upload(make_config, sync, upstream, mirror_dir):
    result = sync(make_config(projects=["alpha", "beta", "gamma"], private_projects=["Gamma", "al*"]))
    assert result.ok
    assert root_listing(mirror_dir) == {"beta"}
    assert not asked_for(upstream, "alpha") and not asked_for(upstream, "gamma")


@pytest.mark.parametrize("resolution", ["candidates", "pinned"])
def test_a_claimed_dependency_is_left_to_the_private_index(tmp_path, private_dir, sync, resolution):
    """app needs lib-core; a private lib-core must not be resolved or mirrored from the upstream."""
    upload(private_dir, "lib_core-7.0-py3-none-any.whl")
    with serve_upstream(dependency_catalog(str(tmp_path / "up"))) as upstream:
        config = build_config({"upstream": upstream.url, "directory": str(tmp_path / "mirror"),
                               "projects": ["app"], "dependencies": True, "resolution": resolution,
                               "private_directory": private_dir, **TARGETS})
        result = sync(config)
        assert not asked_for(upstream, "lib-core")
    assert result.ok, result.failures
    listed = root_listing(str(tmp_path / "mirror"))
    assert "app" in listed and "native" in listed
    assert "lib-core" not in listed and "tiny" not in listed  # nor what only lib-core 2.0 needs
    assert any("lib-core is claimed by the private index, though app 1.0 needs it" in w for w in result.warnings)


def test_an_unreadable_private_directory_stops_the_run_before_anything_is_written(make_config, sync, tmp_path,
                                                                                 upstream, mirror_dir):
    config = make_config(private_directory=str(tmp_path / "missing"))
    with pytest.raises(SyncAbort, match=r"private_directory .*missing is not a directory; nothing synced"):
        sync(config)
    assert not upstream.server.requests
    assert not os.path.exists(os.path.join(mirror_dir, "web", "simple", "index.html"))


def test_private_directory_is_relative_to_the_config_file(tmp_path):
    config = build_config({"directory": "/srv/m", "upstream": "http://127.0.0.1:1/simple/", "projects": ["x"],
                           "private_directory": "private"}, base_dir=str(tmp_path))
    assert config.private_directory == str(tmp_path / "private")
    home = build_config({"directory": "/srv/m", "upstream": "http://127.0.0.1:1/simple/", "projects": ["x"],
                         "private_directory": "~/private"}, base_dir=str(tmp_path))
    assert home.private_directory == os.path.expanduser("~/private")  # as directory and requirements_files

