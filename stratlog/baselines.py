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
#: ``compare=version:1.4.0``: the runs of that version in the same window.
VERSION_PREFIX = "version:"
#: The longest ``strategyVersion`` (the column's width).
VERSION_MAX = 100
