"""The engine against a generated upstream on 127.0.0.1: layout, conditional requests, faults, safety."""

from __future__ import annotations

import base64
import calendar
import dataclasses
import errno
import hashlib
import html
import itertools
import json
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
import tracemalloc

import pytest

from localpypi_sync import config as config_module
from localpypi_sync import durable, fetch, publish
from localpypi_sync import sync as sync_module
from localpypi_sync import upstream as upstream_module
from localpypi_sync.config import build_config
from localpypi_sync.fetch import Fetcher
from localpypi_sync.http import HttpClient
from localpypi_sync.publish import Publisher
from localpypi_sync.select import select_files
from localpypi_sync.state import MirrorState, make_public_directories
from localpypi_sync.status import mirror_status
from localpypi_sync.sync import SyncAbort, SyncRun
from localpypi_sync.upstream import UpstreamFile
from upstream_fixture import serve_proxy, serve_upstream
from upstream_fixture.server import SIGN_IN_PAGE


def page(mirror_dir, project, name="index.v1_json"):
    with open(os.path.join(mirror_dir, "web", "simple", project, name), "rb") as stream:
        data = stream.read()
    return json.loads(data) if name.endswith("json") else data.decode()


def listed(mirror_dir, project):
    return sorted(entry["filename"] for entry in page(mirror_dir, project)["files"])


def assert_pages_point_at_complete_files(mirror_dir):
    """Every file any page names, JSON or HTML, exists and has the hash the page gives.

    A run killed between writing a project's HTML and JSON pages leaves only the HTML one (httpd then serves
    it to JSON clients too), or none; the pages that exist are what clients get."""
    simple = os.path.join(mirror_dir, "web", "simple")
    for project in os.listdir(simple):
        project_dir = os.path.join(simple, project)
        if not os.path.isdir(project_dir):
            continue
        named = []
        if os.path.isfile(os.path.join(project_dir, "index.v1_json")):
            named += [(entry["url"], entry["hashes"]["sha256"]) for entry in page(mirror_dir, project)["files"]]
        if os.path.isfile(os.path.join(project_dir, "index.html")):
            named += re.findall(r'href="([^"#]+)#sha256=([0-9a-f]{64})"', page(mirror_dir, project, "index.html"))
        for url, sha256 in named:
            path = os.path.normpath(os.path.join(project_dir, html.unescape(url)))
            with open(path, "rb") as stream:
                assert hashlib.sha256(stream.read()).hexdigest() == sha256, path


@pytest.mark.parametrize("processes", [1, 2])
def test_publishes_bandersnatch_layout_with_every_pep_field(make_config, sync, mirror_dir, catalog, processes):
    result = sync(make_config(projects=["alpha", "gamma", "Delta_Thing"], processes=processes))
    assert result.ok, result.failures
    assert ("event=processes processes=2" in result.log) == (processes == 2)
    assert result.changed
    alpha = page(mirror_dir, "alpha")
    assert alpha["meta"]["api-version"] == "1.1"
    assert alpha["versions"] == ["0.9", "1.0", "1.1", "2.0"]  # no pre-release by default
    wheel = next(f for f in alpha["files"] if f["filename"] == "alpha-2.0-py3-none-any.whl")
    source = catalog.find("alpha-2.0-py3-none-any.whl")
    # the same path as the upstream URL: an existing bandersnatch tree is adopted as it is
    assert wheel["url"] == "../.." + source.url_path
    assert wheel["hashes"] == {"sha256": source.sha256}
    assert wheel["size"] == source.size and wheel["upload-time"] == source.upload_time
    assert wheel["core-metadata"] == wheel["data-dist-info-metadata"]
    metadata_path = os.path.join(mirror_dir, "web", source.url_path.lstrip("/") + ".metadata")
    with open(metadata_path, "rb") as stream:
        assert stream.read() == source.metadata
    yanked = next(f for f in alpha["files"] if f["filename"] == "alpha-0.9-py3-none-any.whl")
    assert yanked["yanked"] == "broken build"
    html = page(mirror_dir, "alpha", "index.html")
    assert f'alpha-2.0-py3-none-any.whl#sha256={source.sha256}"' in html
    assert 'data-yanked="broken build"' in html and "data-core-metadata=\"sha256=" in html
    assert '<meta name="pypi:repository-version" content="1.1">' in html
    assert page(mirror_dir, "alpha", "index.v1_html") == html
    root = json.loads(open(os.path.join(mirror_dir, "web", "simple", "index.v1_json")).read())
    assert [p["name"] for p in root["projects"]] == ["alpha", "delta-thing", "gamma"]
    assert os.path.isfile(os.path.join(mirror_dir, "web", "last-modified"))
    assert_pages_point_at_complete_files(mirror_dir)


def test_last_modified_tells_when_the_last_successful_sync_began(make_config, sync, mirror_dir, upstream, catalog):
    """PEP 381 and bandersnatch: web/last-modified is the time of the last successful sync, which a monitor
    reads over HTTP. It was written only when something changed, so a mirror that was current and had nothing
    new looked stale, while a failed run that changed a page looked fresh."""
    path = os.path.join(mirror_dir, "web", "last-modified")

    def began(result):
        return time.strftime("%Y%m%dT%H:%M:%S\n", time.strptime(result.started, "%Y-%m-%dT%H:%M:%SZ"))

    def age_it():
        with open(path, "w") as stream:
            stream.write("20200101T00:00:00\n")

    first = sync(make_config(projects=["alpha", "gamma"]))
    assert first.ok and open(path).read() == began(first)
    age_it()
    nothing_new = sync(make_config(projects=["alpha", "gamma"]))
    assert nothing_new.ok and not nothing_new.changed and open(path).read() == began(nothing_new)
    age_it()
    assert sync(make_config(projects=["alpha", "gamma"]), check_mode=True).ok
    assert sync(make_config(projects=["alpha", "gamma"]), only_projects=["alpha"]).ok
    catalog.add_bytes("gamma", "gamma-9.0.tar.gz", b"new release")
    upstream.server.faults.wrong_hash.add("gamma-9.0.tar.gz")
    failed = sync(make_config(projects=["alpha", "gamma"]))
    assert not failed.ok, failed.failures
    assert open(path).read() == "20200101T00:00:00\n"  # a check, a run over alpha only, a failed run


def test_html_only_upstream_is_read_too(make_config, sync, mirror_dir, upstream):
    upstream.server.faults.html_only = True
    result = sync(make_config(projects=["alpha", "gamma"]))
    assert result.ok, result.failures
    assert "alpha-2.0-py3-none-any.whl" in listed(mirror_dir, "alpha")
    gamma = {f["filename"]: f for f in page(mirror_dir, "gamma")["files"]}
    assert gamma["gamma-1.0-py3-none-any.whl"]["requires-python"] == ">=3.9"
    assert "core-metadata" in gamma["gamma-1.0-py3-none-any.whl"]
    yanked = next(f for f in page(mirror_dir, "alpha")["files"] if f["filename"] == "alpha-0.9-py3-none-any.whl")
    assert yanked["yanked"] == "broken build"


def test_unchanged_upstream_costs_one_conditional_request_per_project(make_config, sync, upstream):
    config = make_config(projects=["alpha", "beta", "gamma"])
    assert sync(config).ok
    before = len(upstream.server.requests)
    again = sync(config)
    assert again.ok and not again.changed
    assert again.stats.files_downloaded == 0 and again.stats.projects_unchanged == 3
    requests = upstream.server.requests[before:]
    headers = upstream.server.request_headers[before:]
    gets = [(path, h) for (method, path), h in zip(requests, headers) if method == "GET"]
    assert len(gets) == 3
    assert all("If-None-Match" in h for _, h in gets)
    assert not any(path.startswith("/packages/") for _, path in requests)


def project_page_gets(server, since: int) -> list[str]:
    return [path for method, path in server.requests[since:] if method == "GET" and path.startswith("/simple/")
            and path != "/simple/"]


@pytest.mark.parametrize("proxy_serials", [False, True], ids=["serial-header", "serial-in-page-only"])
def test_a_full_mirror_reads_only_the_projects_whose_root_serial_moved(make_config, sync, mirror_dir, upstream,
                                                                      catalog, proxy_serials):
    """projects: ["*"] mirrors what the root index lists, less the exclusions; a no-op run then costs the root
    index alone, and a moved serial one page. A proxy that drops X-PyPI-Last-Serial still gives the serial in the
    page's JSON meta, which serves as well."""
    server = upstream.server
    server.faults.proxy_serials = proxy_serials
    config = make_config(projects=["*"], exclude=["delta-*"])
    first = sync(config)
    assert first.ok, first.failures
    assert sorted(os.listdir(os.path.join(mirror_dir, "web", "simple"))) == [
        "alpha", "beta", "gamma", "index.html", "index.v1_html", "index.v1_json"]
    mirrored_serial = max(catalog.serials[name] for name in ("alpha", "beta", "gamma"))
    assert first.stats.serial == mirrored_serial  # the newest of what it mirrors; delta-thing's is newer
    before = len(server.requests)
    again = sync(config)
    assert again.ok and not again.changed
    assert [path for method, path in server.requests[before:] if method == "GET"] == ["/simple/"]
    catalog.add_wheel("alpha", "3.0")
    before = len(server.requests)
    moved = sync(config)
    assert moved.ok and moved.added == ["alpha-3.0-py3-none-any.whl"]
    assert project_page_gets(server, before) == ["/simple/alpha/"]
    assert moved.stats.serial == catalog.serials["alpha"] > mirrored_serial
    assert page(mirror_dir, "alpha")["meta"].get("_last-serial") == catalog.serials["alpha"]


def test_a_304_with_a_newer_serial_is_recorded_so_the_next_run_asks_nothing(make_config, sync, mirror_dir, upstream,
                                                                          catalog):
    """An upstream whose ETag covers a page's files but not its serial answers 304 when only the serial moved.
    The record takes the serial the 304 carries; otherwise every later run would find the root index's serial
    newer than the record's and ask for the page again."""
    server = upstream.server
    server.faults.etag_without_serial = True
    config = make_config(projects=["*"], exclude=["delta-*"])
    assert sync(config).ok
    catalog.touch("alpha")
    before = len(server.requests)
    moved = sync(config)
    assert moved.ok and not moved.changed
    assert project_page_gets(server, before) == ["/simple/alpha/"]  # answered 304: the ETag did not move
    with open(os.path.join(mirror_dir, "state", "projects", "alpha.json")) as stream:
        assert json.load(stream)["serial"] == catalog.serials["alpha"]
    before = len(server.requests)
    assert sync(config).ok
    assert project_page_gets(server, before) == []


