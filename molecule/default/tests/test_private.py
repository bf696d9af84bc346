"""The private index: twine uploads from the workstation, installs through the merged index the client
role configured, and a private name that wins over the mirrored upstream project of the same name."""

import json
import os

import pytest
import testinfra
import testinfra.utils.ansible_runner
from helpers import FETCH

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("pypi_clients")

MIRROR = "https://localpypi-mirror"
UPLOADS = "/var/tmp/uploads"
ACME = f"{UPLOADS}/acme_tools-1.0-py3-none-any.whl"         # needs alpha>=1.1, which only the mirror has
CLASH = f"{UPLOADS}/delta_thing-0.1-py3-none-any.whl"       # upstream has Delta_Thing 3.0, mirrored


def password() -> str:
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "private-password")) as stream:
        return stream.read().split()[0]


def twine(host, wheel, user=None, secret=None):
    login = f"TWINE_USERNAME={user} TWINE_PASSWORD={secret} " if user else "TWINE_USERNAME= TWINE_PASSWORD= "
    return host.run(f"{login}/opt/twine/bin/twine upload --non-interactive --disable-progress-bar --verbose"
                    f" --cert /etc/ssl/certs/ca-certificates.crt --repository-url {MIRROR}/private/ {wheel}")


@pytest.fixture(scope="module")
def uploads(host):
    """Each upload once, in the order a team would meet them."""
    return {
        "anonymous": twine(host, ACME),
        "wrong password": twine(host, ACME, "uploader", "not-the-password"),
        "uploader": twine(host, ACME, "uploader", password()),
        "again": twine(host, ACME, "uploader", password()),
        "clash": twine(host, CLASH, "uploader", password()),
    }


@pytest.fixture(scope="module")
def mirror():
    return testinfra.get_host("ansible://localpypi-mirror?ansible_inventory=" + INVENTORY)


def test_upload_without_a_login_is_refused(uploads):
    for attempt in ("anonymous", "wrong password"):
        run = uploads[attempt]
        assert run.rc != 0, attempt
        assert "401" in run.stdout + run.stderr or "403" in run.stdout + run.stderr, attempt


def test_upload_with_the_login_succeeds(uploads, mirror):
    assert uploads["uploader"].rc == 0, uploads["uploader"].stdout + uploads["uploader"].stderr
    stored = mirror.file("/data/private/packages/acme_tools-1.0-py3-none-any.whl")
    assert stored.exists and stored.user == "localpypi-private"


def test_uploading_the_same_release_again_is_refused(uploads):
    run = uploads["again"]
    assert run.rc != 0
    assert "already exists" in run.stdout + run.stderr  # pypiserver answers twine's upload form with 400


def test_password_file_holds_only_a_bcrypt_hash(mirror):
    entry = mirror.file("/etc/localpypi/private.htpasswd")
    assert entry.mode == 0o640 and entry.group == "localpypi-private"
    user, hashed = entry.content_string.strip().split(":", 1)
    assert user == "uploader" and hashed.startswith("$2")
    assert password() not in entry.content_string


def test_private_index_listens_on_loopback_only_under_its_hardening(mirror):
    assert mirror.socket("tcp://127.0.0.1:8081").is_listening
    assert not mirror.socket("tcp://0.0.0.0:8081").is_listening
    unit = mirror.file("/etc/systemd/system/localpypi-private.service").content_string
    assert "ProtectSystem=strict" in unit and "NoNewPrivileges=true" in unit
    assert mirror.service("localpypi-private.service").is_enabled


def test_private_package_installs_through_the_client_configuration(host, uploads):
    """pip and uv read /etc/pip.conf and uv.toml: acme-tools from the private index, alpha through its fallback."""
    assert uploads["uploader"].rc == 0
    run = host.run("rm -rf /var/tmp/acme && python3 -m venv /var/tmp/acme"
                   " && /var/tmp/acme/bin/pip install --no-cache-dir acme-tools"
                   " && /var/tmp/acme/bin/python -c"
                   " 'import acme_tools, alpha; print(acme_tools.VERSION, alpha.VERSION)'")
    assert run.rc == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1] == "1.0 1.1"  # alpha as the mirror's constraints pin it
    run = host.run("rm -rf /var/tmp/acme-uv && uv venv --quiet /var/tmp/acme-uv"
                   " && VIRTUAL_ENV=/var/tmp/acme-uv uv pip install --no-cache acme-tools"
                   " && /var/tmp/acme-uv/bin/python -c 'import acme_tools; print(acme_tools.VERSION)'")
    assert run.rc == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("1.0")


def test_a_private_name_wins_over_the_upstream_project(host, uploads):
    """delta-thing 0.1 is private; the mirror holds the upstream's 3.0. Clients get 0.1, newer or not."""
    assert uploads["clash"].rc == 0, uploads["clash"].stdout + uploads["clash"].stderr
    for installer in ("/var/tmp/clash/bin/pip install --no-cache-dir",
                      "VIRTUAL_ENV=/var/tmp/clash uv pip install --no-cache --reinstall"):
        run = host.run("rm -rf /var/tmp/clash && python3 -m venv /var/tmp/clash"
                       f" && {installer} delta-thing"
                       " && /var/tmp/clash/bin/python -c 'import delta_thing; print(delta_thing.VERSION)'")
        assert run.rc == 0, run.stdout + run.stderr
        assert run.stdout.strip().endswith("0.1"), installer


def test_the_next_sync_withdraws_the_claimed_name_from_the_mirror(mirror, uploads):
    assert uploads["clash"].rc == 0
    run = mirror.run("systemctl start localpypi-sync.service")
    assert run.rc == 0, mirror.check_output("journalctl -u localpypi-sync.service --no-pager | tail -20")
    last_run = json.loads(mirror.check_output("cat /data/pypi/state/last-run.json"))
    assert any("delta-thing: withdrew the mirrored page" in w for w in last_run["warnings"])
    assert any("delta-thing is claimed by the private index" in w for w in last_run["warnings"])
    page = mirror.run("python3 -c %s %s GET '{}'", FETCH, "http://127.0.0.1/simple/delta-thing/")
    assert page.rc != 0 and "404" in page.stderr
    root = mirror.file("/data/pypi/web/simple/index.html").content_string
    assert "delta-thing" not in root and "gamma" in root
