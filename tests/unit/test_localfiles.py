"""An upstream on this machine's disk (file://): another mirror's tree, as a site with no network to the internet
takes one carried from a connected site."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shutil

import pytest

from localpypi_sync.config import ConfigError, build_config
from localpypi_sync.http import FetchError, RangeUnsupported
from localpypi_sync.localfiles import LocalFilesClient
from localpypi_sync.sync import SyncAbort
from localpypi_sync.upstream import ACCEPT, JSON_TYPE


def tree(web: pathlib.Path) -> dict[str, bytes]:
    """Every file a web server would serve, by path, but the time of the last run."""
    return {str(path.relative_to(web)): path.read_bytes() for path in sorted(web.rglob("*"))
            if path.is_file() and path.name != "last-modified"}


@pytest.fixture
def carried(make_config, sync, tmp_path) -> pathlib.Path:
    """The connected site's mirror of every project of the standard catalog: its web/ directory."""
    directory = tmp_path / "carried"
    assert sync(make_config(projects=["*"], directory=str(directory))).ok
    return directory / "web"


def simple_url(web: pathlib.Path) -> str:
    return web.as_uri() + "/simple/"


def test_a_mirror_takes_another_mirrors_tree_from_disk_file_for_file(carried, make_config, sync, mirror_dir,
                                                                     catalog):
    config = make_config(upstream=simple_url(carried), projects=["*"], processes=2)  # forked workers read it too
    result = sync(config)
    assert result.ok, result.failures
    assert tree(pathlib.Path(mirror_dir) / "web") == tree(carried)  # pages, metadata files and packages alike

    again = sync(config)
    assert again.ok and not again.changed and again.stats.files_downloaded == 0

    # The connected site takes a new release, and the disk carries it over: the next run adds it.
    catalog.add_wheel("alpha", "3.0")
    assert sync(make_config(projects=["*"], directory=str(carried.parent))).ok
    later = sync(config)
    assert later.ok and later.added == ["alpha-3.0-py3-none-any.whl"]
    assert tree(pathlib.Path(mirror_dir) / "web") == tree(carried)


def served(web: pathlib.Path, project: str) -> list[str]:
    """The files a project's page names, each of which must be on the disk."""
    with open(web / "simple" / project / "index.v1_json") as stream:
        names = [entry["filename"] for entry in json.load(stream)["files"]]
    assert all(list((web / "packages").rglob(name)) for name in names)
    return sorted(names)


