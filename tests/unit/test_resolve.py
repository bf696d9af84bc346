"""Dependency-closed mirrors: requirements files with markers and extras, resolved for every target."""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys

import pytest
import yaml
from test_clients import clean_env

from localpypi_sync.cli import main
from localpypi_sync.config import build_config
from upstream_fixture import Catalog, dependency_catalog, serve_mirror, serve_upstream

TARGETS = {"python_versions": ["3.11", "3.12"], "platforms": ["manylinux_2_28_x86_64", "win_amd64"]}
EVERY_TARGET = ["3.11/manylinux_2_28_x86_64", "3.11/win_amd64", "3.12/manylinux_2_28_x86_64", "3.12/win_amd64"]
# What every target needs, whichever mode: app and the dependencies its markers and extra ask for.
COMMON = {
    "app-1.0-py3-none-any.whl",
    "fancy_dep-1.0-py3-none-any.whl",   # extra "fancy", asked for in the requirements file
    "winonly-1.0-py3-none-any.whl",     # sys_platform == "win32": the Windows targets
    "oldpy-1.0-py3-none-any.whl",       # python_version < "3.12": the 3.11 targets
    "lib_core-1.5-py3-none-any.whl",    # newest for 3.11 (no PEP 658 file: read from the wheel)
    "lib_core-2.0-py3-none-any.whl",    # Requires-Python >= 3.12
    "tiny-1.0-py3-none-any.whl",        # from lib-core 2.0 and from statdep's static sdist metadata
    "statdep-1.0.tar.gz",
    "dynsdist-1.0.tar.gz",              # from base.txt, nested with -r
    "native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "native-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "native-1.0-cp311-cp311-win_amd64.whl",
    "native-1.0-cp312-cp312-win_amd64.whl",
}


@pytest.fixture
def dep_catalog(tmp_path):
    return dependency_catalog(str(tmp_path / "dep-upstream"))


@pytest.fixture
def dep_upstream(dep_catalog):
    with serve_upstream(dep_catalog) as running:
        yield running


@pytest.fixture
def requirements(tmp_path):
    (tmp_path / "base.txt").write_text("dynsdist\n")
    (tmp_path / "constraints.txt").write_text("lib-core!=1.0\n")
    path = tmp_path / "requirements.txt"
    path.write_text("-r base.txt\n"
                    "app[fancy]>=1.0  # with its extra\n"
                    'statdep ; python_version >= "3.11"\n'
                    "-c constraints.txt\n")
    return str(path)


@pytest.fixture
def dep_config(dep_upstream, mirror_dir, requirements):
    def make(**options):
        raw = {"upstream": dep_upstream.url, "directory": mirror_dir, "requirements_files": [requirements],
               "dependencies": True, "workers": 4, "retries": 1, **TARGETS}
        raw.update(options)
        return build_config(raw)

    return make


def published(mirror_dir):
    names = set()
    for _, _, files in os.walk(os.path.join(mirror_dir, "web", "packages")):
        names.update(f for f in files if not f.endswith(".metadata"))
    return names


def test_candidates_keep_every_release_a_resolution_could_pick(dep_config, sync, mirror_dir):
    result = sync(dep_config())
    assert result.ok, result.failures
    # lib-core 1.4 also satisfies >=1.0 on 3.11; 1.0 is excluded by the constraints file, 0.5 and
    # app 0.9 by the specifiers; unrelated and the macOS wheels by nothing asking for them
    assert published(mirror_dir) == COMMON | {"lib_core-1.4-py3-none-any.whl"}
    assert any("dynsdist 1.0: dependencies unknown" in w for w in result.warnings)


def test_pinned_keeps_what_the_resolver_picks_per_target(dep_config, sync, mirror_dir):
    result = sync(dep_config(resolution="pinned"))
    assert result.ok, result.failures
    assert published(mirror_dir) == COMMON
    pulls = result.plan["pulls"]
    assert {p["target"] for p in pulls["lib-core"]["1.5"]} == {"3.11/manylinux_2_28_x86_64", "3.11/win_amd64"}
    assert {p["target"] for p in pulls["lib-core"]["2.0"]} == {"3.12/manylinux_2_28_x86_64", "3.12/win_amd64"}
    assert {p["target"] for p in pulls["winonly"]["1.0"]} == {"3.11/win_amd64", "3.12/win_amd64"}


