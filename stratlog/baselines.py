"""The baselines a view can be compared with, by name (plain data: the command line's parser
and the URL parser read them without loading the service layer)."""

from __future__ import annotations

#: The value of ``compare=`` in a link (``--baseline`` on the command line) and its meaning.
BASELINES: dict[str, str] = {
    "previous": "the previous window of the same length",
    "1d": "the same window 1 day earlier",
    "7d": "the same window 7 days earlier",
}
DEFAULT_BASELINE = "previous"
#: The insights' default baseline: the 7 days before the window, whatever its length (their
#: rules compare shares, rates and hourly counts, not totals). Not an Overview baseline: the
#: Overview compares run counts, which need windows of one length.
PRECEDING_WEEK = "week"
INSIGHTS_BASELINES: dict[str, str] = {PRECEDING_WEEK: "the 7 days before the window", **BASELINES}
#: ``compare=version:1.4.0``: the runs of that version in the same window.
VERSION_PREFIX = "version:"
#: The longest ``strategyVersion`` (the column's width).
VERSION_MAX = 100


def canonical_insights_baseline(text: str) -> str:
    """``week``, ``previous``, ``1d`` or ``7d`` as written in a link; ``ValueError`` naming the
    choices otherwise (a version is no baseline for the insights: ``suspect_version`` compares
    each version with the one before it)."""
    value = text.strip()
    if value in INSIGHTS_BASELINES:
        return value
    choices = ", ".join(INSIGHTS_BASELINES)
    raise ValueError(f"unknown insights baseline {text[:60]!r}: use one of {choices}")


def canonical_baseline(text: str) -> str:
    """``previous``, ``1d``, ``7d`` or ``version:X`` (X stripped, at most ``VERSION_MAX``
    characters) as written in a link; ``ValueError`` naming the choices otherwise."""
    value = text.strip()
    if value in BASELINES:
        return value
    if value.startswith(VERSION_PREFIX):
        version = value[len(VERSION_PREFIX) :].strip()
        if 0 < len(version) <= VERSION_MAX:
            return VERSION_PREFIX + version
    choices = ", ".join([*BASELINES, "version:X"])
    raise ValueError(f"unknown baseline {text[:60]!r}: use one of {choices}")