def test_a_disk_older_than_the_mirror_removes_nothing_with_prune(carried, make_config, sync, mirror_dir, catalog,
                                                                  tmp_path):
    """A site fed by carried disks took a newer one, then was given an older one (or a lagging cache answers
    with an old page). Prune took the older pages at their word: the releases and projects that came since
    were deleted, and clients lost what they installed yesterday. Now a page or a project list whose serial is
    below the newest this mirror synced removes nothing, until force_prune says that upstream is the one to
    follow now. What a newer one removes still goes."""
    older = tmp_path / "older" / "web"
    shutil.copytree(carried, older)
    catalog.add_wheel("alpha", "3.0")
    catalog.add_wheel("zeta", "1.0")  # projects the older disk does not know
    catalog.add_wheel("eta", "1.0")
    gone = catalog.find("beta-1.0.tar.gz")
    catalog.remove_file(gone.filename)  # deleted at the connected site
    assert sync(make_config(projects=["*"], directory=str(carried.parent), prune=True,
                            prune_max_fraction=1.0)).ok
    mirror = pathlib.Path(mirror_dir) / "web"
    stale = make_config(upstream=simple_url(older), projects=["*"], prune=True, prune_max_fraction=1.0)
    assert sync(stale).ok  # last month's disk, then this month's
    newer = make_config(upstream=simple_url(carried), projects=["*"], prune=True, prune_max_fraction=1.0)
    assert gone.filename in sync(newer).removed
    alpha, zeta = served(mirror, "alpha"), served(mirror, "zeta")
    assert "alpha-3.0-py3-none-any.whl" in alpha and gone.filename not in served(mirror, "beta")

    counted = []
    for check_mode in (True, False, False):  # and again: the run before must not have lowered the record
        result = sync(stale, check_mode=check_mode)
        assert result.ok, result.failures
        counted.append((result.stats.projects, result.stats.files_published))
        if not check_mode:  # the summary, status and metrics count what is served, the projects kept included
            projects = [path.parent.name for path in (mirror / "simple").glob("*/index.v1_json")]
            assert counted[-1] == (len(projects), sum(len(served(mirror, name)) for name in projects))
        assert not result.removed and result.stats.projects_removed == 0
        verb = "would keep" if check_mode else "kept"
        kept = [line for line in result.warnings if line.startswith(f"prune {verb} ")]
        assert len(kept) == 2, result.warnings
        assert re.match(rf"prune {verb} 1 file of 1 project whose upstream pages are older than the ones this mirror "
                        r"last synced \(serial below the newest on record\): alpha \(\d+ < \d+\); a stale copy of "
                        r"the index removes nothing; if this upstream replaces the one the mirror followed, rerun "
                        r"with force_prune$", kept[0]), kept[0]
        assert re.match(rf"prune {verb} 2 projects that the upstream's project list, older than this mirror "
                        r"\(serial \d+\), does not name: eta, zeta; ", kept[1]), kept[1]
        assert served(mirror, "alpha") == alpha and served(mirror, "zeta") == zeta
        # the sdist deleted at the connected site, which the newer disk pruned, does not come back from the older
        left = [line for line in result.warnings if "out 1 file of 1 project that the upstream's pages" in line]
        assert left == [f"{'would leave' if check_mode else 'left'} out 1 file of 1 project that the upstream's "
                        f"pages, older than the ones this mirror last synced, still list but a later page no longer "
                        f"did (prune removed them): beta ({gone.filename}); a stale copy of the index removes "
                        f"nothing; if this upstream replaces the one the mirror followed, rerun with force_prune"]
        assert gone.filename not in served(mirror, "beta")
    assert counted[0] == counted[1] == counted[2]  # a check counts what the run serves
    # a project the config now leaves out goes all the same
    excluded = sync(make_config(upstream=simple_url(older), projects=["*"], exclude=["eta"], prune=True,
                                prune_max_fraction=1.0))
    assert excluded.ok and excluded.stats.projects_removed == 1 and not (mirror / "simple" / "eta").exists()
    assert [line for line in excluded.warnings if "does not name: zeta; " in line]
    assert gone.filename not in served(mirror, "beta")

    forced = sync(make_config(upstream=simple_url(older), projects=["*"], prune=True, force_prune=True))
    assert forced.ok and "alpha-3.0-py3-none-any.whl" in forced.removed and forced.stats.projects_removed == 1
    assert gone.filename in forced.added  # the upstream to follow now has it
    assert not (mirror / "simple" / "zeta").exists()
    assert not [line for line in forced.warnings if line.startswith("prune kept")]
    # force_prune took the older disk's serials as the ones to follow: what that upstream deletes next (its
    # serial still below the newer disk's) goes with no force
    again = sync(stale)  # the deletion on record is forgotten: this upstream has the sdist, and it stays
    assert again.ok and not again.changed and gone.filename in served(mirror, "beta"), again.removed
    alpha_page = older / "simple" / "alpha" / "index.v1_json"
    document = json.loads(alpha_page.read_text())
    document["meta"]["_last-serial"] += 1
    document["files"] = [entry for entry in document["files"] if entry["filename"] != "alpha-2.0.tar.gz"]
    alpha_page.write_text(json.dumps(document))
    beta_page = older / "simple" / "beta" / "index.v1_json"  # the sdist still listed (deleted elsewhere): it stays
    document = json.loads(beta_page.read_text())
    document["meta"]["_last-serial"] += 1
    document["files"] = [entry for entry in document["files"] if "win_amd64" not in entry["filename"]]
    beta_page.write_text(json.dumps(document))
    followed = sync(stale)
    assert followed.ok and followed.removed == ["alpha-2.0.tar.gz", "beta-1.0-cp311-cp311-win_amd64.whl",
                                                "beta-1.0-cp312-cp312-win_amd64.whl"], followed.warnings
    assert gone.filename in served(mirror, "beta")

    back = sync(newer)  # the newer disk again: it adds what it has, and removes the sdist it deleted
    assert back.ok and gone.filename in back.removed and "alpha-3.0-py3-none-any.whl" in back.added
    assert tree(mirror) == tree(carried)