def test_targets_resolve_for_their_pairs_alone(dep_config, sync, mirror_dir):
    """3.11 on Linux servers and 3.12 on Windows desktops: two targets, not the product's four. Each gets what it
    needs (oldpy for 3.11, winonly for Windows), and no wheel of a pair that nobody runs."""
    result = sync(dep_config(resolution="pinned", python_versions=[], platforms=[],
                             targets=["3.11/manylinux_2_28_x86_64", "3.12/win_amd64"]))
    assert result.ok, result.failures
    assert published(mirror_dir) == COMMON - {"native-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                                              "native-1.0-cp311-cp311-win_amd64.whl"}
    pulls = result.plan["pulls"]
    assert {p["target"] for p in pulls["winonly"]["1.0"]} == {"3.12/win_amd64"}
    assert {p["target"] for p in pulls["oldpy"]["1.0"]} == {"3.11/manylinux_2_28_x86_64"}
    assert {p["target"] for p in pulls["lib-core"]["2.0"]} == {"3.12/win_amd64"}


@pytest.mark.parametrize("mode", ["candidates", "pinned"])
def test_each_page_and_metadata_file_is_read_once_for_all_targets(dep_config, sync, dep_upstream, mode):
    assert sync(dep_config(resolution=mode)).ok
    gets = [path for method, path in dep_upstream.server.requests if method == "GET"]
    assert len(gets) == len(set(gets)), sorted(p for p in gets if gets.count(p) > 1)
    # no-op: one conditional request per project, no metadata read again (it is cached in state/)
    before = len(dep_upstream.server.requests)
    again = sync(dep_config(resolution=mode))
    assert again.ok and not again.changed
    later = [path for _, path in dep_upstream.server.requests[before:]]
    assert not [p for p in later if not p.startswith("/simple/") and p != "/simple/"], later


def test_a_config_change_takes_effect_on_the_next_run(dep_config, sync, mirror_dir, tmp_path, requirements):
    assert sync(dep_config(resolution="pinned")).ok
    with open(requirements, "a") as stream:
        stream.write("unrelated\n")
    assert sync(dep_config(resolution="pinned")).ok
    assert "unrelated-1.0-py3-none-any.whl" in published(mirror_dir)
    assert sync(dep_config(resolution="pinned", python_versions=["3.12"])).ok
    assert "oldpy-1.0-py3-none-any.whl" in published(mirror_dir)  # kept: prune is off
    result = sync(dep_config(resolution="pinned", python_versions=["3.12"], prune=True, prune_max_fraction=1.0))
    assert result.ok
    assert "oldpy-1.0-py3-none-any.whl" not in published(mirror_dir)  # only 3.11 needed it
    assert "native-1.0-cp311-cp311-win_amd64.whl" not in published(mirror_dir)


@pytest.mark.parametrize("mode", ["candidates", "pinned"])
def test_an_unsatisfiable_target_is_named_and_the_rest_is_published(tmp_path, mirror_dir, requirements, sync, mode):
    catalog = dependency_catalog(str(tmp_path / "no-mac"), native_platforms=("win_amd64",))
    with serve_upstream(catalog) as running:
        config = build_config({"upstream": running.url, "directory": mirror_dir, "requirements_files": [requirements],
                               "dependencies": True, "resolution": mode, "python_versions": ["3.12"],
                               "platforms": ["win_amd64", "macosx_11_0_arm64"], "workers": 2})
        result = sync(config)
    assert not result.ok
    # the failure says what native offers instead, whichever way the mode found it
    assert any(f.startswith("target 3.12/macosx_11_0_arm64: ") and f.endswith(
        "native>=1.0, and no release of it installs there; native 1.0, the newest it allows, has wheels only for "
        "win_amd64" if mode == "candidates" else
        "native>=1.0 (from app 1.0); native 1.0, the newest it allows, has wheels only for win_amd64")
        for f in result.failures), result.failures
    assert not any(f.startswith("target 3.12/win_amd64") for f in result.failures), result.failures
    assert {"native-1.0-cp312-cp312-win_amd64.whl", "app-1.0-py3-none-any.whl",
            "winonly-1.0-py3-none-any.whl"} <= published(mirror_dir)


def test_check_mode_resolves_and_writes_nothing(dep_config, sync, mirror_dir):
    result = sync(dep_config(), check_mode=True)
    assert result.ok
    assert "native-1.0-cp311-cp311-win_amd64.whl" in result.added
    assert not os.path.exists(mirror_dir)


def test_check_mode_reads_the_metadata_earlier_runs_learnt_and_writes_none(dep_config, sync, mirror_dir,
                                                                          dep_upstream):
    """--check on a synced mirror asks for the project pages only: downloading every metadata file (or, from an
    index without PEP 658 files, every wheel) again would make each check as costly as a cold sync."""
    assert sync(dep_config()).ok
    cache = os.path.join(mirror_dir, "state", "metadata")
    learnt = sorted(os.path.join(d, f) for d, _, files in os.walk(cache) for f in files)
    assert learnt
    os.unlink(learnt[0])  # one entry forgotten: read again, and not written back
    before = len(dep_upstream.server.requests)
    result = sync(dep_config(), check_mode=True)
    assert result.ok and not result.changed
    later = [path for _, path in dep_upstream.server.requests[before:]]
    assert len([p for p in later if not p.startswith("/simple/")]) == 1, later
    assert not os.path.exists(learnt[0])


def test_explain_names_requirement_and_target(dep_config, mirror_dir, tmp_path, capsys):
    config_path = tmp_path / "sync.yml"
    config_path.write_text(yaml.safe_dump(dict(dep_config(resolution="pinned").raw)))
    assert main(["sync", "--config", str(config_path), "--quiet", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["explain", "--config", str(config_path), "Lib_Core"]) == 0
    text = capsys.readouterr().out
    assert "2.0: lib_core-2.0-py3-none-any.whl" in text
    assert "3.12/win_amd64: lib-core>=1.0  <- app 1.0" in text
    assert main(["explain", "--config", str(config_path), "--json", "unrelated"]) == 1
    assert json.loads(capsys.readouterr().out)["explain"] == ["unrelated is not in the last resolution"]


@pytest.fixture
def served_dep_mirror(dep_config, sync, mirror_dir):
    assert sync(dep_config(resolution="pinned")).ok
    with serve_mirror(os.path.join(mirror_dir, "web")) as running:
        yield running


def find_interpreter(version: str):
    """A CPython of that version on this machine (this one, PATH, or pyenv's versions), or None."""
    candidates = [sys.executable] if f"{sys.version_info[0]}.{sys.version_info[1]}" == version else []
    candidates.append(shutil.which(f"python{version}"))
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", f"{version}.*", "bin", f"python{version}")))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import ensurepip, venv"], check=False, capture_output=True)
        if probe.returncode == 0:
            return candidate
    return None


INTERPRETERS = {version: find_interpreter(version) for version in TARGETS["python_versions"]}


def installed_versions(python):
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    return json.loads(subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout)


# Each target Python this machine has: a real install from the mirror alone, by pip and by uv.
@pytest.mark.parametrize("version", [v for v, python in INTERPRETERS.items() if python])
def test_pip_and_uv_install_the_requirements_on_each_interpreter(served_dep_mirror, requirements, tmp_path,
                                                                 version):
    python = INTERPRETERS[version]
    expected = {"app": "1.0", "lib-core": "1.5" if version == "3.11" else "2.0", "native": "1.0",
                "fancy-dep": "1.0", "statdep": "1.0", "tiny": "1.0", "dynsdist": "1.0"}
    pip_venv = tmp_path / "pip-venv"
    subprocess.run([python, "-m", "venv", str(pip_venv)], check=True, capture_output=True, timeout=300)
    subprocess.run([str(pip_venv / "bin" / "python"), "-m", "pip", "install", "--isolated", "--no-cache-dir",
                    "--disable-pip-version-check", "--index-url", served_dep_mirror.url, "-r", requirements],
                   check=True, capture_output=True, text=True, env=clean_env(), timeout=300)
    uv_venv = tmp_path / "uv-venv"
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", "--no-config", "--quiet", "--python", python, str(uv_venv)],
                   check=True, capture_output=True, env=clean_env(), timeout=300)
    subprocess.run([*uv, "pip", "install", "--no-config", "--no-cache", "--python", str(uv_venv / "bin" / "python"),
                    "--index-url", served_dep_mirror.url, "-r", requirements],
                   check=True, capture_output=True, text=True, env=clean_env(), timeout=300)
    for venv in (pip_venv, uv_venv):
        found = {name.lower().replace("_", "-"): v
                 for name, v in installed_versions(str(venv / "bin" / "python")).items()}
        assert {name: found.get(name) for name in expected} == expected, venv
        assert ("oldpy" in found) == (version == "3.11")
        assert "winonly" not in found and "unrelated" not in found


