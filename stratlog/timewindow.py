"""Time windows: ``sinceDt <= createdAt < untilDt``, naive means UTC, reversed is an error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


def as_utc(value: datetime | None) -> datetime | None:
    """The datetime as aware UTC; a naive value is taken to be UTC already."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime or None, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """A half-open UTC window; either side may be open (``None``)."""

    since: datetime | None
    until: datetime | None

    @classmethod
    def of(cls, sinceDt: datetime | None, untilDt: datetime | None) -> Window:
        """Normalise both bounds to UTC and refuse a window that ends before it starts."""
        since, until = as_utc(sinceDt), as_utc(untilDt)
        if since is not None and until is not None and since > until:
            raise ValueError(
                f"sinceDt ({since.isoformat()}) is after untilDt ({until.isoformat()}): "
                "the window must not end before it starts"
            )
        return cls(since, until)

    @property
    def seconds(self) -> float | None:
        """Length in seconds, or ``None`` when a side is open."""
        if self.since is None or self.until is None:
            return None
        return (self.until - self.since).total_seconds()

    def label(self) -> str:
        """Human label in UTC, e.g. ``2026-11-28 10:00 → 2026-11-28 11:00 UTC``."""
        fmt = "%Y-%m-%d %H:%M:%S"
        left = self.since.strftime(fmt) if self.since else "the beginning"
        right = self.until.strftime(fmt) if self.until else "now"
        return f"{left} → {right} UTC"
