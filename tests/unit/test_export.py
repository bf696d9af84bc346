"""`export`: the mirror's tree copied to a disk that a site with no network reads as its upstream."""

from __future__ import annotations

import calendar
import errno
import os
import pathlib
import re
import time

import pytest
import yaml
from prometheus_client import generate_latest
from test_cli import dead_pid, read_metrics, run_cli
from test_localfiles import simple_url, tree
from test_sync import assert_pages_point_at_complete_files

from localpypi_sync.export import ExportAbort, copy_hashed, export_mirror
from localpypi_sync.health import mirror_health
from localpypi_sync.metrics import metrics_registry
from localpypi_sync.state import LockBusy, MirrorState
from localpypi_sync.sync import SyncAbort


@pytest.fixture
def disk(tmp_path) -> pathlib.Path:
    """The mount point of the disk to carry."""
    path = tmp_path / "disk"
    path.mkdir()
    return path


def test_an_exported_tree_is_the_mirrors_and_the_site_takes_it_from_the_disk(make_config, sync, mirror_dir, disk,
                                                                            tmp_path, monkeypatch):
    assert sync(make_config(projects=["*"])).ok
    flushed = []
    monkeypatch.setattr(os, "sync", lambda: flushed.append(True))
    report = export_mirror(mirror_dir, str(disk))
    assert report.ok and report.files_copied > 0 and report.files_present == 0
    assert flushed == [True]  # written to the disk before the command says it is done, not left in the page cache
    mirror = pathlib.Path(mirror_dir) / "web"
    assert tree(disk / "web") == tree(mirror)  # pages, metadata files, packages
    assert (disk / "web" / "last-modified").read_bytes() == (mirror / "last-modified").read_bytes()
    again = export_mirror(mirror_dir, str(disk))  # the next month's disk: only what changed is copied
    assert again.ok and (again.files_copied, again.pages_written, again.files_removed) == (0, 0, 0)
    assert again.files_present == report.files_copied

    site = tmp_path / "site"
    imported = sync(make_config(upstream=simple_url(disk / "web"), projects=["*"], directory=str(site)))
    assert imported.ok, imported.failures
    assert tree(site / "web") == tree(mirror)


def test_an_export_follows_what_the_mirror_added_and_pruned(make_config, sync, mirror_dir, disk, catalog):
    assert sync(make_config(projects=["alpha", "gamma"])).ok
    assert export_mirror(mirror_dir, str(disk)).ok
    removed = catalog.find("alpha-1.0-py3-none-any.whl")
    catalog.remove_file(removed.filename)
    catalog.add_wheel("alpha", "3.0")
    assert sync(make_config(projects=["alpha"], prune=True, prune_max_fraction=1.0)).ok  # and gamma goes
    planned = export_mirror(mirror_dir, str(disk), check_mode=True)
    before = tree(disk / "web")
    assert tree(disk / "web") == before  # a check writes nothing
    report = export_mirror(mirror_dir, str(disk))
    assert report.ok and report.projects_removed == 1 and report.files_removed > 0
    assert (planned.files_copied, planned.files_removed, planned.projects_removed, planned.pages_written) == (
        report.files_copied, report.files_removed, report.projects_removed, report.pages_written)
    assert tree(disk / "web") == tree(pathlib.Path(mirror_dir) / "web")
    assert not list((disk / "web").rglob(removed.filename)) and not (disk / "web" / "simple" / "gamma").exists()
    assert not [path for path in (disk / "web" / "packages").rglob("*") if path.is_dir() and not any(path.iterdir())]


