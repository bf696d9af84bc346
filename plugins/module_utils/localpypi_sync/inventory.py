"""What the mirror serves, read back from its own published JSON pages (used by verify and status)."""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
from typing import Any, Iterator, Optional

from .upstream import ProjectStatus


@dataclasses.dataclass(frozen=True)
class ServedFile:
    project: str
    filename: str
    path: str  # relative to web/
    sha256: str
    metadata_sha256: Optional[str]
    size: Optional[int] = None  # as the page gives it (PEP 700)


def _relative_path(url: str) -> Optional[str]:
    """The page's relative URL (../../packages/...) as a path under web/, or None if it leaves web/."""
    url = url.split("#", 1)[0]
    if url.startswith("../../packages/") and "/." not in url[5:] and "//" not in url:  # as this engine writes
        return url[6:]
    path = posixpath.normpath(posixpath.join("simple", "project", url))
    if path.startswith("..") or path.startswith("/") or not path.startswith("packages/"):
        return None
    return path


def served_projects(web_dir: str) -> list[str]:
    simple = os.path.join(web_dir, "simple")
    if not os.path.isdir(simple):
        return []
    return sorted(entry.name for entry in os.scandir(simple)
                  if entry.is_dir() and os.path.isfile(os.path.join(entry.path, "index.v1_json")))


def _served_document(web_dir: str, project: str) -> dict[str, Any]:
    with open(os.path.join(web_dir, "simple", project, "index.v1_json"), "rb") as stream:
        return json.load(stream)


def served_page(web_dir: str, project: str) -> tuple[list[ServedFile], Optional[str]]:
    """The files the project's page serves, and the status marker it tells (PEP 792), None when active."""
    document = _served_document(web_dir, project)
    status = ProjectStatus.from_json(document.get("project-status"))
    return list(_files_of(document, project)), status.status if status else None


def served_files(web_dir: str, project: str) -> Iterator[ServedFile]:
    return _files_of(_served_document(web_dir, project), project)


def _files_of(document: dict[str, Any], project: str) -> Iterator[ServedFile]:
    for entry in document.get("files", []):
        path = _relative_path(entry.get("url", ""))
        if path is None:
            continue
        metadata = entry.get("core-metadata")
        size = entry.get("size")
        yield ServedFile(project, entry["filename"], path, entry.get("hashes", {}).get("sha256", ""),
                         metadata.get("sha256") if isinstance(metadata, dict) else None,
                         size if isinstance(size, int) and not isinstance(size, bool) else None)
