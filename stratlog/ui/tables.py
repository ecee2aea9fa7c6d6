"""Plain-data shaping for the tables: pandas frames with display-ready columns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from stratlog import vocabulary as fmt
from stratlog.service.compare import Comparison
from stratlog.service.overview import Overview
from stratlog.service.versions import Versions
from stratlog.vocabulary import STATUS_COLORS, STATUS_TINTS

RUNBOOK_COLUMNS = (
    "Run",
    "Time (UTC)",
    "Status",
    "Error code",
    "Case",
    "Message",
    "Duration (ms)",
    "Nodes",
    "Points",
    "Version",
    "Request id",
)
#: The runbook shows this much of an error message's first line.
MESSAGE_CHARS = 90


def error_codes_frame(overview: Overview) -> pd.DataFrame:
    """Top error codes: code, runs, share of the window's failures (raw values: the CSV's)."""
    failures = overview.failures
    rows = [
        {
            "Error code": item["errorCode"],
            "Runs": int(item["count"]),
            "Share of failures": item["count"] / failures if failures else 0.0,
        }
        for item in overview.errorCodes
    ]
    return pd.DataFrame(rows, columns=["Error code", "Runs", "Share of failures"])


#: What an operator reads first comes first: a half-page table cuts the last columns off.
VERSION_COLUMNS = (
    "Version", "First seen (UTC)", "Runs", "Share", "Error", "p95 (ms)", "New error codes",
    "Cases stopped", "New cases", "Timeout", "Limit", "Mean points", "Last seen (UTC)",
)  # fmt: skip


def _names(values: Sequence[str | None] | None, counts: Any = None) -> str:
    """``A (12), B (3)``: names with their runs; a dash when there is nothing to compare with."""
    if values is None:
        return fmt.DASH
    if not values:
        return "none"
    shown = [fmt.visible(fmt.case_label(v)) for v in values]
    if counts is not None:
        shown = [f"{text} ({counts[v]:,})" for text, v in zip(shown, values, strict=True)]
    return ", ".join(shown)


def versions_frame(versions: Versions) -> pd.DataFrame:
    """One row per version that ran in the window, oldest first; the raw versions are
    ``versions.rows[i].version`` (the first column is for display)."""
    rows = [
        {
            "Version": fmt.visible(fmt.version_label(r.version)),
            "First seen (UTC)": None if r.firstSeen is None else fmt.utc(r.firstSeen),
            "Last seen (UTC)": None if r.lastSeen is None else fmt.utc(r.lastSeen),
            "Runs": r.runs,
            "Share": versions.share(r),
            "Error": r.rate("error"),
            "Timeout": r.rate("timeout"),
            "Limit": r.rate("limit"),
            "p95 (ms)": r.p95DurationMs,
            "Mean points": r.meanPoints,
            "New error codes": _names(r.newCodes, r.codes),
            "New cases": _names(r.newCases, r.cases),
            "Cases stopped": _names(r.stoppedCases),
        }
        for r in versions.rows
    ]
    return pd.DataFrame(rows, columns=list(VERSION_COLUMNS))


def error_codes_comparison_frame(comparison: Comparison, top: int) -> pd.DataFrame:
    """Top error codes now (runs, share of failures), each with its runs in the baseline, the
    change and "new" for a code the baseline did not have."""
    failures = comparison.current.failures
    rows = [
        {
            "Error code": c.errorCode,
            "New": "new" if c.new else "",
            "Runs": c.now,
            "Baseline": c.before,
            "Change": c.delta,
            "Share of failures": c.now / failures if failures else 0.0,
        }
        for c in comparison.codes(top)
    ]
    # The marker first, beside the code: a half-page panel must show it without scrolling.
    columns = ["Error code", "New", "Runs", "Baseline", "Change", "Share of failures"]
    return pd.DataFrame(rows, columns=columns)


def cases_comparison_frame(comparison: Comparison, top: int) -> pd.DataFrame:
    """Rule cases now (share of ok runs) against the baseline; cases that fired in the baseline
    and not now are listed with 0 now and marked "stopped firing"."""
    rows = [
        {
            "Case": fmt.case_label(c.caseName),
            "Note": "stopped firing" if c.stopped else "",
            "Share": c.shareNow,
            "Baseline share": c.shareBefore,
            "Change (pp)": None if c.delta is None else 100.0 * c.delta,
            "Runs": c.now,
        }
        for c in comparison.cases(top)
    ]
    columns = ["Case", "Note", "Share", "Baseline share", "Change (pp)", "Runs"]
    return pd.DataFrame(rows, columns=columns)


def case_text(case_name: str | None, status: str) -> str | None:
    """The Case cell: the no-rule wording only where a rule could have matched (ok runs)."""
    if case_name is None:
        return fmt.NO_RULE_LABEL if status == "ok" else None
    return case_name


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def runbook_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The runbook table: one line per run, newest first, times as UTC text."""
    data = [
        {
            "Run": row["id"],
            "Time (UTC)": _time(row["createdAt"]),
            "Status": row["status"],
            "Error code": _text(row["errorCode"]),
            "Case": _text(case_text(row["caseName"], row["status"])),
            "Message": _text(first_line(row.get("errorMessage"))),
            "Duration (ms)": row["durationMs"],
            "Nodes": row["nodes"],
            "Points": row["points"],
            "Version": _text(row.get("strategyVersion")),
            "Request id": _text(row.get("requestId")),
        }
        for row in rows
    ]
    frame = pd.DataFrame(data, columns=list(RUNBOOK_COLUMNS))
    if "strategyId" in (rows[0] if rows else {}):  # a request searched in every strategy
        frame.insert(2, "Strategy", [fmt.visible(r["strategyId"]) for r in rows])
    return frame


