"""The command line the systemd timer runs: exit codes, JSON, kill -9 safety, verify/repair, status."""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml
from test_sync import assert_pages_point_at_complete_files, temp_files

from localpypi_sync.state import start_from_stat

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE_PATH = os.path.join(REPO, "plugins", "module_utils")


def run_cli(*args, check=False, **kwargs):
    env = dict(os.environ, PYTHONPATH=ENGINE_PATH)
    return subprocess.run([sys.executable, "-m", "localpypi_sync", *args], capture_output=True, text=True,
                          env=env, check=check, timeout=120, **kwargs)


def proc_stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (state, ppid, ...); [] once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def child_processes(parent: int) -> list[int]:
    return [int(entry) for entry in os.listdir("/proc")
            if entry.isdigit() and proc_stat(int(entry))[1:2] == [str(parent)]]


def is_running(pid: int) -> bool:
    """Alive and not a zombie waiting for whoever adopted it."""
    return proc_stat(pid)[:1] not in ([], ["Z"])


@pytest.fixture
def config_file(tmp_path, upstream, mirror_dir):
    def write(**options):
        raw = {"upstream": upstream.url, "directory": mirror_dir, "projects": ["alpha", "gamma"], "workers": 2,
               "retries": 1}
        raw.update(options)
        path = tmp_path / "sync.yml"
        path.write_text(yaml.safe_dump(raw))
        return str(path)

    return write


def test_sync_json_then_noop_then_status(config_file, mirror_dir):
    first = run_cli("sync", "--config", config_file(), "--json")
    assert first.returncode == 0, first.stderr
    document = json.loads(first.stdout)
    assert document["ok"] and document["changed"] and document["stats"]["files_downloaded"] > 0
    second = run_cli("sync", "--config", config_file(), "--json")
    assert json.loads(second.stdout)["changed"] is False
    status = run_cli("status", "--config", config_file(), "--json")
    data = json.loads(status.stdout)
    assert data["projects"] == 2 and data["files"] == document["stats"]["files_published"]
    assert data["bytes"] > 0 and data["per_project"]["alpha"]["files"] == 7
    assert data["last_run"]["ok"] is True
    # sizes as the pages give them, and each metadata file's on disk: no stat of every file on a large mirror
    web = os.path.join(mirror_dir, "web")
    entries = json.load(open(os.path.join(web, "simple", "alpha", "index.v1_json")))["files"]
    metadata = [os.path.join(web, "simple", "alpha", e["url"].split("#")[0]) + ".metadata"
                for e in entries if e.get("core-metadata")]
    assert metadata and data["per_project"]["alpha"]["bytes"] == (sum(e["size"] for e in entries)
                                                                 + sum(map(os.path.getsize, metadata)))
    os.unlink(os.path.join(web, "simple", "alpha", entries[0]["url"].split("#")[0]))  # verify's to find
    assert json.loads(run_cli("status", "--config", config_file(), "--json").stdout)["bytes"] == data["bytes"]
    text = run_cli("status", "--config", config_file())
    assert "projects: 2" in text.stdout and "alpha:" in text.stdout
    # a full mirror holds hundreds of thousands: the text lists the largest, --json all of them
    top = run_cli("status", "--config", config_file(), "--top", "1").stdout.splitlines()
    assert top[-2].startswith("  alpha: 7 files") and "gamma" not in "\n".join(top)
    assert top[-1] == "  ... and 1 smaller (--top 0 or --json lists every project)"
    assert "gamma:" in run_cli("status", "--config", config_file(), "--top", "0").stdout


def test_status_shows_a_run_over_some_projects_beside_the_last_full_run(config_file, upstream):
    assert run_cli("sync", "--config", config_file()).returncode == 0
    assert run_cli("sync", "--config", config_file(), "--project", "Alpha").returncode == 0
    text = run_cli("status", "--config", config_file()).stdout
    source = re.escape(upstream.url)
    assert re.search(rf"^last run: \S+ \(ok, [0-9.]+s\) from {source}\n"
                     rf"since then, only alpha: \S+ \(ok, [0-9.]+s\) from {source}$", text, re.M), text
    assert run_cli("sync", "--config", config_file()).returncode == 0
    assert "since then" not in run_cli("status", "--config", config_file()).stdout