def test_an_upstream_without_validators_costs_a_page_read_and_no_write(make_config, sync, mirror_dir, upstream,
                                                                      catalog, monkeypatch):
    """An upstream that sends neither ETag nor serial header (a proxy seen in front of the public index): each
    run reads every page again, but a project whose selection did not change writes nothing, neither page
    nor record, and waits for no disk flush."""
    upstream.server.faults.no_etag = upstream.server.faults.proxy_serials = True
    config = make_config(projects=["alpha", "gamma"])
    assert sync(config).ok
    records = [os.path.join(mirror_dir, "state", "projects", f"{name}.json") for name in ("alpha", "gamma")]
    inodes = [os.stat(path).st_ino for path in records]
    flushed = []
    real_make_durable = Fetcher.make_durable
    monkeypatch.setattr(Fetcher, "make_durable", lambda self, files: flushed.extend(files) or
                        real_make_durable(self, files))
    again = sync(config)
    assert again.ok and not again.changed
    assert [os.stat(path).st_ino for path in records] == inodes
    assert not flushed
    catalog.add_wheel("alpha", "3.0")
    assert sync(config).added == ["alpha-3.0-py3-none-any.whl"]
    assert os.stat(records[0]).st_ino != inodes[0] and os.stat(records[1]).st_ino == inodes[1]


def test_a_target_with_no_file_is_a_warning_when_the_selection_is_made(make_config, sync, mirror_dir):
    """beta has no wheel for a free-threaded 3.12 (nor could it): the run says so when it chooses beta's files,
    in a check too, and not again on a run that changes nothing."""
    config = make_config(projects=["alpha", "beta"], python_versions=["3.12", "3.13t"],
                         platforms=["manylinux_2_28_x86_64"], package_types=["wheel"])
    expected = ("project beta: no selected file installs on 3.13t/manylinux_2_28_x86_64; clients there will find "
                "none")
    assert sync(config, check_mode=True).warnings == [expected]
    first = sync(config)
    assert first.ok and first.warnings == [expected] and "warning: " + expected in first.log
    assert listed(mirror_dir, "beta") == ["beta-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]
    assert sync(config).warnings == []


def test_a_requirement_whose_marker_holds_on_no_target_is_no_warning(make_config, sync, mirror_dir):
    """As pip on Linux ignores `beta; sys_platform == 'win32'`, a mirror for Linux asks nothing of beta: a
    universal lock file (uv's) has such lines for every Windows-only package. A Windows target takes it."""
    linux = sync(make_config(projects=["alpha", "beta; sys_platform == 'win32'"], python_versions=["3.12"],
                             platforms=["manylinux_2_28_x86_64"], package_types=["wheel"]))
    assert linux.ok and linux.warnings == [] and listed(mirror_dir, "beta") == []
    both = sync(make_config(projects=["alpha", "beta; sys_platform == 'win32'"], python_versions=["3.12"],
                            platforms=["manylinux_2_28_x86_64", "win_amd64"], package_types=["wheel"]))
    assert both.ok and "beta-1.0-cp312-cp312-win_amd64.whl" in both.added


def test_a_run_over_some_projects_neither_stands_for_the_mirror_nor_lowers_its_serial(make_config, sync,
                                                                                       mirror_dir, catalog):
    """`sync --project` and `verify --repair` run over some projects only. The full run stays the mirror's last
    run and the partial one is reported beside it until the next full run; the mirror's serial (in status and
    on the root page) never goes back to the older serial of what the partial run read."""
    catalog.serials.update(alpha=100, beta=900, gamma=300)
    assert sync(make_config(projects=["alpha", "beta"])).stats.serial == 900
    widened = make_config(projects=["alpha", "beta", "gamma"])
    partial = sync(widened, only_projects=["alpha", "gamma"])
    assert partial.ok and partial.added and partial.stats.serial == 300
    root = page(mirror_dir, "")
    assert {"name": "gamma"} in root["projects"] and root["meta"]["_last-serial"] == 900  # rewritten, not lowered
    status = mirror_status(mirror_dir)
    assert status["serial"] == 900
    assert status["last_run"]["stats"]["serial"] == 900 and "only_projects" not in status["last_run"]
    assert status["last_partial_run"]["only_projects"] == ["alpha", "gamma"]
    catalog.serials["alpha"] = 1000  # a partial run may raise the serial, though
    assert sync(widened, only_projects=["alpha"]).stats.serial == 1000
    assert mirror_status(mirror_dir)["serial"] == 1000
    assert sync(widened).ok
    status = mirror_status(mirror_dir)
    assert status["last_partial_run"] is None and status["last_run"]["stats"]["serial"] == 1000


def test_the_run_record_is_stamped_in_utc_whatever_the_local_zone(make_config, sync, mirror_dir, monkeypatch):
    """Both times carry a Z: a mirror on a host nine hours east of UTC must not say it finished in the future."""
    monkeypatch.setenv("TZ", "JST-9")  # POSIX form: no zone database needed
    time.tzset()
    try:
        before = time.time()
        assert sync(make_config()).ok
        after = time.time()
    finally:
        monkeypatch.undo()
        time.tzset()
    record = MirrorState(mirror_dir).load_last_run()
    for key in ("started", "finished"):
        assert int(before) <= calendar.timegm(time.strptime(record[key], "%Y-%m-%dT%H:%M:%SZ")) <= after, key


@pytest.mark.parametrize(("given", "serial"), [(5, 5), ("7", 7), (" 8 ", 8), ("\u00b2", None), (True, None),
                                                (-1, None), ("12a", None), (None, None)])
def test_a_page_serial_is_read_as_a_number_or_digits_and_nothing_else(given, serial):
    body = json.dumps({"meta": {"api-version": "1.1", "_last-serial": given}, "files": []}).encode()
    assert upstream_module.parse_json_project("alpha", body, "http://127.0.0.1/simple/alpha/") == ([], serial, None)


def files_holding(directory, secret: bytes) -> list[str]:
    found = []
    for root, _, names in os.walk(directory):
        for name in names:
            with open(os.path.join(root, name), "rb") as stream:
                if secret in stream.read():
                    found.append(os.path.join(root, name))
    return found


@pytest.mark.parametrize("elsewhere", ["redirected", "listed"])
def test_an_index_that_wants_a_login_gets_the_one_in_the_url_and_no_other_host_does(make_config, sync,
                                                                                      mirror_dir, upstream,
                                                                                      elsewhere):
    """The login in the upstream URL, percent-decoded as pip decodes it, goes with every request to the index's
    own origin, and with none to another host (a CDN) that a file is redirected to or listed on. A missing or
    wrong login stops the run in one line that holds no password; the mirror's records hold none either."""
    server = upstream.server
    server.faults.require_auth = "Basic " + base64.b64encode(b"mirror:p@ss:w0rd").decode()
    if elsewhere == "redirected":  # the same server under another name: another origin
        server.faults.redirect_host = "localhost"
        server.faults.redirect_files.add("alpha-2.0-py3-none-any.whl")
    else:
        server.faults.files_host = "localhost"
    for login in ("", "mirror:wrong-w0rd@"):
        with pytest.raises(SyncAbort) as caught:
            sync(make_config(upstream=upstream.url.replace("http://", "http://" + login)))
        assert "HTTP 401: the index wants a login" in str(caught.value) and "w0rd" not in str(caught.value)
    before = len(server.requests)
    result = sync(make_config(upstream=upstream.url.replace("http://", "http://mirror:p%40ss%3Aw0rd@")))
    assert result.ok, result.failures
    assert "alpha-2.0-py3-none-any.whl" in listed(mirror_dir, "alpha")
    sent = list(zip(server.requests[before:], server.request_headers[before:]))
    to_index = [(path, headers.get("Authorization")) for (_, path), headers in sent if not path.startswith("/moved/")]
    to_cdn = [headers.get("Authorization") for (_, path), headers in sent if path.startswith("/moved/")]
    assert len(to_index) >= 2 and {login for _, login in to_index} == {server.faults.require_auth}
    assert to_cdn and set(to_cdn) == {None}
    if elsewhere == "listed":  # every file (and metadata file) came from the other host
        assert len(to_cdn) > result.stats.files_downloaded and not any("/packages/" in path for path, _ in to_index)
    assert files_holding(mirror_dir, b"w0rd") == [] and files_holding(mirror_dir, b"p%40ss") == []


def test_a_proxy_that_wants_a_login_gets_the_one_in_the_proxy_url(make_config, sync, mirror_dir, upstream):
    login = "Basic " + base64.b64encode(b"me:pr0xy pass").decode()
    with serve_proxy(required_login=login) as proxy:
        with pytest.raises(SyncAbort) as caught:
            sync(make_config(proxy=proxy.base))
        assert "HTTP 407: the proxy wants a login" in str(caught.value)
        result = sync(make_config(proxy=proxy.base.replace("http://", "http://me:pr0xy%20pass@")))
        assert result.ok, result.failures
        relayed = [path for (_, path), headers in zip(proxy.server.requests, proxy.server.request_headers)
                   if headers.get("Proxy-Authorization") == login]
    assert any("/simple/alpha/" in path for path in relayed) and any("/packages/" in path for path in relayed)
    assert listed(mirror_dir, "alpha") and files_holding(mirror_dir, b"pr0xy") == []


def test_config_change_takes_effect_without_force(make_config, sync, mirror_dir, upstream):
    assert sync(make_config(projects=["alpha<2"])).ok
    assert "alpha-2.0-py3-none-any.whl" not in listed(mirror_dir, "alpha")
    widened = sync(make_config(projects=["alpha"]))  # upstream unchanged: it answers 304
    assert widened.ok and widened.changed
    assert "alpha-2.0-py3-none-any.whl" in listed(mirror_dir, "alpha")
    assert sync(make_config(projects=["alpha"], prereleases=True)).changed
    assert "alpha-2.1b1-py3-none-any.whl" in listed(mirror_dir, "alpha")


def test_an_engine_whose_selection_rules_changed_reselects_without_a_config_change(make_config, sync, monkeypatch):
    """An upgrade that makes the same config select other files (latest per target) applies on the next run,
    even to projects whose upstream answers 304, as a config change does."""

    assert sync(make_config(latest=1)).ok
    selections = []
    monkeypatch.setattr(sync_module, "select_files", lambda *args: selections.append(args[1]) or select_files(*args))
    assert not sync(make_config(latest=1)).changed
    assert selections == []  # settled: the 304 costs no selection
    monkeypatch.setattr(config_module, "SELECTION_RULES", config_module.SELECTION_RULES + 1)
    again = sync(make_config(latest=1))
    assert again.ok and not again.changed
    assert selections == ["alpha"]


def test_new_upstream_release_is_picked_up(make_config, sync, mirror_dir, catalog):
    config = make_config()
    assert sync(config).ok
    catalog.add_wheel("alpha", "3.0")
    result = sync(config)
    assert result.changed and result.added == ["alpha-3.0-py3-none-any.whl"]
    assert "alpha-3.0-py3-none-any.whl" in listed(mirror_dir, "alpha")


def test_server_errors_and_truncated_bodies_are_retried(make_config, sync, mirror_dir, upstream, catalog):
    faults = upstream.server.faults
    faults.fail_status["/simple/alpha/"] = 2
    faults.fail_status["alpha-1.0.tar.gz"] = 2
    faults.truncate["alpha-2.0-py3-none-any.whl"] = 2
    result = sync(make_config(retries=3))
    assert result.ok, result.failures
    assert_pages_point_at_complete_files(mirror_dir)
    assert faults.truncate["alpha-2.0-py3-none-any.whl"] == 0


def test_a_file_that_never_verifies_is_not_published_and_is_named(make_config, sync, mirror_dir, upstream):
    upstream.server.faults.wrong_hash.add("alpha-1.1-py3-none-any.whl")
    upstream.server.faults.truncate["alpha-1.0.tar.gz"] = 99
    result = sync(make_config(retries=1))
    assert not result.ok
    assert any("alpha-1.1-py3-none-any.whl" in line and "mismatch" in line for line in result.failures)
    assert not any("export --verify" in line for line in result.failures)  # that is for a disk's copy
    assert any("alpha-1.0.tar.gz" in line for line in result.failures)
    names = listed(mirror_dir, "alpha")
    assert "alpha-1.1-py3-none-any.whl" not in names and "alpha-1.0.tar.gz" not in names
    assert "alpha-2.0-py3-none-any.whl" in names  # the rest is still served
    published = [f for _, _, files in os.walk(os.path.join(mirror_dir, "web", "packages")) for f in files]
    assert "alpha-1.1-py3-none-any.whl" not in published and "alpha-1.0.tar.gz" not in published
    assert os.listdir(os.path.join(mirror_dir, "tmp")) == []
    # once the upstream is fixed, the next run completes without any force flag
    upstream.server.faults.wrong_hash.clear()
    upstream.server.faults.truncate.clear()
    again = sync(make_config(retries=1))
    assert again.ok, again.failures
    assert "alpha-1.1-py3-none-any.whl" in listed(mirror_dir, "alpha")


@pytest.mark.parametrize("html_only", [False, True], ids=["json", "html"])
def test_an_index_that_gives_only_md5_is_mirrored_with_weak_hashes_and_verified_by_it(make_config, sync,
                                                                                    mirror_dir, upstream,
                                                                                    html_only):
    """pypiserver before 2.0 gives md5 unless started with --hash-algo sha256, and pip and uv verify by it. The
    mirror refused every such file, one warning each, with no way round. Now weak_hashes verifies them by md5; a
    file whose md5 does not match is not published; the pages give the sha256 of the bytes verified."""
    upstream.server.faults.html_only = html_only
    upstream.server.faults.hash_algo = "md5"
    refused = sync(make_config(projects=["gamma"]))
    assert not listed(mirror_dir, "gamma")
    assert refused.warnings == [
        f"project gamma: gamma-{version}-py3-none-any.whl: the index gives only an md5 hash, which the mirror "
        f"verifies by only with weak_hashes (pypiserver before 2.0 gives md5 unless started with --hash-algo "
        f"sha256)"
        for version in ("1.0", "0.5")] + ["project gamma: no file matches the config, and 2 files of it were "
                                          "refused (above); clients will find none"]
    upstream.server.faults.wrong_hash.add("gamma-0.5-py3-none-any.whl")
    weak = sync(make_config(projects=["gamma"], weak_hashes=True))  # the pages did not change: the config did
    assert len(weak.failures) == 1 and re.fullmatch(
        rf"project gamma: gamma-0\.5-py3-none-any\.whl: md5 mismatch \(index says "
        rf"{hashlib.md5(b'not the file').hexdigest()[:16]}…, got [0-9a-f]{{16}}…\); not published", weak.failures[0])
    assert listed(mirror_dir, "gamma") == ["gamma-1.0-py3-none-any.whl"]
    upstream.server.faults.wrong_hash.clear()
    assert sync(make_config(projects=["gamma"], weak_hashes=True)).ok
    assert listed(mirror_dir, "gamma") == ["gamma-0.5-py3-none-any.whl", "gamma-1.0-py3-none-any.whl"]
    assert_pages_point_at_complete_files(mirror_dir)  # their sha256, computed here, is the files'
    assert all(len(entry["hashes"]["sha256"]) == 64 for entry in page(mirror_dir, "gamma")["files"])


def test_a_weak_hash_is_asked_for_as_a_checksum_as_a_fips_host_requires(tmp_path, monkeypatch):
    """A FIPS-mode OpenSSL (RHEL's) refuses md5 unless Python says it is not for security."""
    real_new = hashlib.new

    def fips_new(name, data=b"", **options):
        if name in ("md5", "sha1") and options.get("usedforsecurity", True):
            raise ValueError(f"[digital envelope routines] unsupported: {name}")
        return real_new(name, data, **options)

    monkeypatch.setattr(hashlib, "new", fips_new)
    digest = fetch.Digest("md5")
    digest.update(b"wheel bytes")
    (tmp_path / "file").write_bytes(b"wheel bytes")
    assert digest.hexdigest() == fetch.hash_file(str(tmp_path / "file"), "md5") == \
        real_new("md5", b"wheel bytes").hexdigest()


def test_weak_hashes_off_leaves_every_selection_fingerprint_as_it_was(monkeypatch):
    """An engine that knows weak_hashes must not re-evaluate every project of a mirror made before it: with the
    option off, a project's fingerprint is the one the engine before it recorded (computed by that engine, whose
    selection rules were the 2nd; a later raise of them re-evaluates every project on purpose)."""
    monkeypatch.setattr(config_module, "SELECTION_RULES", 2)
    base = {"directory": "/srv/mirror", "upstream": "http://127.0.0.1:1/simple/", "projects": ["alpha"]}
    before = "80b021481ec3d7809b8cb9fd3447a349a6cef1805a285d5ee56a7b39eb5dc3b2"
    for extra in ({}, {"weak_hashes": False}):
        config = build_config({**base, **extra})
        assert config.selection_fingerprint(config.projects[0]) == before
    config = build_config({**base, "weak_hashes": True})
    assert config.selection_fingerprint(config.projects[0]) != before


def uploaded_ago(seconds: float, now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now - seconds))


