"""Selection: specifiers, pre-releases, yanked, types, target Pythons and platforms, latest N."""

from __future__ import annotations

import calendar
import dataclasses

import pytest
from packaging.requirements import Requirement

from localpypi_sync.config import build_config
from localpypi_sync.select import TargetMatrix, expand_platform, select_files, slots_asking
from localpypi_sync.upstream import UpstreamFile


def upstream_file(filename, **extra):
    return UpstreamFile(filename=filename, url=f"http://127.0.0.1/{filename}", hashes={"sha256": "a" * 64}, **extra)


def choose(filenames, project="beta", **options):
    raw = {"upstream": "http://127.0.0.1:1/simple/", "directory": "/tmp/x", "projects": [project]}
    raw.update(options)
    config = build_config(raw)
    files = [upstream_file(f) if isinstance(f, str) else f for f in filenames]
    rule = config.projects[0]
    selection = select_files(files, rule.name, rule, config, TargetMatrix.from_config(config))
    return sorted(f.filename for f in selection.chosen), selection


BETA = [
    "beta-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "beta-1.0-cp311-cp311-manylinux_2_34_x86_64.whl",
    "beta-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
    "beta-1.0-cp311-cp311-win_amd64.whl",
    "beta-1.0-cp311-cp311-macosx_10_9_universal2.whl",
    "beta-1.0-cp311-cp311-musllinux_1_2_x86_64.whl",
    "beta-1.0-cp39-abi3-manylinux2014_x86_64.whl",
    "beta-1.0-py3-none-any.whl",
    "beta-1.0.tar.gz",
]


def test_manylinux_target_keeps_older_glibc_tags_only():
    expanded = expand_platform("manylinux_2_28_x86_64")
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64", "manylinux_2_28_x86_64"} <= expanded
    assert "manylinux_2_34_x86_64" not in expanded
    assert "macosx_10_9_universal2" in expand_platform("macosx_11_0_arm64")


def test_a_linux_target_takes_plain_linux_wheels_as_pip_does():
    """packaging.tags lists linux_<arch> last on any Linux, so pip installs a wheel built without auditwheel
    (an internal build on a private index): a Linux target of that machine keeps it, no other target does."""
    assert "linux_x86_64" in expand_platform("manylinux_2_28_x86_64")
    assert "linux_aarch64" in expand_platform("musllinux_1_2_aarch64")
    assert "linux_aarch64" not in expand_platform("manylinux_2_28_x86_64")
    files = ["tool-1.0-cp312-cp312-linux_x86_64.whl", "tool-1.0-cp312-cp312-win_amd64.whl"]
    assert choose(files, "tool", python_versions=["3.12"], platforms=["manylinux_2_28_x86_64"])[0] == [
        "tool-1.0-cp312-cp312-linux_x86_64.whl"]
    assert choose(files, "tool", python_versions=["3.12"], platforms=["win_amd64", "macosx_14_0_arm64"])[0] == [
        "tool-1.0-cp312-cp312-win_amd64.whl"]


MOBILE_AND_WEB = [
    "gamma-2.0-cp314-cp314-ios_13_0_arm64_iphoneos.whl",
    "gamma-2.0-cp314-cp314-ios_14_0_arm64_iphoneos.whl",
    "gamma-2.0-cp314-cp314-ios_13_0_arm64_iphonesimulator.whl",
    "gamma-2.0-cp314-cp314-android_21_arm64_v8a.whl",
    "gamma-2.0-cp314-cp314-android_26_arm64_v8a.whl",
    "gamma-2.0-cp314-cp314-android_21_x86_64.whl",
    "gamma-2.0-cp314-cp314-pyemscripten_2026_0_wasm32.whl",
    "gamma-2.0-cp314-cp314-pyemscripten_2025_0_wasm32.whl",
    "gamma-2.0-cp314-cp314-manylinux_2_17_aarch64.whl",
    "gamma-2.0-py3-none-any.whl",
]


