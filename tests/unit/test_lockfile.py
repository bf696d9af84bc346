"""PEP 751 lock files (pylock.toml) in requirements_files: what an installer takes from an index, as locked."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_select import choose_for

from localpypi_sync.config import ConfigError, build_config
from localpypi_sync.lockfile import read_lock_file

LOCK = """\
lock-version = "1.0"
created-by = "hand"
extras = ["cli"]
dependency-groups = ["dev"]

[[packages]]
name = "alpha"
version = "1.1"
marker = "sys_platform == 'linux'"
wheels = [{ url = "https://example.invalid/alpha-1.1-py3-none-any.whl", hashes = { sha256 = "00" } }]

[[packages]]
name = "gamma"
marker = "'dev' in dependency_groups and python_version >= '3.8'"
wheels = [{ url = "https://example.invalid/gamma-1.0-py3-none-any.whl", hashes = { sha256 = "00" } }]

[[packages]]
name = "app"
directory = { path = "." }

[[packages]]
name = "tool"
version = "0.1"
vcs = { type = "git", url = "https://example.invalid/tool.git", commit-id = "0123abcd" }
"""


def write(path, text):
    path.write_text(text)
    return str(path)


def clean_env():
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("PIP_", "UV_")) and key not in ("HTTP_PROXY", "HTTPS_PROXY")}


def test_a_lock_gives_each_package_from_an_index_at_its_version(tmp_path):
    """A version the lock leaves out comes from a file's name; a marker that asks for an extra or a group is
    dropped (a mirror serves them all); a directory needs nothing mirrored; a VCS checkout is noted."""
    lock = write(tmp_path / "pylock.toml", LOCK)
    found = read_lock_file(lock)
    assert [str(line.requirement) for line in found.requirements] == [
        'alpha==1.1; sys_platform == "linux"', "gamma==1.0"]
    assert found.requirements[0].origin == f"{lock}:packages[0]"
    assert found.requirements[0].file_hashes == (("alpha-1.1-py3-none-any.whl", frozenset({"sha256:00"})),)
    assert found.notes == [f"{lock}:packages[3]: tool comes from https://example.invalid/tool.git, not from an "
                           "index: not mirrored, and a client that installs this lock fetches it from there"]
    config = build_config({"upstream": "http://127.0.0.1:1/simple/", "directory": str(tmp_path / "m"),
                           "requirements_files": [lock]})
    assert [rule.name for rule in config.projects] == ["alpha", "gamma"]
    assert config.notes == tuple(found.notes)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("pylock.a.b.toml", LOCK, "is named pylock.toml or pylock.<name>.toml (PEP 751), with no dot in <name>"),
    ("pylock.toml", "lock-version = \n", "not TOML: "),
    ("pylock.toml", 'lock-version = "2.0"\ncreated-by = "x"\npackages = []\n',
     "not a lock file as PEP 751 defines one: pylock version 2.0 is not supported"),
    ("pylock.toml", 'lock-version = "1.0"\npackages = []\n', "not a lock file as PEP 751 defines one: "),
    ("pylock.toml", 'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "a"\nversion = "1"\n',
     "not a lock file as PEP 751 defines one: Exactly one of vcs, directory, archive must be set"),
])
def test_a_bad_lock_file_is_one_clear_line(tmp_path, name, text, message):
    lock = write(tmp_path / name, text)
    with pytest.raises(ConfigError) as caught:
        build_config({"upstream": "http://127.0.0.1:1/simple/", "directory": str(tmp_path / "m"),
                      "requirements_files": [lock]})
    assert str(caught.value).startswith(f"requirements_files: {lock}: ")
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("locker", ["uv", "pip"])
def test_a_lock_that_uv_or_pip_wrote_is_mirrored_as_locked(make_config, sync, mirror_dir, upstream, tmp_path,
                                                           locker):
    """The lock comes from the real tool, against the fixture index: gamma, and alpha 2.0 that it needs. The
    mirror then holds those releases and no other, for the targets."""
    (tmp_path / "requirements.in").write_text("gamma\n")
    lock = tmp_path / "pylock.toml"
    command = ([sys.executable, "-m", "uv", "pip", "compile", "--no-config", "--no-cache", "--universal",
                "--format", "pylock.toml"] if locker == "uv" else
               [sys.executable, "-m", "pip", "lock", "--isolated", "--no-cache-dir", "--disable-pip-version-check"])
    source = str(tmp_path / "requirements.in")
    subprocess.run([*command, "--index-url", upstream.url, *(["-r", source] if locker == "pip" else [source]),
                    "-o", str(lock)],
                   check=True, capture_output=True, text=True, env=clean_env(), timeout=300, cwd=tmp_path)
    result = sync(make_config(projects=[], requirements_files=[str(lock)], python_versions=["3.12"],
                              platforms=["manylinux_2_28_x86_64"]))
    assert result.ok and result.warnings == [], (result.failures, result.warnings)
    simple = os.path.join(mirror_dir, "web", "simple")
    assert sorted(entry for entry in os.listdir(simple) if not entry.startswith("index")) == ["alpha", "gamma"]
    assert sorted(result.added) == ["alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz", "gamma-1.0-py3-none-any.whl"]


SCOPED = """\
lock-version = "1.0"
created-by = "hand"
requires-python = ">=3.12"
environments = ["sys_platform == 'linux'", "sys_platform == 'darwin'"]