def test_exclude_newer_as_an_age_mirrors_a_release_once_it_is_that_old(make_config, sync, mirror_dir, upstream,
                                                                       catalog):
    """A cooldown: a release uploaded a day ago waits six more days. Its page does not change meanwhile, and a
    project whose page did not change is not selected again; the record says when to, and the run that comes
    after that moment takes the release, with no request more than the others."""
    now = time.time()
    for filename in ("alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"):
        catalog.find(filename).upload_time = uploaded_ago(86400, now)
    catalog.touch("alpha")
    config = make_config(projects=["alpha"], exclude_newer="7d")
    first = sync(config, clock=lambda: now)
    assert first.ok and first.warnings == [] and "alpha-2.0.tar.gz" not in listed(mirror_dir, "alpha")
    assert "alpha-1.1.tar.gz" in listed(mirror_dir, "alpha")
    assert first.stats.projects_held_back == 1
    waiting = sync(config, clock=lambda: now + 5 * 86400)  # 6 days old: not yet
    assert not waiting.changed and waiting.stats.projects_held_back == 1
    assert waiting.stats.held_back_until == first.stats.held_back_until
    ripe = sync(config, clock=lambda: now + 6 * 86400 + 60)
    assert ripe.ok and ripe.changed and sorted(ripe.added) == ["alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"]
    assert (ripe.stats.projects_held_back, ripe.stats.held_back_until) == (0, None)
    assert ripe.stats.upstream_requests == first.stats.upstream_requests  # the page was answered 304
    assert not sync(config, clock=lambda: now + 6 * 86400 + 120).changed
    # a fixed moment never ripens; and a config change takes effect at once, as any other does
    fixed = sync(make_config(projects=["alpha"], exclude_newer="2025-06-01", prune=True, prune_max_fraction=1))
    assert fixed.ok and sorted(fixed.removed) == ["alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"]


def test_exclude_newer_except_mirrors_a_release_before_the_cooldown_ends(make_config, sync, mirror_dir, catalog):
    """A security fix wanted today: the project named is mirrored whole, the others still wait, and the
    resolution sees the new release too (gamma's alpha>=1.1 picks alpha 2.0)."""
    now = time.time()
    for filename in ("alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz", "beta-1.0.tar.gz"):
        catalog.find(filename).upload_time = uploaded_ago(3600, now)
    catalog.touch("alpha")
    catalog.touch("beta")
    held = sync(make_config(projects=["alpha", "beta"], exclude_newer="7d"), clock=lambda: now)
    assert held.ok and "alpha-2.0.tar.gz" not in listed(mirror_dir, "alpha")
    assert "beta-1.0.tar.gz" not in listed(mirror_dir, "beta")
    excepted = sync(make_config(projects=["alpha", "beta"], exclude_newer="7d", exclude_newer_except=["Alpha"]),
                    clock=lambda: now)
    assert excepted.ok and sorted(excepted.added) == ["alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"]
    assert "beta-1.0.tar.gz" not in listed(mirror_dir, "beta")
    resolved = sync(make_config(projects=["gamma"], dependencies=True, resolution="pinned", python_versions=["3.12"],
                                platforms=["manylinux_2_28_x86_64"], exclude_newer="7d",
                                exclude_newer_except=["al*"], prune=True, prune_max_fraction=1), clock=lambda: now)
    assert resolved.ok, resolved.failures
    assert listed(mirror_dir, "alpha") == ["alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"]


def test_exclude_newer_leaves_out_what_the_index_gives_no_upload_time_for(make_config, sync, mirror_dir, upstream):
    upstream.server.faults.html_only = True  # HTML pages give no upload time
    result = sync(make_config(projects=["gamma"], exclude_newer="7d"))
    assert listed(mirror_dir, "gamma") == []
    assert result.warnings == [
        "project gamma: no file matches the config; clients will find none (check its specifiers, package_types, "
        "python_versions, platforms and exclude_newer)",
        "project gamma: exclude_newer leaves out 2 files the index gives no upload time for (PEP 700; pages in "
        "HTML give none): gamma-1.0-py3-none-any.whl, gamma-0.5-py3-none-any.whl"]