def test_a_project_the_upstream_deleted_does_not_come_back_from_an_older_disk(carried, make_config, sync,
                                                                             mirror_dir, catalog, tmp_path):
    """The index's admins delete a project whole (malware, a typosquat). The connected site's full mirror prunes
    it, and the site's prunes it too once it reads the newer disk. An older disk still lists it: it must not
    come back, until force_prune says that disk's upstream is the one to follow."""
    older = tmp_path / "older" / "web"
    shutil.copytree(carried, older)
    with catalog.lock:
        del catalog.projects["gamma"]
    catalog.add_wheel("alpha", "3.0")  # and the index moved on
    assert sync(make_config(projects=["*"], directory=str(carried.parent), prune=True, prune_max_fraction=1.0)).ok
    assert not (carried / "simple" / "gamma").exists()
    mirror = pathlib.Path(mirror_dir) / "web"
    stale = make_config(upstream=simple_url(older), projects=["*"], prune=True, prune_max_fraction=1.0)
    newer = make_config(upstream=simple_url(carried), projects=["*"], prune=True, prune_max_fraction=1.0)
    assert sync(stale).ok and (mirror / "simple" / "gamma").is_dir()
    pruned = sync(newer)
    assert pruned.ok and pruned.stats.projects_removed == 1 and not (mirror / "simple" / "gamma").exists()

    for check_mode in (True, False, False):
        result = sync(stale, check_mode=check_mode)
        assert result.ok and not result.added and not (mirror / "simple" / "gamma").exists(), result.added
        verb = "would leave" if check_mode else "left"
        assert [line for line in result.warnings if line.startswith(
            f"{verb} out 1 project that the upstream's project list, older than this mirror (serial ")
            and "still names but a later list no longer did (prune removed them): gamma; " in line], result.warnings
    # a project the config leaves out goes, and is not taken for one the upstream deleted: back when let in
    assert sync(make_config(upstream=simple_url(carried), projects=["*"], exclude=["beta"], prune=True,
                            prune_max_fraction=1.0)).stats.projects_removed == 1
    assert "beta" in sync(stale).added[0] and (mirror / "simple" / "beta").is_dir()

    forced = sync(make_config(upstream=simple_url(older), projects=["*"], prune=True, force_prune=True))
    assert forced.ok and (mirror / "simple" / "gamma").is_dir()  # the upstream to follow now has it
    again = sync(stale)
    assert again.ok and not again.changed and (mirror / "simple" / "gamma").is_dir()  # and it is forgotten
    back = sync(newer)
    assert back.ok and back.stats.projects_removed == 1 and tree(mirror) == tree(carried)


def test_a_file_on_the_disk_that_does_not_match_its_hash_is_not_published(carried, make_config, sync, mirror_dir):
    wheel = next(carried.rglob("alpha-1.0-py3-none-any.whl"))
    wheel.write_bytes(wheel.read_bytes()[:-1] + b"!")  # a disk that went bad on the way
    result = sync(make_config(upstream=simple_url(carried), projects=["alpha"]))
    assert [line for line in result.failures if "alpha-1.0-py3-none-any.whl: sha256 mismatch" in line]
    published = {path.name for path in (pathlib.Path(mirror_dir) / "web" / "packages").rglob("*.whl")}
    assert "alpha-1.0-py3-none-any.whl" not in published and "alpha-1.1-py3-none-any.whl" in published


@pytest.mark.parametrize("where", ["climbing out of the tree", "by its absolute file URL"])
def test_a_page_naming_a_file_outside_the_carried_tree_is_refused(carried, make_config, sync, mirror_dir, where):
    """A hostile page cannot make the mirror read, and publish, a file elsewhere on this machine, even with its
    right hash."""
    outside = carried.parent / "outside" / "evil-1.0-py3-none-any.whl"
    outside.parent.mkdir()
    outside.write_bytes(b"what the page should not reach")
    url = "../../../outside/" + outside.name if where.startswith("climbing") else outside.as_uri()
    page = carried / "simple" / "evil"
    page.mkdir()
    sha256 = hashlib.sha256(outside.read_bytes()).hexdigest()
    entry = {"filename": outside.name, "url": url, "hashes": {"sha256": sha256}}
    (page / "index.v1_json").write_text(json.dumps({"meta": {"api-version": "1.1"}, "name": "evil",
                                                    "files": [entry]}))
    result = sync(make_config(upstream=simple_url(carried), projects=["evil"]))
    assert [line for line in result.failures if f"outside the upstream's directory {carried}; not read" in line]
    assert not list((pathlib.Path(mirror_dir) / "web").rglob(outside.name))


