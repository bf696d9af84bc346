"""Role interfaces: argument specs match defaults, and the sync role speaks the engine's schema."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from localpypi_sync.names import package_path
from localpypi_sync.schema import OPTIONS
from localpypi_sync.state import TMP_DIR, WEB_DIR

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(name for name in os.listdir(os.path.join(REPO, "roles"))
               if os.path.isdir(os.path.join(REPO, "roles", name)))
# Engine options the role deliberately does not expose: one-off overrides for a person at the CLI or module.
NOT_ROLE_VARIABLES = {"force_prune"}


def load(role, *parts):
    with open(os.path.join(REPO, "roles", role, *parts)) as stream:
        return yaml.safe_load(stream) or {}


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_keys_are_the_defaults(role):
    defaults = load(role, "defaults", "main.yml")
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(options) == sorted(defaults)
    for name, spec in options.items():
        assert name.startswith(role + "_"), f"{name}: public variables carry the role's prefix"
        assert spec.get("default") == defaults[name], name
        assert spec.get("description"), name


def test_sync_role_covers_every_engine_option():
    defaults = load("sync", "defaults", "main.yml")
    engine_keys = {option.name for option in OPTIONS} - NOT_ROLE_VARIABLES
    assert engine_keys <= {name[len("sync_"):] for name in defaults}
    mapped = load("sync", "vars", "main.yml")["__sync_engine_config_all"]
    assert set(mapped) == engine_keys
    assert all(value == "{{ sync_" + key + " }}" for key, value in mapped.items())
    options = load("sync", "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    for option in OPTIONS:
        if option.name in engine_keys and option.choices:
            assert options["sync_" + option.name]["choices"] == list(option.choices)


def test_sync_role_first_run_passes_every_engine_option():
    tasks = load("sync", "tasks", "main.yml")
    first_sync = next(task for task in tasks if task["name"] == "Run a first sync")
    assert set(first_sync["localpypi.mirror.pypi_sync"]) == {o.name for o in OPTIONS} - NOT_ROLE_VARIABLES


@pytest.mark.parametrize("role", ROLES)
def test_templates_start_with_ansible_managed(role):
    directory = os.path.join(REPO, "roles", role, "templates")
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        with open(os.path.join(directory, name)) as stream:
            head = stream.read().splitlines()[:2]
        assert "{{ ansible_managed | comment }}" in head, name


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_descriptions_are_whole_sentences(role):
    """A comma inside a YAML flow list splits a sentence into items; ansible-doc then prints fragments."""
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    for name, spec in options.items():
        for sentence in spec["description"]:
            assert sentence.rstrip().endswith("."), f"{name}: {sentence!r}"


@pytest.mark.parametrize("role", ROLES)
def test_readme_documents_every_variable(role):
    with open(os.path.join(REPO, "roles", role, "README.md")) as stream:
        readme = stream.read()
    documented = set(re.findall(r"^\| `(" + role + r"_\w+)` \|", readme, flags=re.MULTILINE))
    assert documented == set(load(role, "defaults", "main.yml"))


def test_httpd_selinux_label_covers_where_the_engine_stages_downloads():
    """A rename keeps the label a file was created with: a download staged in tmp/ and renamed into
    web/packages/ is readable by httpd only if tmp/ carries httpd's label as well, not web/ alone."""
    mirror = "/data/pypi"
    variables = {"httpd_mirror_directory": mirror, **load("httpd", "vars", "main.yml")}

    def render(text: str) -> str:
        for _ in range(3):
            text = re.sub(r"\{\{ (\w+)(?: \| quote)? \}\}", lambda match: variables[match.group(1)], text)
        return text

    tasks = {task["name"]: task for task in load("httpd", "tasks", "selinux.yml")}
    label = next(task["community.general.sefcontext"] for task in tasks.values()
                 if "community.general.sefcontext" in task)
    assert label["setype"] == "httpd_sys_content_t"
    labelled = re.compile(render(label["target"]))
    staged = os.path.join(mirror, TMP_DIR, "staged-0123")
    published = os.path.join(mirror, WEB_DIR, package_path("", "ab" * 32, "alpha-1.0.tar.gz"))
    assert labelled.fullmatch(staged) and labelled.fullmatch(published)
    relabelled = [render(task["ansible.builtin.command"]).split()[-1] for task in tasks.values()
                  if str(task.get("ansible.builtin.command", "")).startswith("restorecon")]
    assert len(relabelled) == 2 and all(staged.startswith(path + "/") for path in relabelled)


@pytest.mark.parametrize(("upstream", "proxy", "login"), [
    ("", "", False),
    ("https://index.internal/simple/?next=a@b", "http://proxy.internal:3128", False),
    ("https://me:t0ken@index.internal/simple/", "", True),
    ("https://t0ken@index.internal/simple/", "", True),
    ("", "http://me:pw@proxy.internal:3128", True),
])
def test_sync_role_tells_a_url_that_carries_a_login(tmp_path, upstream, proxy, login):
    """Such a URL turns off the config file's diff, which would show the login."""
    extra = tmp_path / "extra.yml"
    extra.write_text(yaml.safe_dump({"sync_upstream": upstream, "sync_proxy": proxy}))
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_STDOUT_CALLBACK="minimal", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_HOME=str(tmp_path / "ansible-home"))
    result = subprocess.run(["ansible", "localhost", "-m", "ansible.builtin.debug", "-a", "var=__sync_url_login",
                             "-e", "@" + os.path.join(REPO, "roles", "sync", "vars", "main.yml"), "-e", f"@{extra}"],
                            check=False, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(json.loads(result.stdout.partition(" => ")[2])["__sync_url_login"]) == str(login)
    tasks = load("sync", "tasks", "main.yml")
    writes_config = next(task for task in tasks if task.get("name") == "Write the engine configuration")
    assert writes_config["diff"] == "{{ not __sync_url_login }}"


def test_site_runs_the_first_sync_last_on_a_mirror(tmp_path):
    """A first sync that fails (one requirement no release meets on a target) or outlasts its timeout stops
    the play for its host. Everything else must be in place by then: httpd set up, with its handlers still
    run (force_handlers), and the timer that tries again."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[mirror_servers]\nmirror1\n[pypi_clients]\nws1\n")
    env = dict(os.environ, ANSIBLE_HOME=str(tmp_path / "ansible-home"))
    listed = subprocess.run(["ansible-playbook", "-i", str(inventory), os.path.join(REPO, "playbooks", "site.yml"),
                             "--list-tasks"], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    mirror_play = listed.stdout.split("play #2")[0]
    tasks = [line.strip().split("\t")[0] for line in mirror_play.splitlines() if " : " in line]
    assert tasks[-1] == "localpypi.mirror.sync : Run a first sync"
    assert "localpypi.mirror.httpd : Start and enable httpd" in tasks
    assert tasks.index("localpypi.mirror.sync : Enable and start the sync timer") < len(tasks) - 1
    with open(os.path.join(REPO, "playbooks", "site.yml")) as stream:
        assert yaml.safe_load(stream)[0]["force_handlers"] is True