def test_status_tells_a_run_that_stopped_before_syncing_until_one_gets_through(config_file, tmp_path):
    """On a ship the upstream can be out of reach for weeks: every timer run stops at once, and `status` must
    not go on showing only the last run that got through as if nothing had happened since."""
    assert run_cli("sync", "--config", config_file()).returncode == 0
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        unreachable = f"http://127.0.0.1:{unused.getsockname()[1]}/simple/"
    stopped = run_cli("sync", "--config", config_file(upstream=unreachable))
    assert stopped.returncode == 2
    text = run_cli("status", "--config", config_file()).stdout
    assert re.search(r"^last run: \S+ \(ok, [0-9.]+s\) from \S+\nlast attempt stopped before syncing: \S+: upstream "
                     + re.escape(unreachable) + r": unreachable", text, re.M), text
    document = json.loads(run_cli("status", "--config", config_file(), "--json").stdout)
    assert document["last_abort"]["reason"].startswith(f"upstream {unreachable}: unreachable")
    assert run_cli("sync", "--config", config_file()).returncode == 0
    assert "stopped" not in run_cli("status", "--config", config_file()).stdout
    assert json.loads(run_cli("status", "--config", config_file(), "--json").stdout)["last_abort"] is None


def test_status_names_the_projects_the_upstream_marked(config_file, catalog):
    """PEP 792: which mirrored projects their upstream calls archived, deprecated or quarantined, as the pages
    tell it; the projects to find a replacement for."""
    assert "upstream (PEP 792)" not in run_cli("status", "--config", config_file()).stdout
    catalog.set_status("gamma", "deprecated", "use alpha")
    catalog.set_status("delta-thing", "archived")
    catalog.set_status("alpha", "quarantined")
    config = config_file(projects=["alpha", "gamma", "delta-thing"])
    assert run_cli("sync", "--config", config).returncode == 1  # alpha is asked for
    lines = run_cli("status", "--config", config).stdout.splitlines()
    assert lines[-3:] == ["archived upstream (PEP 792): delta-thing", "deprecated upstream (PEP 792): gamma",
                          "quarantined upstream (PEP 792): alpha"]
    assert json.loads(run_cli("status", "--config", config, "--json").stdout)["marked"] == {
        "archived": ["delta-thing"], "deprecated": ["gamma"], "quarantined": ["alpha"]}


def test_status_tells_what_a_cooldown_holds_back_and_until_when(config_file, catalog):
    """Why a release out upstream is not on the mirror yet, and from which run it will be."""
    uploaded = time.time() - 3600
    catalog.find("alpha-2.0-py3-none-any.whl").upload_time = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                          time.gmtime(uploaded))
    catalog.touch("alpha")
    config = config_file(exclude_newer="7 days")
    assert run_cli("sync", "--config", config).returncode == 0
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(uploaded + 7 * 86400))
    assert run_cli("status", "--config", config).stdout.splitlines()[-1] == (
        f"exclude_newer holds back newer files of 1 project; the first becomes old enough at {until}, and the "
        f"next run after that takes it")
    assert run_cli("sync", "--config", config).returncode == 0  # nothing moved: the records still say so
    stats = json.loads(run_cli("status", "--config", config, "--json").stdout)["last_run"]["stats"]
    assert (stats["projects_held_back"], stats["held_back_until"]) == (1, until)
    assert run_cli("sync", "--config", config_file()).returncode == 0  # no cooldown, nothing held back
    assert "exclude_newer" not in run_cli("status", "--config", config).stdout


def test_status_names_the_index_a_run_read_never_its_login(config_file, upstream):
    with_login = upstream.url.replace("http://", "http://mirror:s3cret@")
    assert run_cli("sync", "--config", config_file(upstream=with_login)).returncode == 0
    status = run_cli("status", "--config", config_file()).stdout
    assert status.splitlines()[1].endswith(f"from {upstream.url}") and "s3cret" not in status
    assert "s3cret" not in run_cli("status", "--config", config_file(), "--json").stdout