@pytest.mark.parametrize("target", EVERY_TARGET)
def test_uv_resolves_the_requirements_for_every_target(served_dep_mirror, requirements, target):
    python, platform = target.split("/")
    uv_platform = {"manylinux_2_28_x86_64": "x86_64-manylinux_2_28", "win_amd64": "x86_64-pc-windows-msvc"}[platform]
    out = subprocess.run([sys.executable, "-m", "uv", "pip", "compile", "--no-config", "--no-cache", "--quiet",
                          "--index-url", served_dep_mirror.url, "--python-version", python,
                          "--python-platform", uv_platform, requirements],
                         check=True, capture_output=True, text=True, env=clean_env(), timeout=300).stdout
    pins = {line.split("==")[0] for line in out.splitlines() if "==" in line}
    assert {"app", "lib-core", "native", "fancy-dep", "statdep", "tiny"} <= pins
    assert ("winonly" in pins) == platform.startswith("win")
    assert ("oldpy" in pins) == (python == "3.11")
    assert f"lib-core=={'1.5' if python == '3.11' else '2.0'}" in out


@pytest.mark.parametrize("target", EVERY_TARGET)
def test_pip_downloads_wheels_for_every_target(served_dep_mirror, tmp_path, target):
    python, platform = target.split("/")
    dest = tmp_path / "dl"
    # pip widens only legacy manylinux names, so name the older tags a manylinux_2_28 host accepts
    platforms = [platform, "manylinux2014_x86_64"] if platform.startswith("manylinux") else [platform]
    subprocess.run([sys.executable, "-m", "pip", "download", "--isolated", "--no-cache-dir",
                    "--disable-pip-version-check", "--index-url", served_dep_mirror.url, "--dest", str(dest),
                    "--only-binary", ":all:", *(f"--platform={p}" for p in platforms),
                    "--python-version", python, "--implementation", "cp", "app[fancy]"],
                   check=True, capture_output=True, text=True, env=clean_env(), timeout=300)
    tag = "cp" + python.replace(".", "")
    assert any(name.startswith(f"native-1.0-{tag}-{tag}-") for name in os.listdir(dest))


def test_prune_waits_for_a_complete_resolution(dep_config, sync, mirror_dir, dep_upstream):
    assert sync(dep_config(resolution="pinned")).ok
    dep_upstream.server.faults.fail_status["/simple/tiny/"] = 1000  # tiny's page is down for now
    pruning = {"resolution": "pinned", "python_versions": ["3.12"], "prune": True, "prune_max_fraction": 1.0}
    result = sync(dep_config(**pruning))
    assert not result.ok and any("tiny" in f for f in result.failures)
    assert any("prune skipped this run" in w for w in result.warnings)
    assert "oldpy-1.0-py3-none-any.whl" in published(mirror_dir)  # 3.11 only, but nothing is pruned now
    dep_upstream.server.faults.fail_status.clear()
    assert sync(dep_config(**pruning)).ok
    assert "oldpy-1.0-py3-none-any.whl" not in published(mirror_dir)


@pytest.mark.parametrize(("extras", "wanted"), [([], False), (["Fancy"], True)])
def test_extras_option_applies_to_every_requested_project(dep_upstream, mirror_dir, sync, extras, wanted):
    config = build_config({"upstream": dep_upstream.url, "directory": mirror_dir, "projects": ["app>=1.0"],
                           "dependencies": True, "resolution": "pinned", "extras": extras, **TARGETS})
    assert sync(config).ok
    assert ("fancy_dep-1.0-py3-none-any.whl" in published(mirror_dir)) is wanted
    assert "app-1.0-py3-none-any.whl" in published(mirror_dir)


def test_a_yanked_release_is_picked_only_when_pinned_exactly(dep_catalog, dep_upstream, mirror_dir, sync):
    dep_catalog.add_wheel("tiny", "0.9", yanked="broken build")
    base = {"upstream": dep_upstream.url, "directory": mirror_dir, "dependencies": True, **TARGETS}
    assert sync(build_config({**base, "projects": ["tiny==0.9"]})).ok
    assert "tiny-0.9-py3-none-any.whl" in published(mirror_dir)
    ranged = sync(build_config({**base, "projects": ["tiny<1"]}))
    assert not ranged.ok and any("no release of tiny satisfies tiny<1" in f for f in ranged.failures)


def test_a_free_threaded_target_resolves_to_releases_with_its_own_wheels(tmp_path, mirror_dir, sync):
    # ftnative 2.0 has no free-threaded build yet: a 3.14t interpreter can only install 1.0
    catalog = Catalog(str(tmp_path / "ft-upstream"))
    catalog.add_wheel("ftapp", "1.0", requires_dist=["ftnative"])
    for tag in ("cp314-cp314", "cp314-cp314t", "cp39-abi3"):
        catalog.add_wheel("ftnative", "1.0", f"{tag}-manylinux_2_17_x86_64")
    for tag in ("cp314-cp314", "cp39-abi3"):
        catalog.add_wheel("ftnative", "2.0", f"{tag}-manylinux_2_17_x86_64")
    with serve_upstream(catalog) as running:
        result = sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "projects": ["ftapp"], "dependencies": True,
            "resolution": "pinned", "python_versions": ["3.14", "3.14t"], "platforms": ["manylinux_2_28_x86_64"]}))
    assert result.ok, result.failures
    assert published(mirror_dir) == {"ftapp-1.0-py3-none-any.whl",
                                     "ftnative-1.0-cp314-cp314t-manylinux_2_17_x86_64.whl",
                                     "ftnative-2.0-cp314-cp314-manylinux_2_17_x86_64.whl",
                                     "ftnative-2.0-cp39-abi3-manylinux_2_17_x86_64.whl"}
    pulls = result.plan["pulls"]["ftnative"]
    assert {p["target"] for p in pulls["1.0"]} == {"3.14t/manylinux_2_28_x86_64"}
    assert {p["target"] for p in pulls["2.0"]} == {"3.14/manylinux_2_28_x86_64"}
    # what pip picks for a free-threaded 3.14 from the mirror alone
    dest = tmp_path / "dl"
    downloaded = pip_download(mirror_dir, dest, "ftapp", target=(
        "--platform", "manylinux_2_17_x86_64", "--python-version", "3.14", "--implementation", "cp", "--abi", "cp314t"))
    assert downloaded.returncode == 0, downloaded.stderr
    assert sorted(os.listdir(dest)) == ["ftapp-1.0-py3-none-any.whl",
                                        "ftnative-1.0-cp314-cp314t-manylinux_2_17_x86_64.whl"]


