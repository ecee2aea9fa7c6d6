"""Time arguments: relative (``15m``, ``2h``, ``7d`` before now) or ISO-8601 (naive means UTC)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from stratlog.timewindow import Window, as_utc

#: Seconds per unit of a relative time.
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
HINT = "a relative time like 15m, 2h, 7d (before now) or an ISO-8601 time like 2026-03-01T06:00Z"


class TimeArgumentError(ValueError):
    """A time argument that is neither relative nor ISO-8601, or a window that runs backwards."""


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from ``15m`` / ``2h`` / ``7d`` / ``now`` or an ISO-8601 time."""
    value = text.strip()
    now = as_utc(now) or datetime.now(UTC)
    if value.lower() == "now":
        return now
    match = _RELATIVE.fullmatch(value)
    if match:
        return _before(now, float(match.group(1)), match.group(2), text)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TimeArgumentError(f"expected {HINT}, got {text!r}") from None
    return _utc(parsed, text)


def _before(now: datetime, amount: float, unit: str, text: str) -> datetime:
    try:
        return now - timedelta(seconds=amount * UNITS[unit])
    except OverflowError:
        raise TimeArgumentError(f"{text!r} reaches too far back") from None


def _utc(value: datetime, text: str) -> datetime:
    try:
        result = as_utc(value)
    except OverflowError:
        raise TimeArgumentError(f"{text!r} is out of range") from None
    assert result is not None
    return result


def resolve_window(
    since: datetime | None,
    until: datetime | None,
    now: datetime | None = None,
    default_span: timedelta = timedelta(hours=24),
) -> Window:
    """Closed bounds for a command: ``until`` defaults to now, ``since`` to ``default_span`` before.

    A window that ends before it starts raises :class:`TimeArgumentError` naming both bounds.
    """
    end = as_utc(until) or as_utc(now) or datetime.now(UTC)
    start = as_utc(since) or end - default_span
    if start > end:
        raise TimeArgumentError(
            f"the window ends before it starts: --since {iso(start)} is after --until {iso(end)}"
        )
    return Window(start, end)


def iso(value: datetime) -> str:
    """``2026-03-01T06:00:00Z`` (seconds precision, UTC)."""
    utc = as_utc(value)
    assert utc is not None
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
