"""Why a project is in a dependency-closed mirror: each release, each target, each requirement that pulled it."""

from __future__ import annotations

from typing import Any, Optional

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .config import SyncConfig
from .names import file_version
from .select import TargetMatrix, slots_asking, slots_taking
from .upstream import UpstreamFile


def _version_key(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def explain(plan: Optional[dict[str, Any]], name: str, published: list[str]) -> tuple[bool, list[str]]:
    """(found, lines) for one project, from a plan as saved by a sync and the files it publishes."""
    project = canonicalize_name(name)
    if not plan:
        return False, ["no resolution on record: set dependencies: true and run a sync first"]
    versions = plan.get("pulls", {}).get(project)
    if not versions:
        lines = [f"{project} is not in the last resolution"]
        lines += [f"  but: {error}" for error in plan.get("errors", []) if project in error]
        return False, lines
    lines = [project]
    for version in sorted(versions, key=_version_key, reverse=True):
        files = sorted(f for f in published if str(file_version(f, project)) == str(_version_key(version)))
        lines.append(f"  {version}: {', '.join(files) if files else '(no file published yet)'}")
        for pull in sorted(versions[version], key=lambda p: (p["target"], p["by"])):
            lines.append(f"    {pull['target']}: {pull['requirement']}  <- {pull['by']}")
    return True, lines


def explain_selection(config: SyncConfig, matrix: TargetMatrix, name: str,
                      published: list[UpstreamFile]) -> tuple[bool, list[str]]:
    """(found, lines) for one project of a mirror without dependencies: each requirement and constraint on it with
    where it was written and the python x platform targets it holds on, then each published release's files and
    the targets each is there for. What a marker decides (a universal lock's fork by Python) is seen here."""
    project = canonicalize_name(name)
    rule = config.rule_for(project)
    if rule is None and not config.mirror_all:
        return False, [f"{project} is not asked for by the config (projects, requirements_files); with dependencies: "
                       f"true, explain also tells what pulled a dependency in"]
    every = len(matrix.each_slot)

    def where(labels: list[str]) -> str:
        return "every target" if len(labels) == every else ", ".join(labels) or "no target"

    lines = [f"{project}: taken by the config's requirements, per target (no dependency resolution)"]
    if rule is None:
        lines.append("  * (a full mirror): every release")
    else:
        origins = rule.origins or ("projects",) * len(rule.requirements)
        for requirement, origin in zip(rule.requirements, origins):
            lines.append(f"  {requirement}  ({origin}): {where(slots_asking(requirement, matrix))}")
    for line in config.constraint_lines_for(project):
        targets = where(slots_asking(line.requirement, matrix, constraint=True))
        lines.append(f"  constraint {line.requirement}  ({line.origin}): {targets}")
    taking = slots_taking(published, project, rule, config, matrix)
    by_version: dict[str, list[str]] = {}
    for filename in sorted(taking):
        by_version.setdefault(str(file_version(filename, project)), []).append(filename)
    if not by_version:
        lines.append("  (no file published yet)")
    for version in sorted(by_version, key=_version_key, reverse=True):
        lines.append(f"  {version}:")
        lines.extend(f"    {filename}: {where(taking[filename])}" for filename in by_version[version])
    return True, lines