def test_exclude_newer_tells_undated_files_once_for_a_whole_mirror(make_config, sync, mirror_dir, upstream):
    """A full mirror of an upstream that serves only HTML would otherwise get a warning per project: thousands
    of lines in the journal where one says it all."""
    upstream.server.faults.html_only = True
    result = sync(make_config(projects=["*"], exclude_newer="7d"))
    assert result.ok, result.failures
    undated = [warning for warning in result.warnings if "no upload time" in warning]
    assert len(undated) == 1, result.warnings
    assert re.fullmatch(r"exclude_newer leaves out (\d+) files the index gives no upload time for \(PEP 700; "
                        r"pages in HTML give none\), in (\d+) projects: alpha \(\d+\), beta \(\d+\), .*",
                        undated[0]), undated[0]


def test_a_resolution_under_exclude_newer_sees_only_the_releases_old_enough(make_config, sync, mirror_dir,
                                                                            catalog):
    """As uv's --exclude-newer: newer releases are as if they did not exist, and the resolver picks among the
    rest (alpha 1.1 for gamma's alpha>=1.1, not 2.0)."""
    now = time.time()
    for filename in ("alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"):
        catalog.find(filename).upload_time = uploaded_ago(3600, now)
    result = sync(make_config(projects=["gamma"], dependencies=True, resolution="pinned", python_versions=["3.12"],
                              platforms=["manylinux_2_28_x86_64"], exclude_newer="1d"), clock=lambda: now)
    assert result.ok, result.failures
    assert listed(mirror_dir, "alpha") == ["alpha-1.1-py3-none-any.whl", "alpha-1.1.tar.gz"]


def test_hostile_filenames_are_refused_and_never_echoed(make_config, sync, mirror_dir, upstream):
    upstream.server.faults.unsafe_listing = ["../../../evil.whl", "/etc/passwd", "<script>alert(1)</script>.whl"]
    result = sync(make_config())
    assert result.ok  # refused input is a warning; what could be verified is published
    assert result.stats.files_refused == 3 and len(result.warnings) == 3
    assert "alpha-2.0-py3-none-any.whl" in listed(mirror_dir, "alpha")
    for name in ("index.html", "index.v1_json"):
        text = page(mirror_dir, "alpha", name) if name.endswith("html") else json.dumps(page(mirror_dir, "alpha"))
        assert "<script>" not in text and "evil" not in text and "passwd" not in text
    assert not os.path.exists(os.path.join(mirror_dir, "evil.whl"))
    assert not os.path.exists(os.path.join(mirror_dir, "web", "evil.whl"))


def test_missing_project_fails_that_project_only(make_config, sync, mirror_dir):
    result = sync(make_config(projects=["alpha", "no-such-project"]))
    assert not result.ok
    assert result.failures == [
        f"project no-such-project: not found upstream (HTTP 404 at {make_config().upstream}no-such-project/)"]
    assert "alpha-2.0-py3-none-any.whl" in listed(mirror_dir, "alpha")


def test_unreachable_upstream_and_unusable_directory_abort_before_writing(make_config, sync, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SyncAbort, match=f"upstream http://127.0.0.1:{port}/simple/: unreachable"):
        sync(make_config(upstream=f"http://127.0.0.1:{port}/simple/", retries=0))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SyncAbort, match="cannot create"):
        sync(make_config(directory=str(blocker / "mirror")))


def test_root_refuses_to_write_a_mirror_another_user_owns(make_config, sync, mirror_dir, monkeypatch):
    """The timer runs as the service user; a manual run as root would leave root's directories (a new project's
    page directory, new hash shards) where every later timer run fails to write. Reading stays allowed."""
    os.makedirs(mirror_dir)
    if os.geteuid() == 0:  # make the tree another user's, as the sync role makes it the service user's
        os.chown(mirror_dir, 4242, -1)
    owner = os.stat(mirror_dir).st_uid
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(SyncAbort, match=rf"directory {mirror_dir} belongs to .*, and this run is root's: .*"
                                        r"run as .* \(sudo -u .*\)"):
        sync(make_config())
    assert os.listdir(mirror_dir) == []  # refused before it created anything
    assert sync(make_config(), check_mode=True).ok  # a check-mode run writes nothing, so it may run
    monkeypatch.setattr(os, "geteuid", lambda: owner)
    assert sync(make_config()).ok  # the owner's own run


def test_a_resolving_run_without_resolvelib_stops_before_writing(make_config, sync, mirror_dir, monkeypatch):
    """resolvelib is imported only by runs that resolve: a Python without it (a checkout's) must get one line
    naming what to install, before the run creates anything, not a traceback half-way through."""
    import localpypi_sync  # noqa: PLC0415

    monkeypatch.setitem(sys.modules, "resolvelib", None)  # what an interpreter without it raises on import
    for submodule in ("resolve", "metadata"):
        monkeypatch.delitem(sys.modules, f"localpypi_sync.{submodule}", raising=False)
        monkeypatch.delattr(localpypi_sync, submodule, raising=False)
    with pytest.raises(SyncAbort, match=r"^dependencies: true needs resolvelib, which .* "
                                        r"cannot import .*requirements\.txt.*; nothing written$"):
        sync(make_config(projects=["gamma"], dependencies=True, python_versions=["3.12"],
                         platforms=["manylinux_2_28_x86_64"]))
    assert not os.path.exists(mirror_dir)


def test_check_mode_reports_the_plan_and_writes_nothing(make_config, sync, mirror_dir, upstream):
    result = sync(make_config(projects=["alpha", "gamma"]), check_mode=True)
    assert result.changed and result.check_mode
    assert "alpha-2.0-py3-none-any.whl" in result.added and result.stats.files_downloaded == len(result.added)
    assert not os.path.exists(mirror_dir)
    assert not any(path.startswith("/packages/") for _, path in upstream.server.requests)
    real = sync(make_config(projects=["alpha", "gamma"]))
    assert real.ok and result.stats.files_published == real.stats.files_published > 0  # the files to come count
    assert not sync(make_config(projects=["alpha", "gamma"]), check_mode=True).changed


def test_prune_removes_what_no_longer_matches_and_respects_the_cap(make_config, sync, mirror_dir, catalog):
    assert sync(make_config(projects=["alpha", "gamma"])).ok
    gone = catalog.find("alpha-1.0-py3-none-any.whl")
    catalog.remove_file("alpha-1.0-py3-none-any.whl")
    kept = sync(make_config(projects=["alpha", "gamma"]))  # prune off: the copy stays served
    assert kept.ok and "alpha-1.0-py3-none-any.whl" in listed(mirror_dir, "alpha")
    # a narrowing that would delete most of the mirror is refused and nothing is lost; a check says so first
    narrowed = make_config(projects=["alpha>=2", "gamma"], prune=True, prune_max_fraction=0.2)
    checked = sync(narrowed, check_mode=True)
    assert not checked.ok and "prune refused" in checked.failures[0] and not checked.removed
    assert checked.stats.files_published == kept.stats.files_published
    refused = sync(narrowed)
    assert not refused.ok and "prune refused" in refused.failures[0]
    assert "alpha-1.0-py3-none-any.whl" in listed(mirror_dir, "alpha")
    # a refused prune changes nothing, and neither run says otherwise
    for run in (checked, refused):
        assert not run.changed and run.stats.projects_changed == 0, run.log
        assert "event=project " not in run.log and "result=failed changed=False " in run.log
    assert os.path.isfile(os.path.join(mirror_dir, "web", gone.url_path.lstrip("/")))
    assert "deleted" not in MirrorState(mirror_dir).load_project("alpha")  # still served: no deletion on record
    # within the cap (or forced) it goes, from the page first and then from the disk
    forced = make_config(projects=["alpha>=2", "gamma"], prune=True, force_prune=True)
    predicted = sync(forced, check_mode=True)
    pruned = sync(forced)
    assert pruned.ok, pruned.failures
    assert predicted.stats.files_published == pruned.stats.files_published < kept.stats.files_published
    assert listed(mirror_dir, "alpha") == ["alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"]
    assert "alpha-1.0-py3-none-any.whl" in pruned.removed
    # on record, so that an older page (a lagging cache, an older disk) does not bring it back; not the files
    # the narrowed config dropped, which the upstream still has
    assert MirrorState(mirror_dir).load_project("alpha")["deleted"] == {gone.filename: pruned.stats.serial}
    assert "event=project project=alpha status=changed files=2 downloaded=0 bytes=0 removed=5\n" in pruned.log
    assert not os.path.exists(os.path.join(mirror_dir, "web", gone.url_path.lstrip("/")))
    assert not os.path.exists(os.path.join(mirror_dir, "web", gone.url_path.lstrip("/") + ".metadata"))
    assert_pages_point_at_complete_files(mirror_dir)
    # a project dropped from the config goes with prune
    dropped = sync(make_config(projects=["alpha>=2"], prune=True, prune_max_fraction=1.0))
    assert dropped.ok and dropped.stats.projects_removed == 1
    assert not os.path.exists(os.path.join(mirror_dir, "web", "simple", "gamma"))
    with open(os.path.join(mirror_dir, "web", "simple", "index.v1_json")) as stream:
        root = json.load(stream)
    assert [p["name"] for p in root["projects"]] == ["alpha"]


def test_a_lagging_page_removes_nothing_until_the_upstream_catches_up(make_config, sync, mirror_dir, catalog):
    """A cache in front of the index answers with an older copy of a page (its serial below the one this mirror
    synced): prune keeps what that copy no longer lists, as the file was not deleted for it. Once the page is
    current, a file really deleted goes."""
    config = make_config(projects=["alpha"], prune=True, prune_max_fraction=1.0)
    assert sync(config).ok
    synced_serial = catalog.serials["alpha"]
    removed = catalog.find("alpha-1.0-py3-none-any.whl")
    catalog.remove_file(removed.filename)
    catalog.serials["alpha"] = synced_serial - 1  # the lagging copy: a page without it, from before
    lagging = sync(config)
    assert lagging.ok and not lagging.removed and removed.filename in listed(mirror_dir, "alpha")
    assert lagging.warnings == [f"prune kept 1 file of 1 project whose upstream pages are older than the ones this "
                                f"mirror last synced (serial below the newest on record): alpha ({synced_serial - 1} "
                                f"< {synced_serial}); a stale copy of the index removes nothing; if this upstream "
                                f"replaces the one the mirror followed, rerun with force_prune"]
    catalog.touch("alpha")  # current again, with a serial past the one on record
    caught_up = sync(config)
    assert caught_up.ok and caught_up.removed == [removed.filename] and not caught_up.warnings
    assert removed.filename not in listed(mirror_dir, "alpha")
    assert_pages_point_at_complete_files(mirror_dir)
    # the cache then answers with its copy from before the deletion, which lists the file: it stays deleted
    with catalog.lock:
        catalog.projects["alpha"].append(removed)
        catalog.by_url_path[removed.url_path] = removed
        catalog.serials["alpha"] = synced_serial
    older = sync(config)
    assert older.ok and not older.added and removed.filename not in listed(mirror_dir, "alpha")
    assert [line for line in older.warnings
            if line.startswith("left out 1 file of 1 project ") and f": alpha ({removed.filename}); " in line]


