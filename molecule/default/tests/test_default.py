"""The converged mirror host: units, vhost, negotiation, and real pip/uv installs through the client config."""

import json

import pytest

FETCH = (
    "import json, sys, urllib.request; "
    "req = urllib.request.Request(sys.argv[1], method=sys.argv[2], headers=json.loads(sys.argv[3])); "
    "r = urllib.request.urlopen(req); "
    "print(json.dumps({'status': r.status, 'headers': dict(r.headers), 'body': r.read().decode('latin-1')}))"
)


def fetch(host, url, method="GET", headers=None):
    command = host.run("python3 -c %s %s %s %s", FETCH, url, method, json.dumps(headers or {}))
    assert command.rc == 0, command.stderr
    return json.loads(command.stdout)


def test_timer_enabled_and_scheduled(host):
    timer = host.service("localpypi-sync.timer")
    assert timer.is_enabled and timer.is_running
    listing = host.check_output("systemctl list-timers --all localpypi-sync.timer")
    assert "localpypi-sync.service" in listing


def test_first_sync_published_the_selection(host):
    status = json.loads(host.check_output("localpypi-sync status --config /etc/localpypi/sync.yml --json"))
    assert status["projects"] == 3
    assert status["last_run"]["ok"] is True
    assert host.file("/data/pypi/web/simple/alpha/index.v1_json").user == "localpypi"


def test_sync_service_runs_under_its_hardening(host):
    run = host.run("systemctl start localpypi-sync.service")
    assert run.rc == 0, host.check_output("journalctl -u localpypi-sync.service --no-pager | tail -20")
    assert "ProtectSystem=strict" in host.file("/etc/systemd/system/localpypi-sync.service").content_string


def test_httpd_config_is_valid(host):
    assert host.run("apache2ctl configtest").rc == 0


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.v1+json"),
        ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+html"),
        ("text/html", "text/html"),
    ],
)
def test_simple_api_negotiation(host, accept, content_type):
    for url in ("http://127.0.0.1/simple/", "http://127.0.0.1/simple/alpha/"):
        answer = fetch(host, url, headers={"Accept": accept})
        assert answer["headers"]["Content-Type"].startswith(content_type), url
        assert "Accept" in answer["headers"].get("Vary", "")


def test_archives_are_served_whole_and_uncompressed(host):
    page = json.loads(fetch(host, "http://127.0.0.1/simple/alpha/",
                            headers={"Accept": "application/vnd.pypi.simple.v1+json"})["body"])
    wheel = next(f for f in page["files"] if f["filename"].endswith(".whl"))
    url = "http://127.0.0.1/simple/alpha/" + wheel["url"]
    answer = fetch(host, url, method="HEAD", headers={"Accept-Encoding": "gzip"})
    assert int(answer["headers"]["Content-Length"]) == wheel["size"]
    assert "Content-Encoding" not in answer["headers"]
    assert "immutable" in answer["headers"]["Cache-Control"]


def test_nothing_but_the_index_is_served(host):
    for path in ("/", "/state/", "/simple/../state/last-run.json"):
        run = host.run("python3 -c %s %s GET '{}'", FETCH, "http://127.0.0.1" + path)
        assert run.rc != 0 and ("403" in run.stderr or "404" in run.stderr), path


def test_pip_installs_through_pip_conf(host):
    assert "index-url = http://127.0.0.1/simple/" in host.file("/etc/pip.conf").content_string
    run = host.run("rm -rf /var/tmp/pipv && python3 -m venv /var/tmp/pipv"
                   " && /var/tmp/pipv/bin/pip install --no-cache-dir gamma"
                   " && /var/tmp/pipv/bin/python -c 'import gamma, alpha; print(alpha.VERSION)'")
    assert run.rc == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("2.0")


def test_uv_installs_through_uv_toml(host):
    run = host.run("rm -rf /var/tmp/uvv && uv venv --quiet /var/tmp/uvv"
                   " && VIRTUAL_ENV=/var/tmp/uvv uv pip install --no-cache beta"
                   " && /var/tmp/uvv/bin/python -c 'import beta; print(beta.TAG)'")
    assert run.rc == 0, run.stdout + run.stderr
    assert "cp311-cp311-manylinux" in run.stdout