def test_status_lists_the_errors_of_a_failed_run(config_file, upstream):
    """What to fix, without the journal, which may have rotated the run's lines away."""
    upstream.server.faults.wrong_hash.add("alpha-2.0.tar.gz")
    assert run_cli("sync", "--config", config_file()).returncode == 1
    lines = run_cli("status", "--config", config_file()).stdout.splitlines()
    assert lines[1].startswith("last run: ") and "(failed, " in lines[1]
    assert lines[1].endswith(f"s) from {upstream.url}")
    assert lines[2].startswith("  error: project alpha: alpha-2.0.tar.gz: ")
    assert lines[3] == "last run with no error: finished none on record" and lines[4].startswith("serial: ")
    upstream.server.faults.wrong_hash.clear()
    assert run_cli("sync", "--config", config_file()).returncode == 0
    succeeded = json.loads(run_cli("status", "--config", config_file(), "--json").stdout)["last_run"]["finished"]
    assert run_cli("sync", "--config", config_file(projects=["alpha", "nosuch"])).returncode == 1
    assert f"last run with no error: finished {succeeded}" in run_cli("status", "--config", config_file()).stdout


def test_health_passes_a_current_mirror_and_names_each_problem(config_file, mirror_dir):
    """What a monitoring check runs: exit 0 while the mirror is current; 1 with one `problem:` line each for no
    run yet, a failed run, a run that stopped before syncing, none finished within --max-age, and a lock held
    longer than that; all from the records, writing nothing."""
    def health(*options):
        return run_cli("health", "--config", config_file(), *options)

    never = health()
    assert never.returncode == 1 and never.stdout == (
        f"problem: no run over every configured project has finished in {mirror_dir} yet\n")
    assert not os.path.exists(mirror_dir)
    assert run_cli("sync", "--config", config_file()).returncode == 0
    current = health("--max-age", "1h")
    assert current.returncode == 0 and re.fullmatch(
        r"ok: the last run finished \S+Z, \d+s ago: 2 projects, \d+ files\n", current.stdout), current.stdout
    assert json.loads(health("--json").stdout)["ok"] is True
    by_directory = run_cli("health", "--directory", mirror_dir)  # for a monitoring user who may not read the config
    assert by_directory.returncode == 0 and by_directory.stdout.startswith("ok: the last run finished ")
    # a run that finished three days ago is stale for a 36 hour limit, and for no other check
    record_path = os.path.join(mirror_dir, "state", "last-run.json")
    with open(record_path) as stream:
        record = json.load(stream)
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3 * 86400 - 60))
    with open(record_path, "w") as stream:
        json.dump(record, stream)
    stale = health("--max-age", "36h")
    assert stale.returncode == 1 and stale.stdout == (
        f"problem: the last run finished {record['finished']}, 3d 0h ago, over --max-age 1d 12h\n")
    assert health().returncode == 0
    assert health("--max-age", "4 days").returncode == 0  # as uv writes an age, and exclude_newer takes one
    # a lock that names a run started longer ago than --max-age: one that hangs (its process is there), or one
    # killed
    with lock_held(mirror_dir) as (pid, since):
        held = health("--max-age", "1", "--json")
    assert held.returncode == 1
    assert re.fullmatch(rf"pid {pid} has held the lock since {since}, \d+s, over --max-age: a run that hangs",
                        json.loads(held.stdout)["problems"][-1])
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2 * 86400))
    killed = dead_pid()
    write_lock(mirror_dir, killed, since)
    assert json.loads(health("--max-age", "1d", "--json").stdout)["problems"][-1] == (
        f"pid {killed}, which runs no more, took the lock at {since}, 2d 0h, over --max-age: a run killed, or cut "
        f"short by a restart, that no run has followed")
    # a failed run, then one that stops before syncing: each is a problem of its own
    assert run_cli("sync", "--config", config_file(projects=["alpha", "gamma", "nosuch"])).returncode == 1
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        unreachable = f"http://127.0.0.1:{unused.getsockname()[1]}/simple/"
    assert run_cli("sync", "--config", config_file(upstream=unreachable)).returncode == 2
    failing = health("--max-age", "1h").stdout.splitlines()
    assert len(failing) == 2, failing
    # how long the mirror has gone without a good run: from the record of the last one, though it was edited
    assert re.fullmatch(r"problem: the last run, finished \S+Z, failed \(1 errors\); the last with no error "
                        r"finished \S+Z, \d+s ago; the first: .*nosuch.*", failing[0]), failing
    assert failing[1].startswith("problem: the last attempt, at ") and (
        f"stopped before syncing: upstream {unreachable}: unreachable" in failing[1]), failing
    assert health("--max-age", "3x").returncode == 2


def write_lock(mirror_dir, pid, since):
    """The lock file as a run writes it (what a killed one leaves behind)."""
    with open(os.path.join(mirror_dir, "state", "lock"), "w") as stream:
        stream.write(f"pid {pid} since {since}")