def test_a_disk_that_fills_up_holds_pages_that_name_only_files_it_holds(make_config, sync, mirror_dir, disk,
                                                                         catalog):
    """The disk fills during an export (or is pulled out): what is on it must still read as a consistent older
    tree, every page naming only files it holds, and nothing of the earlier export deleted."""
    assert sync(make_config(projects=["alpha", "gamma"])).ok
    assert export_mirror(mirror_dir, str(disk)).ok
    earlier = tree(disk / "web")
    catalog.add_wheel("alpha", "3.0")
    catalog.add_wheel("alpha", "3.1")
    assert sync(make_config(projects=["alpha", "gamma"])).ok
    copies = []

    def fills_up(source: str, target: str) -> None:
        if copies:  # half of it fits
            data = pathlib.Path(source).read_bytes()
            pathlib.Path(target).write_bytes(data[:len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", target)
        copies.append(target)
        return copy_hashed(source, target)

    report = export_mirror(mirror_dir, str(disk), copy=fills_up)
    assert not report.ok and report.problems[0].startswith("project alpha: ")
    assert report.problems[0].endswith(": cannot copy it to the disk: No space left on device")
    assert report.problems[1:] == ["export stopped there: the projects not reached, and the root page, are on the "
                                   "disk as the last export left them"]  # gamma's files are not tried one by one
    assert_pages_point_at_complete_files(str(disk))
    now = tree(disk / "web")
    assert {path: data for path, data in now.items() if path in earlier} == earlier  # alpha's old pages; gamma
    mirror = pathlib.Path(mirror_dir) / "web"
    assert all(path.read_bytes() == (mirror / path.relative_to(disk / "web")).read_bytes()
               for path in (disk / "web" / "packages").rglob("*") if path.is_file())  # no partial file
    assert export_mirror(mirror_dir, str(disk)).ok  # the next export, with room, completes it
    assert tree(disk / "web") == tree(mirror)


def test_a_file_missing_from_the_mirror_keeps_its_projects_pages_off_the_disk(make_config, sync, mirror_dir, disk):
    assert sync(make_config(projects=["alpha", "gamma"])).ok
    wheel = next((pathlib.Path(mirror_dir) / "web" / "packages").rglob("gamma-1.0-*.whl"))
    wheel.unlink()
    report = export_mirror(mirror_dir, str(disk))
    assert report.problems == [f"project gamma: {wheel.name}: missing in the mirror, so not copied (run "
                               f"`verify --repair`)"]
    assert not (disk / "web" / "simple" / "gamma").exists() and (disk / "web" / "simple" / "alpha").exists()
    assert not (disk / "web" / "simple" / "index.html").exists()  # no root page lists what is not there
    assert_pages_point_at_complete_files(str(disk))


def test_a_file_damaged_in_the_mirror_stays_off_the_disk_and_verify_repair_mends_it(make_config, sync, mirror_dir,
                                                                                   disk, tmp_path):
    """Bit rot on the mirror's disk: a file of the right size whose bytes are not those its page names. Copied,
    the site's import would refuse it where nothing can fetch it again; the export must find it here."""
    assert sync(make_config(projects=["alpha", "beta", "gamma"])).ok
    web = pathlib.Path(mirror_dir) / "web"
    wheel = next((web / "packages").rglob("gamma-1.0-*.whl"))
    metadata = next((web / "packages").rglob("alpha-*.whl.metadata"))
    for damaged in (wheel, metadata):
        data = bytearray(damaged.read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit flipped: the size stays
        damaged.write_bytes(bytes(data))
    report = export_mirror(mirror_dir, str(disk))
    assert sorted(report.problems) == sorted(
        f"project {project}: {name}: damaged in the mirror (its sha256 is not the one its page names), so not "
        f"copied (run `verify --repair`)" for project, name in (("gamma", wheel.name), ("alpha", metadata.name)))
    assert not list((disk / "web").rglob(wheel.name)) and not list((disk / "web").rglob(metadata.name))
    assert not list((disk / "web").rglob(".tmp-*"))  # the staged copy went too
    assert sorted(os.listdir(disk / "web" / "simple")) == ["beta"]  # its pages; no root page yet
    assert_pages_point_at_complete_files(str(disk))

    config = tmp_path / "sync.yml"
    config.write_text(yaml.safe_dump({"upstream": make_config().upstream, "directory": mirror_dir,
                                      "projects": ["alpha", "beta", "gamma"]}))
    assert run_cli("verify", "--repair", "--config", str(config)).returncode == 0
    assert export_mirror(mirror_dir, str(disk)).ok
    assert tree(disk / "web") == tree(web)


def test_a_file_damaged_on_the_disk_is_named_at_the_site_and_export_verify_copies_it_again(make_config, sync,
                                                                                         mirror_dir, disk, tmp_path):
    """The carried disk rots: a file keeps its size, so the next export takes it as copied, month after month.
    The site's sync must name it and say how it is mended; `export --verify` hashes what is on the disk."""
    assert sync(make_config(projects=["alpha", "beta", "gamma"])).ok
    assert export_mirror(mirror_dir, str(disk)).ok
    web = pathlib.Path(mirror_dir) / "web"
    wheel = next((disk / "web" / "packages").rglob("gamma-1.0-*.whl"))
    metadata = next((disk / "web" / "packages").rglob("alpha-*.whl.metadata"))
    for damaged in (wheel, metadata):
        data = bytearray(damaged.read_bytes())
        data[len(data) // 2] ^= 0x01
        damaged.write_bytes(bytes(data))
    rotten = tree(disk / "web")

    site = tmp_path / "site"
    imported = sync(make_config(upstream=simple_url(disk / "web"), projects=["*"], directory=str(site)))
    hint = ("; the upstream's copy on this machine's disk is damaged: if `export` wrote that disk, `export --verify` "
            "to it at that mirror copies it again")
    named = [line for line in imported.failures if wheel.name in line or metadata.name in line]
    assert len(named) == 2 and all(line.endswith(hint) for line in named), imported.failures

    unseen = export_mirror(mirror_dir, str(disk))  # by size alone, the damage does not show
    assert unseen.ok and (unseen.files_copied, unseen.damaged_on_disk) == (0, []) and tree(disk / "web") == rotten
    relative = sorted(str(path.relative_to(disk / "web")) for path in (wheel, metadata))
    planned = export_mirror(mirror_dir, str(disk), check_mode=True, verify_disk=True)
    assert sorted(planned.damaged_on_disk) == relative and planned.files_copied == 1  # a metadata file is its wheel's
    assert tree(disk / "web") == rotten

    config = tmp_path / "sync.yml"
    config.write_text(yaml.safe_dump({"upstream": make_config().upstream, "directory": mirror_dir,
                                      "projects": ["alpha", "beta", "gamma"]}))
    done = run_cli("export", "--config", str(config), "--to", str(disk), "--verify")
    assert done.returncode == 0, done.stderr
    assert f"; the copies include 2 files that were damaged on the disk: {metadata.name}, {wheel.name};" in done.stdout
    assert tree(disk / "web") == tree(web)
    assert sync(make_config(upstream=simple_url(disk / "web"), projects=["*"], directory=str(site))).ok


def test_an_export_clears_the_temp_files_a_killed_export_left_on_the_disk(make_config, sync, mirror_dir, disk):
    """An export killed (kill -9, the disk pulled out) between writing a temp page and renaming it leaves the
    temp file: the next export removes it, in the project's directory, the root's and web/ itself."""
    assert sync(make_config(projects=["alpha", "gamma"])).ok
    assert export_mirror(mirror_dir, str(disk)).ok
    web = disk / "web"
    left = [web / "simple" / "alpha" / ".tmp-index.v1_json", web / "simple" / ".tmp-index.html",
            web / ".tmp-last-modified", next((web / "packages").rglob("*.whl")).parent / ".tmp-gamma-0.1.whl"]
    for path in left:
        path.write_bytes(b"half a page")
    checked = export_mirror(mirror_dir, str(disk), check_mode=True)
    assert checked.ok and all(path.exists() for path in left)  # a check removes nothing
    report = export_mirror(mirror_dir, str(disk))
    assert report.ok and (report.files_copied, report.pages_written, report.files_removed) == (0, 0, 0)
    assert not [path for path in web.rglob(".tmp-*")]
    assert tree(web) == tree(pathlib.Path(mirror_dir) / "web")


def test_export_refuses_a_disk_not_mounted_the_mirror_itself_and_a_running_sync(make_config, sync, mirror_dir,
                                                                                 disk, tmp_path):
    with pytest.raises(ExportAbort, match="no mirror to export"):
        export_mirror(mirror_dir, str(disk))
    assert sync(make_config()).ok
    with pytest.raises(ExportAbort, match="no such directory on this machine; is the disk that holds it mounted"):
        export_mirror(mirror_dir, str(tmp_path / "unmounted"))
    for inside in (mirror_dir, os.path.join(mirror_dir, "web")):
        with pytest.raises(ExportAbort, match="overlaps this mirror's directory"):
            export_mirror(mirror_dir, inside)
    with pytest.raises(ExportAbort, match="give an absolute path"):
        export_mirror(mirror_dir, "disk")
    running = MirrorState(mirror_dir)
    running.lock(0)
    try:
        with pytest.raises(LockBusy):
            export_mirror(mirror_dir, str(disk))
    finally:
        running.unlock()
    assert not (disk / "web").exists()


def test_an_export_leaves_a_killed_syncs_mark_for_the_next_sync(make_config, sync, mirror_dir, disk):
    """A sync killed mid-run leaves its line in the lock file, and the next sync, seeing it, sweeps the temp
    files that run left among the pages. An export in between must not wipe that line."""
    assert sync(make_config()).ok
    killed = b"pid 4194000 since 2026-11-28T01:00:00Z"
    with open(os.path.join(mirror_dir, "state", "lock"), "wb") as stream:
        stream.write(killed)
    assert export_mirror(mirror_dir, str(disk)).ok
    with open(os.path.join(mirror_dir, "state", "lock"), "rb") as stream:
        assert stream.read() == killed
    following = MirrorState(mirror_dir)
    following.lock(0)
    assert following.interrupted_before
    following.unlock()


def test_a_sync_status_and_health_tell_an_export_holds_the_lock(make_config, sync, mirror_dir, disk, tmp_path,
                                                                upstream):
    """A long export holds the lock while the timer's sync comes: the sync that finds it held, status and
    health must name the export, not send the operator after a sync that hangs."""
    assert sync(make_config()).ok
    config = tmp_path / "sync.yml"
    config.write_text(yaml.safe_dump({"upstream": upstream.url, "directory": mirror_dir, "projects": ["alpha"]}))
    seen = []

    def copy_while_looking(source: str, target: str) -> None:
        if not seen:
            holder = MirrorState(mirror_dir).lock_holder()
            with pytest.raises(SyncAbort) as refused:
                sync(make_config())
            status = run_cli("status", "--config", str(config)).stdout
            seen.append((holder, str(refused.value), status, mirror_health(mirror_dir, 1, now=time.time() + 60),
                         read_metrics(generate_latest(metrics_registry(mirror_dir, now=time.time() + 60)).decode())))
        return copy_hashed(source, target)

    assert export_mirror(mirror_dir, str(disk), copy=copy_while_looking).ok
    (holder, refused, status, health, metrics), = seen
    assert (holder.pid, holder.running, holder.task) == (str(os.getpid()), True, f"export to {disk}")
    assert refused == (f"an export to {disk} holds the lock on {mirror_dir} (pid {os.getpid()} since "
                       f"{holder.since}); wait for it or set lock_timeout")
    assert f"running now: pid {os.getpid()} (export to {disk}), since {holder.since}" in status
    assert health.problems[-1] == (f"pid {os.getpid()} (export to {disk}) has held the lock since {holder.since}, "
                                   f"{health.problems[-1].split(', ')[1]}, over --max-age: it hangs, or the syncs "
                                   f"wait for it")
    # an alert on a sync that hangs does not fire for an export; one on an export that long can
    assert metrics["localpypi_sync_running_seconds"] == 0 and metrics["localpypi_sync_export_running_seconds"] >= 59
    assert MirrorState(mirror_dir).lock_holder() is None  # released: the export named no more


def test_an_export_killed_is_told_as_one_to_run_again(make_config, sync, mirror_dir, disk, tmp_path, upstream):
    """A killed export's line stays in the lock file until a sync takes the lock: status and health tell what
    finishes it, another export, and not the next sync, which does not write the disk."""
    assert sync(make_config()).ok
    config = tmp_path / "sync.yml"
    config.write_text(yaml.safe_dump({"upstream": upstream.url, "directory": mirror_dir, "projects": ["alpha"]}))
    killed, since = dead_pid(), "2026-11-26T01:00:00Z"
    with open(os.path.join(mirror_dir, "state", "lock"), "w") as stream:
        stream.write(f"pid {killed} since {since} export to {disk}")
    told = (f"pid {killed} (export to {disk}), which runs no more, took the lock at {since}")
    again = "its disk holds part of that export (pages that name only files it holds): export again"
    assert f"interrupted: {told}; {again}" in run_cli("status", "--config", str(config)).stdout.splitlines()
    problem = mirror_health(mirror_dir, 86400, now=calendar.timegm(time.strptime(since, "%Y-%m-%dT%H:%M:%SZ"))
                            + 2 * 86400).problems[-1]
    assert problem == f"{told}, 2d 0h, over --max-age: a run killed, or cut short by a restart, that no run has " \
                      f"followed; {again}"
    assert sync(make_config()).ok and MirrorState(mirror_dir).lock_holder() is None  # a sync clears the line


def test_the_export_command(make_config, sync, mirror_dir, disk, tmp_path, upstream):
    config = tmp_path / "sync.yml"
    config.write_text(yaml.safe_dump({"upstream": upstream.url, "directory": mirror_dir, "projects": ["alpha"]}))
    synced = sync(make_config())
    assert synced.ok
    checked = run_cli("export", "--config", str(config), "--to", str(disk), "--check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"ok: 1 projects to {disk}/web: would copy ") and not (disk / "web").exists()
    done = run_cli("export", "--config", str(config), "--to", str(disk))
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(f"flushed to the disk. At the site, the disk mounted as here: sync --upstream "
                                f"file://{disk}/web/simple/\n")
    # the files alpha serves, as sync counts them: not their metadata files
    assert f": copied {synced.stats.files_published} files / " in done.stdout
    missing = run_cli("export", "--config", str(config), "--to", str(tmp_path / "unmounted"))
    assert missing.returncode == 2 and "is the disk that holds it mounted?" in missing.stderr
    running = MirrorState(mirror_dir)
    running.lock(0)
    try:  # a sync runs: the export says who holds the lock, and how to wait for it
        busy = run_cli("export", "--config", str(config), "--to", str(disk), "--wait", "0.5")
    finally:
        running.unlock()
    assert busy.returncode == 2 and re.fullmatch(
        rf"localpypi-sync: export: another sync holds the lock on {re.escape(mirror_dir)} \(pid {os.getpid()} since "
        r"\S+Z\); wait for it, or give --wait SECONDS\n", busy.stderr), busy.stderr