def test_ios_android_and_emscripten_targets_take_what_installs_there():
    """cibuildwheel builds for iOS (PEP 730), Android (PEP 738) and Pyodide (PEP 783), and the index holds
    such wheels: a device target takes its own OS versions, API levels and older, of its own machine only; an
    Emscripten ABI takes itself alone, none installing on another."""
    chosen, _ = choose(MOBILE_AND_WEB, "gamma", python_versions=["3.14"], package_types=["wheel"],
                       platforms=["ios_13_0_arm64_iphoneos", "android_24_arm64_v8a", "pyemscripten_2026_0_wasm32"])
    assert chosen == [
        "gamma-2.0-cp314-cp314-android_21_arm64_v8a.whl",
        "gamma-2.0-cp314-cp314-ios_13_0_arm64_iphoneos.whl",
        "gamma-2.0-cp314-cp314-pyemscripten_2026_0_wasm32.whl",
        "gamma-2.0-py3-none-any.whl",
    ]
    assert "ios_12_0_x86_64_iphonesimulator" in expand_platform("ios_13_0_x86_64_iphonesimulator")
    assert expand_platform("pyemscripten_2026_0_wasm32") == {"pyemscripten_2026_0_wasm32"}


@pytest.mark.parametrize("platform, holds", [
    ("ios_13_0_arm64_iphoneos", "sys_platform == 'ios' and platform_system == 'iOS' and platform_machine == 'arm64'"),
    ("android_24_arm64_v8a", "sys_platform == 'android' and platform_system == 'Android' and "
                             "platform_machine == 'aarch64'"),
    ("android_24_x86", "sys_platform == 'android' and platform_machine == 'i686'"),
    ("pyemscripten_2026_0_wasm32", "sys_platform == 'emscripten' and platform_machine == 'wasm32'"),
])
def test_markers_on_ios_android_and_emscripten_read_as_there(platform, holds):
    """A requirement's marker is told by the values Python has on that platform, not by this host's Linux:
    `colorama; sys_platform == 'win32'` asks nothing of them, and one that holds there is taken."""
    files = ["delta-1.0-py3-none-any.whl"]
    assert choose(files, f"delta; {holds}", python_versions=["3.14"], platforms=[platform])[0] == files
    assert choose(files, "delta; sys_platform == 'linux' or os_name != 'posix'", python_versions=["3.14"],
                  platforms=[platform])[0] == []


def test_python_and_platform_matrix():
    chosen, _ = choose(BETA, python_versions=["3.11"], platforms=["manylinux_2_28_x86_64"])
    assert chosen == [
        "beta-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "beta-1.0-cp39-abi3-manylinux2014_x86_64.whl",
        "beta-1.0-py3-none-any.whl",
        "beta-1.0.tar.gz",
    ]
    chosen, _ = choose(BETA, python_versions=["3.12"], platforms=["win_amd64", "macosx_11_0_arm64"],
                       package_types=["wheel"])
    assert chosen == ["beta-1.0-py3-none-any.whl"]
    chosen, _ = choose(BETA, python_versions=["3.11"], platforms=["macosx_11_0_arm64"], package_types=["wheel"])
    assert chosen == ["beta-1.0-cp311-cp311-macosx_10_9_universal2.whl", "beta-1.0-py3-none-any.whl"]


FREE_THREADED = [
    "beta-1.0-cp314-cp314-manylinux_2_17_x86_64.whl",
    "beta-1.0-cp314-cp314t-manylinux_2_17_x86_64.whl",
    "beta-1.0-cp313-cp313t-manylinux_2_17_x86_64.whl",
    "beta-1.0-cp39-abi3-manylinux_2_17_x86_64.whl",
    "beta-1.0-cp315-abi3t-manylinux_2_17_x86_64.whl",
    "beta-1.0-py3-none-any.whl",
]


def test_free_threaded_target_takes_its_own_abi_and_not_abi3():
    options = {"platforms": ["manylinux_2_28_x86_64"], "package_types": ["wheel"]}
    chosen, _ = choose(FREE_THREADED, python_versions=["3.14t"], **options)
    assert chosen == ["beta-1.0-cp314-cp314t-manylinux_2_17_x86_64.whl", "beta-1.0-py3-none-any.whl"]
    chosen, _ = choose(FREE_THREADED, python_versions=["3.14"], **options)
    assert chosen == ["beta-1.0-cp314-cp314-manylinux_2_17_x86_64.whl", "beta-1.0-cp39-abi3-manylinux_2_17_x86_64.whl",
                      "beta-1.0-py3-none-any.whl"]
    # PEP 803: the free-threaded stable ABI, from 3.15
    chosen, _ = choose(FREE_THREADED, python_versions=["3.15t"], **options)
    assert chosen == ["beta-1.0-cp315-abi3t-manylinux_2_17_x86_64.whl", "beta-1.0-py3-none-any.whl"]
    # `latest` counts for each target: 2.0 has no free-threaded wheel yet, so 3.14t keeps 1.0's, as pip there would
    lagging = ["beta-2.0-cp314-cp314-manylinux_2_17_x86_64.whl", "beta-1.0-cp314-cp314-manylinux_2_17_x86_64.whl",
               "beta-1.0-cp314-cp314t-manylinux_2_17_x86_64.whl"]
    chosen, _ = choose(lagging, python_versions=["3.14", "3.14t"], latest=1, **options)
    assert chosen == ["beta-1.0-cp314-cp314t-manylinux_2_17_x86_64.whl",
                      "beta-2.0-cp314-cp314-manylinux_2_17_x86_64.whl"]