def test_an_upstream_that_answers_with_a_sign_in_page_fails_every_run_and_changes_nothing(make_config, sync,
                                                                                          mirror_dir, upstream):
    """A proxy whose login has expired answers every address with its own HTML page, 200 OK: no project page
    lists a file and the root lists no project. The runs said ok, wrote an empty page for a new project, and
    cached the sign-in page as the project's, so the next runs were ok too: a mirror that no longer follows its
    upstream passed for current. Now each run fails, naming the cause, and the pages stay as they were."""
    assert sync(make_config(projects=["alpha"])).ok
    served = listed(mirror_dir, "alpha")
    upstream.server.faults.sign_in_page = True
    question = (f"is {upstream.url} a package index? A proxy whose login has expired answers every address with "
                f"its own sign-in page")
    for _ in range(2):
        result = sync(make_config(projects=["alpha", "gamma"]))
        assert sorted(result.failures) == [
            f"project {name}: the upstream's page for it lists no package file, so its page here is left as it "
            f"was; {question}" for name in ("alpha", "gamma")]
        assert result.stats.files_published == len(served) and not result.changed
        assert listed(mirror_dir, "alpha") == served
        assert not os.path.exists(os.path.join(mirror_dir, "web", "simple", "gamma"))
    with pytest.raises(SyncAbort, match=re.escape(
            f"upstream project list: {upstream.url}: it is a sign-in page (a form that asks for a "
            f"password), not a list of projects; nothing synced; {question.replace(upstream.url, 'it')}")):
        sync(make_config(projects=["*"]))
    upstream.server.faults.sign_in_body = b"<html><body><h1>Service paused</h1></body></html>"  # and no form
    with pytest.raises(SyncAbort, match=re.escape(
            f"upstream {upstream.url}: its root index lists no project, so a full mirror has nothing to follow; "
            f"nothing synced; {question.replace(upstream.url, 'it')}")):
        sync(make_config(projects=["*"]))
    upstream.server.faults.sign_in_body = None
    resolved = sync(make_config(projects=["alpha"], dependencies=True, python_versions=["3.12"],
                                platforms=["manylinux_2_28_x86_64"]))
    assert resolved.failures == [f"target 3.12/manylinux_2_28_x86_64: no release of alpha satisfies alpha and "
                                 f"installs there (from projects[0]); the upstream lists no package file of alpha: "
                                 f"{question}"]
    upstream.server.faults.sign_in_page = False
    assert sync(make_config(projects=["alpha", "gamma"])).ok and listed(mirror_dir, "alpha") == served


def test_a_sign_in_page_with_links_is_no_list_of_projects(make_config, sync, mirror_dir, upstream):
    """A real sign-in page links its help and a password reset: a full mirror read those links as projects,
    published a page for each, and passed. The password field tells such a page from an index."""
    assert sync(make_config(projects=["*"])).ok
    with open(os.path.join(mirror_dir, "web", "simple", "index.html"), "rb") as stream:
        root_before = stream.read()
    upstream.server.faults.sign_in_page = True
    upstream.server.faults.sign_in_body = SIGN_IN_PAGE.replace(
        b"</body>", b"<p><a href='/help'>Help</a> <a href='/reset'>Forgot your password</a></p></body>")
    with pytest.raises(SyncAbort) as aborted:
        sync(make_config(projects=["*"]))
    assert str(aborted.value) == (
        f"upstream project list: {upstream.url}: it is a sign-in page (a form that asks for a "
        f"password), not a list of projects; nothing synced; is it a package index? A proxy whose login has "
        f"expired answers every address with its own sign-in page")
    with open(os.path.join(mirror_dir, "web", "simple", "index.html"), "rb") as stream:
        assert stream.read() == root_before
    assert not os.path.exists(os.path.join(mirror_dir, "web", "simple", "help"))


def mirrored_paths(mirror_dir, project):
    """The files a project's page names, as paths under web/."""
    return [os.path.normpath(os.path.join("simple", project, entry["url"])) for entry in
            page(mirror_dir, project)["files"]]


def test_a_quarantined_project_is_withdrawn_prune_or_not_and_asking_for_it_fails(make_config, sync, mirror_dir,
                                                                                 catalog):
    """PEP 792: an index that quarantines a project (malware, say) offers none of its files. The mirror, an
    index too, kept serving its copy and said on every run that the project's page "lists no package file" and
    asked whether the upstream was an index at all. Now its files are withdrawn, prune or not, its pages say
    why, and a config that asks for it fails on every run until the operator takes it out."""
    config = make_config(projects=["alpha", "gamma"])  # prune off
    assert sync(config).ok
    withdrawn = mirrored_paths(mirror_dir, "alpha")
    gamma_served = listed(mirror_dir, "gamma")
    catalog.set_status("alpha", "quarantined", "malware\nin 2.0")
    told = ("project alpha: the upstream quarantined it (malware in 2.0): it holds the project unsafe (PEP 792), as "
            "for malware, and offers none of its files")
    asked = "; take it out of the config until the upstream lifts the quarantine"
    checked = sync(config, check_mode=True)
    assert checked.failures == [f"{told}; would withdraw the {len(withdrawn)} files mirrored here{asked}"]
    assert checked.stats.files_removed == len(withdrawn) == len(checked.removed) and checked.changed
    assert all(os.path.isfile(os.path.join(mirror_dir, "web", path)) for path in withdrawn)
    run = sync(config)
    assert run.failures == [f"{told}; withdrew the {len(withdrawn)} files mirrored here{asked}"]
    assert run.changed and run.stats.files_removed == len(withdrawn) and run.stats.files_published == len(gamma_served)
    assert f"event=project project=alpha status=failed files=0 downloaded=0 bytes=0 removed={len(withdrawn)}\n" \
        in run.log
    assert not any(os.path.exists(os.path.join(mirror_dir, "web", path + suffix))
                   for path in withdrawn for suffix in ("", ".metadata"))
    document = page(mirror_dir, "alpha")
    assert document["files"] == [] and document["meta"]["api-version"] == "1.4"
    assert document["project-status"] == {"status": "quarantined", "reason": "malware in 2.0"}
    assert ('<meta name="pypi:repository-version" content="1.4">\n'
            '    <meta name="pypi:project-status" content="quarantined">\n'
            '    <meta name="pypi:project-status-reason" content="malware in 2.0">') in page(mirror_dir, "alpha",
                                                                                         "index.html")
    assert listed(mirror_dir, "gamma") == gamma_served
    assert_pages_point_at_complete_files(mirror_dir)
    again = sync(config)  # nothing left to withdraw; still asked for
    assert again.failures == [told + asked] and not again.changed and again.stats.files_removed == 0
    # nor is a selection of nothing also a warning to check the config: the failure says why
    narrowed = sync(make_config(projects=["alpha>=2", "gamma"]))
    assert narrowed.failures == [told + asked] and not narrowed.warnings
    # a full mirror follows the upstream: a quarantined project it was not asked for by name is no failure;
    # asked for by name, it is one on every run, also when the root index says nothing moved
    assert sync(make_config(projects=["*", "gamma"])).ok
    for _ in range(2):
        assert sync(make_config(projects=["*", "alpha"])).failures == [told + asked]
    catalog.set_status("alpha", "active")
    restored = sync(config)
    assert restored.ok and len(mirrored_paths(mirror_dir, "alpha")) == len(withdrawn)
    assert "project-status" not in page(mirror_dir, "alpha") and page(mirror_dir, "alpha")["meta"]["api-version"] == \
        "1.1"
    assert "pypi:project-status" not in page(mirror_dir, "alpha", "index.html")


def test_a_resolution_names_a_quarantined_dependency_and_its_files_are_withdrawn_all_the_same(make_config, sync,
                                                                                             mirror_dir, catalog):
    """A resolution with errors skips the prune, and a quarantined project is in no plan: its files stayed."""
    config = make_config(projects=["gamma"], dependencies=True, python_versions=["3.12"],
                         platforms=["manylinux_2_28_x86_64"], prune=True)
    assert sync(config).ok
    withdrawn = mirrored_paths(mirror_dir, "alpha")
    catalog.set_status("alpha", "quarantined")
    run = sync(config)
    note = "the upstream quarantined alpha: it holds the project unsafe (PEP 792), as for malware, and offers none of "
    assert run.failures == ["target 3.12/manylinux_2_28_x86_64: no release of gamma satisfies gamma and installs "
                            "there with what it needs (from projects[0]): gamma 1.0 needs alpha>=1.1, and no release "
                            f"of it installs there; {note}its files"]
    assert run.warnings[0].startswith("prune skipped this run")
    assert run.warnings[1] == (f"project alpha: {note.replace('alpha', 'it', 1)}its files; withdrew the "
                               f"{len(withdrawn)} files mirrored here")
    assert run.stats.files_removed == len(withdrawn) and page(mirror_dir, "alpha")["files"] == []
    assert not any(os.path.exists(os.path.join(mirror_dir, "web", path)) for path in withdrawn)


@pytest.mark.parametrize(("status", "reason", "read"), [
    ("Archived", " no longer\n\tmaintained ", ("archived", "no longer maintained")),
    ("active", "fine", None), (" ", None, None), (None, "why", None), (7, None, None),
    ("quarantined\n[ok]", None, None), ("deprecated", "\x1b[31mred\x1b[0m", ("deprecated", "[31mred[0m")),
    ("archived", "x" * 900, ("archived", "x" * 500))])
def test_a_status_marker_is_read_as_one_word_and_its_reason_as_one_printable_line(status, reason, read):
    """What an upstream sends goes into pages and log lines: a status that is no word is no status."""
    marker = upstream_module.ProjectStatus.read(status, reason)
    assert (marker and (marker.status, marker.reason)) == read


