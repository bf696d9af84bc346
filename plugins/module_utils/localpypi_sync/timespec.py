"""Times as operators write them and as indexes give them: durations (36h), cut-off moments, upload times."""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import re
from typing import Any, Optional

_DURATION = re.compile(r"(?:\d+[dhms]?)+")
_DURATION_PART = re.compile(r"(\d+)([dhms]?)")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}
# PEP 700's upload-time, ISO 8601 in UTC: 2025-01-01T00:00:00.000000Z, or with an offset, or without a fraction
_UPLOAD_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """'36h', '1d12h', '90m', '3600' (seconds) -> seconds."""
    compact = text.replace(" ", "").lower()
    if not _DURATION.fullmatch(compact):
        raise ValueError(f"{text!r} is not a duration: write it as 36h, 2d, 1d12h, 90m or seconds")
    seconds = sum(int(number) * _SECONDS[unit] for number, unit in _DURATION_PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a duration: it must be longer than 0")
    return float(seconds)


def format_duration(seconds: float) -> str:
    """3d 4h, 2d 0h, 5h 12m, 42m 7s, 30s: the largest unit, and the one below it."""
    whole = max(0, int(seconds))
    parts = [(whole // 86400, "d"), (whole % 86400 // 3600, "h"), (whole % 3600 // 60, "m"), (whole % 60, "s")]
    first = next((index for index, (value, _) in enumerate(parts) if value), len(parts) - 1)
    return " ".join(f"{value}{unit}" for value, unit in parts[first:first + 2])


def upload_seconds(upload_time: Optional[str]) -> Optional[float]:
    """An index's upload-time (PEP 700) as seconds since the epoch; None if it gives none, or none readable."""
    match = _UPLOAD_TIME.fullmatch(upload_time.strip()) if isinstance(upload_time, str) else None
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    zone = (match.group(7) or "Z").upper()
    offset = 0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[-2:]) * 60)
    try:
        return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset)
    except (ValueError, OverflowError):
        return None


@dataclasses.dataclass(frozen=True)
class Cutoff:
    """exclude_newer: files uploaded after a fixed moment, or less than an age ago, are left out."""

    moment: Optional[float] = None  # seconds since the epoch
    age: Optional[float] = None  # seconds

    def at(self, now: float) -> float:
        """The latest upload time a run that began at now takes."""
        return self.moment if self.moment is not None else now - (self.age or 0.0)


def parse_cutoff(value: Any) -> Cutoff:
    """2026-06-01 (midnight UTC), 2026-06-01T12:00:00Z (a time without a zone is UTC), or an age: 7d, 36h."""
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
        return Cutoff(moment=moment.timestamp())
    if isinstance(value, datetime.date):  # YAML reads an unquoted 2026-06-01 as a date
        return Cutoff(moment=float(calendar.timegm(value.timetuple())))
    text = str(value).strip()
    compact = text.replace(" ", "").lower()
    if _DURATION.fullmatch(compact) and compact[-1] in _SECONDS:  # with a unit: 2026 alone is no age
        return Cutoff(age=parse_duration(text))
    try:
        parsed = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a date (2026-06-01), a time (2026-06-01T12:00:00Z) nor an age "
                         f"(7d, 36h)") from None
    return parse_cutoff(parsed)