def test_candidates_pass_over_a_release_whose_needs_cannot_install_on_a_target(tmp_path, mirror_dir, sync):
    """app 2.0 pins a dep 2.0 built for Windows only (an old release pinning a dependency with no wheel for a
    new Python is the same case): on Linux a resolver passes over app 2.0 to 1.0, and so does the plan; the
    run succeeds, and pip on Linux installs from the mirror. Only a requested project left with no release
    that installs is an error."""
    catalog = Catalog(str(tmp_path / "pass-over"))
    catalog.add_wheel("app", "1.0", requires_dist=["dep==1.0"])
    catalog.add_wheel("app", "2.0", requires_dist=["dep==2.0"])
    catalog.add_wheel("dep", "1.0")
    catalog.add_wheel("dep", "2.0", "cp312-cp312-win_amd64")
    base = {"directory": mirror_dir, "dependencies": True, "resolution": "candidates", "package_types": ["wheel"],
            "python_versions": ["3.12"], "platforms": ["manylinux_2_28_x86_64", "win_amd64"]}
    with serve_upstream(catalog) as running:
        result = sync(build_config({**base, "upstream": running.url, "projects": ["app"]}))
        assert result.ok, result.failures
        assert {p["target"] for p in result.plan["pulls"]["app"]["2.0"]} == {"3.12/win_amd64"}
        assert {p["target"] for p in result.plan["pulls"]["dep"]["1.0"]} == {"3.12/manylinux_2_28_x86_64",
                                                                            "3.12/win_amd64"}
        dest = tmp_path / "dl"
        downloaded = pip_download(mirror_dir, dest, "app")
        assert downloaded.returncode == 0, downloaded.stderr
        assert sorted(os.listdir(dest)) == ["app-1.0-py3-none-any.whl", "dep-1.0-py3-none-any.whl"]
        newest_only = sync(build_config({**base, "upstream": running.url, "projects": ["app>=2"]}))
    assert newest_only.failures == [
        "target 3.12/manylinux_2_28_x86_64: no release of app satisfies app>=2 and installs there with what it "
        "needs (from projects[0]): app 2.0 needs dep==2.0, and no release of it installs there; dep 2.0, the "
        "newest it allows, has wheels only for win_amd64"]


PIP_VERSION = tuple(int(part) for part in importlib.metadata.version("pip").split(".")[:2])


LINUX_312 = ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.12", "--implementation", "cp")


def pip_download(mirror_dir, dest, *requirements, target=LINUX_312):
    """`pip download --only-binary :all:` from the mirror served over HTTP, for target (pip's options; empty:
    this machine's own tags)."""
    with serve_mirror(os.path.join(mirror_dir, "web")) as served:
        return subprocess.run([sys.executable, "-m", "pip", "download", "--isolated", "--no-cache-dir",
                               "--disable-pip-version-check", "--index-url", served.url, "--dest", str(dest),
                               "--only-binary", ":all:", *target, *requirements],
                              check=False, capture_output=True, text=True, env=clean_env(), timeout=300)


def test_a_plain_linux_wheel_is_mirrored_for_a_linux_target_and_pip_here_installs_it(tmp_path, mirror_dir, sync):
    """A wheel built without auditwheel (linux_<arch>, as internal builds on a private index have): pip on
    this Linux machine installs it, so a Linux target of this machine must keep it."""
    arch = platform.machine()
    catalog = Catalog(str(tmp_path / "plain"))
    catalog.add_wheel("inhouse", "1.0", f"py3-none-linux_{arch}")
    with serve_upstream(catalog) as running:
        result = sync(build_config({"upstream": running.url, "directory": mirror_dir, "projects": ["inhouse"],
                                    "python_versions": ["3.12"], "platforms": [f"manylinux_2_28_{arch}"]}))
    assert result.ok and published(mirror_dir) == {f"inhouse-1.0-py3-none-linux_{arch}.whl"}, result.failures
    downloaded = pip_download(mirror_dir, tmp_path / "dl", "inhouse", target=())  # this machine's own tags
    assert downloaded.returncode == 0, downloaded.stderr
    assert os.listdir(tmp_path / "dl") == [f"inhouse-1.0-py3-none-linux_{arch}.whl"]


@pytest.mark.parametrize("mode", ["candidates", "pinned"])
def test_markers_on_the_full_version_are_read_as_a_current_patch_release_would(tmp_path, mirror_dir, sync, mode):
    """`uv pip compile --universal` for 3.9 splits a pin at `python_full_version <= '3.9'` (3.9.0 only)
    and `> '3.9'`: a host of 3.9.18 installs the second, so the mirror must hold it."""
    catalog = Catalog(str(tmp_path / "full"))
    for version in ("1.0", "2.0"):
        catalog.add_wheel("tool", version)
    lock = tmp_path / "lock.txt"
    lock.write_text("tool==1.0 ; python_full_version <= '3.12'\ntool==2.0 ; python_full_version > '3.12'\n")
    with serve_upstream(catalog) as running:
        result = sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "requirements_files": [str(lock)],
            "dependencies": True, "resolution": mode, "python_versions": ["3.12"],
            "platforms": ["manylinux_2_28_x86_64"]}))
    assert result.ok, result.failures
    assert published(mirror_dir) == {"tool-2.0-py3-none-any.whl"}