def test_a_python_before_3_8_takes_its_pymalloc_abi():
    chosen, _ = choose(["beta-1.0-cp37-cp37m-manylinux_2_17_x86_64.whl", "beta-1.0-cp37-cp37-manylinux_2_17_x86_64.whl",
                        "beta-1.0-cp38-cp38-manylinux_2_17_x86_64.whl"], python_versions=["3.7"])
    assert chosen == ["beta-1.0-cp37-cp37m-manylinux_2_17_x86_64.whl"]


def test_a_target_left_with_no_file_is_named():
    no_free_threaded = [f for f in FREE_THREADED if "t-" not in f.split("-", 3)[3] and "none-any" not in f]
    options = {"python_versions": ["3.14", "3.14t"], "platforms": ["manylinux_2_28_x86_64", "win_amd64"],
               "package_types": ["wheel"]}
    _, selection = choose(no_free_threaded, **options)
    assert selection.uncovered == ["project beta: no selected file installs on 3.14/win_amd64, "
                                   "3.14t/manylinux_2_28_x86_64, 3.14t/win_amd64; clients there will find none"]
    _, selection = choose([*no_free_threaded, "beta-1.0.tar.gz"], **{**options, "package_types": ["wheel", "sdist"]})
    assert selection.uncovered == []  # an sdist installs anywhere its Requires-Python allows
    # a requirement whose marker leaves a target out does not ask for a file there
    _, selection = choose(["beta-1.0-cp314-cp314-win_amd64.whl"], project='beta; sys_platform == "win32"',
                          python_versions=["3.14"], platforms=["manylinux_2_28_x86_64", "win_amd64"])
    assert selection.uncovered == []
    _, selection = choose(BETA, project="beta>=9")
    assert selection.uncovered == ["project beta: no file matches the config; clients will find none (check its "
                                   "specifiers, package_types, python_versions and platforms)"]
    _, selection = choose(BETA)
    assert selection.uncovered == []
    # a full mirror ("*") asks for no project in particular: a Windows-only one is no gap there
    config = build_config({"upstream": "http://127.0.0.1:1/simple/", "directory": "/tmp/x", "projects": ["*"],
                           **options})
    files = [upstream_file(name) for name in no_free_threaded]
    assert select_files(files, "beta", None, config, TargetMatrix.from_config(config)).uncovered == []


def test_targets_do_not_depend_on_the_python_running_the_engine(monkeypatch):
    import sysconfig  # noqa: PLC0415

    host_config = sysconfig.get_config_var
    # a free-threaded debug build running the engine: its own ABI flags must not leak into the targets
    monkeypatch.setattr(sysconfig, "get_config_var",
                        lambda name: 1 if name in ("Py_GIL_DISABLED", "Py_DEBUG") else host_config(name))
    options = {"platforms": ["manylinux_2_28_x86_64"], "package_types": ["wheel"]}
    chosen, _ = choose(FREE_THREADED, python_versions=["3.14"], **options)
    assert chosen == ["beta-1.0-cp314-cp314-manylinux_2_17_x86_64.whl", "beta-1.0-cp39-abi3-manylinux_2_17_x86_64.whl",
                      "beta-1.0-py3-none-any.whl"]


def test_empty_targets_keep_everything():
    chosen, _ = choose(BETA)
    assert chosen == sorted(BETA)