def first_line(message: str | None) -> str | None:
    """The first non-empty line of an error message, cut to :data:`MESSAGE_CHARS` with '…'."""
    if not message:
        return None
    line = next((ln.strip() for ln in message.splitlines() if ln.strip()), "")
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 1] + "…"


def status_cell_style(status: Any) -> str:
    """CSS for a Status cell: the status colour on its light tint."""
    if status not in STATUS_COLORS:
        return ""
    return f"color: {STATUS_COLORS[status]}; background-color: {STATUS_TINTS[status]}"


def fields_frame(row: dict[str, Any]) -> pd.DataFrame:
    """Every scalar field of one run as (field, value) text, payloads and message left out."""
    skip = {"inputPayload", "outputPayload", "errorMessage"}
    values = [
        {"Field": name, "Value": _field_text(name, value)}
        for name, value in row.items()
        if name not in skip
    ]
    return pd.DataFrame(values, columns=["Field", "Value"])


def _text(value: str | None) -> str | None:
    """Log text for a cell: invisible and reordering characters shown by name."""
    return None if value is None else fmt.visible(value)


def _field_text(name: str, value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    if name == "durationMs":
        return f"{value:,.3f} ms"
    return fmt.visible(str(value))


#: A recorder that has not published for this long is shown as stale (they publish every 10 s).
STALE_AFTER_S = 300


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def health_frame(rows: Sequence[Any], now: datetime) -> pd.DataFrame:
    """One line per recorder: counters, when it last published (UTC, and how long ago)."""
    data = [
        {
            "Recorder": fmt.visible(r.name),
            "Kind": r.kind,
            "Submitted": r.submitted,
            "Written": r.written,
            "Dropped": r.dropped,
            "Failed": r.failed,
            "Pending": r.pending,
            "Updated (UTC)": _time(r.updatedAt),
            "Age": _age((now - r.updatedAt).total_seconds())
            + (" (stale)" if (now - r.updatedAt).total_seconds() > STALE_AFTER_S else ""),
            "Last error": _text(r.lastError),
        }
        for r in rows
    ]
    columns = ["Recorder", "Kind", "Submitted", "Written", "Dropped", "Failed", "Pending"]
    return pd.DataFrame(data, columns=[*columns, "Updated (UTC)", "Age", "Last error"])