@contextlib.contextmanager
def lock_held(mirror_dir):
    """A lock taken by a process that runs and started before it, as a run in progress holds it: (pid, since),
    held for two seconds at least."""
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"]) as holder:
        try:
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            write_lock(mirror_dir, holder.pid, since)
            time.sleep(2)
            yield holder.pid, since
        finally:
            holder.kill()


def dead_pid():
    """The pid of a process that has ended: a run killed, as the lock then names it."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    return int(ended.stdout)


def read_metrics(text):
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415 - the format's own parser
    return {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_tell_prometheus_how_the_last_run_went(config_file, mirror_dir, tmp_path):
    """For node_exporter's textfile collector: what to alert on (a failed run, an old one, a hung one) and what
    to graph, read back with prometheus_client's own parser."""
    config = config_file()
    never = read_metrics(run_cli("metrics", "--config", config).stdout)
    assert never == {"localpypi_sync_last_run_success": 0, "localpypi_sync_running_seconds": 0,
                     "localpypi_sync_export_running_seconds": 0}
    assert run_cli("sync", "--config", config).returncode == 0
    output = tmp_path / "collector" / "localpypi.prom"
    output.parent.mkdir()
    assert run_cli("metrics", "--directory", mirror_dir, "--output", str(output)).returncode == 0
    assert os.listdir(output.parent) == ["localpypi.prom"]  # renamed into place, nothing left beside it
    metrics = read_metrics(output.read_text())
    with open(os.path.join(mirror_dir, "state", "last-run.json")) as stream:
        record = json.load(stream)
    assert metrics["localpypi_sync_last_run_success"] == 1 and metrics["localpypi_sync_last_run_errors"] == 0
    assert metrics["localpypi_sync_last_run_timestamp_seconds"] == calendar.timegm(
        time.strptime(record["finished"], "%Y-%m-%dT%H:%M:%SZ"))
    assert metrics["localpypi_sync_files"] == record["stats"]["files_published"] > 0
    assert metrics["localpypi_sync_last_run_downloaded_bytes"] == record["stats"]["bytes_downloaded"] > 0
    assert metrics["localpypi_sync_projects"] == 2
    assert metrics["localpypi_sync_last_success_timestamp_seconds"] == metrics[
        "localpypi_sync_last_run_timestamp_seconds"]
    # a record written before last_success was kept tells it by its own outcome, and failed runs carry it over
    del record["last_success"]
    with open(os.path.join(mirror_dir, "state", "last-run.json"), "w") as stream:
        json.dump(record, stream)
    time.sleep(1)  # the records count whole seconds
    # failed runs, and a lock that a run in progress took (a process started before it)
    for _ in range(2):
        assert run_cli("sync", "--config", config_file(projects=["alpha", "nosuch"])).returncode == 1
    with lock_held(mirror_dir) as (pid, since):
        failed = read_metrics(run_cli("metrics", "--config", config).stdout)
        status = run_cli("status", "--config", config).stdout
    assert failed["localpypi_sync_last_run_success"] == 0 and failed["localpypi_sync_last_run_errors"] == 1
    assert failed["localpypi_sync_last_success_timestamp_seconds"] == metrics[
        "localpypi_sync_last_run_timestamp_seconds"] < failed["localpypi_sync_last_run_timestamp_seconds"]
    assert 2 <= failed["localpypi_sync_running_seconds"] < 120
    assert failed["localpypi_sync_export_running_seconds"] == 0
    assert "localpypi_sync_interrupted_run_timestamp_seconds" not in failed
    assert f"running now: pid {pid}, since {since}" in status
    # the run was killed, or the host restarted under it: nothing runs, and the next run takes up its work
    gone = dead_pid()
    write_lock(mirror_dir, gone, since)
    killed = read_metrics(run_cli("metrics", "--config", config).stdout)
    assert killed["localpypi_sync_running_seconds"] == 0
    assert killed["localpypi_sync_interrupted_run_timestamp_seconds"] == calendar.timegm(
        time.strptime(since, "%Y-%m-%dT%H:%M:%SZ"))
    assert (f"interrupted: pid {gone}, which runs no more, took the lock at {since}; the next run takes up its work"
            in run_cli("status", "--config", config).stdout.splitlines())
    assert json.loads(run_cli("status", "--config", config, "--json").stdout)["lock"] == {
        "pid": str(gone), "since": since, "running": False, "task": "sync"}  # a line with no task: a sync's
    unwritable = run_cli("metrics", "--config", config, "--output", str(tmp_path / "none" / "x.prom"))
    assert unwritable.returncode == 1 and "cannot write" in unwritable.stderr


