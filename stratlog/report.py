"""Incident snapshot: a strategy's overview for one window as Markdown, chart PNGs and CSVs, zipped.

The tables here (plain rows of raw values) are the single source for the snapshot's Markdown,
its CSVs and the ``stratlog summary`` terminal tables, so every copy shows the same figures.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stratlog import export
from stratlog.model.strategy_execution_log import STATUSES
from stratlog.service.compare import Comparison
from stratlog.service.insights import Insights
from stratlog.service.overview import Overview
from stratlog.service.stats import Percentiles
from stratlog.service.versions import Versions
from stratlog.timewindow import Window
from stratlog.vocabulary import (
    DASH,
    NO_RULE_LABEL,
    case_label,
    count,
    figure,
    md_escape,
    share,
    utc,
    version_label,
    visible,
)

MARKDOWN_NAME = "snapshot.md"
#: Charts of the snapshot, in document order: (file stem, heading, width in CSS pixels). The
#: headings are the dashboard panels' titles, so a PNG reads like the panel it came from.
CHARTS: tuple[tuple[str, str, int], ...] = (
    ("timeseries", "Runs over time", 720),
    ("status", "Outcome by status", 560),
    ("errors", "Top error codes", 640),
    ("cases", "Rule cases", 640),
    ("durations", "Duration", 640),
    ("points", "Points awarded", 640),
)
HEADINGS = {stem: heading for stem, heading, _ in CHARTS}
#: Where a snapshot was made (``build_snapshot(source=...)``); the command line's is the default.
COMMAND = "stratlog snapshot"
DASHBOARD = "the dashboard"
_ORIGINS = {COMMAND: "by `stratlog snapshot`", DASHBOARD: "from the dashboard"}


# -- formatting ------------------------------------------------------------------------------


def window_label(overview: Overview) -> str:
    """``2026-03-01 06:00:00 → 2026-03-01 07:00:00 UTC``."""
    return Window.of(overview.since, overview.until).label()


def _failure_rate(overview: Overview) -> float | None:
    return overview.failures / overview.total if overview.total else None


# -- tables (raw values; the CSVs) -----------------------------------------------------------


def status_rows(overview: Overview) -> list[dict[str, Any]]:
    """Every status in fixed order, then any unexpected one: status, count, share."""
    extra = sorted(set(overview.statusCounts) - set(STATUSES))
    return [
        {"status": s, "count": overview.statusCounts.get(s, 0), "share": overview.rate(s) or 0.0}
        for s in (*STATUSES, *extra)
    ]


def error_rows(overview: Overview) -> list[dict[str, Any]]:
    """Top error codes: errorCode, count, share of the window's failed runs."""
    failures = overview.failures
    return [
        {
            "errorCode": item["errorCode"],
            "count": item["count"],
            "shareOfFailures": item["count"] / failures if failures else None,
        }
        for item in overview.errorCodes
    ]


def case_rows(overview: Overview) -> list[dict[str, Any]]:
    """Rule cases of the ok runs: label, caseName (empty: no rule matched), count, share of ok runs.

    Only a run that ended ok went through the rules: its null case is the fallthrough
    (defaultPoints). Failed runs carry no case either and are not counted here.
    """
    ok = overview.ok
    return [
        {
            "case": case_label(item["caseName"]),
            "caseName": item["caseName"],
            "count": item["count"],
            "share": item["count"] / ok if ok else None,
        }
        for item in overview.caseNames
    ]


def failed_runs_note(overview: Overview) -> str | None:
    """Where the failed runs went (they have no case), when there are any."""
    if overview.failures == 0:
        return None
    return (
        f"{overview.failures:,} runs that did not end ok have no case and are not in this table "
        "(see the status and error-code tables)"
    )


def _percentile_row(figure: str, p: Percentiles) -> dict[str, Any]:
    return {
        "figure": figure,
        "p50": p.p50,
        "p95": p.p95,
        "p99": p.p99,
        "sampled": p.n,
        "total": p.total,
        "exact": p.exact,
        "basis": p.describe(),
    }