def test_a_carried_tree_whose_disk_is_not_mounted_stops_the_run_in_one_line(make_config, sync, tmp_path, mirror_dir):
    with pytest.raises(SyncAbort, match="no such directory on this machine; is the disk that holds it mounted"):
        sync(make_config(upstream=simple_url(tmp_path / "unmounted" / "web")))
    assert not os.path.exists(os.path.join(mirror_dir, "web", "simple", "alpha"))


@pytest.mark.parametrize("upstream, says", [
    ("file://fileserver/pypi/web/simple/", "names this machine's disk (file:///path), not 'fileserver'"),
    ("file:///simple/", "which cannot be /"),
    ("file:///", "name the simple/ directory of a mirror tree"),
])
def test_a_file_upstream_that_names_no_tree_here_is_refused(upstream, says, tmp_path):
    with pytest.raises(ConfigError, match=f"^upstream: .*{re.escape(says)}"):
        build_config({"upstream": upstream, "directory": str(tmp_path / "mirror"), "projects": ["alpha"]})


@pytest.mark.parametrize("inside", ["web/simple", "."])
def test_a_mirror_cannot_take_its_own_tree_as_upstream(tmp_path, inside):
    upstream = (tmp_path / "mirror" / inside).resolve().as_uri() + "/"
    with pytest.raises(ConfigError, match="overlaps this mirror's directory"):
        build_config({"upstream": upstream, "directory": str(tmp_path / "mirror"), "projects": ["alpha"]})


def test_a_carried_tree_need_not_be_there_when_the_config_is_checked(tmp_path):
    """The role checks the config at deploy, and the disk is mounted for a run only."""
    config = build_config({"upstream": simple_url(tmp_path / "not-yet" / "web"), "directory": str(tmp_path / "m"),
                           "projects": ["alpha"]})
    assert config.upstream == simple_url(tmp_path / "not-yet" / "web")


@pytest.fixture
def page(tmp_path) -> tuple[LocalFilesClient, str, pathlib.Path]:
    project = tmp_path / "web" / "simple" / "p"
    project.mkdir(parents=True)
    (project / "index.v1_json").write_text('{"files": []}')
    (project / "index.html").write_text("<html></html>")
    client = LocalFilesClient(local_root=str(tmp_path / "web"), timeout=1, retries=0, pool_size=1)
    return client, project.as_uri() + "/", project


def test_the_disk_answers_for_a_page_as_a_web_server_does(page):
    client, url, _ = page
    as_json = client.get(url, {"Accept": ACCEPT})
    assert (as_json.status, as_json.headers["content-type"], as_json.body) == (200, JSON_TYPE, b'{"files": []}')
    as_html = client.get(url.rstrip("/"), {"Accept": "text/html"})
    assert as_html.body == b"<html></html>" and as_html.url == url  # links on it resolve from the directory
    assert client.get(url.replace("/p/", "/q/"), {"Accept": ACCEPT}).status == 404
    assert client.fresh().get(url, {"Accept": ACCEPT}).status == 200  # a forked process's client reads it too


def test_an_unchanged_page_on_the_disk_answers_not_modified_and_a_changed_one_its_bytes(page):
    client, url, project = page
    etag = client.get(url, {"Accept": ACCEPT}).headers["ETag"]
    assert client.get(url, {"Accept": ACCEPT, "If-None-Match": etag}).status == 304
    written = (project / "index.v1_json").stat()
    (project / "index.v1_json").write_text('{"files": {}}')  # same size, and a copy may keep the time
    os.utime(project / "index.v1_json", ns=(written.st_atime_ns, written.st_mtime_ns))
    changed = client.get(url, {"Accept": ACCEPT, "If-None-Match": etag})
    assert (changed.status, changed.body) == (200, b'{"files": {}}')


def test_the_disk_serves_byte_ranges_of_a_file_as_a_web_server_does(page):
    client, url, project = page
    data = bytes(range(256)) * 4
    (project / "p-1.0-py3-none-any.whl").write_bytes(data)
    wheel = url + "p-1.0-py3-none-any.whl"
    assert client.get_range(wheel, "bytes=-10") == (data[-10:], 1024)
    assert client.get_range(wheel, "bytes=-5000") == (data, 1024)
    assert client.get_range(wheel, "bytes=0-3") == (data[:4], 1024)
    assert client.get_range(wheel, "bytes=1000-2000") == (data[1000:], 1024)
    with pytest.raises(RangeUnsupported):
        client.get_range(wheel, "bytes=2000-")
    with pytest.raises(FetchError, match="outside the upstream's directory"):
        client.get_range("file:///etc/hostname", "bytes=0-3")