def test_a_lock_whose_pid_went_to_a_later_process_is_told_as_interrupted(config_file, mirror_dir):
    """After a reboot pids start again low, and the pid a killed run left in the lock may be a new process's.
    One that started after the lock was taken is not the run that took it: before, it read as a run in progress,
    and monitoring as one that hangs, until the next run."""
    config = config_file()
    assert run_cli("sync", "--config", config).returncode == 0
    since = "2020-01-01T00:00:00Z"  # before this test's process started
    write_lock(mirror_dir, os.getpid(), since)
    assert json.loads(run_cli("status", "--config", config, "--json").stdout)["lock"] == {
        "pid": str(os.getpid()), "since": since, "running": False, "task": "sync"}
    assert "localpypi_sync_running_seconds 0.0" in run_cli("metrics", "--config", config).stdout


@pytest.mark.parametrize(("stat", "started"), [
    ("4242 (localpypi-sync) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0", 1000 + 123.45),
    ("4242 (a ) b (c)) R 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 500 0 0", 1000 + 5.0),
    ("4242 (short) S 1", None),
])
def test_a_process_start_time_is_read_past_a_command_name_with_parentheses(stat, started):
    assert start_from_stat(stat, "1000", 100) == started


def test_explain_without_dependencies_tells_the_targets_each_requirement_and_file_is_for(config_file, tmp_path):
    """A universal lock's fork by Python: which line asks for which release on which target, and what each file
    is there for. Without dependencies there was nothing to explain ("no resolution on record")."""
    (tmp_path / "constraints.txt").write_text("alpha!=1.1\n")
    (tmp_path / "requirements.txt").write_text("-c constraints.txt\n")
    config = config_file(projects=['alpha==1.0; python_version < "3.12"', 'alpha==2.0; python_version >= "3.12"'],
                         requirements_files=[str(tmp_path / "requirements.txt")], python_versions=["3.11", "3.12"],
                         platforms=["manylinux_2_28_x86_64"])
    assert run_cli("sync", "--config", config).returncode == 0
    why = run_cli("explain", "alpha", "--config", config)
    assert why.returncode == 0, why.stderr
    linux = "manylinux_2_28_x86_64"
    assert why.stdout.splitlines() == [
        "alpha: taken by the config's requirements, per target (no dependency resolution)",
        f'  alpha==1.0; python_version < "3.12"  (projects[0]): 3.11/{linux}',
        f'  alpha==2.0; python_version >= "3.12"  (projects[1]): 3.12/{linux}',
        f"  constraint alpha!=1.1  ({tmp_path / 'constraints.txt'}:1): every target",
        "  2.0:",
        f"    alpha-2.0-py3-none-any.whl: 3.12/{linux}",
        f"    alpha-2.0.tar.gz: 3.12/{linux}",
        "  1.0:",
        f"    alpha-1.0-py3-none-any.whl: 3.11/{linux}",
        f"    alpha-1.0.tar.gz: 3.11/{linux}"]
    other = run_cli("explain", "gamma", "--config", config)
    assert other.returncode == 1 and other.stdout.startswith("gamma is not asked for by the config")


def test_a_project_named_on_the_command_line_that_the_config_does_not_select_fails(config_file):
    result = run_cli("sync", "--config", config_file(), "--project", "alpha", "--project", "Alfa")
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        "error: project alfa: not selected by this config, so not synced"]
    assert result.stdout.startswith("FAILED: 1 projects (1 changed, 0 failed)")


def test_a_check_says_what_it_would_remove_and_removes_nothing(config_file):
    assert run_cli("sync", "--config", config_file()).returncode == 0
    files_before = json.loads(run_cli("status", "--config", config_file(), "--json").stdout)["files"]
    narrowed = config_file(projects=["alpha>=2", "gamma"], prune=True, prune_max_fraction=1.0)
    check = run_cli("sync", "--config", narrowed, "--check")
    assert check.returncode == 0, check.stderr
    assert int(re.search(r", would remove (\d+) in ", check.stdout).group(1)) > 0
    assert json.loads(run_cli("status", "--config", narrowed, "--json").stdout)["files"] == files_before


