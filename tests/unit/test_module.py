"""The Ansible front: documentation and argument spec held to the schema; a real ad-hoc run."""

from __future__ import annotations

import ast
import base64
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from ansible import release as ansible_release
from packaging.version import Version

from localpypi_sync.schema import OPTIONS, argument_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(REPO, "plugins", "modules", "pypi_sync.py")


def module_documentation():
    tree = ast.parse(open(MODULE).read())
    docs = {node.targets[0].id: node.value.value for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN")}
    return {name: yaml.safe_load(text) for name, text in docs.items()}


def test_documentation_matches_the_schema():
    options = module_documentation()["DOCUMENTATION"]["options"]
    spec = argument_spec()
    assert list(options) == [option.name for option in OPTIONS]
    for name, entry in spec.items():
        documented = options[name]
        for key in ("type", "required", "default", "elements", "choices"):
            assert documented.get(key) == entry.get(key), (name, key)
    assert module_documentation()["DOCUMENTATION"]["attributes"]["check_mode"]["support"] == "full"


@pytest.fixture
def ansible_env(tmp_path):
    collections = tmp_path / "collections" / "ansible_collections" / "localpypi"
    collections.mkdir(parents=True)
    os.symlink(REPO, collections / "mirror")
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"), ANSIBLE_STDOUT_CALLBACK="minimal",
                ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_LOCALHOST_WARNING="false",
                ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_PYTHON_INTERPRETER=sys.executable,
                ANSIBLE_HOME=str(tmp_path / "ansible-home"))


def run_module(ansible_env, args, *flags):
    result = subprocess.run(["ansible", "localhost", "-m", "localpypi.mirror.pypi_sync", "-a", json.dumps(args),
                             *flags], check=False, capture_output=True, text=True, env=ansible_env, timeout=300)
    head, _, body = result.stdout.partition(" => ")
    return head, json.loads(body) if body else {}, result


def test_module_check_mode_diff_then_apply_then_idempotent(ansible_env, upstream, mirror_dir):
    args = {"upstream": upstream.url, "directory": mirror_dir, "projects": ["alpha>=2", "gamma"], "workers": 2}
    head, data, raw = run_module(ansible_env, args, "--check", "--diff")
    assert "CHANGED" in head, raw.stdout + raw.stderr
    assert "alpha-2.0-py3-none-any.whl" in data["added"]
    assert not os.path.exists(mirror_dir)
    head, data, raw = run_module(ansible_env, args)
    assert "CHANGED" in head, raw.stdout + raw.stderr
    assert data["stats"]["files_downloaded"] == 4
    assert os.path.isfile(os.path.join(mirror_dir, "web", "simple", "alpha", "index.html"))
    head, data, raw = run_module(ansible_env, args)
    assert "SUCCESS" in head and data["changed"] is False, raw.stdout


def python_36():
    """A Python 3.6, as EL8's platform-python is, which Ansible 2.16 finds first there: on PATH, or under pyenv's
    root; None when this machine has none (a pyenv shim of a version not enabled fails to run)."""
    candidates = [shutil.which("python3.6")]
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip()
        candidates += sorted(glob.glob(os.path.join(root, "versions", "3.6*", "bin", "python3.6")))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 6))"],
                               capture_output=True, text=True, check=False)
        if probe.stdout.strip() == "True":
            return candidate
    return None


@pytest.mark.parametrize("python", ["this test's", "3.6"])
def test_module_checks_its_options_on_a_host_without_the_engines_libraries(ansible_env, tmp_path, mirror_dir,
                                                                           python):
    """A host whose Python lacks packaging, urllib3 and resolvelib, or is older than the engine's 3.9: a misspelt
    option is still named as one (the spec comes from the schema, standard library only, which 3.6 imports), and
    a correct call names the libraries to install, not an option."""
    base = sys.executable if python == "this test's" else python_36()
    if base is None:
        pytest.skip("no Python 3.6 on this machine")
    if python == "3.6" and Version(ansible_release.__version__) >= Version("2.17"):
        pytest.skip(f"ansible-core {ansible_release.__version__} runs no module on Python 3.6 (2.16, the last "
                    f"that manages EL8, does)")
    bare = tmp_path / "bare"
    subprocess.run([base, "-m", "venv", "--without-pip", str(bare)], check=True)
    interpreter = ("-e", f"ansible_python_interpreter={bare / 'bin' / 'python'}")  # over implicit localhost's own
    args = {"upstream": "http://127.0.0.1:9/simple/", "directory": mirror_dir}  # nothing listens there
    head, data, raw = run_module(ansible_env, {**args, "projetcs": ["alpha"]}, *interpreter)
    assert "FAILED" in head, raw.stdout + raw.stderr
    assert data["msg"].startswith("Unsupported parameters for (localpypi.mirror.pypi_sync) module: projetcs.")
    head, data, raw = run_module(ansible_env, {**args, "projects": ["alpha"], "workers": "many"}, *interpreter)
    assert "FAILED" in head and data["msg"].startswith("argument 'workers' is of type"), raw.stdout
    head, data, raw = run_module(ansible_env, {**args, "projects": ["alpha"]}, *interpreter)
    assert "FAILED" in head, raw.stdout + raw.stderr
    assert data["msg"].startswith("Failed to import the required Python library (packaging, urllib3 and resolvelib "
                                  "on Python >= 3.9 (the sync engine's))"), data["msg"]
    assert not os.path.exists(mirror_dir)


def test_module_reports_bad_options_in_one_line(ansible_env, upstream, mirror_dir):
    head, data, _ = run_module(ansible_env, {"upstream": upstream.url, "directory": mirror_dir,
                                             "projects": ["alpha>>1"]})
    assert "FAILED" in head
    assert data["msg"].startswith("projects[0]: invalid requirement 'alpha>>1'")


def test_module_masks_the_login_in_the_upstream_url(ansible_env, upstream, mirror_dir):
    upstream.server.faults.require_auth = "Basic " + base64.b64encode(b"mirror:s3cr3t-t0ken").decode()
    args = {"upstream": upstream.url.replace("http://", "http://mirror:s3cr3t-t0ken@"), "directory": mirror_dir,
            "projects": ["gamma"]}
    head, data, raw = run_module(ansible_env, args, "-vvv")
    assert "CHANGED" in head, raw.stdout + raw.stderr
    assert data["invocation"]["module_args"]["upstream"].startswith("http://mirror:********@")
    assert "s3cr3t" not in raw.stdout + raw.stderr


def test_ansible_doc_renders_the_module(ansible_env):
    result = subprocess.run(["ansible-doc", "localpypi.mirror.pypi_sync"], check=False, capture_output=True, text=True,
                            env=ansible_env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "prune_max_fraction" in result.stdout


def test_module_resolves_dependencies(ansible_env, upstream, mirror_dir):
    """The resolver is imported only where a run resolves; the module's payload must carry it all the same."""
    args = {"upstream": upstream.url, "directory": mirror_dir, "projects": ["gamma"], "dependencies": True,
            "python_versions": ["3.12"], "platforms": ["manylinux_2_28_x86_64"], "workers": 2}
    head, data, raw = run_module(ansible_env, args)
    assert "CHANGED" in head, raw.stdout + raw.stderr
    assert data["stats"]["projects_resolved"] == 2
    assert os.path.isfile(os.path.join(mirror_dir, "web", "simple", "alpha", "index.html"))
