"""The converged workstation: the mirror answers over the network, and pip and uv install through the
files the client role wrote, with no --index-url."""

import json
import os

import pytest
import testinfra.utils.ansible_runner
from helpers import fetch

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("pypi_clients")

MIRROR = "https://localpypi-mirror"   # the private CA from prepare, trusted through the client role


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.v1+json"),
        ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+html"),
        ("text/html", "text/html"),
    ],
)
def test_simple_api_negotiation(host, accept, content_type):
    for url in (f"{MIRROR}/simple/", f"{MIRROR}/simple/alpha/"):
        answer = fetch(host, url, headers={"Accept": accept})
        assert answer["headers"]["Content-Type"].startswith(content_type), url
        assert "Accept" in answer["headers"].get("Vary", "")


def test_archives_are_served_whole_and_uncompressed(host):
    page = json.loads(fetch(host, f"{MIRROR}/simple/alpha/",
                            headers={"Accept": "application/vnd.pypi.simple.v1+json"})["body"])
    wheel = next(f for f in page["files"] if f["filename"].endswith(".whl"))
    url = f"{MIRROR}/simple/alpha/" + wheel["url"]
    answer = fetch(host, url, method="HEAD", headers={"Accept-Encoding": "gzip"})
    assert int(answer["headers"]["Content-Length"]) == wheel["size"]
    assert "Content-Encoding" not in answer["headers"]
    assert "immutable" in answer["headers"]["Cache-Control"]


def test_pip_and_uv_name_the_merged_https_url_site_yml_derived(host):
    pip_conf = host.file("/etc/pip.conf").content_string
    assert f"index-url = {MIRROR}/private/simple/" in pip_conf
    assert "trusted-host" not in pip_conf   # https: nothing weakens TLS
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in pip_conf
    uv_toml = host.file("/etc/uv/uv.toml").content_string
    assert f'url = "{MIRROR}/private/simple/"' in uv_toml
    assert "system-certs = true" in uv_toml  # the uv installed here is newer than 0.11


def test_private_ca_is_in_the_system_store(host):
    installed = host.file("/usr/local/share/ca-certificates/localpypi-mirror.crt").content_string
    assert installed.strip() in host.file("/etc/ssl/certs/ca-certificates.crt").content_string


def test_pip_installs_through_pip_conf(host):
    run = host.run("rm -rf /var/tmp/pipv && python3 -m venv /var/tmp/pipv"
                   " && /var/tmp/pipv/bin/pip install --no-cache-dir gamma"
                   " && /var/tmp/pipv/bin/python -c 'import gamma, alpha; print(alpha.VERSION)'")
    assert run.rc == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("1.1")  # the newest the lab's constraints allow


def test_uv_installs_through_uv_toml(host):
    run = host.run("rm -rf /var/tmp/uvv && uv venv --quiet /var/tmp/uvv"
                   " && VIRTUAL_ENV=/var/tmp/uvv uv pip install --no-cache beta"
                   " && /var/tmp/uvv/bin/python -c 'import beta; print(beta.TAG)'")
    assert run.rc == 0, run.stdout + run.stderr
    assert "cp311-cp311-manylinux" in run.stdout
    assert "deprecated" not in run.stderr  # native-tls would warn on every command
