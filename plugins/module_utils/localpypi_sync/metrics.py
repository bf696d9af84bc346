"""The run records as Prometheus metrics, for node_exporter's textfile collector. Read from the records alone,
as the health check reads them, so writing them after every run costs nothing even on a full mirror."""

from __future__ import annotations

import time
from typing import Any, Optional

from prometheus_client import CollectorRegistry, Gauge, generate_latest, write_to_textfile

from .state import SYNC_TASK, MirrorState, timestamp_seconds

PREFIX = "localpypi_sync_"
# the last full run's stats as gauges: name -> (stats key, help)
_RUN_STATS = {
    "last_run_duration_seconds": ("duration_seconds", "How long the last run took."),
    "last_run_downloaded_files": ("files_downloaded", "Files the last run downloaded."),
    "last_run_downloaded_bytes": ("bytes_downloaded", "Bytes the last run downloaded."),
    "last_run_removed_files": ("files_removed", "Files the last run pruned or withdrew."),
    "last_run_failed_files": ("files_failed", "Files the last run could not download or verify."),
    "projects": ("projects", "Projects the last run synced."),
    "files": ("files_published", "Files the mirror serves, as the last run counted them."),
    "projects_held_back": ("projects_held_back", "Projects with newer files an exclude_newer age holds back."),
    "upstream_serial": ("serial", "The upstream's serial the last run reached."),
}


def metrics_registry(root: str, now: Optional[float] = None) -> CollectorRegistry:
    """Gauges of the mirror's last full run, of a run that stopped before syncing since, and of a run that
    holds the lock: enough to alert on a mirror that fails, falls behind or hangs."""
    now = time.time() if now is None else now
    state = MirrorState(root)
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            Gauge(PREFIX + name, documentation, registry=registry).set(value)

    last = state.load_last_run()
    gauge("last_run_success", "1 if the last run over every configured project finished with no error, else 0 "
                              "(also when no run has finished yet).", 1 if last and last.get("ok") else 0)
    if last:
        gauge("last_run_timestamp_seconds", "When the last run over every configured project finished.",
              timestamp_seconds(last.get("finished")))
        gauge("last_success_timestamp_seconds", "When the last run over every configured project with no error "
                                                "finished, though runs since failed; absent until one has.",
              timestamp_seconds(last.get("last_success")))
        gauge("last_run_errors", "Error lines of the last run.", len(last.get("failures") or []))
        stats = last.get("stats") or {}
        for name, (key, documentation) in _RUN_STATS.items():
            gauge(name, documentation, stats.get(key))
    abort = state.load_abort()
    if abort:
        gauge("last_abort_timestamp_seconds", "When a run since the last one stopped before syncing anything.",
              timestamp_seconds(abort.get("finished")))
    holder = state.lock_holder()
    since = timestamp_seconds(holder.since) if holder else None
    running = holder is not None and holder.running and since is not None
    exporting = running and holder.task != SYNC_TASK  # an alert on a hung sync must not fire for a long export
    held_for = max(0.0, now - since) if running else 0
    gauge("running_seconds", "How long the sync in progress has held the lock (a hung one keeps growing); 0 when "
                             "none runs.", 0 if exporting else held_for)
    gauge("export_running_seconds", "How long the export in progress has held the lock, while syncs wait for it "
                                    "or exit; 0 when none runs.", held_for if exporting else 0)
    if holder is not None and not holder.running:
        gauge("interrupted_run_timestamp_seconds", "When a run started that was killed, or cut short by a restart, "
                                                   "and that no run has followed yet.", since)
    return registry


def metrics_text(root: str) -> str:
    return generate_latest(metrics_registry(root)).decode()


def write_metrics(root: str, path: str) -> None:
    """Into path, whole: written beside it and renamed, so the collector never reads half a file."""
    write_to_textfile(path, metrics_registry(root))