def percentile_rows(overview: Overview) -> list[dict[str, Any]]:
    """p50 / p95 / p99 of duration (ms) and points, with sample size and exactness."""
    return [
        _percentile_row("duration (ms)", overview.durations),
        _percentile_row("points", overview.points),
    ]


def figure_rows(overview: Overview) -> list[dict[str, Any]]:
    """Key figures of the window as (figure, value) pairs; values from the one-statement summary."""
    s = overview.summary
    failed = overview.failures
    pairs: list[tuple[str, Any]] = [
        ("runs", overview.total),
        ("failed runs", failed),
        ("failure rate", _failure_rate(overview)),
        ("mean duration (ms)", s["avgDurationMs"]),
        ("min duration (ms)", s["minDurationMs"]),
        ("max duration (ms)", s["maxDurationMs"]),
        ("total duration (ms)", s["sumDurationMs"]),
        ("mean nodes", s["avgNodes"]),
        ("min nodes", s["minNodes"]),
        ("max nodes", s["maxNodes"]),
        ("total nodes", s["sumNodes"]),
        ("points awarded (sum)", s["sumPoints"]),
    ]
    return [{"figure": name, "value": value} for name, value in pairs]


def bucket_starts(overview: Overview) -> list[datetime]:
    """The start of every epoch-aligned bucket of the window, in order (UTC)."""
    step = overview.bucketSeconds
    first = int(overview.since.timestamp() // step) * step
    starts = range(first, math.ceil(overview.until.timestamp()), step)
    return [datetime.fromtimestamp(start, UTC) for start in starts]


def timeseries_rows(overview: Overview) -> list[dict[str, Any]]:
    """Runs per bucket and status, every bucket and status of the window (zeros included).

    Columns: bucketStart (UTC), bucketSeconds, status, count; in bucket order, statuses in
    their fixed order (then any unexpected one).
    """
    counts = {(i["bucketStart"], i["status"]): i["count"] for i in overview.timeseries}
    starts = sorted({*bucket_starts(overview), *(start for start, _ in counts)})
    extra = sorted({status for _, status in counts} - set(STATUSES))
    return [
        {
            "bucketStart": start,
            "bucketSeconds": overview.bucketSeconds,
            "status": status,
            "count": counts.get((start, status), 0),
        }
        for start in starts
        for status in (*STATUSES, *extra)
    ]


#: Columns of every table, by CSV stem (also the header of an empty CSV).
COLUMNS: dict[str, tuple[str, ...]] = {
    "status": ("status", "count", "share"),
    "error_codes": ("errorCode", "count", "shareOfFailures"),
    "cases": ("case", "caseName", "count", "share"),
    "percentiles": ("figure", "p50", "p95", "p99", "sampled", "total", "exact", "basis"),
    "figures": ("figure", "value"),
    "timeseries": ("bucketStart", "bucketSeconds", "status", "count"),
}


def tables(overview: Overview) -> dict[str, list[dict[str, Any]]]:
    """Every table of the snapshot by CSV stem."""
    return {
        "status": status_rows(overview),
        "error_codes": error_rows(overview),
        "cases": case_rows(overview),
        "percentiles": percentile_rows(overview),
        "figures": figure_rows(overview),
        "timeseries": timeseries_rows(overview),
    }


def format_figure(name: str, value: Any) -> str:
    """A key figure for display: counts with separators, rates as shares, the rest as numbers."""
    if value is None:
        return DASH
    if name == "failure rate":
        return share(value)
    if isinstance(value, int):
        return count(value)
    return figure(float(value))


# -- charts ----------------------------------------------------------------------------------


def chart_pngs(
    overview: Overview, generated: datetime, before: Overview | None = None
) -> dict[str, bytes]:
    """Every snapshot chart as PNG bytes by file name (the dashboard's charts; with ``before``,
    the baseline's Overview, drawn in as on the dashboard)."""
    from stratlog import charts  # Altair loads only when charts are drawn

    built = charts.overview_charts(overview, selectable=False, before=before)
    return {
        f"{stem}.png": export.chart_png(
            charts.style(built[stem]),
            strategy=overview.strategyId,
            since=overview.since,
            until=overview.until,
            heading=heading,
            generated=generated,
            width=width,
        )
        for stem, heading, width in CHARTS
        if stem in built
    }


# -- markdown --------------------------------------------------------------------------------


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: int = 1) -> list[str]:
    """A GitHub-flavoured Markdown table; columns from index ``right`` on are right-aligned."""
    align = ["---" if i < right else "--:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def code_span(text: str) -> str:
    """``text`` as inline Markdown code on one line: shown as it is, never a live link."""
    flat = visible(" ".join(text.split()))
    fence = "`" * (1 + max((len(run) for run in re.findall("`+", flat)), default=0))
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""  # CommonMark strips one
    return f"{fence}{pad}{flat}{pad}{fence}"


def _origin(source: str) -> str:
    """How the headline names where the snapshot was made; an unknown source is escaped."""
    return _ORIGINS.get(source) or f"by {md_escape(source)}"


def _link(link: str | None) -> list[str]:
    """The headline's link back to the view, as inline code (a pasted link is never live)."""
    return [f"- **Dashboard link:** {code_span(link)}"] if link else []


def _headline(overview: Overview, generated: datetime, source: str, link: str | None) -> list[str]:
    seconds = (overview.until - overview.since).total_seconds()
    top = overview.errorCodes[0] if overview.errorCodes else None
    d = overview.durations
    return [
        f"# Incident snapshot: {md_escape(overview.strategyId)}",
        "",
        f"- **Window:** {window_label(overview)} ({_span(seconds)}, end excluded)",
        *(
            [f"- **Version:** only the runs of {md_escape(overview.version)}"]
            if overview.version is not None
            else []
        ),
        f"- **Generated:** {utc(generated)} {_origin(source)}",
        *_link(link),
        f"- **Runs:** {count(overview.total)}, of which {count(overview.failures)} failed "
        f"({share(_failure_rate(overview))})",
        f"- **Top error code:** {md_escape(top['errorCode'])} ({count(top['count'])} runs)"
        if top
        else "- **Top error code:** none in this window",
        f"- **Duration:** p50 {figure(d.p50)} ms · p95 {figure(d.p95)} ms · "
        f"p99 {figure(d.p99)} ms ({d.describe()})",
        f"- **Points awarded:** {figure(overview.summary['sumPoints'])} in total",
    ]


def _span(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 48:
        return f"{hours / 24:.1f} days"
    return f"{hours:.2f} h" if hours % 1 else f"{hours:.0f} h"


def _figure(stem: str, files: Mapping[str, bytes]) -> list[str]:
    name = f"{stem}.png"
    return ["", f"![{HEADINGS[stem]}]({name})"] if name in files else []


def _sections(overview: Overview, files: Mapping[str, bytes]) -> list[str]:
    lines = ["", f"## {HEADINGS['timeseries']}", *_figure("timeseries", files), ""]
    lines.append(f"Buckets of {overview.bucketSeconds:,} s; every bucket in `timeseries.csv`.")
    lines += ["", f"## {HEADINGS['status']}", ""]
    lines += _md_table(
        ["status", "runs", "share"],
        [[r["status"], count(r["count"]), share(r["share"])] for r in status_rows(overview)],
    )
    lines += _figure("status", files)
    lines += ["", f"## {HEADINGS['errors']}", ""]
    lines += _errors_md(overview)
    lines += _figure("errors", files)
    lines += ["", f"## {HEADINGS['cases']}", ""]
    lines += _cases_md(overview)
    lines += _figure("cases", files)
    lines += ["", "## Duration, nodes and points", ""]
    lines += _percentiles_md(overview)
    figures = [[r["figure"], format_figure(r["figure"], r["value"])] for r in figure_rows(overview)]
    lines += ["", *_md_table(["figure", "value"], figures)]
    lines += _figure("durations", files)
    lines += _figure("points", files)
    return lines


def _errors_md(overview: Overview) -> list[str]:
    rows = error_rows(overview)
    if not rows:
        return ["No failed run carried an error code in this window."]
    return _md_table(
        ["error code", "runs", "share of failed runs"],
        [[md_escape(r["errorCode"]), count(r["count"]), share(r["shareOfFailures"])] for r in rows],
    )


def _cases_md(overview: Overview) -> list[str]:
    rows = case_rows(overview)
    if not rows:
        return ["No run ended ok in this window." if overview.total else "No runs in this window."]
    note = failed_runs_note(overview)
    table = _md_table(
        ["rule case", "runs", "share of ok runs"],
        [[_case_md(r["caseName"]), count(r["count"]), share(r["share"])] for r in rows],
    )
    return [*table, "", note] if note else table  # the note is our own wording: no log text


def _case_md(name: str | None) -> str:
    """A case name escaped, or our own wording for the no-rule bucket as it is."""
    return NO_RULE_LABEL if name is None else md_escape(name)


def _percentiles_md(overview: Overview) -> list[str]:
    rows = percentile_rows(overview)
    return _md_table(
        ["figure", "p50", "p95", "p99", "basis"],
        [
            [r["figure"], figure(r["p50"]), figure(r["p95"]), figure(r["p99"]), r["basis"]]
            for r in rows
        ],
    )


def _files_md(files: Mapping[str, bytes]) -> list[str]:
    charts = ", ".join(f"`{n}`" for n in files if n.endswith(".png")) or "none"
    csvs = ", ".join(f"`{n}`" for n in files if n.endswith(".csv"))
    return [
        "",
        "## Files in this snapshot",
        "",
        f"- charts (PNG, scale 2): {charts}",
        f"- tables (CSV, raw values, times in UTC): {csvs}",
        *(
            ["- the insights with their evidence (JSON): `insights.json`"]
            if "insights.json" in files
            else []
        ),
        "",
        "Every figure comes from the stratlog repository for this strategy and window; "
        "percentiles say whether they are exact or estimated from a sample.",
    ]


#: The comparison's headline figures: (key of ``Comparison.headline()``, label, is a rate).
COMPARED = (
    ("runs", "runs", False),
    ("failure", "failure rate", True),
    ("error", "error rate", True),
    ("timeout", "timeout rate", True),
    ("limit", "limit rate", True),
    ("avgNodes", "avg nodes", False),
    ("sumPoints", "points awarded", False),
)


def comparison_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """The headline figures now and in the baseline, the change and the verdict (raw values)."""
    changes = comparison.headline()
    return [
        {
            "figure": label,
            "now": changes[key].now,
            "baseline": changes[key].before,
            "change": changes[key].delta,
            "verdict": changes[key].verdict,
            "z": changes[key].z,
        }
        for key, label, _ in COMPARED
    ]


def _changed(value: float | None, rate: bool) -> str:
    if value is None:
        return DASH
    return f"{100.0 * value:+.2f} pp" if rate else f"{value:+,.1f}"


def _comparison_md(comparison: Comparison) -> list[str]:
    """What changed against the baseline: figures with verdicts, new codes, stopped cases."""
    before = comparison.before
    lines = [
        "",
        "## Compared with the baseline",
        "",
        f"Baseline: {md_escape(comparison.baseline.label)}, {window_label(before)} "
        f"({count(before.total)} runs). A rate's change is beyond noise when a two-proportion "
        "z test says so at 1 %.",
        "",
    ]
    rates = {label: rate for _, label, rate in COMPARED}
    lines += _md_table(
        ["figure", "now", "baseline", "change", "verdict"],
        [
            [r["figure"], share(r["now"]) if rates[r["figure"]] else figure(r["now"]),
             share(r["baseline"]) if rates[r["figure"]] else figure(r["baseline"]),
             _changed(r["change"], rates[r["figure"]]), r["verdict"]]
            for r in comparison_rows(comparison)
        ],
    )  # fmt: skip
    new = [c for c in comparison.codes() if c.new]
    stopped = [c for c in comparison.cases() if c.stopped]
    lines += ["", "New error codes (no run in the baseline):", ""]
    lines += [f"- {md_escape(c.errorCode)}: {count(c.now)} runs" for c in new] or ["- none"]
    lines += ["", "Rule cases that stopped firing (fired in the baseline, not once now):", ""]
    lines += [
        f"- {_case_md(c.caseName)}: {count(c.before)} runs in the baseline" for c in stopped
    ] or ["- none"]
    return lines


VERSION_CSV_COLUMNS = [
    "version", "firstSeen", "lastSeen", "runs", "share", "errorRate", "timeoutRate", "limitRate",
    "p95DurationMs", "meanPoints", "previousVersion", "newErrorCodes", "newCases", "casesStopped",
]  # fmt: skip


def _joined(values: Sequence[str | None] | None) -> str | None:
    """Names joined by ``; `` (``None``: nothing to compare with)."""
    return None if values is None else "; ".join(case_label(v) for v in values)


def version_rows(versions: Versions) -> list[dict[str, Any]]:
    """The Versions panel's rows (``versions.csv``), oldest first."""
    return [
        {
            "version": r.version, "firstSeen": r.firstSeen, "lastSeen": r.lastSeen,
            "runs": r.runs, "share": versions.share(r), "errorRate": r.rate("error"),
            "timeoutRate": r.rate("timeout"), "limitRate": r.rate("limit"),
            "p95DurationMs": r.p95DurationMs, "meanPoints": r.meanPoints,
            "previousVersion": r.previous if r.hasPrevious else None,
            "newErrorCodes": _joined(r.newCodes), "newCases": _joined(r.newCases),
            "casesStopped": _joined(r.stoppedCases),
        }
        for r in versions.rows
    ]  # fmt: skip


def _versions_md(versions: Versions) -> list[str]:
    """The "Versions" section: which versions ran, when each was first seen, what is new."""
    lines = [
        "",
        "## Versions",
        "",
        "Each strategyVersion with runs in the window, in the order first seen (at any time); new "
        "codes and cases against the version first seen before it.",
        "",
    ]
    rows = [
        [md_escape(version_label(r["version"])), _stamp(r["firstSeen"]), count(r["runs"]),
         share(r["share"]), share(r["errorRate"]), figure(r["p95DurationMs"]),
         md_escape(r["newErrorCodes"] if r["newErrorCodes"] is not None else DASH),
         md_escape(r["casesStopped"] if r["casesStopped"] is not None else DASH)]
        for r in version_rows(versions)
    ]  # fmt: skip
    headers = ["version", "first seen (UTC)", "runs", "share", "error rate", "p95 ms",
               "new error codes", "cases stopped"]  # fmt: skip
    return lines + (_md_table(headers, rows) if rows else ["No runs in this window."])


FINDING_CSV_COLUMNS = ["severity", "kind", "subject", "score", "summary", "evidence"]


def finding_rows(insights: Insights) -> list[dict[str, Any]]:
    """The findings, ranked (``findings.csv``; the evidence as compact JSON)."""
    return [
        {"severity": f.severity, "kind": f.kind, "subject": f.subject, "score": f.score,
         "summary": f.summary,
         "evidence": json.dumps(f.evidence, separators=(",", ":"), default=str)}
        for f in insights.findings
    ]  # fmt: skip


def _insights_md(insights: Insights) -> list[str]:
    """The "Insights" section: what is different about the window, ranked, with its counts."""
    then = Window.of(insights.baselineSince, insights.baselineUntil).label()
    lines = [
        "",
        "## Insights",
        "",
        f"Every version of the strategy, against {md_escape(insights.baselineLabel)} ({then}): "
        f"{count(insights.runs)} runs now, {count(insights.baselineRuns)} then. The rules: "
        "docs/insights.md.",
        "",
    ]
    if not insights.findings:
        lines += ["Nothing unusual. Checked:", ""]
        return lines + [f"- {md_escape(check)}" for check in insights.checks]
    rows = [
        [f.severity, code_span(f.kind), md_escape(DASH if f.subject is None else f.subject),
         md_escape(f.summary)]
        for f in insights.findings
    ]  # fmt: skip
    return lines + _md_table(["severity", "kind", "subject", "finding"], rows, right=4)


def _stamp(value: datetime | None) -> str:
    return DASH if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def markdown(
    overview: Overview,
    generated: datetime,
    files: Mapping[str, bytes],
    *,
    source: str = COMMAND,
    link: str | None = None,
    comparison: Comparison | None = None,
    versions: Versions | None = None,
    insights: Insights | None = None,
) -> str:
    """The snapshot document: headline figures, tables, and links to the chart PNGs in ``files``.

    ``source`` says where it was made (:data:`COMMAND`, :data:`DASHBOARD`); ``link``, the
    dashboard's URL of the view, is shown as inline code (never a live Markdown link). With a
    ``comparison``, a section on what changed against its baseline follows the headline.
    """
    head = _headline(overview, generated, source, link)
    compared = _comparison_md(comparison) if comparison is not None else []
    compared += _versions_md(versions) if versions is not None else []
    compared += _insights_md(insights) if insights is not None else []
    return "\n".join(head + compared + _sections(overview, files) + _files_md(files)) + "\n"


# -- the bundle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The snapshot's files by name (Markdown, PNGs, CSVs) and the name of its zip."""

    name: str
    files: dict[str, bytes]
    generated: datetime

    def zip_bytes(self) -> bytes:
        """Every file in one zip, stamped with the generation time."""
        stamp = self.generated.astimezone(UTC).timetuple()[:6]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in self.files.items():
                archive.writestr(zipfile.ZipInfo(name, date_time=stamp), data)
        return buffer.getvalue()

    def write(self, directory: Path) -> Path:
        """Write ``directory/<name>.zip`` atomically (the directory is created if missing)."""
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{self.name}.zip"
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".snapshot-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.zip_bytes())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target


def default_name(overview: Overview) -> str:
    """``snapshot_fraud-screen_20260301T0600Z-20260301T0700Z``."""
    stem = export.file_name(overview.strategyId, overview.since, overview.until, "x", "zip")
    return "snapshot_" + stem.removesuffix("_x.zip")


def build_snapshot(
    overview: Overview,
    *,
    generated: datetime | None = None,
    name: str | None = None,
    charts: bool = True,
    source: str = COMMAND,
    link: str | None = None,
    comparison: Comparison | None = None,
    versions: Versions | None = None,
    insights: Insights | None = None,
) -> Snapshot:
    """The whole snapshot for an Overview: ``snapshot.md``, chart PNGs and table CSVs.

    ``source`` names where it was made (``stratlog snapshot`` unless told, e.g.
    :data:`DASHBOARD`), ``link`` is the dashboard's link to the view, shown in ``snapshot.md``.
    With a ``comparison`` (of this Overview), ``snapshot.md`` says what changed against its
    baseline and ``comparison.csv`` holds the figures; with ``versions``, a Versions section
    and ``versions.csv``; with ``insights``, an Insights section, ``findings.csv`` and
    ``insights.json`` (what ``stratlog insights --json`` prints).
    """
    made = generated or datetime.now(UTC)
    before = comparison.before if comparison is not None else None
    files: dict[str, bytes] = chart_pngs(overview, made, before) if charts else {}
    for stem, rows in tables(overview).items():
        files[f"{stem}.csv"] = export.csv_bytes(rows, COLUMNS[stem])
    if comparison is not None:
        files["comparison.csv"] = export.csv_bytes(
            comparison_rows(comparison), ["figure", "now", "baseline", "change", "verdict", "z"]
        )
    if versions is not None:
        files["versions.csv"] = export.csv_bytes(version_rows(versions), VERSION_CSV_COLUMNS)
    if insights is not None:
        files["findings.csv"] = export.csv_bytes(finding_rows(insights), FINDING_CSV_COLUMNS)
        files["insights.json"] = (
            json.dumps(insights.to_json(), indent=2, default=str) + "\n"
        ).encode("utf-8")
    document = markdown(
        overview, made, files, source=source, link=link, comparison=comparison,
        versions=versions, insights=insights,
    ).encode("utf-8")  # fmt: skip
    return Snapshot(name or default_name(overview), {MARKDOWN_NAME: document, **files}, made)


def snapshot_zip(
    overview: Overview,
    *,
    source: str = COMMAND,
    link: str | None = None,
    comparison: Comparison | None = None,
    versions: Versions | None = None,
    insights: Insights | None = None,
) -> bytes:
    """The snapshot of an Overview as zip bytes (one line for a dashboard download button)."""
    built = build_snapshot(
        overview, source=source, link=link, comparison=comparison, versions=versions,
        insights=insights,
    )  # fmt: skip
    return built.zip_bytes()
