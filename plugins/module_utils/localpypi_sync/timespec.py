"""Times as operators write them and as indexes give them: durations (36h), cut-off moments, upload times."""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import re
from typing import Any, Optional

# A duration as uv's --exclude-newer reads one: "7d", "1d12h", "7 days", "1 week 2 days", or ISO 8601 ("P7D",
# "PT36H"); a number alone is seconds. Months and years have no fixed length, and are refused as uv refuses them.
_UNITS = {
    604800: ("w", "wk", "wks", "week", "weeks"),
    86400: ("d", "day", "days"),
    3600: ("h", "hr", "hrs", "hour", "hours"),
    60: ("m", "min", "mins", "minute", "minutes"),
    1: ("", "s", "sec", "secs", "second", "seconds"),
}
_SECONDS = {word: seconds for seconds, words in _UNITS.items() for word in words}
_CALENDAR_UNITS = ("mo", "mos", "month", "months", "y", "yr", "yrs", "year", "years")
_FRIENDLY = re.compile(r"(?:\d+\s*[a-z]*\s*)+")
_FRIENDLY_PART = re.compile(r"(\d+)\s*([a-z]*)")
_ISO_8601 = re.compile(r"p(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?(?:t(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?)?")
_EXAMPLES = "36h, 2d, 1d12h, 7 days, 1 week, P7D, 90m or seconds"
# PEP 700's upload-time, ISO 8601 in UTC: 2025-01-01T00:00:00.000000Z, or with an offset, or without a fraction
_UPLOAD_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?", re.IGNORECASE)


def _duration_seconds(text: str) -> Optional[int]:
    """Seconds of a duration in any of the forms above; None for text in none of them."""
    lowered = text.strip().lower()
    iso = _ISO_8601.fullmatch(lowered) if lowered.startswith("p") and not lowered.endswith("t") else None
    if iso and any(iso.groups()):
        years, months, *counts = (int(part or 0) for part in iso.groups())
        if years or months:
            raise ValueError(f"{text!r} counts in months or years, which have no fixed length: write days (P30D)")
        return sum(count * _SECONDS[unit] for count, unit in zip(counts, "wdhms"))
    if not _FRIENDLY.fullmatch(lowered):
        return None
    total = 0
    for number, unit in _FRIENDLY_PART.findall(lowered):
        if unit in _CALENDAR_UNITS:
            raise ValueError(f"{text!r} counts in months or years, which have no fixed length: write days (30d)")
        if unit not in _SECONDS:
            raise ValueError(f"{text!r} is not a duration: {unit!r} is no unit; write it as {_EXAMPLES}")
        total += int(number) * _SECONDS[unit]
    return total


def parse_duration(text: str) -> float:
    """'36h', '1d12h', '7 days', 'P1W', '90m', '3600' (seconds) -> seconds."""
    return _positive_duration(text, _duration_seconds(text))


def _positive_duration(text: str, seconds: Optional[int]) -> float:
    """_duration_seconds(text), which must be a duration longer than 0."""
    if seconds is None:
        raise ValueError(f"{text!r} is not a duration: write it as {_EXAMPLES}")
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
    """2026-06-01 (midnight UTC), 2026-06-01T12:00:00Z (a time without a zone is UTC), or an age: 7d, 36h,
    7 days, P1W."""
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
        return Cutoff(moment=moment.timestamp())
    if isinstance(value, datetime.date):  # YAML reads an unquoted 2026-06-01 as a date
        return Cutoff(moment=float(calendar.timegm(value.timetuple())))
    text = str(value).strip()
    # an age needs a unit, so that a year alone (2026) is no age; uv's "-7 days" and "7 days ago" mean one too
    age = re.sub(r"\s*ago$", "", text.lstrip("-").strip(), flags=re.IGNORECASE)
    seconds = None if age.isdigit() else _duration_seconds(age)
    if seconds is not None:
        return Cutoff(age=_positive_duration(age, seconds))
    try:
        parsed = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a date (2026-06-01), a time (2026-06-01T12:00:00Z) nor an age "
                         f"(7d, 36h, 7 days, P1W)") from None
    return parse_cutoff(parsed)
