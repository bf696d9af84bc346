"""Telling the operator what happened: a progress bar on a TTY, one logfmt line per event otherwise.

A project that did not change gets no line of its own unless asked (verbose): the summary counts it. A full
mirror's no-op run would otherwise write a line for each of hundreds of thousands of projects in seconds,
and journald's rate limit then drops lines, the summary and the errors among them.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any, Iterable, Optional


def counted(number: int, noun: str) -> str:
    """1 file, 3 files: a count with its noun (one that takes an s)."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def few(words: Iterable[str], shown: int = 8) -> str:
    """The first `shown` of words (a set is sorted first), and how many more there are: a line stays a line."""
    ordered = sorted(words) if isinstance(words, (set, frozenset)) else list(words)
    more = f" and {len(ordered) - shown} more" if len(ordered) > shown else ""
    return ", ".join(ordered[:shown]) + more


def logfmt(event: str, fields: dict[str, Any]) -> str:
    parts = [f"event={event}"]
    for key, value in fields.items():
        if value is None:
            continue
        text = str(value)
        if not text or any(c in text for c in ' "=\\') or "\n" in text:
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


class Reporter:
    """Thread-safe; the engine calls it from its workers."""

    def __init__(self, stream: Optional[IO[str]] = None, progress: Optional[bool] = None,
                 quiet: bool = False, verbose: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.progress = self.stream.isatty() if progress is None else progress
        self.quiet = quiet
        self.verbose = verbose
        self._lock = threading.Lock()
        self._total = 0
        self._done = 0
        self._bytes = 0
        self._started = time.monotonic()
        self._last_draw = 0.0

    def start(self, total_projects: int) -> None:
        with self._lock:
            self._total = total_projects
            self._started = time.monotonic()

    def event(self, event: str, **fields: Any) -> None:
        if self.quiet or self.progress:
            return
        with self._lock:
            self.stream.write(logfmt(event, fields) + "\n")
            self.stream.flush()

    def project_done(self, name: str, status: str, **fields: Any) -> None:
        with self._lock:
            self._done += 1
            self._bytes += fields.get("bytes", 0) or 0
        if self.progress and not self.quiet:
            self._draw()
        elif status != "unchanged" or self.verbose:
            self.event("project", project=name, status=status, **fields)

    def failure(self, message: str) -> None:
        """Failures are always printed, one line each, whatever the mode."""
        self._line("error", message)

    def warning(self, message: str) -> None:
        """Refused upstream input and similar: printed, but the run still succeeds."""
        self._line("warning", message)

    def _line(self, kind: str, message: str) -> None:
        with self._lock:
            if self.progress:
                self.stream.write("\r\033[K")  # clear the progress bar's line first
            self.stream.write(f"{kind}: {message}\n")
            self.stream.flush()

    def _draw(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_draw < 0.1 and self._done < self._total:
                return
            self._last_draw = now
            width = 30
            filled = int(width * self._done / self._total) if self._total else width
            rate = self._bytes / max(now - self._started, 1e-6) / 1e6
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self._done}/{self._total} projects "
                              f"{self._bytes / 1e6:.1f} MB {rate:.1f} MB/s")
            self.stream.flush()

    def finish(self) -> None:
        if self.progress and not self.quiet:
            with self._lock:
                self.stream.write("\n")
                self.stream.flush()