def test_a_record_whose_status_is_damaged_reads_as_no_status():
    page_record = {"name": "alpha", "files": [], "status": "quarantined"}  # a string where a mapping belongs
    assert upstream_module.ProjectPage.from_json(page_record).status is None
    assert sync_module._recorded_status({"page": page_record}) is None


@pytest.mark.parametrize("html_only", [False, True], ids=["json", "html"])
def test_a_full_mirror_withdraws_what_becomes_quarantined_with_a_warning(make_config, sync, mirror_dir, upstream,
                                                                        catalog, html_only):
    upstream.server.faults.html_only = html_only
    config = make_config(projects=["*"], prune=True, prune_max_fraction=0.01)  # a withdrawal is not a prune
    assert sync(config).ok
    withdrawn = mirrored_paths(mirror_dir, "beta")
    catalog.set_status("beta", "quarantined", "<b>typosquat</b>")
    run = sync(config)
    assert run.ok and run.changed and run.stats.files_removed == len(withdrawn)
    assert run.warnings == [f"project beta: the upstream quarantined it (<b>typosquat</b>): it holds the project "
                            f"unsafe (PEP 792), as for malware, and offers none of its files; withdrew the "
                            f"{len(withdrawn)} files mirrored here"]
    assert page(mirror_dir, "beta")["project-status"] == {"status": "quarantined", "reason": "<b>typosquat</b>"}
    assert ('<meta name="pypi:project-status-reason" content="&lt;b&gt;typosquat&lt;/b&gt;">'
            in page(mirror_dir, "beta", "index.html"))
    assert not any(os.path.exists(os.path.join(mirror_dir, "web", path)) for path in withdrawn)
    assert "beta" in [p["name"] for p in page(mirror_dir, "")["projects"]]  # its page says why it has no file
    quiet = sync(config)
    assert quiet.ok and not quiet.changed and not quiet.warnings


def test_an_archived_or_deprecated_project_keeps_its_files_and_its_pages_say_so(make_config, sync, mirror_dir,
                                                                               catalog):
    config = make_config(projects=["alpha", "gamma"])
    assert sync(config).ok
    served = listed(mirror_dir, "gamma")
    catalog.set_status("gamma", "archived", "no longer maintained")
    run = sync(config)
    assert run.ok and run.changed and run.stats.files_downloaded == 0 and not run.warnings
    assert listed(mirror_dir, "gamma") == served
    assert page(mirror_dir, "gamma")["project-status"] == {"status": "archived", "reason": "no longer maintained"}
    assert '<meta name="pypi:project-status" content="archived">' in page(mirror_dir, "gamma", "index.html")
    assert not sync(config).changed
    catalog.set_status("gamma", "deprecated")
    assert sync(config).changed and page(mirror_dir, "gamma")["project-status"] == {"status": "deprecated"}


def test_second_run_waits_for_or_refuses_the_lock(make_config, sync, mirror_dir):
    holder = MirrorState(mirror_dir)
    holder.lock(0)
    try:
        with pytest.raises(SyncAbort, match="another sync holds the lock"):
            sync(make_config())
        threading.Timer(0.5, holder.unlock).start()
        started = time.monotonic()
        assert sync(make_config(lock_timeout=30)).ok
        assert time.monotonic() - started >= 0.4
    finally:
        holder.unlock()


def test_existing_bandersnatch_tree_is_adopted_without_downloading(make_config, sync, mirror_dir, catalog):
    for entry in catalog.projects["alpha"]:
        target = os.path.join(mirror_dir, "web", entry.url_path.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(entry.disk_path, target)
    damaged = catalog.find("alpha-1.1.tar.gz")
    with open(os.path.join(mirror_dir, "web", damaged.url_path.lstrip("/")), "ab") as stream:
        stream.write(b"rot")
    with open(os.path.join(mirror_dir, "status"), "w") as stream:
        stream.write("12345\n")
    result = sync(make_config())
    assert result.ok
    assert result.stats.files_downloaded == 1 and result.added == ["alpha-1.1.tar.gz"]
    assert result.stats.files_reused == 6
    assert_pages_point_at_complete_files(mirror_dir)
    assert MirrorState(mirror_dir).bandersnatch_serial() == 12345


def test_a_full_disk_fails_each_download_once_without_retrying_it(make_config, sync, mirror_dir, upstream,
                                                                   monkeypatch):
    """ENOSPC is not the network's fault: fetching the file again cannot help, and each retry waits first."""
    def disk_full(self, chunk):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fetch._FdSink, "write", disk_full)
    result = sync(make_config(projects=["alpha"], retries=3))
    assert not result.ok and result.failures
    assert all("cannot write it to the mirror's disk: No space left on device (not retried)" in failure
               for failure in result.failures), result.failures
    fetched = [path for method, path in upstream.server.requests if method == "GET" and "/packages/" in path]
    assert fetched and len(fetched) == len(set(fetched))
    assert_pages_point_at_complete_files(mirror_dir)


def test_download_memory_does_not_grow_with_file_size(make_config, sync, catalog, mirror_dir):
    size = 32 * 1024 * 1024
    catalog.add_bytes("alpha", "alpha-9.0-py3-none-any.whl", os.urandom(size))  # incompressible
    tracemalloc.start()
    try:
        result = sync(make_config(projects=["alpha==9.0"], workers=1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok and result.stats.bytes_downloaded == size
    assert peak < size // 4  # streamed in chunks, never held whole


def test_a_large_download_is_handed_to_the_disk_as_it_comes(make_config, sync, catalog, mirror_dir, monkeypatch):
    """Writeback of a large file starts every WRITEBACK_EVERY bytes, so the fsync before the rename waits only
    for the tail: the ranges asked for are contiguous from the first byte."""
    monkeypatch.setattr(fetch, "WRITEBACK_EVERY", 1 << 20)
    monkeypatch.setattr(fetch, "SYNC_WITH_PROJECT_BELOW", 1 << 20)  # fsynced on its own, as a large file is
    requested: list[tuple[int, int]] = []
    monkeypatch.setattr(fetch, "writeback_starter",
                        lambda sync_file_range: lambda fd, offset, length: requested.append((offset, length)))
    size = (7 << 19) + 123  # 3.5 MiB and a bit
    catalog.add_bytes("alpha", "alpha-9.0-py3-none-any.whl", os.urandom(size))
    result = sync(make_config(projects=["alpha==9.0"], workers=1))
    assert result.ok and result.stats.bytes_downloaded == size
    ends = list(itertools.accumulate(length for _, length in requested))
    assert [offset for offset, _ in requested] == [0, *ends[:-1]]
    assert len(requested) == 3 and all(length >= 1 << 20 for _, length in requested)
    assert_pages_point_at_complete_files(mirror_dir)


def test_the_writeback_call_is_accepted_by_the_kernel(tmp_path):
    """sync_file_range is reached through ctypes: the kernel accepts the call as made (an unknown flag or a
    wrong binding would come back as -1), and refuses a bad descriptor."""
    start_writeback = fetch.writeback_starter(durable.sync_file_range_function())
    if start_writeback is None:
        pytest.skip("no sync_file_range on this system")
    with open(tmp_path / "data", "wb") as stream:
        stream.write(b"x" * 8192)
        stream.flush()
        assert start_writeback(stream.fileno(), 0, 8192) == 0
        assert start_writeback(stream.fileno(), 1 << 40, 1 << 20) == 0  # past the end: nothing to write
        assert start_writeback(-1, 0, 8192) == -1


def test_damaged_state_records_cost_a_reread_not_the_run(make_config, sync, mirror_dir):
    assert sync(make_config(projects=["alpha", "gamma"])).ok
    records = os.path.join(mirror_dir, "state", "projects")
    with open(os.path.join(records, "alpha.json"), "w") as stream:
        stream.write('{"name": "alpha", "published": [{"path": 1}]}')  # valid JSON, wrong shape
    with open(os.path.join(records, "gamma.json"), "w") as stream:
        stream.write("{truncated")
    result = sync(make_config(projects=["alpha", "gamma"]))
    assert result.ok, result.failures
    assert result.stats.files_downloaded == 0  # the files on disk are hashed and reused
    assert "alpha-2.0-py3-none-any.whl" in listed(mirror_dir, "alpha")
    assert sync(make_config(projects=["alpha", "gamma"])).stats.upstream_requests == 2


def test_archives_are_stored_as_served_even_when_labelled_gzip(make_config, sync, mirror_dir, upstream, catalog):
    """An Apache with AddEncoding x-gzip .gz labels sdists Content-Encoding: gzip; the index's hash is of
    the .tar.gz itself, so decoding would turn a good file into a hash mismatch."""
    sdist = next(f for f in catalog.projects["alpha"] if f.filename.endswith("-2.0.tar.gz"))
    upstream.server.faults.gzip_labelled.add(sdist.filename)
    result = sync(make_config())
    assert result.ok, result.failures
    stored = os.path.join(mirror_dir, "web", sdist.url_path.lstrip("/"))
    with open(stored, "rb") as stream:
        assert hashlib.sha256(stream.read()).hexdigest() == sdist.sha256


def test_published_files_are_world_readable_whatever_the_umask(make_config, sync, mirror_dir):
    """The web server, another user, reads what a run with a strict umask wrote: files 0644 and directories
    0755 (the engine skips chmod only where the umask already allows them)."""
    previous = os.umask(0o027)  # a hardened host's, which sudo -u passes on
    try:
        result = sync(make_config(projects=["alpha", "gamma"]))
    finally:
        os.umask(previous)
    assert result.ok, result.failures
    web = os.path.join(mirror_dir, "web")
    modes = {"dir": {}, "file": {}}
    for root, directories, files in os.walk(web):
        for kind, names in (("dir", directories), ("file", files)):
            modes[kind].update({os.path.relpath(os.path.join(root, name), web):
                                stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) for name in names})
    assert any(path.startswith("simple/") for path in modes["dir"]), modes  # pages' directories too
    assert set(modes["file"].values()) == {0o644}, modes["file"]
    assert set(modes["dir"].values()) == {0o755}, modes["dir"]


def test_public_directories_are_made_from_a_relative_path_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    previous = os.umask(0o077)
    try:
        make_public_directories(os.path.join("a", "b"))
    finally:
        os.umask(previous)
    assert [stat.S_IMODE(os.stat(path).st_mode) for path in ("a", os.path.join("a", "b"))] == [0o755, 0o755]


def test_a_hash_directory_removed_during_a_run_is_created_again(tmp_path):
    """The engine remembers which packages/aa/bb directories exist; one deleted meanwhile is made again."""
    web = tmp_path / "web"
    fetcher = Fetcher(http=None, web_dir=str(web), tmp_dir=str(tmp_path), max_bytes=None)
    first = web / "packages" / "ab" / "cd" / ("e" * 60) / "one-1.0.tar.gz"
    fetcher._make_parent(str(first))
    assert first.parent.is_dir()
    shutil.rmtree(web / "packages" / "ab")
    second = web / "packages" / "ab" / "cd" / ("f" * 60) / "two-1.0.tar.gz"
    fetcher._make_parent(str(second))
    assert second.parent.is_dir()


def test_a_worker_process_that_dies_fails_its_projects_and_the_next_run_completes(make_config, sync, mirror_dir,
                                                                                  monkeypatch):
    """Projects are shared among forked processes; one that dies costs the projects it held, named, and nothing
    it half-wrote is ever served."""
    original = SyncRun._process_project
    parent = os.getpid()

    def dies_on_gamma(self, name, serial):
        if name == "gamma" and os.getpid() != parent:
            os._exit(3)
        return original(self, name, serial)

    monkeypatch.setattr(SyncRun, "_process_project", dies_on_gamma)
    config = make_config(projects=["alpha", "gamma", "delta-thing", "beta"], processes=2)
    result = sync(config)
    assert not result.ok
    lost = [failure for failure in result.failures if "not synced" in failure]
    assert any(failure.startswith("project gamma: not synced: worker process") and "status 3" in failure
               for failure in lost), result.failures
    assert result.stats.projects_failed == len(lost) < 4
    assert_pages_point_at_complete_files(mirror_dir)
    assert not temp_files(mirror_dir)  # whatever the dead process was writing, its temp files are gone
    monkeypatch.setattr(SyncRun, "_process_project", original)
    again = sync(config)
    assert again.ok, again.failures
    assert listed(mirror_dir, "gamma")
    assert_pages_point_at_complete_files(mirror_dir)


@pytest.fixture
def large_project(catalog, monkeypatch, tmp_path):
    """A project with four "large" files (over a lowered threshold) and one small one; fetches are logged with
    the process that made them (forked workers inherit the patch)."""
    monkeypatch.setattr(sync_module, "LARGE_FILE_BYTES", 40_000)
    large = [catalog.add_bytes("huge", f"huge-{n}.0-py3-none-any.whl", os.urandom(50_000)).filename
             for n in range(4)]
    small = catalog.add_bytes("huge", "huge-0.1.tar.gz", os.urandom(1_000)).filename
    log = tmp_path / "fetches.log"
    original = Fetcher.fetch

    def logged(self, upstream_file, trusted, rehash):
        outcome = original(self, upstream_file, trusted, rehash)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"{os.getpid()} {upstream_file.filename}\n".encode())
        finally:
            os.close(fd)
        return outcome

    monkeypatch.setattr(Fetcher, "fetch", logged)

    def fetched_by() -> dict[str, set[int]]:
        found: dict[str, set[int]] = {}
        for line in log.read_text().splitlines() if log.exists() else []:
            pid, filename = line.split(" ", 1)
            found.setdefault(filename, set()).add(int(pid))
        return found

    return large, small, fetched_by