def test_specifiers_prereleases_latest_and_yanked():
    files = ["alpha-1.0-py3-none-any.whl", "alpha-1.1-py3-none-any.whl", "alpha-2.0-py3-none-any.whl",
             "alpha-2.1b1-py3-none-any.whl", upstream_file("alpha-0.9-py3-none-any.whl", yanked="bad")]
    assert choose(files, "alpha")[0] == ["alpha-0.9-py3-none-any.whl", "alpha-1.0-py3-none-any.whl",
                                         "alpha-1.1-py3-none-any.whl", "alpha-2.0-py3-none-any.whl"]
    assert "alpha-2.1b1-py3-none-any.whl" in choose(files, "alpha", prereleases=True)[0]
    assert choose(files, "alpha==2.1b1")[0] == ["alpha-2.1b1-py3-none-any.whl"]
    assert choose(files, "alpha>=1.1,<2")[0] == ["alpha-1.1-py3-none-any.whl"]
    assert choose(files, "alpha", latest=2)[0] == ["alpha-1.1-py3-none-any.whl", "alpha-2.0-py3-none-any.whl"]
    assert "alpha-0.9-py3-none-any.whl" not in choose(files, "alpha", include_yanked=False)[0]


def test_requires_python_and_size_and_types():
    files = [upstream_file("gamma-0.5-py3-none-any.whl", requires_python="<3.8"),
             upstream_file("gamma-1.0-py3-none-any.whl", requires_python=">=3.9", size=10),
             upstream_file("gamma-1.0.tar.gz", size=5000)]
    assert choose(files, "gamma", python_versions=["3.11"])[0] == ["gamma-1.0-py3-none-any.whl", "gamma-1.0.tar.gz"]
    assert choose(files, "gamma", max_file_size=100)[0] == ["gamma-0.5-py3-none-any.whl",
                                                             "gamma-1.0-py3-none-any.whl"]
    assert choose(files, "gamma", package_types=["sdist"])[0] == ["gamma-1.0.tar.gz"]


def test_hostile_and_unverifiable_files_are_refused_not_chosen():
    files = [upstream_file("../../etc/passwd"), upstream_file("/abs.whl"), upstream_file("a<script>.whl"),
             upstream_file("alpha-1.0.tar.gz\n"),
             UpstreamFile("alpha-1.0-py3-none-any.whl", "http://127.0.0.1/a", {"md5": "0" * 32}),
             UpstreamFile("alpha-1.1-py3-none-any.whl", "http://127.0.0.1/b", {})]
    chosen, selection = choose(files, "alpha")
    assert chosen == []
    assert len(selection.refused) == 6
    assert selection.refused[-2:] == [
        "project alpha: alpha-1.0-py3-none-any.whl: the index gives only an md5 hash, which the mirror verifies by "
        "only with weak_hashes (pypiserver before 2.0 gives md5 unless started with --hash-algo sha256)",
        "project alpha: alpha-1.1-py3-none-any.whl: the index gives no sha256 to verify it by"]
    # with weak_hashes, the md5 is enough; no hash at all never is
    chosen, selection = choose(files, "alpha", weak_hashes=True)
    assert chosen == ["alpha-1.0-py3-none-any.whl"] and len(selection.refused) == 5


def test_requirement_markers_are_evaluated_for_the_target_pythons():
    files = ["alpha-1.0-py3-none-any.whl", "alpha-2.0-py3-none-any.whl"]
    old_only = 'alpha<2; python_version < "3.10"'
    assert choose(files, old_only, python_versions=["3.11"])[0] == []
    assert choose(files, old_only, python_versions=["3.9", "3.11"])[0] == ["alpha-1.0-py3-none-any.whl"]


