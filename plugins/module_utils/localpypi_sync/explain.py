"""Why a project is in a dependency-closed mirror: each release, each target, each requirement that pulled it."""

from __future__ import annotations

from typing import Any, Optional

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .names import file_version


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
