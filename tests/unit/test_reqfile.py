"""pip requirements files as the config reads them: nesting, comments, continuations, constraints, refusals."""

from __future__ import annotations

import pytest

from localpypi_sync.config import ConfigError, build_config
from localpypi_sync.reqfile import RequirementsFileError, read_requirements


def write(path, text):
    path.write_text(text)
    return str(path)


def test_nesting_comments_continuations_markers_extras_and_constraints(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_MIN", "2.31")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "base.txt", "idna  # nested, relative to this file\n-c pins.txt\n")
    write(tmp_path / "sub" / "pins.txt", "idna<4\n-r more-pins.txt\n")
    write(tmp_path / "sub" / "more-pins.txt", "urllib3<3\n")
    top = write(tmp_path / "requirements.txt",
                "# the lab's set\n"
                "-r sub/base.txt\n"
                "requests[socks]>=${LAB_MIN} \\\n"
                "    ; python_version >= '3.9'\n"
                "numpy==2.1.0 --hash=sha256:0123456789abcdef\n"
                "\n"
                "--index-url https://elsewhere.invalid/simple/\n"
                "--pre\n")
    found = read_requirements(top)
    by_name = {line.requirement.name: line for line in found.requirements}
    assert sorted(by_name) == ["idna", "numpy", "requests"]
    requests = by_name["requests"].requirement
    assert str(requests.specifier) == ">=2.31" and requests.extras == {"socks"}
    assert str(requests.marker) == 'python_version >= "3.9"'
    assert by_name["requests"].origin.endswith("requirements.txt:3")
    assert by_name["idna"].origin.endswith("base.txt:1")
    assert str(by_name["numpy"].requirement) == "numpy==2.1.0"
    # a file nested in a constraints file is constraints too, as pip reads it
    assert sorted(str(c.requirement) for c in found.constraints) == ["idna<4", "urllib3<3"]
    assert [note.split(": ")[1] for note in found.notes] == ["--index-url ignored", "--pre ignored"]


@pytest.mark.parametrize(("text", "message"), [
    ("-e git+https://example.invalid/x.git#egg=x\n", "editable requirements"),
    ("https://example.invalid/pkg-1.0.tar.gz\n", "is a URL"),
    ("./local/pkg\n", "local path or archive"),
    ("pkg @ https://example.invalid/pkg.whl\n", "direct URL reference"),
    ("requests>=>2\n", "invalid requirement"),
    ("--frobnicate\n", "unknown option --frobnicate"),
    ("-r missing.txt\n", "cannot read requirements file"),
    ("pkg==1 --hash=md5:00ff\n", "--hash=md5:00ff: expected <algorithm>:<hex digest>, with one of the algorithms "
                                 "pip takes (sha256, sha384, sha512)"),
    ("pkg==1 --hash=sha256:not-hex\n", "--hash=sha256:not-hex: expected <algorithm>:<hex digest>"),
    ("pkg ; 'x' in extras\n", "its marker asks for 'extras', which only a lock file's packages may (PEP 751)"),
    # constraints too: c.txt holds `pkg; python_version ~= '3'`
    ("-c c.txt\n", "its marker has a comparison that cannot be evaluated"),
])
def test_lines_that_cannot_be_mirrored_are_refused_with_file_and_line(tmp_path, text, message):
    path = write(tmp_path / "r.txt", "fine\n" + text)
    write(tmp_path / "c.txt", "pkg ; python_version ~= '3'\n")
    with pytest.raises(RequirementsFileError) as raised:
        read_requirements(path)
    assert message in str(raised.value)
    assert ("c.txt:1" if text.startswith("-c") else "r.txt:2") in str(raised.value)


def test_files_that_include_each_other_are_refused(tmp_path):
    write(tmp_path / "a.txt", "-r b.txt\n")
    write(tmp_path / "b.txt", "-r a.txt\n")
    with pytest.raises(RequirementsFileError, match=r"include each other \(a.txt -> b.txt -> a.txt\)"):
        read_requirements(str(tmp_path / "a.txt"))


def test_config_reads_files_relative_to_itself_and_merges_with_projects(tmp_path):
    write(tmp_path / "req.txt", "alpha>=1.1\nbeta\n")
    config = build_config({"directory": str(tmp_path / "m"), "upstream": "http://127.0.0.1:9/simple/",
                           "projects": ["alpha<2"], "requirements_files": ["req.txt"]},
                          base_dir=str(tmp_path))
    rules = {rule.name: rule for rule in config.projects}
    assert sorted(str(r) for r in rules["alpha"].requirements) == ["alpha<2", "alpha>=1.1"]
    assert rules["alpha"].origins[0].endswith("req.txt:1") and rules["alpha"].origins[1] == "projects[0]"
    assert "beta" in rules


def test_a_constraints_file_listed_as_requirements_too_is_told(tmp_path):
    """Listed beside the file that names it with -c (so that both are copied), a constraints file is also read
    as requirements, as pip would read `-r` of it: every project it pins is mirrored. A company's constraints
    for 500 projects then fill the mirror; the note says so."""
    write(tmp_path / "req.txt", "alpha\n-c constraints.txt\n")
    write(tmp_path / "constraints.txt", "alpha<2\nbeta==1.0\n")
    raw = {"directory": str(tmp_path / "m"), "upstream": "http://127.0.0.1:9/simple/"}
    config = build_config({**raw, "requirements_files": ["req.txt", "constraints.txt"]}, base_dir=str(tmp_path))
    assert [rule.name for rule in config.projects] == ["alpha", "beta"]
    assert config.notes == (
        f"requirements_files: constraints.txt is read as requirements, and {tmp_path / 'req.txt'}:2 names it as "
        f"constraints (-c): each project it pins is mirrored as if requested; list only the files of what is wanted "
        f"(a file that only has to be beside them: the sync role's sync_requirements_includes)",)
    alone = build_config({**raw, "requirements_files": ["req.txt"]}, base_dir=str(tmp_path))
    assert [rule.name for rule in alone.projects] == ["alpha"] and alone.notes == ()


def test_config_errors_name_the_requirements_file(tmp_path):
    write(tmp_path / "req.txt", "ok\n-e .\n")
    with pytest.raises(ConfigError, match=r"requirements_files: .*req.txt:2: editable .* Remove the line; `uv export "
                                          r"--no-emit-project` leaves a project's own line out$"):
        build_config({"directory": str(tmp_path / "m"), "upstream": "http://127.0.0.1:9/simple/",
                      "requirements_files": [str(tmp_path / "req.txt")]})


@pytest.mark.parametrize(("options", "message"), [
    ({"dependencies": True}, "set python_versions and platforms"),
    ({"dependencies": True, "projects": ["*"], "python_versions": ["3.11"], "platforms": ["win_amd64"]},
     "a full mirror"),
    ({"resolution": "greedy"}, "resolution: 'greedy' is not one of candidates, pinned"),
])
def test_dependency_options_are_checked(tmp_path, options, message):
    raw = {"directory": str(tmp_path / "m"), "upstream": "http://127.0.0.1:9/simple/", "projects": ["alpha"]}
    with pytest.raises(ConfigError, match=message):
        build_config({**raw, **options})
