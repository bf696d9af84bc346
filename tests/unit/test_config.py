"""The one schema: validation errors are one clear line, and every front derives from it."""

from __future__ import annotations

import base64
import datetime
import re

import pytest
from pip._internal.models.index import PyPI

from localpypi_sync.config import ConfigError, build_config, load_config_file, parse_size
from localpypi_sync.schema import OPTIONS, argument_spec
from localpypi_sync.timespec import upload_seconds


def base(**extra):
    raw = {"upstream": "http://127.0.0.1:1/simple/", "directory": "/tmp/x", "projects": ["alpha"]}
    raw.update(extra)
    return raw


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"colour": "blue"}, "unknown option 'colour'"),
        ({"projects": ["requests>>2"]}, "projects[0]: invalid requirement 'requests>>2'"),
        # markers pip cannot evaluate: told here, and not as an internal error on every target of a run
        ({"projects": ["alpha; 'dev' in dependency_groups"]},
         "projects[0]: \"alpha; 'dev' in dependency_groups\": its marker asks for 'dependency_groups', which only "
         "a lock file's packages may (PEP 751)"),
        ({"projects": ["alpha; python_version ~= '3'"]}, "projects[0]: \"alpha; python_version ~= '3'\": its "
                                                          "marker has a comparison that cannot be evaluated"),
        ({"projects": []}, "projects: empty"),
        ({"platforms": ["manylinux_x86"]}, "platforms: 'manylinux_x86' is not a platform tag"),
        ({"platforms": ["ios_13_0_arm64"]}, "platforms: 'ios_13_0_arm64' is not a platform tag"),  # no SDK
        ({"platforms": ["pyemscripten_2026_0_wasm64"]}, "platforms: 'pyemscripten_2026_0_wasm64' is not a"),
        ({"python_versions": ["3"]}, "python_versions: '3' must name a Python 3 minor version"),
        ({"targets": ["3.12"]}, "targets[0]: '3.12' is not a pair such as 3.12/manylinux_2_28_x86_64"),
        ({"targets": ["3.12/win_amd64", "3.1/win_amd64"]}, "targets[1]: '3.1' would be Python 3.1, older than any "
                                                           "wheel"),
        ({"targets": ["3.12/windows"]}, "targets[0]: 'windows' is not a platform tag"),
        ({"targets": ["3.12/win_amd64"], "python_versions": ["3.12"], "dependencies": True},
         "dependencies: set python_versions and platforms, or name every python/platform pair in targets"),
        # YAML (and so Ansible) reads an unquoted 3.10 as 3.1: as a number here, turned into '3.1' by Ansible
        ({"python_versions": ["3.9", 3.10]}, "python_versions[1]: got the number 3.1; write it quoted"),
        ({"python_versions": ["3.1"]}, "python_versions: '3.1' would be Python 3.1, older than any wheel; for "
                                       "3.10 write '3.10' quoted"),
        ({"python_versions": ["3.11rc1"]}, "python_versions: '3.11rc1' must name a Python 3 minor version"),
        ({"python_versions": ["3.12t"]}, "python_versions: '3.12t': free-threaded CPython starts at 3.13"),
        ({"python_versions": ["3.14td"]}, "python_versions: '3.14td' is not a version such as 3.11 or 3.14t"),
        ({"package_types": ["egg"]}, "package_types: 'egg' is not one of sdist, wheel"),
        ({"workers": 0}, "workers: must be at least 1"),
        ({"prune": "yes"}, "prune: expected true or false"),
        ({"max_file_size": "lots"}, "max_file_size: expected a size"),
        ({"upstream": "ftp://x/simple"}, "upstream: 'ftp://x/simple' is not an http(s) or file:// URL"),
        ({"projects": ["x @ https://example.invalid/x.whl"]}, "direct URL references cannot be mirrored"),
        ({"exclude_newer": "last week"}, "exclude_newer: 'last week' is neither a date (2026-06-01), a time "
                                         "(2026-06-01T12:00:00Z) nor an age (7d, 36h, 7 days, P1W)"),
        ({"exclude_newer": 2026}, "exclude_newer: '2026' is neither"),  # a year is no age in seconds
        ({"exclude_newer": "1 month"}, "exclude_newer: '1 month' counts in months or years, which have no fixed "
                                       "length: write days (30d)"),
        ({"exclude_newer": "P1Y"}, "exclude_newer: 'P1Y' counts in months or years"),
        ({"exclude_newer": "2 fortnights"}, "exclude_newer: '2 fortnights' is not a duration: 'fortnights' is no "
                                            "unit"),
    ],
)
def test_bad_config_is_one_clear_line(extra, message):
    with pytest.raises(ConfigError) as caught:
        build_config(base(**extra))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_targets_keep_each_pair_once_and_none_the_product_covers():
    """A pair the product serves already (either of its parts empty counting as any) is no target of its own,
    which would only repeat its warnings."""
    def pairs(**extra):
        return [f"{python}/{platform}" for python, platform in build_config(base(**extra)).targets]

    wanted = ["3.12/win_amd64", "3.13/win_amd64", "3.12/manylinux_2_28_x86_64"]
    assert pairs(targets=[*wanted, "3.12/win_amd64"]) == wanted
    assert pairs(targets=wanted, python_versions=["3.12"]) == ["3.13/win_amd64"]
    assert pairs(targets=wanted, platforms=["win_amd64"]) == ["3.12/manylinux_2_28_x86_64"]
    assert pairs(targets=wanted, python_versions=["3.12"], platforms=["win_amd64"]) == [
        "3.13/win_amd64", "3.12/manylinux_2_28_x86_64"]