def sync_constrained(tmp_path, mirror_dir, sync, mode, constraints):
    """app, which needs lib, resolved for 3.11 and 3.12 with the constraints file given."""
    catalog = Catalog(str(tmp_path / "forked"))
    catalog.add_wheel("app", "1.0", requires_dist=["lib"])
    for version in ("1.0", "2.0", "3.0"):
        catalog.add_wheel("lib", version)
    (tmp_path / "constraints.txt").write_text(constraints)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("app\n-c constraints.txt\n")
    with serve_upstream(catalog) as running:
        return sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "requirements_files": [str(requirements)],
            "dependencies": True, "resolution": mode, "python_versions": ["3.11", "3.12"],
            "platforms": ["manylinux_2_28_x86_64"]}))


@pytest.mark.parametrize("mode", ["candidates", "pinned"])
def test_a_constraint_applies_on_the_targets_its_marker_holds_on(tmp_path, mirror_dir, sync, mode):
    """A universal constraints file pins lib twice, by Python. Each target resolves with the constraint for its
    own Python, as pip there does; before, both held everywhere, and no release of lib met them."""
    result = sync_constrained(tmp_path, mirror_dir, sync, mode,
                              "lib==1.0 ; python_version < '3.12'\nlib==2.0 ; python_version >= '3.12'\n")
    assert result.ok, result.failures
    assert published(mirror_dir) == {"app-1.0-py3-none-any.whl", "lib-1.0-py3-none-any.whl",
                                     "lib-2.0-py3-none-any.whl"}


@pytest.mark.parametrize(("mode", "failure"), [
    ("candidates", "target 3.12/manylinux_2_28_x86_64: no release of app satisfies app and installs there with what "
                   "it needs (from {requirements}:1): app 1.0 needs lib, and no release of it installs there"),
    ("pinned", "target 3.12/manylinux_2_28_x86_64: cannot satisfy lib (from app 1.0)"),
])
def test_constraints_that_rule_out_every_release_are_named(tmp_path, mirror_dir, sync, mode, failure):
    """`lib` (from app) alone does not tell why no release of lib is allowed: the constraint that rules them
    out on that target is named, with its file and line."""
    result = sync_constrained(tmp_path, mirror_dir, sync, mode,
                              "lib==1.0 ; python_version < '3.12'\nlib==9.0 ; python_version >= '3.12'\n")
    assert result.failures == [failure.format(requirements=tmp_path / "requirements.txt") +
                               f"; the constraints that apply there rule out every release asked for: lib==9.0 "
                               f"({tmp_path / 'constraints.txt'}:2)"]


@pytest.mark.parametrize("mode", ["candidates", "pinned"])
def test_a_dependency_whose_marker_cannot_be_evaluated_is_skipped_with_a_warning(tmp_path, mirror_dir, sync, mode):
    """A Requires-Dist marker that no installer can evaluate (`~=` with one number) failed the project that needed
    it, as an "internal error UndefinedComparison". It is skipped, and told once."""
    catalog = Catalog(str(tmp_path / "odd"))
    catalog.add_wheel("app", "1.0", requires_dist=["lib", "odd; python_version ~= '3'"])
    catalog.add_wheel("lib", "1.0")
    catalog.add_wheel("odd", "1.0")
    with serve_upstream(catalog) as running:
        result = sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "projects": ["app"], "dependencies": True,
            "resolution": mode, "python_versions": ["3.11", "3.12"], "platforms": ["manylinux_2_28_x86_64"]}))
    assert result.ok, result.failures
    assert published(mirror_dir) == {"app-1.0-py3-none-any.whl", "lib-1.0-py3-none-any.whl"}
    assert [w for w in result.warnings if "odd" in w] == [
        "app 1.0: Requires-Dist \"odd; python_version ~= '3'\" skipped: its marker has a comparison that cannot be "
        "evaluated (such as ~= with a single number)"]


def test_a_resolution_that_backtracks_too_long_says_what_ends_it(tmp_path, mirror_dir, sync, monkeypatch):
    """The resolver gives up after MAX_ROUNDS (as pip does after many more): the error said only
    "failed: ResolutionTooDeep". A handful of rounds stands in for a real case's thousands."""
    monkeypatch.setattr("localpypi_sync.resolve.MAX_ROUNDS", 2)
    catalog = Catalog(str(tmp_path / "deep"))
    catalog.add_wheel("app", "1.0", requires_dist=["lib"])
    catalog.add_wheel("lib", "1.0", requires_dist=["base"])
    catalog.add_wheel("base", "1.0")
    with serve_upstream(catalog) as running:
        result = sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "projects": ["app"], "dependencies": True,
            "resolution": "pinned", "python_versions": ["3.12"], "platforms": ["manylinux_2_28_x86_64"]}))
    assert result.failures == [
        "target 3.12/manylinux_2_28_x86_64: resolution of app gave up after 2 rounds of trying other releases: pin "
        "what to install in a constraints file (-c), as `uv pip compile` writes it"]


@pytest.mark.parametrize("mode", ["candidates", "pinned"])
def test_a_dependency_with_only_a_pre_release_that_satisfies_it_gets_that_one(tmp_path, mirror_dir, sync, mode):
    """PEP 440, as pip 26 applies it: `lib>=1.0` with only 2.0b1 above 1.0 installs 2.0b1 (pip 25.3 and uv
    refuse it, online as from the mirror). The run failed with no release of lib, and left app unmirrored."""
    catalog = Catalog(str(tmp_path / "pre"))
    catalog.add_wheel("app", "1.0", requires_dist=["lib>=1.0"])
    catalog.add_wheel("lib", "0.9")
    catalog.add_wheel("lib", "2.0b1")
    with serve_upstream(catalog) as running:
        result = sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "projects": ["app"], "dependencies": True,
            "resolution": mode, "python_versions": ["3.12"], "platforms": ["manylinux_2_28_x86_64"]}))
    assert result.ok, result.failures
    assert published(mirror_dir) == {"app-1.0-py3-none-any.whl", "lib-2.0b1-py3-none-any.whl"}
    downloaded = pip_download(mirror_dir, tmp_path / "dl", "app")
    if PIP_VERSION >= (26,):  # tests/run installs pip 26.3; an older pip refuses 2.0b1 wherever it looks
        assert downloaded.returncode == 0, downloaded.stderr
        assert sorted(os.listdir(tmp_path / "dl")) == ["app-1.0-py3-none-any.whl", "lib-2.0b1-py3-none-any.whl"]
    else:
        assert "from versions: 2.0b1" in downloaded.stderr, downloaded.stderr


