"""PEP 751 lock files (pylock.toml) in requirements_files: what an installer takes from an index, as locked."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