def test_latest_keeps_the_newest_releases_that_install_on_each_target():
    """latest: N is counted per python x platform, as pip on each would choose: a target that the newest
    release has dropped (an old glibc, an old Python) still gets the newest release that installs there."""
    files = ["numpy-2.0-cp312-cp312-manylinux_2_28_x86_64.whl", "numpy-2.0-cp312-cp312-win_amd64.whl",
             "numpy-1.9-cp312-cp312-manylinux_2_17_x86_64.whl", "numpy-1.9-cp312-cp312-win_amd64.whl",
             "numpy-1.9-cp38-cp38-manylinux_2_17_x86_64.whl", "numpy-1.8-cp38-cp38-manylinux_2_17_x86_64.whl"]
    chosen, selection = choose(files, "numpy", python_versions=["3.8", "3.12"],
                               platforms=["manylinux_2_17_x86_64", "win_amd64"], latest=1)
    assert chosen == ["numpy-1.9-cp312-cp312-manylinux_2_17_x86_64.whl",  # 3.12 on glibc 2.17: 2.0 needs 2.28
                      "numpy-1.9-cp38-cp38-manylinux_2_17_x86_64.whl",    # 3.8 on glibc 2.17
                      "numpy-2.0-cp312-cp312-win_amd64.whl"]              # 3.12 on Windows; 3.8 there has none
    assert selection.skipped == 3
    pure = [upstream_file("gamma-2.0-py3-none-any.whl", requires_python=">=3.11"),
            upstream_file("gamma-1.5-py3-none-any.whl", requires_python=">=3.7"),
            upstream_file("gamma-1.0-py3-none-any.whl", requires_python=">=3.7")]
    assert choose(pure, "gamma", python_versions=["3.8", "3.12"], latest=1)[0] == [
        "gamma-1.5-py3-none-any.whl", "gamma-2.0-py3-none-any.whl"]
    assert choose(pure, "gamma", python_versions=["3.12"], latest=1)[0] == ["gamma-2.0-py3-none-any.whl"]


def test_latest_also_keeps_the_newest_wheel_where_the_newest_releases_are_sdists_only():
    """greenlet 3.2.5 came with no Windows wheel: with latest: 1 a Windows target held only its sdist, so
    `pip --prefer-binary` or `--only-binary :all:`, the way round a build that needs a compiler, failed from
    the mirror. It also gets 3.2.4's wheel, as pip --prefer-binary picks; Linux, with a 3.2.5 wheel, does not."""
    files = ["greenlet-3.2.5.tar.gz", "greenlet-3.2.5-cp312-cp312-manylinux_2_17_x86_64.whl",
             "greenlet-3.2.4.tar.gz", "greenlet-3.2.4-cp312-cp312-win_amd64.whl",
             "greenlet-3.2.4-cp312-cp312-manylinux_2_17_x86_64.whl", "greenlet-3.2.3-cp312-cp312-win_amd64.whl"]
    chosen, _ = choose(files, "greenlet", python_versions=["3.12"], platforms=["manylinux_2_17_x86_64", "win_amd64"],
                       latest=1)
    assert chosen == ["greenlet-3.2.4-cp312-cp312-win_amd64.whl",
                      "greenlet-3.2.5-cp312-cp312-manylinux_2_17_x86_64.whl", "greenlet-3.2.5.tar.gz"]
    assert choose(files, "greenlet", python_versions=["3.12"], platforms=["win_amd64"], latest=1,
                  package_types=["sdist"])[0] == ["greenlet-3.2.5.tar.gz"]


def test_a_requirement_no_final_release_satisfies_takes_the_pre_releases_that_do():
    files = ["lib-0.9-py3-none-any.whl", "lib-2.0b1-py3-none-any.whl", "lib-2.0a1-py3-none-any.whl"]
    assert choose(files, "lib>=1.0")[0] == ["lib-2.0a1-py3-none-any.whl", "lib-2.0b1-py3-none-any.whl"]
    assert choose(files, "lib")[0] == ["lib-0.9-py3-none-any.whl"]  # a final release does: no pre-release
    assert choose(["new-1.0rc1-py3-none-any.whl"], "new")[0] == ["new-1.0rc1-py3-none-any.whl"]


PAIRS = ["lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "lib-1.0-cp313-cp313-manylinux_2_17_x86_64.whl",
         "lib-1.0-cp312-cp312-win_amd64.whl", "lib-1.0-cp313-cp313-win_amd64.whl",
         "lib-1.0-cp314-cp314-macosx_11_0_arm64.whl", "lib-1.0-cp314-cp314-win_amd64.whl",
         "lib-1.0-cp312-cp312-macosx_11_0_arm64.whl", "lib-1.0.tar.gz"]


