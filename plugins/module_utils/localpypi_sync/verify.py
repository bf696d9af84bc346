"""Re-hash every published file against the pages that name it."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from typing import Optional

from .fetch import hash_file
from .inventory import ServedFile, served_files, served_projects


@dataclasses.dataclass
class VerifyReport:
    files_checked: int = 0
    bytes_checked: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)
    bad_projects: set[str] = dataclasses.field(default_factory=set)

    def to_dict(self) -> dict:
        return {"ok": not self.problems, "files_checked": self.files_checked, "bytes_checked": self.bytes_checked,
                "problems": self.problems, "bad_projects": sorted(self.bad_projects)}


def _check(web_dir: str, served: ServedFile) -> tuple[int, list[str]]:
    problems = []
    path = os.path.join(web_dir, served.path)
    size = 0
    checks = [(path, served.sha256, served.filename)]
    if served.metadata_sha256:
        checks.append((path + ".metadata", served.metadata_sha256, served.filename + ".metadata"))
    for file_path, expected, label in checks:
        try:
            size += os.path.getsize(file_path)
            actual = hash_file(file_path)
        except FileNotFoundError:
            problems.append(f"project {served.project}: {label}: missing ({served.path})")
            continue
        if actual != expected:
            problems.append(f"project {served.project}: {label}: sha256 mismatch (page says {expected[:16]}…, "
                            f"file has {actual[:16]}…)")
    return size, problems


def verify_mirror(web_dir: str, workers: int, projects: Optional[set[str]] = None) -> VerifyReport:
    report = VerifyReport()
    root_page = os.path.join(web_dir, "simple", "index.html")
    if not os.path.isfile(root_page):  # every run that published writes it, even when it selected nothing
        report.problems.append(f"no mirror to verify: {root_page} does not exist (has a sync run here, and is "
                               "`directory` the mirror's?)")
        return report
    with concurrent.futures.ThreadPoolExecutor(workers, "verify") as pool:
        jobs = []
        for project in served_projects(web_dir):
            if projects is not None and project not in projects:
                continue
            try:
                jobs.extend((served, pool.submit(_check, web_dir, served))
                            for served in served_files(web_dir, project))
            except (OSError, ValueError, KeyError) as exc:
                report.problems.append(f"project {project}: unreadable index.v1_json: {exc}")
                report.bad_projects.add(project)
        for served, job in jobs:
            size, problems = job.result()
            report.files_checked += 1
            report.bytes_checked += size
            if problems:
                report.problems.extend(problems)
                report.bad_projects.add(served.project)
    return report
