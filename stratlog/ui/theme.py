"""Colours and labels shared by every chart and table: one fixed colour per status, everywhere."""

from __future__ import annotations

from stratlog.model.strategy_execution_log import STATUSES

#: Okabe-Ito colours (safe for the common colour-vision deficiencies), one per status.
STATUS_COLORS: dict[str, str] = {
    "ok": "#0072B2",  # blue
    "error": "#D55E00",  # vermillion
    "timeout": "#E69F00",  # orange
    "limit": "#CC79A7",  # reddish purple
}

#: Statuses in the order every legend, table and stack uses.
STATUS_ORDER: tuple[str, ...] = tuple(STATUSES)

#: Light tints of the status colours, for table cell backgrounds.
STATUS_TINTS: dict[str, str] = {
    "ok": "#E5F1F8",
    "error": "#FBEBE0",
    "timeout": "#FCF3E0",
    "limit": "#F9EEF4",
}

#: Accent for single-series charts (cases, points, durations): neutral, not a status.
ACCENT = "#4C5D73"
ACCENT_LIGHT = "#A7B4C4"
MUTED = "#8A94A3"
TEXT = "#1F2933"
GRID = "#E7EAEE"
FONT = "Source Sans Pro, Helvetica Neue, Arial, sans-serif"


def status_color(status: str) -> str:
    """The colour of a status; unknown values get the muted grey."""
    return STATUS_COLORS.get(status, MUTED)


def status_range() -> list[str]:
    """Colours in :data:`STATUS_ORDER`, for an Altair scale ``range``."""
    return [STATUS_COLORS[s] for s in STATUS_ORDER]