def test_structured_lines_when_not_a_tty(config_file):
    result = run_cli("sync", "--config", config_file())
    lines = result.stderr.splitlines()
    assert any(line.startswith("event=project project=alpha status=changed") for line in lines)
    assert any(line.startswith("event=summary result=ok") for line in lines)
    assert result.stdout.startswith("ok: 2 projects")


def test_projects_that_did_not_change_get_a_line_only_when_asked(config_file):
    """A full mirror's no-op run would write hundreds of thousands of lines in seconds, and journald's rate
    limit would drop lines, the summary among them: the summary counts the unchanged projects instead."""
    assert run_cli("sync", "--config", config_file()).returncode == 0
    again = run_cli("sync", "--config", config_file())
    assert again.returncode == 0, again.stderr
    lines = again.stderr.splitlines()
    assert [line for line in lines if line.startswith("event=project ")] == []
    assert any(line.startswith("event=summary result=ok changed=False projects=2 projects_changed=0 "
                               "projects_unchanged=2 ") for line in lines), lines
    verbose = run_cli("sync", "--config", config_file(), "--verbose").stderr.splitlines()
    assert sorted(line.split()[1] for line in verbose if line.startswith("event=project ")) == [
        "project=alpha", "project=gamma"]
    assert all(" status=unchanged " in line for line in verbose if line.startswith("event=project "))


def test_failures_exit_non_zero_with_one_line_each(config_file, upstream):
    upstream.server.faults.wrong_hash.add("alpha-2.0.tar.gz")
    result = run_cli("sync", "--config", config_file(), "--quiet")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "alpha-2.0.tar.gz" in errors[0] and "mismatch" in errors[0]


def test_one_run_reads_a_tree_carried_on_a_disk_in_place_of_the_configs_upstream(config_file, mirror_dir, tmp_path):
    carried = tmp_path / "carried"
    assert run_cli("sync", "--config", config_file(directory=str(carried)), "--quiet").returncode == 0
    offline = config_file(upstream="http://127.0.0.1:9/simple/")  # this site's config: no network to reach it
    result = run_cli("sync", "--config", offline, "--json", "--upstream", (carried / "web").as_uri() + "/simple/")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["stats"]["files_downloaded"] == document["stats"]["files_published"] > 0
    assert os.listdir(os.path.join(mirror_dir, "web", "simple", "alpha"))
    # the override is checked as the config's option is, and lasts one run
    own = run_cli("sync", "--config", offline, "--upstream", f"file://{mirror_dir}/web/simple/")
    assert own.returncode == 2 and "overlaps this mirror's directory" in own.stderr
    assert run_cli("sync", "--config", offline).returncode == 2
    assert "(ok, " in run_cli("status", "--config", offline).stdout.splitlines()[1]
    assert run_cli("status", "--config", offline).stdout.splitlines()[1].endswith(
        f"from {(carried / 'web').as_uri()}/simple/")  # which disk the mirror's content came from
    # a file damaged here is repaired from the disk too
    damaged = next(path for path in (tmp_path / "mirror" / "web" / "packages").rglob("*.whl"))
    damaged.write_bytes(b"XX" + damaged.read_bytes()[2:])
    away = run_cli("verify", "--config", offline, "--repair")  # the config's own upstream is out of reach
    assert away.returncode == 2 and "unreachable" in away.stderr
    repaired = run_cli("verify", "--config", offline, "--repair", "--upstream", (carried / "web").as_uri() + "/simple/")
    assert repaired.returncode == 0, repaired.stderr
    assert damaged.read_bytes() == next((carried / "web" / "packages").rglob(damaged.name)).read_bytes()