def test_a_login_in_a_url_is_split_off_and_never_shown():
    config = build_config(base(upstream="https://me:t%40k3n@Index.Internal:8443/simple",
                               proxy="http://prx:s3cr3t@proxy.internal:3128"))
    assert config.upstream == "https://Index.Internal:8443/simple/" and config.proxy == "http://proxy.internal:3128"
    assert config.upstream_credentials.origin == ("https", "index.internal", 8443)
    assert config.upstream_credentials.basic() == "Basic " + base64.b64encode(b"me:t@k3n").decode()
    assert config.proxy_credentials.basic() == "Basic " + base64.b64encode(b"prx:s3cr3t").decode()
    assert not {"k3n", "s3cr3t"} & {word for word in re.split(r"\W+", repr(config) + repr(config.raw))}
    # a new login is not a new selection: nothing is re-evaluated when a token is rotated
    rotated = build_config(base(upstream="https://me:other@Index.Internal:8443/simple"))
    anonymous = build_config(base(upstream=config.upstream))
    assert rotated.selection_fingerprint(None) == anonymous.selection_fingerprint(None)
    with pytest.raises(ConfigError) as caught:
        build_config(base(upstream="ftp://me:s3cr3t@index.internal/simple"))
    assert "s3cr3t" not in str(caught.value) and "'ftp://***@index.internal/simple'" in str(caught.value)


def test_old_but_real_pythons_are_targets():
    assert [str(v) for v in build_config(base(python_versions=["3.6", "3.10"])).python_versions] == ["3.6", "3.10"]


def test_free_threaded_pythons_are_targets_of_their_own():
    pythons = build_config(base(python_versions=["3.14", "3.14t", "3.13T"])).python_versions
    assert [str(p) for p in pythons] == ["3.14", "3.14t", "3.13t"]
    assert [(p.major, p.minor, p.free_threaded) for p in pythons] == [(3, 14, False), (3, 14, True), (3, 13, True)]


def test_defaults_and_normalisation():
    config = build_config(base(projects=["Foo_Bar>=1", "foo.bar<3", "*"], exclude=["Bad_Pkg", "test-*"]))
    assert [rule.name for rule in config.projects] == ["foo-bar"]
    assert len(config.projects[0].requirements) == 2
    assert config.mirror_all
    assert config.is_excluded("bad-pkg") and config.is_excluded("test-thing") and not config.is_excluded("good")
    assert config.package_types == {"sdist", "wheel"}
    assert config.workers == 8 and config.retries == 3 and not config.prune


def test_default_upstream_is_pips_own_default():
    config = build_config({"directory": "/tmp/x", "projects": ["a"]})
    assert config.upstream == PyPI.simple_url.rstrip("/") + "/"