[[packages]]
name = "alpha"
version = "2.0"
wheels = [{ url = "https://example.invalid/alpha-2.0-py3-none-any.whl", hashes = { sha256 = "00" } }]

[[packages]]
name = "gamma"
version = "1.0"
marker = "platform_machine == 'x86_64'"
wheels = [{ url = "https://example.invalid/gamma-1.0-py3-none-any.whl", hashes = { sha256 = "00" } }]
"""


def test_a_lock_applies_only_where_it_installs(tmp_path):
    """A client refuses a lock outside its requires-python and environments: each package's marker says so."""
    found = read_lock_file(write(tmp_path / "pylock.toml", SCOPED))
    scope = 'python_full_version >= "3.12" and (sys_platform == "linux" or sys_platform == "darwin")'
    assert [str(line.requirement.marker) for line in found.requirements] == [
        scope, f'({scope}) and platform_machine == "x86_64"']
    assert [(path, str(marker)) for path, marker in found.scopes] == [(str(tmp_path / "pylock.toml"), scope)]


def test_a_lock_takes_files_only_for_the_targets_it_installs_on(tmp_path):
    """A lock for 3.12 in a mirror for 3.11 and 3.12: the cp311 wheel of alpha 2.0 is for no client that can
    install from the lock, so it is not taken. Before, a marker that held on one target took files for all."""
    lock = write(tmp_path / "pylock.toml", SCOPED)
    files = ["alpha-2.0-cp311-cp311-manylinux_2_17_x86_64.whl", "alpha-2.0-cp312-cp312-manylinux_2_17_x86_64.whl",
             "alpha-2.0-cp312-cp312-win_amd64.whl", "alpha-2.0.tar.gz"]
    chosen, selection = choose_for(files, projects=[], requirements_files=[lock], python_versions=["3.11", "3.12"],
                                   platforms=["manylinux_2_28_x86_64", "win_amd64"])
    assert chosen == ["alpha-2.0-cp312-cp312-manylinux_2_17_x86_64.whl", "alpha-2.0.tar.gz"]
    assert selection.uncovered == []


@pytest.mark.parametrize(("python_versions", "platforms", "told"), [
    (["3.12"], ["manylinux_2_28_x86_64", "macosx_11_0_arm64"], None),
    (["3.11", "3.12"], ["manylinux_2_28_x86_64", "win_amd64"],
     "does not hold on 3.11/manylinux_2_28_x86_64, 3.11/win_amd64, 3.12/win_amd64: a client there cannot install "
     "from it"),
    (["3.11"], ["win_amd64"],
     "holds on none of the targets (python_versions x platforms): nothing of it is mirrored"),
])
def test_a_lock_for_other_targets_is_told(make_config, sync, tmp_path, python_versions, platforms, told):
    """Not told, a lock for Python 3.12 in a mirror for 3.11 would leave it empty and say nothing: a marker that
    holds on no target asks for nothing, and gets no "no file matches" warning either."""
    lock = write(tmp_path / "pylock.toml", SCOPED)
    result = sync(make_config(projects=[], requirements_files=[lock], python_versions=python_versions,
                              platforms=platforms))
    assert result.ok, result.failures
    prefix = f"{lock}: the lock installs only where python_full_version >= \"3.12\" and "
    told_now = [warning for warning in result.warnings if warning.startswith(prefix)]
    assert len(told_now) == (told is not None), result.warnings
    if told:
        assert told_now[0].endswith(f"(its requires-python and environments), which {told}"), told_now
    assert bool(result.added) is (told is None or "none of the targets" not in told), result.added


def test_a_release_locked_from_another_index_is_told_where_it_came_from(make_config, sync, upstream, tmp_path):
    """A +cpu build from PyTorch's own index has no file on the upstream: the warning says where the lock took it
    from, where "check its specifiers" alone would send the operator through the config. A package the lock
    took from the upstream itself gets no such hint."""
    def package(version, index):
        return (f'[[packages]]\nname = "alpha"\nversion = "{version}"\nindex = "{index}"\nwheels = [{{ url = '
                f'"{index.rstrip("/")}/alpha-{version}-py3-none-any.whl", hashes = {{ sha256 = "00" }} }}]\n')

    lock = write(tmp_path / "pylock.toml", 'lock-version = "1.0"\ncreated-by = "hand"\n\n'
                 + package("9.9+cpu", "https://example.invalid/whl/cpu/"))
    result = sync(make_config(projects=[], requirements_files=[lock]))
    assert result.warnings == [
        "project alpha: no file matches the config; clients will find none (check its specifiers, package_types, "
        "python_versions and platforms; the lock took it from https://example.invalid/whl/cpu/, not from the "
        "upstream: a release only there cannot be mirrored from here)"]
    write(tmp_path / "pylock.toml", 'lock-version = "1.0"\ncreated-by = "hand"\n\n'
          + package("9.9", upstream.url.rstrip("/")))
    result = sync(make_config(projects=[], requirements_files=[lock]))
    assert result.warnings == [
        "project alpha: no file matches the config; clients will find none (check its specifiers, package_types, "
        "python_versions and platforms)"]