def test_one_projects_large_files_are_shared_among_processes(make_config, sync, mirror_dir, upstream, large_project,
                                                            monkeypatch, tmp_path):
    """A project's large downloads are not bound to the one process that read its page (and its interpreter
    lock): they wait for the end of the round, and then all processes take them, each its share at first
    even when the other process is slow to start."""
    large, small, fetched_by = large_project
    upstream.server.faults.delay_files = 0.5  # the first process cannot finish its share before the other starts
    reconnect = SyncRun._reconnect

    def second_starts_late(self):
        try:
            os.mkdir(tmp_path / "first-started")
        except FileExistsError:
            time.sleep(0.3)
        reconnect(self)

    monkeypatch.setattr(SyncRun, "_reconnect", second_starts_late)
    result = sync(make_config(projects=["huge"], processes=2, workers=8))
    assert result.ok, result.failures
    assert result.stats.files_downloaded == 5 and result.stats.projects_changed == 1
    assert "event=large_files files=4 processes=2" in result.log
    by = fetched_by()
    assert by[small] == {os.getpid()}  # read and fetched in this process: one project needs no other
    large_pids = set().union(*(by[name] for name in large))
    assert len(large_pids) == 2 and os.getpid() not in large_pids, by
    assert sorted(listed(mirror_dir, "huge")) == sorted([*large, small])
    assert_pages_point_at_complete_files(mirror_dir)
    upstream.server.faults.delay_files = 0
    again = sync(make_config(projects=["huge"], processes=2, workers=4))
    assert again.ok and again.stats.files_downloaded == 0 and not again.changed
    assert "event=large_files" not in again.log  # files in place are not downloads: nothing to share


def test_large_files_stay_in_the_project_with_one_process(make_config, sync, mirror_dir, large_project):
    fetched_by = large_project[2]
    result = sync(make_config(projects=["huge"], processes=1, workers=4))
    assert result.ok, result.failures
    assert "event=large_files" not in result.log
    assert set().union(*fetched_by().values()) == {os.getpid()}
    assert len(listed(mirror_dir, "huge")) == 5


def test_a_process_that_dies_on_a_shared_large_file_costs_only_what_it_held(make_config, sync, mirror_dir, upstream,
                                                                           large_project, monkeypatch):
    large = large_project[0]
    sharing = Fetcher.fetch
    parent = os.getpid()

    def dies_on_first(self, upstream_file, trusted, rehash):
        if upstream_file.filename == large[0] and os.getpid() != parent:
            os._exit(3)
        return sharing(self, upstream_file, trusted, rehash)

    monkeypatch.setattr(Fetcher, "fetch", dies_on_first)
    upstream.server.faults.delay_files = 0.5
    config = make_config(projects=["huge"], processes=2, workers=4)
    result = sync(config)
    assert not result.ok
    lost = [failure for failure in result.failures if ": not fetched: worker process" in failure]
    assert f"project huge: {large[0]}: not fetched: worker process" in " ".join(lost), result.failures
    assert all("status 3" in failure for failure in lost) and len(lost) == len(result.failures) < 4
    assert len(listed(mirror_dir, "huge")) == 5 - len(lost)  # the project is published with what came in
    assert_pages_point_at_complete_files(mirror_dir)
    assert not temp_files(mirror_dir)
    monkeypatch.setattr(Fetcher, "fetch", sharing)
    upstream.server.faults.delay_files = 0
    again = sync(config)
    assert again.ok, again.failures
    assert again.stats.files_downloaded == len(lost)
    assert len(listed(mirror_dir, "huge")) == 5
    assert_pages_point_at_complete_files(mirror_dir)


def disk_full_for_pages_of(project, monkeypatch):
    """Every write of that project's pages fails as on a full disk (ENOSPC, naming index.html)."""
    stage_project = Publisher.stage_project

    def full_for_one(self, name, files, serial, status=None):
        if name == project:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "index.html")
        return stage_project(self, name, files, serial, status)

    monkeypatch.setattr(Publisher, "stage_project", full_for_one)


def test_a_project_that_cannot_be_published_after_its_large_files_fails_alone(make_config, sync, mirror_dir,
                                                                              large_project, monkeypatch):
    """A project published after the shared phase fails like any other (a full disk, say): named, and the run
    goes on to the others."""
    disk_full_for_pages_of("huge", monkeypatch)
    result = sync(make_config(projects=["huge", "alpha"], processes=2, workers=4))
    assert result.failures == [f"project huge: {os.strerror(errno.ENOSPC)}: index.html"]
    assert result.stats.projects_failed == 1 and listed(mirror_dir, "alpha")
    assert "event=large_files files=4" in result.log


def test_a_page_that_cannot_be_written_leaves_no_temp_file_of_the_others(make_config, sync, mirror_dir,
                                                                         monkeypatch):
    """A project's pages are written beside the old ones before any is renamed: the disk full at its second
    page, the first is removed again and the project fails, named."""
    real_stage_write, staged = publish.stage_write, []

    def full_at_the_second(path, data, mode=0o644):
        staged.append(path)
        if len(staged) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.basename(path))
        return real_stage_write(path, data, mode)

    monkeypatch.setattr(publish, "stage_write", full_at_the_second)
    result = sync(make_config(projects=["alpha"]))
    assert result.failures == [f"project alpha: {os.strerror(errno.ENOSPC)}: index.v1_html"]
    assert result.stats.files_published == 0
    assert not temp_files(mirror_dir)
    assert not os.path.exists(os.path.join(mirror_dir, "web", "simple", "alpha"))


def test_a_pruning_project_whose_page_cannot_be_written_fails_alone_and_loses_nothing(make_config, sync, mirror_dir,
                                                                                        catalog, monkeypatch):
    """The disk full when a project's narrowed page is written: the project fails, named; its old page still
    serves every file it names; the others are synced, and the run's record is written."""
    assert sync(make_config(projects=["alpha", "gamma"])).ok
    served_before = listed(mirror_dir, "alpha")
    disk_full_for_pages_of("alpha", monkeypatch)
    catalog.add_bytes("gamma", "gamma-9.0.tar.gz", b"new release")
    result = sync(make_config(projects=["alpha>=2", "gamma"], prune=True, force_prune=True))
    assert result.failures == [f"project alpha: {os.strerror(errno.ENOSPC)}: index.html"]
    assert result.stats.projects_failed == 1 and not result.removed
    assert listed(mirror_dir, "alpha") == served_before
    assert "gamma-9.0.tar.gz" in listed(mirror_dir, "gamma")
    assert_pages_point_at_complete_files(mirror_dir)
    assert result.stats.files_published == len(served_before) + len(listed(mirror_dir, "gamma"))
    assert MirrorState(mirror_dir).load_last_run()["failures"] == result.failures
    monkeypatch.undo()
    assert sync(make_config(projects=["alpha>=2", "gamma"], prune=True, force_prune=True)).ok
    assert listed(mirror_dir, "alpha") == ["alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"]
    assert_pages_point_at_complete_files(mirror_dir)