@pytest.mark.parametrize("options, taken", [
    ({"targets": ["3.12/manylinux_2_28_x86_64", "3.13/win_amd64"]},
     ["lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "lib-1.0-cp313-cp313-win_amd64.whl"]),
    # besides the product, and a pair the product holds counted once
    ({"python_versions": ["3.12", "3.13"], "platforms": ["manylinux_2_28_x86_64"],
      "targets": ["3.14/macosx_14_0_arm64", "3.13/manylinux_2_28_x86_64"]},
     ["lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "lib-1.0-cp313-cp313-manylinux_2_17_x86_64.whl",
      "lib-1.0-cp314-cp314-macosx_11_0_arm64.whl"]),
])
def test_targets_take_the_wheels_of_their_pairs_and_not_of_the_product_of_them(options, taken):
    """The Pythons and platforms of `targets` do not pair freely: a 3.13 Windows desktop and a 3.12 Linux
    server want no cp313 Linux wheel and no cp312 Windows one."""
    assert choose(PAIRS, "lib", package_types=["wheel"], **options)[0] == taken
    assert choose(PAIRS, "lib", latest=1, **options)[0] == sorted([*taken, "lib-1.0.tar.gz"])
    config = build_config({"upstream": "http://127.0.0.1:1/simple/", "directory": "/tmp/x", "projects": ["lib"],
                           **options})
    matrix = TargetMatrix.from_config(config)
    assert [slot.label for slot in matrix.slots] == [target.id for target in matrix.targets]


NEW_PYTHON = ["lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "lib-2.0rc1-cp312-cp312-manylinux_2_17_x86_64.whl",
              "lib-2.0rc1-cp314-cp314-manylinux_2_17_x86_64.whl"]


@pytest.mark.parametrize("pythons, taken, with_sdist", [
    (["3.14"], ["lib-2.0rc1-cp314-cp314-manylinux_2_17_x86_64.whl"], ["lib-1.0.tar.gz"]),
    (["3.12", "3.14"], ["lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
                        "lib-2.0rc1-cp314-cp314-manylinux_2_17_x86_64.whl"],
     ["lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "lib-1.0.tar.gz"]),
])
def test_a_target_whose_wheels_only_a_pre_release_has_takes_it_as_pip_does(pythons, taken, with_sdist):
    """A new Python's wheels often come in a release candidate first. pip counts the final releases among the
    files its target installs: with --only-binary, `lib` on 3.14 installs 2.0rc1, whatever 1.0 offers 3.12.
    3.12 keeps its final release and no pre-release; a final sdist (which installs anywhere) would do for 3.14
    too. The resolver counts so per target already (Releases.versions)."""
    platform = {"platforms": ["manylinux_2_28_x86_64"], "python_versions": pythons}
    assert choose(NEW_PYTHON, "lib", package_types=["wheel"], **platform)[0] == taken
    assert choose(NEW_PYTHON, "lib", package_types=["wheel"], latest=1, **platform)[0] == taken
    assert choose([*NEW_PYTHON, "lib-1.0.tar.gz"], "lib", **platform)[0] == with_sdist


def test_latest_passes_over_a_yanked_release_and_keeps_it_marked():
    files = [upstream_file("alpha-2.0-py3-none-any.whl", yanked="broken"), "alpha-1.1-py3-none-any.whl",
             "alpha-1.0-py3-none-any.whl", upstream_file("alpha-0.9-py3-none-any.whl", yanked="old")]
    assert choose(files, "alpha", latest=1)[0] == ["alpha-1.1-py3-none-any.whl", "alpha-2.0-py3-none-any.whl"]
    assert choose(files, "alpha", latest=2)[0] == ["alpha-1.0-py3-none-any.whl", "alpha-1.1-py3-none-any.whl",
                                                   "alpha-2.0-py3-none-any.whl"]
    assert choose(files, "alpha", latest=1, include_yanked=False)[0] == ["alpha-1.1-py3-none-any.whl"]
    assert choose(files, "alpha==0.9", latest=1)[0] == ["alpha-0.9-py3-none-any.whl"]  # pinned: pip takes it


def test_why_no_file_installs_names_what_the_release_offers_nearest_first():
    config = build_config({"upstream": "http://127.0.0.1:1/simple/", "directory": "/tmp/x", "projects": ["beta"],
                           "python_versions": ["3.10", "3.13"]})
    py310, py313 = config.python_versions
    mac = TargetMatrix.for_slot(py313, "macosx_11_0_arm64")
    wheels = [upstream_file(f"beta-2.0-cp313-cp313-{platform}.whl") for platform in (
        "manylinux_2_28_aarch64", "macosx_14_0_arm64", "win_arm64", "manylinux_2_28_x86_64", "macosx_12_0_arm64",
        "macosx_10_15_x86_64", "win_amd64", "musllinux_1_2_x86_64", "musllinux_1_2_aarch64")]
    # the macOS arm64 wheels first: what the operator would name instead; the list stops at eight
    assert mac.why_none_installs(wheels) == (
        "has wheels only for macosx_12_0_arm64, macosx_14_0_arm64, macosx_10_15_x86_64, win_arm64, "
        "manylinux_2_28_aarch64, manylinux_2_28_x86_64, musllinux_1_2_aarch64, musllinux_1_2_x86_64 and 1 more")
    linux = TargetMatrix.for_slot(py310, "manylinux_2_28_x86_64")
    assert linux.why_none_installs([upstream_file("beta-2.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
                                    upstream_file("beta-2.0-cp313-cp313-manylinux_2_17_x86_64.whl")]) == (
        "has wheels for this platform only for cp312-cp312, cp313-cp313")
    assert linux.why_none_installs([upstream_file("beta-2.0.tar.gz", requires_python=">=3.11"),
                                    upstream_file("beta-2.0-py3-none-any.whl", requires_python=">=3.11")]) == (
        "requires Python >=3.11")


def test_a_files_upload_time_is_parsed_once_in_a_selection(monkeypatch):
    """exclude_newer asks each file's upload time twice, to screen it and to date what it leaves out; a full
    mirror's selection goes over millions of files, so the time is parsed once per file."""
    from localpypi_sync import select, timespec, upstream  # noqa: PLC0415 - their names for the parser are counted

    parsed = []
    for module in (select, upstream):  # wherever the parser is called from
        monkeypatch.setattr(module, "upload_seconds", lambda text: parsed.append(text) or timespec.upload_seconds(text),
                            raising=False)
    files = [upstream_file(f"beta-1.{minor}-py3-none-any.whl", upload_time=f"2025-01-0{minor + 1}T00:00:00Z")
             for minor in range(5)]
    config = build_config({"upstream": "http://127.0.0.1:1/simple/", "directory": "/tmp/x", "projects": ["beta"],
                           "exclude_newer": "3 days"}).at_start(calendar.timegm((2025, 1, 6, 12, 0, 0)))
    selection = select_files(files, "beta", config.projects[0], config, TargetMatrix.from_config(config))
    assert [f.filename for f in selection.chosen] == [f"beta-1.{minor}-py3-none-any.whl" for minor in (2, 1, 0)]
    assert selection.ripens == calendar.timegm((2025, 1, 7, 0, 0, 0))  # 1.3, uploaded on the 4th, in 3 days
    assert len(parsed) == len(files)


def test_only_files_the_config_would_take_are_held_back():
    """A new wheel for Windows in a mirror for Linux, or a release the specifier leaves out, is not held back by
    exclude_newer: the mirror would not take it when it is old enough either. Counting it told the operator of a
    holdback that would end in nothing, and selected the project again for it."""
    def ripens(filenames, projects=("beta",)):
        files = [upstream_file(name, upload_time="2025-01-05T00:00:00Z") for name in filenames]
        config = build_config({"upstream": "http://127.0.0.1:1/simple/", "directory": "/tmp/x",
                               "projects": list(projects), "exclude_newer": "3 days",
                               "python_versions": ["3.12"], "platforms": ["manylinux_2_28_x86_64"]},
                              ).at_start(calendar.timegm((2025, 1, 6, 12, 0, 0)))
        return select_files(files, "beta", config.projects[0], config, TargetMatrix.from_config(config)).ripens

    assert ripens(["beta-2.0-cp312-cp312-win_amd64.whl", "beta-2.0-cp311-cp311-manylinux_2_17_x86_64.whl"]) is None
    assert ripens(["beta-2.0-py3-none-any.whl"], projects=["beta<2"]) is None
    assert ripens(["beta-2.0-cp312-cp312-win_amd64.whl", "beta-2.0-cp312-cp312-manylinux_2_17_x86_64.whl"]) == (
        calendar.timegm((2025, 1, 8, 0, 0, 0)))


def choose_for(filenames, **options):
    """The files chosen of the config's one project, its requirements from `projects` or `requirements_files`."""
    raw = {"upstream": "http://127.0.0.1:1/simple/", "directory": "/tmp/x", **options}
    config = build_config(raw)
    rule = config.projects[0]
    selection = select_files([upstream_file(f) for f in filenames], rule.name, rule, config,
                             TargetMatrix.from_config(config))
    return sorted(f.filename for f in selection.chosen), selection


FORKED = ["numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl", "numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.whl",
          "numpy-1.26.4.tar.gz", "numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
          "numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "numpy-2.1.0.tar.gz"]
FORKED_TARGETS = {"python_versions": ["3.11", "3.12"], "platforms": ["manylinux_2_28_x86_64"]}
# what pip takes on each Python from a universal lock's fork: 1.26.4 on 3.11, 2.1.0 on 3.12
EACH_ITS_OWN = ["numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl", "numpy-1.26.4.tar.gz",
                "numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "numpy-2.1.0.tar.gz"]


@pytest.mark.parametrize("latest", [0, 1])
def test_requirements_forked_by_markers_take_each_release_only_where_its_marker_holds(latest):
    """`uv pip compile --universal` pins a project twice when its resolution forks. Each pin's wheels are taken
    only for the Pythons its marker names: the 3.12 wheel of 1.26.4 installs nowhere pip would take 1.26.4.
    Before, each pin's files were taken for every target (and with latest: 1, 2.1.0 stood in for 1.26.4)."""
    forks = ['numpy==1.26.4; python_version < "3.12"', 'numpy==2.1.0; python_version >= "3.12"']
    chosen, selection = choose_for(FORKED, projects=forks, latest=latest, **FORKED_TARGETS)
    assert chosen == EACH_ITS_OWN
    assert selection.skipped == 2 and selection.uncovered == []


def test_constraints_apply_only_where_their_markers_hold(tmp_path):
    """A universal constraints file forks a pin by Python as a universal lock does. Both constraints held on
    every target, which no release meets: the project was left empty. On a target whose Python is not set,
    a constraint's marker cannot be told, and it restricts nothing."""
    (tmp_path / "constraints.txt").write_text('numpy==1.26.4 ; python_version < "3.12"\n'
                                              'numpy==2.1.0 ; python_version >= "3.12"\n')
    (tmp_path / "requirements.txt").write_text("numpy\n-c constraints.txt\n")
    requirements = [str(tmp_path / "requirements.txt")]
    assert choose_for(FORKED, requirements_files=requirements, **FORKED_TARGETS)[0] == EACH_ITS_OWN
    assert choose_for(FORKED, requirements_files=requirements, python_versions=["3.12"])[0] == [
        "numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "numpy-2.1.0.tar.gz"]
    assert choose_for(FORKED, requirements_files=requirements, platforms=["manylinux_2_28_x86_64"])[0] == sorted(
        FORKED)
    (tmp_path / "constraints.txt").write_text("numpy==9.9\n")
    assert choose_for(FORKED, requirements_files=requirements, **FORKED_TARGETS)[1].uncovered == [
        "project numpy: no file matches the config; clients will find none (check its specifiers and constraints, "
        "package_types, python_versions and platforms)"]


def test_explain_tells_the_targets_a_marker_holds_on_as_selection_takes_it():
    """Where no Python is set, a marker cannot be told: a requirement holds there, and a constraint restricts
    nothing (test_constraints_apply_only_where_their_markers_hold), so explain must not say it holds."""
    marked = Requirement('numpy<2; python_version < "3.12"')
    config = build_config({"upstream": "http://127.0.0.1:1/simple/", "directory": "/tmp/x", "projects": ["numpy"],
                           **FORKED_TARGETS})
    assert slots_asking(marked, TargetMatrix.from_config(config)) == ["3.11/manylinux_2_28_x86_64"]
    assert slots_asking(marked, TargetMatrix.from_config(config), constraint=True) == ["3.11/manylinux_2_28_x86_64"]
    anywhere = TargetMatrix.from_config(dataclasses.replace(config, python_versions=(), platforms=()))
    assert slots_asking(marked, anywhere) == ["any"] and slots_asking(marked, anywhere, constraint=True) == []


def test_a_target_left_with_only_another_forks_files_is_named():
    """2.1.0 has no file for 3.12 here: the 3.12 wheel of 1.26.4 is not for 3.12 clients, so 3.12 is named."""
    forks = ['numpy==1.26.4; python_version < "3.12"', 'numpy==2.1.0; python_version >= "3.12"']
    files = [f for f in FORKED if not f.startswith("numpy-2.1.0") or "cp311" in f]
    chosen, selection = choose_for(files, projects=forks, **FORKED_TARGETS)
    assert chosen == ["numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl", "numpy-1.26.4.tar.gz"]
    assert selection.uncovered == [
        "project numpy: no selected file installs on 3.12/manylinux_2_28_x86_64; clients there will find none"]
