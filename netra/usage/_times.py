"""Time arguments: aware ``datetime`` or ISO 8601 strings in, ISO 8601 UTC with ``Z`` out."""

from __future__ import annotations

from datetime import UTC, datetime

TimeArg = datetime | str
"""A point in time: an aware :class:`~datetime.datetime`, or an ISO 8601 string with ``Z`` or an offset."""


def to_utc(value: TimeArg, name: str) -> datetime:
    """Return ``value`` as an aware UTC datetime; raise ``ValueError``/``TypeError`` saying what to fix."""
    if isinstance(value, datetime):
        dt = value
        if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
            raise ValueError(
                f"{name} is a naive datetime ({dt.isoformat()}); pass an aware one, "
                f"e.g. datetime(..., tzinfo=datetime.timezone.utc), so the window is not shifted by the local zone"
            )
        return dt.astimezone(UTC)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(f"{name} is empty; pass an ISO 8601 time such as '2025-01-31T00:00:00Z'")
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{name}={value!r} is not an ISO 8601 time; use e.g. '2025-01-31T00:00:00Z' "
                f"or '2025-01-31T01:00:00+01:00'"
            ) from None
        if dt.tzinfo is None:
            raise ValueError(
                f"{name}={value!r} has no time zone; add 'Z' for UTC or an offset such as '+02:00'"
            )
        return dt.astimezone(UTC)
    raise TypeError(f"{name} must be an aware datetime or an ISO 8601 string, not {type(value).__name__}")


def format_utc(dt: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, milliseconds kept when present."""
    dt = dt.astimezone(UTC)
    timespec = "milliseconds" if dt.microsecond % 1000 == 0 and dt.microsecond else "auto"
    return dt.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def window(start_time: TimeArg, end_time: TimeArg) -> tuple[str, str]:
    """Validate a ``[start_time, end_time]`` window and return both ends as wire strings."""
    start = to_utc(start_time, "start_time")
    end = to_utc(end_time, "end_time")
    if start > end:
        raise ValueError(
            f"start_time ({format_utc(start)}) is after end_time ({format_utc(end)}); swap them"
        )
    return format_utc(start), format_utc(end)
