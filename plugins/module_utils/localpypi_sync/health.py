"""Whether the mirror is current, as a monitoring check asks it: from the run records alone, never a walk of
the tree, so a check every few minutes costs nothing even on a full mirror."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Optional

from .report import few
from .state import SYNC_TASK, MirrorState, timestamp_seconds
from .timespec import format_duration


@dataclasses.dataclass
class Health:
    problems: list[str]
    summary: str  # what the last run did, when all is well
    last_run_finished: Optional[str] = None
    age_seconds: Optional[float] = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **dataclasses.asdict(self)}


def _failed_run(what: str, record: dict[str, Any], since: str = "") -> str:
    failures = record.get("failures") or []
    first = f"; the first: {failures[0]}" if failures else ""
    return f"{what}, finished {record.get('finished', '?')}, failed ({len(failures)} errors){since}{first}"


def _since_success(record: dict[str, Any], now: float) -> str:
    """How long the mirror has gone without a run with no error, for the line of a failed run."""
    success = record.get("last_success")
    seconds = timestamp_seconds(success)
    if seconds is None:
        return "; no run with no error is on record"
    return f"; the last with no error finished {success}, {format_duration(max(0.0, now - seconds))} ago"


def mirror_health(root: str, max_age: Optional[float], now: Optional[float] = None) -> Health:
    """The problems a monitoring check reports: no run yet, a failed run, one that stopped before syncing,
    none finished within max_age, or a run that took the lock longer ago than that (hung, or killed)."""
    now = time.time() if now is None else now
    state = MirrorState(root)
    last = state.load_last_run()
    problems: list[str] = []
    health = Health(problems, "")
    if last is None:
        problems.append(f"no run over every configured project has finished in {root} yet")
    else:
        finished = timestamp_seconds(last.get("finished"))
        health.last_run_finished = last.get("finished")
        health.age_seconds = None if finished is None else max(0.0, now - finished)
        age = "" if health.age_seconds is None else f", {format_duration(health.age_seconds)} ago"
        if not last.get("ok"):
            problems.append(_failed_run("the last run", last, _since_success(last, now)))
        if max_age is not None and (health.age_seconds is None or health.age_seconds > max_age):
            problems.append(f"the last run finished {last.get('finished', 'at an unreadable time')}{age}, "
                            f"over --max-age {format_duration(max_age)}")
        stats = last.get("stats") or {}
        health.summary = (f"the last run finished {last.get('finished')}{age}: {stats.get('projects', '?')} "
                          f"projects, {stats.get('files_published', '?')} files")
    partial = state.load_last_run(partial=True)
    if partial and not partial.get("ok"):
        problems.append(_failed_run(f"a run since then over only {few(partial.get('only_projects') or [], 5)}",
                                    partial))
    abort = state.load_abort()
    if abort:
        problems.append(f"the last attempt, at {abort.get('started', '?')}, stopped before syncing: "
                        f"{abort.get('reason', '?')}")
    holder = state.lock_holder()
    if holder and max_age is not None:
        held = timestamp_seconds(holder.since)
        if held is not None and now - held > max_age:
            held_for = f"{format_duration(now - held)}, over --max-age"
            problems.append(
                f"pid {holder.pid}{holder.doing} has held the lock since {holder.since}, {held_for}: "
                f"{'a run that hangs' if holder.task == SYNC_TASK else 'it hangs, or the syncs wait for it'}"
                if holder.running else
                f"pid {holder.pid}{holder.doing}, which runs no more, took the lock at {holder.since}, {held_for}: a "
                f"run killed, or cut short by a restart, that no run has followed"
                + ("" if holder.task == SYNC_TASK else f"; {holder.to_finish}"))
    return health
