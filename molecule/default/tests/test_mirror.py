"""The converged mirror server: units, vhost, and what it refuses to serve."""

import json
import os

import testinfra.utils.ansible_runner
from helpers import FETCH

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("mirror_servers")


def test_timer_enabled_and_scheduled(host):
    timer = host.service("localpypi-sync.timer")
    assert timer.is_enabled and timer.is_running
    listing = host.check_output("systemctl list-timers --all localpypi-sync.timer")
    assert "localpypi-sync.service" in listing


def test_first_sync_published_the_selection(host):
    status = json.loads(host.check_output("localpypi-sync status --config /etc/localpypi/sync.yml --json"))
    assert status["projects"] == 4  # beta, delta-thing, gamma and alpha, which gamma needs
    assert status["last_run"]["ok"] is True
    why = host.check_output("localpypi-sync explain alpha --config /etc/localpypi/sync.yml")
    assert "3.11/manylinux_2_28_x86_64: alpha>=1.1  <- gamma 1.0" in why
    # the constraints file came along (sync_requirements_includes) and is read only through requirements.txt's -c
    assert [line.split(":")[0].strip() for line in why.splitlines()[1:] if not line.startswith("    ")] == ["1.1"]
    config = host.file("/etc/localpypi/sync.yml").content_string
    assert "/etc/localpypi/requirements/requirements.txt" in config and "constraints.txt" not in config
    assert host.file("/etc/localpypi/requirements/constraints.txt").contains("alpha<2")
    assert host.file("/data/pypi/web/simple/alpha/index.v1_json").user == "localpypi"


def test_health_check_passes_for_a_user_who_may_not_read_the_config(host):
    """The command the README gives a monitoring agent, whose user is neither root nor in the service group."""
    run = host.run("runuser -u nobody -- localpypi-sync health --directory /data/pypi --max-age 36h")
    assert run.rc == 0 and run.stdout.startswith("ok: the last run finished "), run.stdout + run.stderr
    run = host.run("runuser -u nobody -- localpypi-sync health --config /etc/localpypi/sync.yml")
    assert run.rc == 2 and "Permission denied" in run.stderr, run.stdout + run.stderr


def test_sync_service_runs_under_its_hardening(host):
    run = host.run("systemctl start localpypi-sync.service")
    assert run.rc == 0, host.check_output("journalctl -u localpypi-sync.service --no-pager | tail -20")
    assert "ProtectSystem=strict" in host.file("/etc/systemd/system/localpypi-sync.service").content_string


def test_metrics_timer_writes_the_metrics_while_a_sync_holds_the_lock(host):
    """Written after runs alone, the file would show running_seconds 0 for as long as a sync hangs."""
    timer = host.service("localpypi-sync-metrics.timer")
    assert timer.is_enabled and timer.is_running
    # started after its OnBootSec had passed, it ran at once, and again every sync_metrics_interval (30s here)
    assert host.check_output("systemctl show --property LastTriggerUSec localpypi-sync-metrics.timer") not in (
        "LastTriggerUSec=", "LastTriggerUSec=n/a")
    lock = "/data/pypi/state/lock"
    unlocked = host.file(lock).content_string
    # a sync that has held the lock for two minutes: pid 1 runs, and it started before then
    held = host.check_output("date -u -d '-120 seconds' +'pid 1 since %Y-%m-%dT%H:%M:%SZ sync'")
    try:
        host.check_output(f"printf '%s' '{held}' > {lock}")
        run = host.run("systemctl start localpypi-sync-metrics.service")
        assert run.rc == 0, host.check_output("journalctl -u localpypi-sync-metrics.service --no-pager | tail -20")
        metrics = host.file("/run/localpypi.prom").content_string
    finally:
        host.check_output(f"printf '%s' '{unlocked}' > {lock}")
    running = next(line for line in metrics.splitlines() if line.startswith("localpypi_sync_running_seconds "))
    assert float(running.split()[1]) >= 120, running
    assert host.file(lock).user == "localpypi"


def test_sync_service_writes_its_metrics_after_every_run(host):
    """For node_exporter's textfile collector, written as root where the sandboxed service may not write: by the
    metrics service, in its own sandbox, not by a root command beside the sync's sandbox."""
    assert "metrics --directory" not in host.file("/etc/systemd/system/localpypi-sync.service").content_string
    host.run("rm -f /run/localpypi.prom")
    # the timer stopped, so that only the run itself can start the metrics service (after the timer's own test:
    # a timer started again has not triggered yet)
    host.check_output("systemctl stop localpypi-sync-metrics.timer")
    try:
        run = host.run("systemctl start localpypi-sync.service")
        assert run.rc == 0, host.check_output("journalctl -u localpypi-sync.service --no-pager | tail -20")
        sync_ended = int(host.check_output(
            "systemctl show --value --property ExecMainExitTimestampMonotonic localpypi-sync.service"))
        metrics_started = int(host.check_output(
            "systemctl show --value --property ExecMainStartTimestampMonotonic localpypi-sync-metrics.service"))
    finally:
        host.check_output("systemctl start localpypi-sync-metrics.timer")
    assert metrics_started > sync_ended > 0
    metrics = host.file("/run/localpypi.prom")
    assert metrics.mode == 0o644
    assert "\nlocalpypi_sync_last_run_success 1.0\n" in metrics.content_string
    assert "\nlocalpypi_sync_projects 4.0\n" in metrics.content_string


def test_metrics_service_waits_for_the_mirror_filesystem(host):
    """Its metrics read from the bare mount point would say no run was ever made (the sync service's own wait is
    run in side_effect.yml, with a disk unmounted)."""
    shown = host.check_output("systemctl show --value --property RequiresMountsFor localpypi-sync-metrics.service")
    assert "/data/pypi" in shown.split(), shown  # besides what systemd adds itself (/var/tmp, for PrivateTmp)


def test_sync_service_stops_a_run_that_takes_longer_than_sync_run_timeout(host):
    shown = host.check_output("systemctl show --property TimeoutStartUSec localpypi-sync.service")
    assert shown == "TimeoutStartUSec=6h"


def test_a_manual_run_as_root_is_refused_and_as_the_service_user_runs(host):
    """What the root run wrote would be root's, and the timer's runs as localpypi could not change it."""
    run = host.run("localpypi-sync sync --config /etc/localpypi/sync.yml --no-progress")
    assert run.rc == 2 and "belongs to localpypi, and this run is root's" in run.stderr, run.stderr
    run = host.run("runuser -u localpypi -- localpypi-sync sync --config /etc/localpypi/sync.yml --no-progress")
    assert run.rc == 0, run.stderr
    assert host.run("find /data/pypi -user root").stdout == ""


def test_httpd_config_is_valid(host):
    assert host.run("apache2ctl configtest").rc == 0


def test_nothing_but_the_index_is_served(host):
    for path in ("/", "/state/", "/simple/../state/last-run.json"):
        run = host.run("python3 -c %s %s GET '{}'", FETCH, "http://127.0.0.1" + path)
        assert run.rc != 0 and ("403" in run.stderr or "404" in run.stderr), path