@pytest.mark.parametrize(("given", "moment", "age"), [
    ("7d", None, 7 * 86400), ("36h", None, 36 * 3600), ("1d 12h", None, 36 * 3600),
    # as uv's --exclude-newer also takes them (checked against uv 0.13.9)
    ("7 days", None, 7 * 86400), ("1 week", None, 7 * 86400), ("2w", None, 14 * 86400),
    ("1 day 12 hours", None, 36 * 3600), ("90 mins", None, 5400), ("P7D", None, 7 * 86400),
    ("P1W", None, 7 * 86400), ("PT36H", None, 36 * 3600), ("P1DT12H", None, 36 * 3600),
    ("-7 days", None, 7 * 86400), ("7 days ago", None, 7 * 86400),
    ("2026-06-01", 1780272000, None), (datetime.date(2026, 6, 1), 1780272000, None),
    ("2026-06-01T12:00:00Z", 1780315200, None), ("2026-06-01T12:00:00", 1780315200, None),
    ("2026-06-01T14:00:00+02:00", 1780315200, None),
    (datetime.datetime(2026, 6, 1, 12, tzinfo=datetime.timezone.utc), 1780315200, None)])
def test_exclude_newer_takes_a_date_a_time_or_an_age(given, moment, age):
    """A time without a zone is UTC, as PEP 700's upload times are; YAML hands over an unquoted date as one."""
    cutoff = build_config(base(exclude_newer=given)).exclude_newer
    assert (cutoff.moment, cutoff.age) == (moment, age)
    assert cutoff.at(1780315200 + 86400) == (moment if moment is not None else 1780315200 + 86400 - age)


def test_exclude_newer_except_lets_the_named_projects_through_the_cooldown():
    config = build_config(base(exclude_newer="7d", exclude_newer_except=["Urllib3", "acme-*"])).at_start(1780315200)
    assert config.cutoff_for("alpha") == 1780315200 - 7 * 86400
    assert config.cutoff_for("urllib3") is None and config.cutoff_for("acme-tools") is None
    assert config.notes == ()
    alone = build_config(base(exclude_newer_except=["urllib3"]))
    assert alone.notes == ("exclude_newer_except: without exclude_newer, nothing is held back to except from",)


@pytest.mark.parametrize(("upload_time", "seconds"), [
    ("2026-06-01T12:00:00.000000Z", 1780315200), ("2026-06-01T12:00:00Z", 1780315200),
    ("2026-06-01T12:00:00.123Z", 1780315200), ("2026-06-01T14:00:00+02:00", 1780315200),
    ("2026-06-01T12:00:00", 1780315200), ("2026-06-01", None), ("yesterday", None), (None, None), (5, None),
    ("2026-13-01T12:00:00Z", None)])
def test_upload_times_are_read_as_pep_700_gives_them(upload_time, seconds):
    assert upload_seconds(upload_time) == seconds


def test_sizes():
    assert parse_size("500M") == 500 * 1024**2
    assert parse_size("2GiB") == 2 * 1024**3
    assert parse_size(1000) == 1000
    assert parse_size(None) is None


def test_fingerprint_moves_with_selection_but_not_with_workers():
    one = build_config(base())
    assert one.selection_fingerprint(one.projects[0]) == build_config(base(workers=3)).selection_fingerprint(
        one.projects[0])
    wider = build_config(base(projects=["alpha>=1"]))
    assert one.selection_fingerprint(one.projects[0]) != wider.selection_fingerprint(wider.projects[0])
    assert one.selection_fingerprint(one.projects[0]) != build_config(base(platforms=["win_amd64"])) \
        .selection_fingerprint(one.projects[0])


def test_yaml_file_relative_directory_and_errors(tmp_path):
    good = tmp_path / "sync.yml"
    good.write_text("upstream: http://127.0.0.1:1/simple/\ndirectory: data\nprojects: [alpha]\n")
    assert load_config_file(str(good)).directory == str(tmp_path / "data")
    bad = tmp_path / "bad.yml"
    bad.write_text("projects: [alpha\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config_file(str(bad))
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config_file(str(tmp_path / "missing.yml"))


def test_argument_spec_covers_every_option():
    spec = argument_spec()
    assert list(spec) == [option.name for option in OPTIONS]
    assert spec["directory"] == {"type": "path", "required": True}
    assert spec["package_types"] == {"type": "list", "elements": "str", "default": ["sdist", "wheel"],
                                     "choices": ["sdist", "wheel"]}
    assert spec["max_file_size"]["type"] == "raw"
