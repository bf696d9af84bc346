"""Index pages: PEP 503/592/629/658/691/700/714 HTML and JSON, written atomically."""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import time
from html import escape
from typing import Iterable, Optional

from packaging.version import Version

from .fetch import PublishedFile
from .names import file_version
from .state import StagedWrite, atomic_write, discard_staged, read_json, stage_write
from .upstream import ProjectStatus, meta_serial

API_VERSION = "1.1"
STATUS_API_VERSION = "1.4"  # the version of a project page that carries a project status (PEP 792)
# In the order they are renamed into place, JSON last: a client negotiating JSON sees a new page only once the
# HTML one is there too.
PAGE_NAMES = ("index.html", "index.v1_html", "index.v1_json")


def _sort_key(published: PublishedFile) -> tuple[Version, str]:
    return (Version("0") if (v := file_version(published.upstream.filename, "")) is None else v,
            published.upstream.filename)


def _versions(project: str, files: Iterable[PublishedFile]) -> list[str]:
    found = {file_version(f.upstream.filename, project) for f in files}
    return [str(v) for v in sorted(v for v in found if v is not None)]


def file_href(published: PublishedFile) -> str:
    return posixpath.join("..", "..", published.path)


def _api_version(status: Optional[ProjectStatus]) -> str:
    """The page's repository version: 1.4 where it tells a project status (PEP 792), else 1.1."""
    return STATUS_API_VERSION if status else API_VERSION


def project_json(project: str, files: list[PublishedFile], serial: Optional[int],
                 status: Optional[ProjectStatus] = None) -> bytes:
    meta: dict = {"api-version": _api_version(status)}
    if serial is not None:
        meta["_last-serial"] = serial
    entries = []
    for published in files:
        source = published.upstream
        entry: dict = {
            "filename": source.filename,
            "url": file_href(published),
            "hashes": {"sha256": published.sha256},
            "requires-python": source.requires_python,
            "size": published.size,
            "yanked": source.yanked,
        }
        if source.upload_time:
            entry["upload-time"] = source.upload_time
        if published.metadata_sha256:
            entry["core-metadata"] = {"sha256": published.metadata_sha256}
            entry["data-dist-info-metadata"] = {"sha256": published.metadata_sha256}
        entries.append(entry)
    document = {"meta": meta, "name": project, "files": entries, "versions": _versions(project, files)}
    if status:
        document["project-status"] = status.to_json()
    return json.dumps(document, indent=1).encode()


def _status_meta(status: Optional[ProjectStatus]) -> list[str]:
    """PEP 792's meta tags for an HTML project page; none for an active project."""
    if status is None:
        return []
    lines = [f'    <meta name="pypi:project-status" content="{escape(status.status)}">']
    if status.reason:
        lines.append(f'    <meta name="pypi:project-status-reason" content="{escape(status.reason)}">')
    return lines


def project_html(project: str, files: list[PublishedFile], status: Optional[ProjectStatus] = None) -> bytes:
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{_api_version(status)}">',
        *_status_meta(status),
        f"    <title>Links for {escape(project)}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>Links for {escape(project)}</h1>",
    ]
    for published in files:
        source = published.upstream
        attributes = [f'href="{escape(file_href(published))}#sha256={published.sha256}"']
        if source.requires_python:
            attributes.append(f'data-requires-python="{escape(source.requires_python)}"')
        if source.yanked:
            reason = source.yanked if isinstance(source.yanked, str) else ""
            attributes.append(f'data-yanked="{escape(reason)}"')
        if published.metadata_sha256:
            attributes.append(f'data-core-metadata="sha256={published.metadata_sha256}"')
            attributes.append(f'data-dist-info-metadata="sha256={published.metadata_sha256}"')
        lines.append(f"    <a {' '.join(attributes)}>{escape(source.filename)}</a><br/>")
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines).encode()


def root_json(projects: list[str], serial: Optional[int]) -> bytes:
    meta: dict = {"api-version": API_VERSION}
    if serial is not None:
        meta["_last-serial"] = serial
    return json.dumps({"meta": meta, "projects": [{"name": name} for name in projects]}, indent=1).encode()


def root_html(projects: list[str]) -> bytes:
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        "    <title>Simple index</title>",
        "  </head>",
        "  <body>",
    ]
    lines += [f'    <a href="{escape(name)}/">{escape(name)}</a><br/>' for name in projects]
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines).encode()


class Publisher:
    def __init__(self, web_dir: str) -> None:
        self.web_dir = web_dir
        self.simple_dir = os.path.join(web_dir, "simple")

    def project_dir(self, project: str) -> str:
        return os.path.join(self.simple_dir, project)

    def stage_project(self, project: str, files: list[PublishedFile], serial: Optional[int],
                      status: Optional[ProjectStatus] = None) -> list[StagedWrite]:
        """The project's pages that change, written beside the old ones, not yet durable: the caller makes
        them durable with the files they name, then renames them in order (state.rename_staged)."""
        ordered = sorted(files, key=_sort_key)
        html = project_html(project, ordered, status)
        pages = {"index.html": html, "index.v1_html": html,
                 "index.v1_json": project_json(project, ordered, serial, status)}
        staged: list[StagedWrite] = []
        try:
            for path, page in self._changed_pages(self.project_dir(project), pages):
                staged.append(stage_write(path, page))
        except BaseException:
            discard_staged(staged)
            raise
        return staged

    def write_root(self, projects: list[str], serial: Optional[int]) -> bool:
        html = root_html(sorted(projects))
        pages = {"index.html": html, "index.v1_html": html, "index.v1_json": root_json(sorted(projects), serial)}
        changed = self._changed_pages(self.simple_dir, pages)
        for path, page in changed:
            atomic_write(path, page)
        return bool(changed)

    def root_serial(self) -> Optional[int]:
        """The `_last-serial` the published root page carries, if any."""
        return meta_serial(read_json(os.path.join(self.simple_dir, "index.v1_json")))

    @staticmethod
    def _changed_pages(directory: str, pages: dict[str, bytes]) -> list[tuple[str, bytes]]:
        """(path, content) of the pages whose content changes, in PAGE_NAMES' order."""
        return [(os.path.join(directory, name), pages[name]) for name in PAGE_NAMES
                if not _same_content(os.path.join(directory, name), pages[name])]

    def remove_project(self, project: str) -> None:
        shutil.rmtree(self.project_dir(project), ignore_errors=True)

    def remove_empty_project_dir(self, project: str) -> None:
        """Remove the project's directory if nothing is in it, as after a failed first commit."""
        try:
            os.rmdir(self.project_dir(project))
        except OSError:
            pass  # absent, or it holds the pages of an earlier run

    def write_last_modified(self, seconds: float) -> None:
        """web/last-modified as bandersnatch writes it (20261127T05:42:05): when the last successful sync began."""
        atomic_write(os.path.join(self.web_dir, "last-modified"),
                     time.strftime("%Y%m%dT%H:%M:%S\n", time.gmtime(seconds)).encode())


def _same_content(path: str, new: bytes) -> bool:
    """Compare a page on disk with its new text; a moved serial alone does not rewrite a JSON page."""
    try:
        with open(path, "rb") as stream:
            old = stream.read()
    except FileNotFoundError:
        return False
    if old == new:
        return True
    if not path.endswith("json"):
        return False
    try:
        old_doc, new_doc = json.loads(old), json.loads(new)
    except ValueError:
        return False
    old_doc.get("meta", {}).pop("_last-serial", None)
    new_doc.get("meta", {}).pop("_last-serial", None)
    return old_doc == new_doc