def test_latest_candidates_keep_the_older_releases_pip_backtracks_to(tmp_path, mirror_dir, sync):
    """With latest: 1, app's own `framework<2` rules out what plugin 2.0 (the newest) needs: pip backtracks
    to plugin 1.0, so the mirror holds it too, though `latest` alone would keep only 2.0."""
    catalog = Catalog(str(tmp_path / "backtrack"))
    catalog.add_wheel("app", "1.0", requires_dist=["plugin>=1", "framework<2"])
    catalog.add_wheel("plugin", "1.0", requires_dist=["framework>=1"])
    catalog.add_wheel("plugin", "2.0", requires_dist=["framework>=2"])
    catalog.add_wheel("framework", "1.0")
    catalog.add_wheel("framework", "2.0")
    base = {"directory": mirror_dir, "dependencies": True, "latest": 1, "package_types": ["wheel"],
            "python_versions": ["3.12"], "platforms": ["manylinux_2_28_x86_64"]}
    with serve_upstream(catalog) as running:
        result = sync(build_config({**base, "upstream": running.url, "projects": ["app"]}))
        assert result.ok, result.failures
        assert published(mirror_dir) == {"app-1.0-py3-none-any.whl", "plugin-1.0-py3-none-any.whl",
                                         "plugin-2.0-py3-none-any.whl", "framework-1.0-py3-none-any.whl",
                                         "framework-2.0-py3-none-any.whl"}
        assert [p["by"] for p in result.plan["pulls"]["plugin"]["1.0"]] == ["app 1.0"]
        downloaded = pip_download(mirror_dir, tmp_path / "dl", "app")
        assert downloaded.returncode == 0, downloaded.stderr
        assert sorted(os.listdir(tmp_path / "dl")) == ["app-1.0-py3-none-any.whl", "framework-1.0-py3-none-any.whl",
                                                       "plugin-1.0-py3-none-any.whl"]
        # requested projects that conflict are each kept installable, and the run says they do not mix
        apart = sync(build_config({**base, "upstream": running.url, "projects": ["framework<2", "plugin>=2"]}))
    assert apart.ok, apart.failures
    assert any(w.startswith("target 3.12/manylinux_2_28_x86_64: the requested projects cannot be installed "
                            "together (cannot satisfy ") for w in apart.warnings), apart.warnings


def test_latest_candidates_fall_back_to_an_older_release_that_installs(tmp_path, mirror_dir, sync):
    """The newest app (2.0) pins a dep built for Windows only: with latest: 1 on Linux, pip installs app
    1.0, and so the run keeps it there instead of failing."""
    catalog = Catalog(str(tmp_path / "pass-over"))
    catalog.add_wheel("app", "1.0", requires_dist=["dep==1.0"])
    catalog.add_wheel("app", "2.0", requires_dist=["dep==2.0"])
    catalog.add_wheel("dep", "1.0")
    catalog.add_wheel("dep", "2.0", "cp312-cp312-win_amd64")
    with serve_upstream(catalog) as running:
        result = sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "projects": ["app"], "dependencies": True,
            "latest": 1, "package_types": ["wheel"], "python_versions": ["3.12"],
            "platforms": ["manylinux_2_28_x86_64", "win_amd64"]}))
    assert result.ok, result.failures
    assert {p["target"] for p in result.plan["pulls"]["app"]["2.0"]} == {"3.12/win_amd64"}
    assert {p["target"] for p in result.plan["pulls"]["app"]["1.0"]} == {"3.12/manylinux_2_28_x86_64"}
    downloaded = pip_download(mirror_dir, tmp_path / "dl", "app")
    assert downloaded.returncode == 0, downloaded.stderr
    assert sorted(os.listdir(tmp_path / "dl")) == ["app-1.0-py3-none-any.whl", "dep-1.0-py3-none-any.whl"]


@pytest.mark.parametrize("mode", ["candidates", "pinned"])
def test_the_requested_projects_that_install_are_kept_installable_together(tmp_path, mirror_dir, sync, mode):
    """nowheel has no file for Linux, so the three requested projects cannot install together there. alpha
    alone would pick lib 2.0 and beta alone lib 3.0, yet `pip install alpha beta` needs lib 1.0: it is kept,
    and the only complaint is nowheel's."""
    catalog = Catalog(str(tmp_path / "together"))
    catalog.add_wheel("alpha", "1.0", requires_dist=["lib<3"])
    catalog.add_wheel("beta", "1.0", requires_dist=["lib!=2.0"])
    for version in ("1.0", "2.0", "3.0"):
        catalog.add_wheel("lib", version)
    catalog.add_wheel("nowheel", "1.0", "cp312-cp312-win_amd64")
    with serve_upstream(catalog) as running:
        result = sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "projects": ["alpha", "beta", "nowheel"],
            "dependencies": True, "resolution": mode, "latest": 1, "package_types": ["wheel"],
            "python_versions": ["3.12"], "platforms": ["manylinux_2_28_x86_64"]}))
    # the one error names nowheel, and what its newest release has instead
    why = {"candidates": "no release of nowheel satisfies nowheel and installs there (from projects[2])",
           "pinned": "cannot satisfy nowheel (from projects[2])"}[mode]
    assert result.failures == [f"target 3.12/manylinux_2_28_x86_64: {why}; nowheel 1.0, the newest it allows, "
                               f"has wheels only for win_amd64; to mirror it for Windows only, write it with a "
                               f"marker: 'nowheel; sys_platform == \"win32\"'"]
    assert not any("cannot be installed together" in w for w in result.warnings), result.warnings
    assert "lib-1.0-py3-none-any.whl" in published(mirror_dir)
    downloaded = pip_download(mirror_dir, tmp_path / "dl", "alpha", "beta")
    assert downloaded.returncode == 0, downloaded.stderr
    assert sorted(os.listdir(tmp_path / "dl")) == ["alpha-1.0-py3-none-any.whl", "beta-1.0-py3-none-any.whl",
                                                   "lib-1.0-py3-none-any.whl"]
    # the marker the error suggests is the fix
    with serve_upstream(catalog) as running:
        fixed = sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "dependencies": True, "resolution": mode,
            "projects": ["alpha", "beta", 'nowheel; sys_platform == "win32"'], "latest": 1,
            "package_types": ["wheel"], "python_versions": ["3.12"],
            "platforms": ["manylinux_2_28_x86_64", "win_amd64"]}))
    assert fixed.ok, fixed.failures
    assert "nowheel-1.0-cp312-cp312-win_amd64.whl" in published(mirror_dir)


