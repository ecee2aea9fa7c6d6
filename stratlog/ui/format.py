"""Formatting helpers: counts, rates, durations, UTC times, case labels, safe Markdown text."""

from __future__ import annotations

import string
from datetime import UTC, datetime

NO_RULE_LABEL = "no rule matched (defaultPoints)"
DASH = "–"
_PUNCTUATION = frozenset(string.punctuation)


def count(value: int | None) -> str:
    """``12,345``, or a dash for no value."""
    return DASH if value is None else f"{value:,}"


def rate(value: float | None) -> str:
    """A share as a percentage with sensible precision (``0.04 %``, ``1.2 %``, ``38 %``)."""
    if value is None:
        return DASH
    pct = value * 100
    if pct == 0:
        return "0 %"
    if pct < 0.1:
        return f"{pct:.2f} %"
    if pct < 10 or 99 < pct < 100:
        return f"{pct:.1f} %"
    return f"{pct:.0f} %"


def ms(value: float | None) -> str:
    """A duration in milliseconds (``0.84 ms``, ``12.3 ms``, ``1,204 ms``)."""
    if value is None:
        return DASH
    if value < 1:
        return f"{value:.2f} ms"
    if value < 100:
        return f"{value:.1f} ms"
    return f"{value:,.0f} ms"


def number(value: float | None, digits: int = 1) -> str:
    """A plain number with thousands separators and ``digits`` decimals (dash for none)."""
    if value is None:
        return DASH
    return f"{value:,.{digits}f}"


def compact(value: float | None) -> str:
    """A large number compactly: ``950``, ``12.3 k``, ``4.56 M``."""
    if value is None:
        return DASH
    size = abs(value)
    if size >= 1e9:
        return f"{value / 1e9:.2f} G"
    if size >= 1e6:
        return f"{value / 1e6:.2f} M"
    if size >= 1e4:
        return f"{value / 1e3:.1f} k"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def utc(value: datetime | None, *, seconds: bool = True) -> str:
    """``2026-11-28 10:00:00 UTC`` (aware values are converted; naive ones are taken as UTC)."""
    if value is None:
        return DASH
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def duration_label(seconds: float) -> str:
    """A window or bucket length in words: ``15 min``, ``6 h``, ``7 d``, ``90 s``."""
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"{int(seconds // 86400)} d"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s"


def case_label(case_name: str | None) -> str:
    """The case name, or the wording for the "no rule matched" bucket."""
    return NO_RULE_LABEL if case_name is None else case_name


def md_escape(text: str) -> str:
    """Plain text made inert for Streamlit Markdown: every ASCII punctuation backslash-escaped.

    Only for short values that must sit inside a Markdown-rendering element (a warning about a
    URL value, a caption naming a strategy); log content itself goes through st.code / st.text /
    st.json / dataframes.
    """
    flat = " ".join(text.split())
    return "".join(f"\\{ch}" if ch in _PUNCTUATION else ch for ch in flat)


def clip(text: str, limit: int = 80) -> str:
    """At most ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