def test_a_quarantined_project_whose_page_cannot_be_written_keeps_its_files_until_it_can(make_config, sync,
                                                                                        mirror_dir, catalog,
                                                                                        monkeypatch):
    """The files go only once no page names them: a page that cannot be rewritten withdraws nothing."""
    config = make_config(projects=["*"])
    assert sync(config).ok
    kept = mirrored_paths(mirror_dir, "beta")
    catalog.set_status("beta", "quarantined")
    with monkeypatch.context() as patched:
        disk_full_for_pages_of("beta", patched)
        failed = sync(config)
    assert [f.split(":")[0] for f in failed.failures] == ["project beta"] and not failed.warnings
    assert failed.stats.files_removed == 0 and not failed.removed and not failed.changed
    assert mirrored_paths(mirror_dir, "beta") == kept and all(
        os.path.isfile(os.path.join(mirror_dir, "web", path)) for path in kept)
    withdrawn = sync(config)
    assert withdrawn.ok and withdrawn.stats.files_removed == len(kept) and page(mirror_dir, "beta")["files"] == []


def test_a_root_page_or_run_record_that_cannot_be_written_is_a_failure_not_a_crash(make_config, sync, mirror_dir,
                                                                                     monkeypatch):
    """The disk full at the end of a run: one line that names what was not written, the run failed, and what
    was published stays."""
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "index.v1_json")

    monkeypatch.setattr(Publisher, "write_root", full)
    result = sync(make_config(projects=["alpha"]))
    assert result.failures == [f"root index: cannot write it: {os.strerror(errno.ENOSPC)}: index.v1_json"]
    assert listed(mirror_dir, "alpha") and MirrorState(mirror_dir).load_last_run()["failures"] == result.failures
    monkeypatch.undo()
    monkeypatch.setattr(MirrorState, "save_last_run", full)
    result = sync(make_config(projects=["alpha"]))
    assert result.failures == [f"the run's record: cannot write it: {os.strerror(errno.ENOSPC)}: index.v1_json"]
    assert os.path.isfile(os.path.join(mirror_dir, "web", "simple", "index.v1_json"))


def test_a_record_that_cannot_be_written_is_named(make_config, sync, mirror_dir, monkeypatch):
    """A write that fails on a full disk names no file; the failure says which one it was."""
    real_mkstemp = tempfile.mkstemp

    def full_for_records(prefix, dir):
        handle, path = real_mkstemp(prefix=prefix, dir=dir)
        if os.path.basename(dir) != "projects":
            return handle, path
        os.close(handle)
        return os.open("/dev/full", os.O_WRONLY), path  # every write: ENOSPC

    monkeypatch.setattr(tempfile, "mkstemp", full_for_records)
    result = sync(make_config(projects=["alpha"]))
    record = os.path.join(mirror_dir, "state", "projects", "alpha.json")
    assert result.failures == [f"project alpha: {os.strerror(errno.ENOSPC)}: {record}"]
    assert not temp_files(mirror_dir) and not os.listdir(os.path.dirname(record))


def test_a_failed_rename_keeps_the_pages_of_the_run_before(make_config, sync, mirror_dir, catalog, monkeypatch):
    """A page that cannot be renamed into place: a new project leaves no directory in simple/, and a project
    published before keeps its pages; neither leaves a temp file."""
    assert sync(make_config(projects=["alpha"])).ok
    alpha_page = os.path.join(mirror_dir, "web", "simple", "alpha", "index.html")
    before = open(alpha_page, "rb").read()
    catalog.add_bytes("alpha", "alpha-9.0.tar.gz", b"new release")
    real_replace = os.replace

    def refusing_pages(source, target):
        if os.path.basename(target) == "index.html" and os.path.basename(os.path.dirname(target)) != "simple":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), target)
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", refusing_pages)
    result = sync(make_config(projects=["alpha", "beta"]))
    assert sorted(failure.split(":")[0] for failure in result.failures) == ["project alpha", "project beta"]
    assert open(alpha_page, "rb").read() == before
    assert result.stats.files_published == len(listed(mirror_dir, "alpha"))  # the old page's, still served
    assert not os.path.exists(os.path.join(mirror_dir, "web", "simple", "beta"))
    assert not temp_files(mirror_dir)


def test_large_files_are_shared_in_rounds_so_their_projects_are_published_along_the_way(
        make_config, sync, mirror_dir, upstream, catalog, large_project, monkeypatch):
    """Once the projects read have left SHARE_AFTER_BYTES of large files, no new project starts until those
    are fetched and their projects published; the rest of the run goes on in a new round."""
    monkeypatch.setattr(sync_module, "SHARE_AFTER_BYTES", 1)  # every project with a large file ends a round
    later = catalog.add_bytes("zzlate", "zzlate-1.0-py3-none-any.whl", os.urandom(50_000)).filename
    small_projects = [catalog.add_bytes(f"small{n}", f"small{n}-1.0.tar.gz", b"x" * 100).project for n in range(8)]
    upstream.server.faults.delay_files = 0.2  # the round ends long before the last projects could be taken
    names = ["huge", *small_projects, "zzlate"]  # taken in name order
    result = sync(make_config(projects=names, processes=2, workers=2))
    assert result.ok, result.failures
    log = result.log.splitlines()
    shared = [number for number, line in enumerate(log) if line.startswith("event=large_files")]
    assert [log[number] for number in shared] == ["event=large_files files=4 processes=2",
                                                  "event=large_files files=1 processes=1"], result.log
    huge_done = next(number for number, line in enumerate(log) if line.startswith("event=project project=huge "))
    assert shared[0] < huge_done < shared[1]  # published before the run went on to the last project
    assert sum(line.startswith("event=processes") for line in log) >= 2
    assert result.stats.files_downloaded == 5 + 1 + 8 and result.stats.projects_changed == len(names)
    assert listed(mirror_dir, "zzlate") == [later]
    assert_pages_point_at_complete_files(mirror_dir)


def test_byte_identical_files_fetched_at_once_by_two_processes_do_not_share_a_temp_file(upstream, catalog,
                                                                                       tmp_path):
    """Two names, one hash, two forked processes at the same moment: a forked process's thread has the same
    identifier as its parent's, so the temp file's name must also carry the process."""
    data = os.urandom(100_000)
    twins = [catalog.add_bytes("twin", f"twin-{n}.0.tar.gz", data) for n in (1, 2)]
    upstream.server.faults.delay_files = 0.3  # both downloads are in flight together
    web, tmp = tmp_path / "web", tmp_path / "tmp"
    tmp.mkdir()
    fetcher = Fetcher(HttpClient(timeout=10, retries=0, pool_size=2), str(web), str(tmp), None)
    targets = [str(web / twin.filename) for twin in twins]
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's outcome is its exit status
        try:
            fetcher.download_verified(upstream.base + twins[1].url_path, targets[1], "sha256", twins[1].sha256, None)
        except BaseException:
            os._exit(1)
        os._exit(0)
    fetcher.download_verified(upstream.base + twins[0].url_path, targets[0], "sha256", twins[0].sha256, None)
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
    for target in targets:
        with open(target, "rb") as stream:
            assert stream.read() == data


def test_a_file_record_keeps_every_field_of_the_upstream_file():
    """Records are written field by field (for speed); a field added to UpstreamFile must reach them too."""
    original = UpstreamFile("alpha-1.0-py3-none-any.whl", "https://upstream.test/a/alpha-1.0-py3-none-any.whl",
                            {"sha256": "ab" * 32}, ">=3.9", "broken", 123, "2026-01-01T00:00:00Z",
                            {"sha256": "cd" * 32})
    record = json.loads(json.dumps(original.to_json()))
    assert list(record) == [field.name for field in dataclasses.fields(UpstreamFile)]
    assert UpstreamFile.from_json(record) == original


def test_a_connection_the_server_dropped_while_idle_is_replaced_without_a_retry(make_config, sync, mirror_dir,
                                                                                 upstream):
    """Workers keep their connections between downloads; a server may close one meanwhile without a word."""
    upstream.server.faults.drop_after_file = True
    result = sync(make_config(projects=["alpha", "gamma"], retries=0, workers=1, processes=1))
    assert result.ok, result.failures
    assert result.stats.files_downloaded > 2
    assert_pages_point_at_complete_files(mirror_dir)


def test_a_redirected_file_is_followed_and_verified(make_config, sync, mirror_dir, upstream, catalog):
    upstream.server.faults.redirect_files.add("alpha-2.0-py3-none-any.whl")
    result = sync(make_config(retries=0))
    assert result.ok, result.failures
    assert ("GET", "/moved" + catalog.find("alpha-2.0-py3-none-any.whl").url_path) in upstream.server.requests
    assert "alpha-2.0-py3-none-any.whl" in listed(mirror_dir, "alpha")
    assert_pages_point_at_complete_files(mirror_dir)


def test_https_upstream_is_verified_against_the_ca_bundle(catalog, tls_files, sync, mirror_dir):
    with serve_upstream(catalog, tls=tls_files) as secure:
        trusted = build_config({"upstream": secure.url, "directory": mirror_dir, "projects": ["alpha", "gamma"],
                                "ca_bundle": tls_files[0], "retries": 0})
        result = sync(trusted)
        assert result.ok, result.failures
        assert result.stats.files_downloaded > 2
        assert_pages_point_at_complete_files(mirror_dir)
        # The same server with the system's CAs only: the run stops, naming the certificate.
        untrusted = build_config({"upstream": secure.url, "directory": mirror_dir + "-2", "projects": ["alpha"],
                                  "retries": 0})
        with pytest.raises(SyncAbort, match=r"(?i)certificate"):
            sync(untrusted)


def temp_files(mirror_dir):
    return sorted(os.path.relpath(os.path.join(root, name), mirror_dir)
                  for root, _, files in os.walk(mirror_dir) for name in files if name.startswith(".tmp-"))


def test_the_run_after_a_killed_one_removes_the_temp_files_of_its_pages(make_config, sync, mirror_dir):
    assert sync(make_config()).ok
    leftovers = [os.path.join(mirror_dir, "web", "simple", "alpha", ".tmp-page"),
                 os.path.join(mirror_dir, "web", "simple", ".tmp-root"),
                 os.path.join(mirror_dir, "state", "projects", ".tmp-record")]
    for path in leftovers:
        with open(path, "w") as stream:
            stream.write("half")
    # A run that ended normally emptied the lock file: nothing is swept (it would cost a scan of every project).
    assert sync(make_config()).ok
    assert temp_files(mirror_dir) == sorted(os.path.relpath(path, mirror_dir) for path in leftovers)
    # A killed run leaves its holder's line in the lock file: the next run sweeps.
    with open(os.path.join(mirror_dir, "state", "lock"), "w") as stream:
        stream.write("pid 999999 since 2026-11-26T00:00:00Z")
    result = sync(make_config())
    assert result.ok, result.failures
    assert temp_files(mirror_dir) == []
    assert "removed_partial_pages=3" in result.log
