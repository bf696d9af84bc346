"""Hashes that requirements pin (pip's --hash, a lock's files), held against the ones the upstream index gives."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from localpypi_sync.config import build_config
from localpypi_sync.pinned import pin_disagreements
from localpypi_sync.reqfile import RequirementLine
from localpypi_sync.upstream import UpstreamFile

WHEEL = "alpha-2.0-py3-none-any.whl"
SDIST = "alpha-2.0.tar.gz"


def clean_env():
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("PIP_", "UV_")) and key not in ("HTTP_PROXY", "HTTPS_PROXY")}


def chosen(**hashes_by_file: dict[str, str]) -> dict[Version, list[UpstreamFile]]:
    names = {"wheel": WHEEL, "sdist": SDIST}
    return {Version("2.0"): [UpstreamFile(names[kind], f"../{names[kind]}", hashes)
                             for kind, hashes in hashes_by_file.items()]}


def pip_line(*hashes: str) -> RequirementLine:
    return RequirementLine(Requirement("alpha==2.0"), "req.txt:3", frozenset(hashes))


def lock_line(**hashes_by_file: frozenset[str]) -> RequirementLine:
    return RequirementLine(Requirement("alpha==2.0"), "pylock.toml:packages[0]",
                           file_hashes=tuple(hashes_by_file.items()))


@pytest.mark.parametrize(("line", "files", "warned"), [
    # pip's --hash: one file of the release with a listed hash is enough, as pip installs that one
    (pip_line("sha256:aa", "sha256:bb"), chosen(wheel={"sha256": "AA"}, sdist={"sha256": "cc"}), False),
    (pip_line("sha256:aa"), chosen(wheel={"sha256": "cc"}, sdist={"sha256": "dd"}), True),
    # no algorithm in common: nothing tells
    (pip_line("sha512:aa"), chosen(wheel={"sha256": "cc"}), False),
    # a line for another release
    (RequirementLine(Requirement("alpha==1.0"), "req.txt:3", frozenset({"sha256:aa"})),
     chosen(wheel={"sha256": "cc"}), False),
    # a lock names its files: a file it does not name (a wheel uploaded since) says nothing
    (lock_line(**{WHEEL: frozenset({"sha256:aa"})}), chosen(wheel={"sha256": "aa"}, sdist={"sha256": "cc"}), False),
    (lock_line(**{SDIST: frozenset({"sha256:aa"})}), chosen(wheel={"sha256": "aa"}, sdist={"sha256": "cc"}), True),
])
def test_a_pin_is_contradicted_only_by_a_hash_that_differs(line, files, warned):
    warnings = pin_disagreements("alpha", [line], files)
    assert bool(warnings) is warned, warnings
    assert all(warning.startswith(f"{line.origin}: ") and "\n" not in warning for warning in warnings)


def test_a_lock_names_the_files_whose_hash_differs():
    line = lock_line(**{WHEEL: frozenset({"sha256:aa"}), SDIST: frozenset({"sha256:bb"})})
    [warning] = pin_disagreements("alpha", [line], chosen(wheel={"sha256": "cc"}, sdist={"sha256": "bb"}))
    assert warning.startswith(f"pylock.toml:packages[0]: the upstream's hash of {WHEEL} differs from the lock's")


def test_pip_hashes_are_read_with_the_requirement(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("alpha==2.0 \\\n    --hash=sha256:AA \\\n    --hash sha512:bb\nbeta\n")
    config = build_config({"upstream": "http://127.0.0.1:1/simple/", "directory": str(tmp_path / "m"),
                           "requirements_files": [str(requirements)]})
    [pin] = config.hash_pins_for("alpha")
    assert pin.hashes == {"sha256:aa", "sha512:bb"} and pin.origin.endswith("requirements.txt:1")
    assert config.hash_pins_for("beta") == ()


def test_new_hashes_select_the_project_again(tmp_path):
    """Pins decide no file, but a project is looked at again when they change, so the check runs on them."""
    def fingerprint(text: str) -> str:
        (tmp_path / "requirements.txt").write_text(text)
        config = build_config({"upstream": "http://127.0.0.1:1/simple/", "directory": str(tmp_path / "m"),
                               "requirements_files": [str(tmp_path / "requirements.txt")]})
        return config.selection_fingerprint(config.rule_for("alpha"))

    assert fingerprint("alpha==2.0 --hash=sha256:aa\n") != fingerprint("alpha==2.0\n")
    assert fingerprint("alpha==2.0 --hash=sha256:aa\n") != fingerprint("alpha==2.0 --hash=sha256:bb\n")


@pytest.mark.parametrize("form", ["requirements.txt", "pylock.toml"])
@pytest.mark.parametrize("replaced", [False, True])
def test_hashes_uv_pinned_are_held_against_the_upstream(make_config, sync, upstream, catalog, tmp_path, form,
                                                        replaced):
    """uv pins gamma and alpha 2.0 with their hashes, against the fixture index. The upstream then rebuilds
    alpha 2.0 under the same names: the mirror takes the new files, verified against the index, and says which
    line's hashes they contradict, as a client that installs with the hashes refuses them. The lock names its
    files, so a rebuilt wheel is told; pip's --hash names none, and pip installs any file of the release whose
    hash is listed (the sdist, with only the wheel rebuilt), so there it takes a release rebuilt whole."""
    (tmp_path / "requirements.in").write_text("gamma\n")
    pinned = tmp_path / form
    options = ["--format", "pylock.toml"] if form == "pylock.toml" else ["--generate-hashes"]
    subprocess.run([sys.executable, "-m", "uv", "pip", "compile", "--no-config", "--no-cache", "--universal",
                    *options, "--index-url", upstream.url, str(tmp_path / "requirements.in"), "-o", str(pinned)],
                   check=True, capture_output=True, text=True, env=clean_env(), timeout=300, cwd=tmp_path)
    if replaced:
        catalog.remove_file(WHEEL)
        catalog.add_wheel("alpha", "2.0", padding=100)
        if form == "requirements.txt":
            catalog.remove_file(SDIST)
            catalog.add_sdist("alpha", "2.0", metadata_version="2.2")
    result = sync(make_config(projects=[], requirements_files=[str(pinned)], python_versions=["3.12"],
                              platforms=["manylinux_2_28_x86_64"]))
    assert result.ok, result.failures
    assert WHEEL in result.added
    if not replaced:
        assert result.warnings == []
        return
    [warning] = result.warnings
    if form == "pylock.toml":
        assert warning.startswith(f"{pinned}:packages[0]: the upstream's hash of {WHEEL} differs from the lock's")
    else:
        assert warning.startswith(f"{pinned}:")
        assert ("none of the 2 files the mirror takes of alpha==2.0 has a hash the line lists (--hash)"
                in warning), warning
