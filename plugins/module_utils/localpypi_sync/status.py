"""What the mirror holds and how its last run went."""

from __future__ import annotations

import os
from typing import Any

from .inventory import served_page, served_projects
from .state import MirrorState


def _size_on_disk(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def mirror_status(root: str) -> dict[str, Any]:
    state = MirrorState(root)
    per_project: dict[str, dict[str, int]] = {}
    total_files = 0
    total_bytes = 0
    marked: dict[str, list[str]] = {}  # status (PEP 792) -> projects, as their pages tell it
    for project in served_projects(state.web):
        files = 0
        size = 0
        served_list, status = served_page(state.web, project)
        if status is not None:
            marked.setdefault(status, []).append(project)
        for served in served_list:
            # the size the page gives (verify checks the bytes); a metadata file's, which no page gives, on disk
            path = state.web + "/" + served.path
            size += served.size if served.size is not None else _size_on_disk(path)
            if served.metadata_sha256:
                size += _size_on_disk(path + ".metadata")
            files += 1
        per_project[project] = {"files": files, "bytes": size}
        total_files += files
        total_bytes += size
    last_run = state.load_last_run()
    partial_run = state.load_last_run(partial=True)  # a `--project` run or a repair since the last full run
    holder = state.lock_holder()
    serials = [record.get("stats", {}).get("serial") for record in (last_run, partial_run) if record]
    serial = max((s for s in serials if isinstance(s, int)), default=None)
    return {
        "directory": root,
        "last_run": last_run,
        "last_partial_run": partial_run,
        "last_abort": state.load_abort(),  # a run since both that stopped before syncing anything
        "lock": holder._asdict() if holder else None,  # the run in progress, or one killed that none has followed
        "serial": serial if serial is not None else state.bandersnatch_serial(),
        "bandersnatch_serial": state.bandersnatch_serial(),
        "projects": len(per_project),
        "files": total_files,
        "bytes": total_bytes,
        "per_project": per_project,
        "marked": {status: marked[status] for status in sorted(marked)},
    }