@pytest.mark.parametrize("mode", ["candidates", "pinned"])
def test_a_release_left_out_by_max_file_size_is_named_as_such(tmp_path, mirror_dir, sync, mode):
    """big's Linux wheel is over max_file_size, its macOS one is not: the error must not send the operator
    after the platform, as "has wheels only for macosx_14_0_arm64" would."""
    catalog = Catalog(str(tmp_path / "sizes"))
    catalog.add_wheel("big", "1.0", "cp312-cp312-manylinux_2_17_x86_64", padding=50_000)
    catalog.add_wheel("big", "1.0", "cp312-cp312-macosx_14_0_arm64")
    with serve_upstream(catalog) as running:
        result = sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "projects": ["big"], "dependencies": True,
            "resolution": mode, "max_file_size": "20K", "python_versions": ["3.12"],
            "platforms": ["manylinux_2_28_x86_64", "macosx_14_0_arm64"]}))
    assert len(result.failures) == 1, result.failures
    assert result.failures[0].startswith("target 3.12/manylinux_2_28_x86_64: ")
    assert result.failures[0].endswith("; big 1.0, the newest it allows, has files that install there only over "
                                       "max_file_size")
    assert published(mirror_dir) == {"big-1.0-cp312-cp312-macosx_14_0_arm64.whl"}


@pytest.mark.parametrize("mode", ["candidates", "pinned"])
def test_an_older_release_with_a_wheel_is_kept_beside_a_newer_sdist_only_one(tmp_path, mirror_dir, sync, mode):
    """ext 2.0 came without a wheel (greenlet 3.2.5 had none for Windows): pip picks its sdist, which needs a
    compiler, and the way round, `pip install --prefer-binary` or `--only-binary :all:`, installs ext 1.0.
    The mirror holds both, so the way round works from it as it does online."""
    catalog = Catalog(str(tmp_path / "binary"))
    catalog.add_wheel("app", "1.0", requires_dist=["ext>=1"])
    catalog.add_wheel("ext", "1.0", "cp312-cp312-manylinux_2_28_x86_64")
    catalog.add_sdist("ext", "1.0")
    catalog.add_sdist("ext", "2.0")
    with serve_upstream(catalog) as running:
        result = sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "projects": ["app"], "dependencies": True,
            "resolution": mode, "latest": 1, "python_versions": ["3.12"], "platforms": ["manylinux_2_28_x86_64"]}))
    assert result.ok, result.failures
    assert published(mirror_dir) == {"app-1.0-py3-none-any.whl", "ext-2.0.tar.gz", "ext-1.0.tar.gz",
                                     "ext-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"}
    assert [p["by"] for p in result.plan["pulls"]["ext"]["1.0"]] == ["app 1.0, a wheel preferred"]
    assert [p["by"] for p in result.plan["pulls"]["app"]["1.0"]] == ["projects[0]"]  # the same pick, told once
    downloaded = pip_download(mirror_dir, tmp_path / "dl", "app")  # --only-binary :all:
    assert downloaded.returncode == 0, downloaded.stderr
    assert sorted(os.listdir(tmp_path / "dl")) == ["app-1.0-py3-none-any.whl",
                                                   "ext-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"]


@pytest.mark.parametrize("mode", ["candidates", "pinned"])
def test_a_dependency_that_every_release_pins_is_one_short_clause(tmp_path, mirror_dir, sync, mode):
    """Each release of app pins its own binlib, built for Windows only. The resolver gives up on all of
    them: the error names the newest one and counts the rest (psycopg[binary] on a free-threaded Python made a
    line of 16,755 characters), and leaves out the markers, which hold on the target."""
    catalog = Catalog(str(tmp_path / "pins"))
    for version in ("1.0", "2.0", "3.0"):
        catalog.add_wheel("app", version, requires_dist=[f'binlib=={version}; python_version >= "3"'])
        catalog.add_wheel("binlib", version, "cp312-cp312-win_amd64")
    with serve_upstream(catalog) as running:
        result = sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "projects": ["app"], "dependencies": True,
            "resolution": mode, "package_types": ["wheel"], "python_versions": ["3.12"],
            "platforms": ["manylinux_2_28_x86_64"]}))
    why = {"candidates": "no release of app satisfies app and installs there with what it needs (from "
                         "projects[0]): app 3.0 needs binlib==3.0, and no release of it installs there",
           "pinned": "cannot satisfy binlib==3.0 (from app 3.0)"}[mode]
    likewise = {"candidates": "", "pinned": "; likewise 2 more requirements on binlib (from app)"}[mode]
    assert result.failures == [f"target 3.12/manylinux_2_28_x86_64: {why}; binlib 3.0, the newest it allows, "
                               f"has wheels only for win_amd64{likewise}"]