@pytest.mark.parametrize("command", ["sync", "check-config"])
def test_bad_config_exits_2_with_one_line(tmp_path, command):
    path = tmp_path / "bad.yml"
    path.write_text("directory: /tmp/x\nprojects: [alpha]\nworkerz: 3\n")
    result = run_cli(command, "--config", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unknown option 'workerz'" in result.stderr
    path.write_text("directory: /tmp/x\nprojects: [alpha]\nupstream: http://127.0.0.1:9/simple/\n")
    assert run_cli("check-config", "--config", str(path)).stdout == f"ok: {path} (targets: any)\n"


def test_check_config_names_the_targets_it_read(tmp_path):
    """What the YAML came to: 3.14t a free-threaded target, each python x platform a target of its own."""
    path = tmp_path / "sync.yml"
    path.write_text("directory: /tmp/x\nprojects: [alpha]\npython_versions: ['3.13', 3.14t]\n"
                    "platforms: [manylinux_2_28_x86_64, win_amd64]\n")
    result = run_cli("check-config", "--config", str(path))
    assert result.stdout == (f"ok: {path} (targets: 3.13/manylinux_2_28_x86_64, 3.13/win_amd64, "
                             "3.14t/manylinux_2_28_x86_64, 3.14t/win_amd64)\n")
    assert json.loads(run_cli("check-config", "--config", str(path), "--json").stdout)["targets"] == [
        "3.13/manylinux_2_28_x86_64", "3.13/win_amd64", "3.14t/manylinux_2_28_x86_64", "3.14t/win_amd64"]
    assert result.stderr == ""


def test_check_config_warns_of_what_a_run_would(tmp_path):
    """A config that runs, and yet not as meant: options of a requirements file that mean nothing to a mirror, a
    lock for none of the targets. The role's template check runs this; a run would say the same, too late."""
    (tmp_path / "pylock.toml").write_text('lock-version = "1.0"\ncreated-by = "x"\nrequires-python = ">=3.12"\n'
                                          'packages = []\n')
    (tmp_path / "requirements.txt").write_text("--pre\nalpha\n")
    path = tmp_path / "sync.yml"
    path.write_text("directory: /tmp/x\nrequirements_files: [requirements.txt, pylock.toml]\n"
                    "python_versions: ['3.11']\nplatforms: [win_amd64]\n")
    result = run_cli("check-config", "--config", str(path))
    assert result.returncode == 0 and result.stdout == f"ok: {path} (targets: 3.11/win_amd64)\n"
    assert result.stderr.splitlines() == [
        f"warning: {tmp_path / 'requirements.txt'}:1: --pre ignored: the mirror's configuration decides that",
        f"warning: {tmp_path / 'pylock.toml'}: the lock installs only where python_full_version >= \"3.12\" (its "
        "requires-python and environments), which holds on none of the targets (python_versions x platforms): "
        "nothing of it is mirrored"]
    as_json = json.loads(run_cli("check-config", "--config", str(path), "--json").stdout)
    assert as_json["warnings"] == [line.removeprefix("warning: ") for line in result.stderr.splitlines()]


def test_kill_9_mid_run_leaves_only_complete_pages_and_the_next_run_finishes(config_file, upstream, catalog,
                                                                              mirror_dir):
    for version in range(40):
        catalog.add_wheel("alpha", f"5.{version}")
    upstream.server.faults.delay_files = 0.05
    env = dict(os.environ, PYTHONPATH=ENGINE_PATH)
    # Two processes share the projects; a worker that outlived the killed parent would still hold the lock.
    process = subprocess.Popen([sys.executable, "-m", "localpypi_sync", "sync", "--config", config_file(processes=2)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    packages = os.path.join(mirror_dir, "web", "packages")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = sum(len(files) for _, _, files in os.walk(packages)) if os.path.isdir(packages) else 0
        if done >= 10:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be killed"
    workers = child_processes(process.pid)
    assert workers, "the run forked no worker process"
    process.send_signal(signal.SIGKILL)
    process.wait()
    # The workers die with it at once (while files are still slow to come), so none keeps the lock or writes on.
    deadline = time.monotonic() + 2
    while any(is_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(is_running(pid) for pid in workers)
    if os.path.isdir(os.path.join(mirror_dir, "web", "simple")):
        assert_pages_point_at_complete_files(mirror_dir)
    upstream.server.faults.delay_files = 0
    again = run_cli("sync", "--config", config_file(), "--json")
    assert again.returncode == 0, again.stderr
    assert_pages_point_at_complete_files(mirror_dir)
    assert os.listdir(os.path.join(mirror_dir, "tmp")) == []
    assert temp_files(mirror_dir) == []
    alpha = json.load(open(os.path.join(mirror_dir, "web", "simple", "alpha", "index.v1_json")))
    assert len(alpha["files"]) == 47


def test_verify_finds_and_repairs_damage(config_file, mirror_dir, catalog):
    assert run_cli("sync", "--config", config_file()).returncode == 0
    assert run_cli("verify", "--config", config_file()).returncode == 0
    damaged = os.path.join(mirror_dir, "web", catalog.find("alpha-1.1-py3-none-any.whl").url_path.lstrip("/"))
    with open(damaged, "r+b") as stream:
        stream.write(b"XX")
    missing = os.path.join(mirror_dir, "web", catalog.find("gamma-1.0-py3-none-any.whl").url_path.lstrip("/"))
    os.unlink(missing + ".metadata")
    report = run_cli("verify", "--config", config_file(), "--json")
    assert report.returncode == 1
    problems = json.loads(report.stdout)["problems"]
    assert any("alpha-1.1-py3-none-any.whl: sha256 mismatch" in p for p in problems)
    assert any("gamma-1.0-py3-none-any.whl.metadata: missing" in p for p in problems)
    repaired = run_cli("verify", "--config", config_file(), "--repair", "--json")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert run_cli("verify", "--config", config_file()).returncode == 0


def test_verify_and_status_read_only_paths_under_packages():
    from localpypi_sync.inventory import _relative_path  # noqa: PLC0415

    assert _relative_path("../../packages/aa/bb/cc/f-1.0.tar.gz#sha256=00") == "packages/aa/bb/cc/f-1.0.tar.gz"
    assert _relative_path("../../packages/./aa/f-1.0.tar.gz") == "packages/aa/f-1.0.tar.gz"
    for leaving in ("../../packages/../../../etc/passwd", "../../packages/..//etc/passwd", "/etc/passwd",
                    "../../state/last-run.json", "https://elsewhere.invalid/packages/f-1.0.tar.gz"):
        assert _relative_path(leaving) is None, leaving


def test_verify_of_a_directory_with_no_mirror_fails(config_file, mirror_dir):
    report = run_cli("verify", "--config", config_file())
    assert report.returncode == 1
    assert report.stdout.startswith("FAILED: 0 files")
    assert f"error: no mirror to verify: {mirror_dir}/web/simple/index.html does not exist" in report.stderr
    # a mirror whose config selects nothing at all is still a mirror
    assert run_cli("sync", "--config", config_file(projects=["no-such-project"])).returncode == 1
    assert run_cli("verify", "--config", config_file()).returncode == 0


def test_a_python_without_the_engines_requirements_gets_one_line_not_a_traceback(config_file):
    probe = ("import runpy, sys; sys.modules['packaging'] = None; sys.argv = ['localpypi-sync', *sys.argv[1:]]\n"
             "runpy.run_module('localpypi_sync', run_name='__main__')")
    run = subprocess.run([sys.executable, "-c", probe, "status", "--config", config_file()], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=ENGINE_PATH), timeout=120, check=False)
    assert run.returncode == 2
    [line] = run.stderr.splitlines()
    assert re.fullmatch(r"localpypi-sync: the engine needs packaging(\.\w+)?, which \S+ cannot import \(.+\); "
                        r"install the engine's requirements\.txt into that environment", line), line


def test_a_sync_without_dependencies_does_not_import_the_resolver(config_file):
    """The timer's every run pays for what the command imports: resolvelib and packaging.metadata (the
    resolver's) are left to runs that resolve, and such a run still finds them."""
    probe = ("import runpy, sys; sys.argv = ['localpypi-sync', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('localpypi_sync', run_name='__main__')\n"
             "finally:\n    print(sorted(m for m in sys.modules if m.split('.')[0] == 'resolvelib'"
             " or m in ('packaging.metadata', 'localpypi_sync.resolve')), file=sys.stderr)")
    env = dict(os.environ, PYTHONPATH=ENGINE_PATH)
    plain = subprocess.run([sys.executable, "-c", probe, "sync", "--config", config_file()], capture_output=True,
                           text=True, env=env, timeout=120, check=False)
    assert plain.returncode == 0, plain.stderr
    assert plain.stderr.strip().splitlines()[-1] == "[]"
    resolving = subprocess.run([sys.executable, "-c", probe, "sync", "--config",
                                config_file(projects=["gamma"], dependencies=True, python_versions=["3.12"],
                                            platforms=["manylinux_2_28_x86_64"])],
                               capture_output=True, text=True, env=env, timeout=120, check=False)
    assert resolving.returncode == 0, resolving.stderr
    loaded = resolving.stderr.strip().splitlines()[-1]
    assert "'localpypi_sync.resolve'" in loaded and "'resolvelib'" in loaded