def test_a_release_asked_for_with_extras_is_narrowed_by_what_is_asked_of_the_project(tmp_path, mirror_dir, sync):
    """worker 2.0 needs broker>=2.0 and broker[fast]; broker 2.0[fast] needs speedlib>=6, which speedlib<6 rules
    out. pip then backtracks worker at once, since broker[fast] is broker at the version broker>=2.0 allows.
    Trying broker[fast] at each of broker's older releases instead read the metadata of every one of them
    (celery[redis] with redis<6 read kombu's back to 0.1.0, with a warning for each)."""
    catalog = Catalog(str(tmp_path / "extras"))
    catalog.add_wheel("worker", "1.0", requires_dist=["broker>=1.0,<2", 'broker[fast]; extra == "fast"'])
    catalog.add_wheel("worker", "2.0", requires_dist=["broker>=2.0", 'broker[fast]; extra == "fast"'])
    old_brokers = [f"1.{minor}" for minor in range(10)]
    for version in old_brokers:
        catalog.add_wheel("broker", version, requires_dist=['speedlib>=5; extra == "fast"'])
    catalog.add_wheel("broker", "2.0", requires_dist=['speedlib>=6; extra == "fast"'])
    catalog.add_wheel("speedlib", "5.0")
    catalog.add_wheel("speedlib", "6.0")
    with serve_upstream(catalog) as running:
        result = sync(build_config({
            "upstream": running.url, "directory": mirror_dir, "projects": ["worker[fast]", "speedlib<6"],
            "dependencies": True, "resolution": "pinned", "package_types": ["wheel"], "python_versions": ["3.12"],
            "platforms": ["manylinux_2_28_x86_64"]}))
        metadata_read = {path.rsplit("/", 1)[-1] for method, path in running.server.requests
                         if method == "GET" and path.endswith(".whl.metadata") and "/broker-" in path}
    assert result.ok, result.failures
    assert published(mirror_dir) == {"worker-1.0-py3-none-any.whl", "broker-1.9-py3-none-any.whl",
                                     "speedlib-5.0-py3-none-any.whl"}
    assert metadata_read <= {"broker-2.0-py3-none-any.whl.metadata", "broker-1.9-py3-none-any.whl.metadata"}, (
        sorted(metadata_read))


def test_unknown_dependencies_are_told_only_of_releases_kept(tmp_path, mirror_dir, sync):
    """app 2.0 needs a dep built for Windows only, and odd, an sdist that does not declare its dependencies.
    On Linux app 2.0 is passed over, so odd is not mirrored: a warning telling to list what odd needs would
    send the operator after nothing."""
    catalog = Catalog(str(tmp_path / "unknown"))
    catalog.add_wheel("app", "1.0", requires_dist=["dep==1.0"])
    catalog.add_wheel("app", "2.0", requires_dist=["dep==2.0", "odd"])
    catalog.add_wheel("dep", "1.0")
    catalog.add_wheel("dep", "2.0", "cp312-cp312-win_amd64")
    catalog.add_sdist("odd", "1.0", metadata_version="2.1")
    base = {"directory": mirror_dir, "projects": ["app"], "dependencies": True, "python_versions": ["3.12"]}
    with serve_upstream(catalog) as running:
        linux = sync(build_config({**base, "upstream": running.url, "platforms": ["manylinux_2_28_x86_64"]}))
        assert linux.ok, linux.failures
        assert not [w for w in linux.warnings if "odd" in w], linux.warnings
        assert published(mirror_dir) == {"app-1.0-py3-none-any.whl", "dep-1.0-py3-none-any.whl"}
        windows = sync(build_config({**base, "upstream": running.url, "platforms": ["win_amd64"]}))
    assert windows.ok, windows.failures
    assert [w for w in windows.warnings if "odd" in w] == [
        "odd 1.0: dependencies unknown, an sdist whose metadata does not declare them statically: Metadata-Version "
        "below 2.2 or Requires-Dist dynamic, and the mirror never builds packages; list what it needs in projects"]


def test_unknown_dependencies_are_told_once_per_project(tmp_path, mirror_dir, sync):
    """Every release of an old project can be an sdist without static metadata: one warning names them all,
    where one per release made 117 lines for cryptography, numpy and pydantic without `latest`."""
    catalog = Catalog(str(tmp_path / "old"))
    versions = ["0.9", "0.10", "1.0", "1.1", "1.2", "1.3", "2.0"]
    for version in versions:
        catalog.add_sdist("old", version, metadata_version="2.1")
    with serve_upstream(catalog) as running:
        result = sync(build_config({"upstream": running.url, "directory": mirror_dir, "projects": ["old"],
                                    "dependencies": True, "python_versions": ["3.12"],
                                    "platforms": ["manylinux_2_28_x86_64"]}))
    assert result.ok, result.failures
    assert result.warnings == [
        "old 0.9, 0.10, 1.0, 1.1, 1.2 and 2 more: dependencies unknown, an sdist whose metadata does not declare "
        "them statically: Metadata-Version below 2.2 or Requires-Dist dynamic, and the mirror never builds "
        "packages; list what they need in projects"]
    assert len(published(mirror_dir)) == len(versions)


@pytest.mark.parametrize("ranges", [True, False])
def test_a_large_wheel_without_a_metadata_file_is_read_with_range_requests(tmp_path, mirror_dir, sync, ranges):
    """An index without PEP 658 files (devpi, Artifactory, some proxies) left the resolver downloading every
    large wheel it looked at, even in check mode: 40 s and gigabytes to plan tensorflow and torch. Its
    METADATA is read with a few range requests instead; a server that ignores ranges gets the old way."""
    catalog = Catalog(str(tmp_path / "large"))
    big = catalog.add_wheel("bigapp", "1.0", "cp312-cp312-manylinux_2_17_x86_64", requires_dist=["helper>=1"],
                            padding=3 << 20, with_metadata=False)
    big_helper = catalog.add_wheel("helper", "1.0", padding=2 << 20, with_metadata=False)
    with serve_upstream(catalog) as running:
        running.server.faults.no_ranges = not ranges
        config = build_config({
            "upstream": running.url, "directory": mirror_dir, "projects": ["bigapp"], "dependencies": True,
            "python_versions": ["3.12"], "platforms": ["manylinux_2_28_x86_64"]})
        result = sync(config, check_mode=True)
        reads = {wheel.filename: [headers.get("Range") for (method, path), headers
                                  in zip(running.server.requests, running.server.request_headers)
                                  if method == "GET" and path.endswith("/" + wheel.filename)]
                 for wheel in (big, big_helper)}
        assert not os.path.exists(mirror_dir)
        published_run = sync(config)  # then the wheel itself, verified against its sha256
    assert result.ok, result.failures
    assert sorted(result.added) == ["bigapp-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
                                    "helper-1.0-py3-none-any.whl"]
    if ranges:  # the central directory at the end, then the METADATA member: never the whole file
        assert all(read and all(read) and len(read) <= 3 for read in reads.values()), reads
    else:  # read whole, as before; once refused, ranges are not asked of that server again
        assert [read[-1] for read in reads.values()] == [None, None], reads
        assert sum(1 for read in reads.values() for header in read if header) == 1, reads
    assert published_run.ok, published_run.failures
    assert published(mirror_dir) == set(result.added)
