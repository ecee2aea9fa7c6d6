"""Panel renderers the pages call: one function per panel, each with its empty state.

Log content (codes, case names, messages, payloads) only ever reaches the screen through
Altair charts, dataframes, ``st.code``, ``st.text`` and ``st.json``; Markdown-rendering elements
get fixed wording or values passed through :func:`stratlog.vocabulary.md_escape`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import streamlit as st
from streamlit.elements.metric import DeltaColor

from stratlog import charts
from stratlog import vocabulary as fmt
from stratlog.model.strategy_execution_log import STATUSES
from stratlog.service.compare import Change, Comparison
from stratlog.service.insights import Insights
from stratlog.service.overview import Overview
from stratlog.service.runbook import NO_VERSION
from stratlog.service.versions import RECORD_START, Versions
from stratlog.ui import exports, nav, tables
from stratlog.ui.context import (
    AppState,
    DurationSeries,
    duration_spec,
    overview_specs,
    replica_lag,
    timeseries_spec,
)
from stratlog.ui.state import PRESET_LABELS, View, ceil_minute, parse_utc

EMPTY = "No runs in this window."


def before_of(comparison: Comparison | None) -> Overview | None:
    """The baseline's Overview of a comparison (``None`` without one)."""
    return None if comparison is None else comparison.before


EMPTY_HINT = "Pick a longer window or another strategy in the sidebar."


def version_marks(
    versions: Versions, ov: Overview, before: Overview | None
) -> tuple[tuple[str, datetime], ...]:
    """The deploy rules of the time charts: (label, time on the window's axis) for each version
    first seen in the window, and, moved onto the window, each first seen in the baseline
    window beside it (labelled so)."""
    marks = [(fmt.version_label(v), at) for v, at in versions.marks(ov.since, ov.until)]
    if before is not None and before.since != ov.since:
        shift = ov.since - before.since
        marks += [
            (f"{fmt.version_label(v)} (baseline)", at + shift)
            for v, at in versions.marks(before.since, before.until)
        ]
    return tuple(sorted(marks, key=lambda m: m[1]))


def drill(view: View, ov: Overview) -> View:
    """The Runbook view a click on the Overview opens: no other filter, the same page size and
    the version the Overview shows (with a version baseline, the version compared)."""
    return view.without_filters().replace(version=ov.version, limit=view.limit)


def empty_text(ov: Overview) -> str:
    """The Overview's "nothing here" sentence, naming the version it is limited to."""
    if ov.version is None:
        return EMPTY
    return f"No runs of version {fmt.md_escape(fmt.clip(ov.version, 60))} in this window."


def empty_state(text: str = EMPTY) -> None:
    """The panel's "nothing here" notice."""
    st.info(f"{text} {EMPTY_HINT}", icon=":material/hourglass_empty:")


def panel_title(
    title: str, hint: str | None = None, actions: Callable[[], None] | None = None
) -> None:
    """A panel heading (fixed wording), its download buttons on the right, a hint below."""
    with st.container(horizontal=True, vertical_alignment="center", gap="xxsmall"):
        st.markdown(f"**{title}**", width="stretch")  # pushes the buttons to the right
        if actions is not None:
            actions()
    if hint:
        st.caption(hint)


def _exports(ov: Overview, name: str, csv: bool = True) -> Callable[[], None] | None:
    """The PNG (and CSV) buttons of an Overview panel; none for an empty window."""
    if not ov.total:
        return None

    def buttons() -> None:
        exports.png_button(ov, name)
        if csv:
            exports.overview_csv_button(ov, name)

    return buttons


def link_action(view: View, page: nav.PageSpec) -> Callable[[], None]:
    """The "Copy link" action of a page header."""
    return lambda: exports.copy_link(view, page.url_path)


def overview_actions(
    ov: Overview,
    view: View,
    page: nav.PageSpec,
    comparison: Comparison | None = None,
    versions: Versions | None = None,
    insights: Callable[[], Insights | None] | None = None,
) -> Callable[[], None]:
    """The Overview header's actions: "Copy link" and the incident snapshot download (with
    ``insights``, the loader of the window's findings, called when the zip is built)."""

    def actions() -> None:
        exports.copy_link(view, page.url_path)
        exports.snapshot_button(ov, comparison, versions, insights)

    return actions


def title_row(title: str, actions: Callable[[], None] | None = None) -> None:
    """A page title with its actions on the right."""
    with st.container(horizontal=True, vertical_alignment="center"):
        st.title(title, anchor=False, width="stretch")  # pushes the actions to the right
        if actions is not None:
            actions()


def page_header(
    title: str,
    app: AppState,
    detail: str | None = None,
    actions: Callable[[], None] | None = None,
) -> None:
    """Page title with its actions on the right, and the view it shows: strategy, UTC window."""
    view = app.view
    title_row(title, actions)
    preset = f"last {PRESET_LABELS[view.preset]}" if view.preset else "custom window"
    parts = [
        f"**{fmt.md_escape(view.strategy or '')}**",
        f"{fmt.utc(view.since, seconds=False)} → {fmt.utc(view.until, seconds=False)}",
        preset,
    ]
    if detail:
        parts.append(detail)
    lag = replica_lag(app.url)
    if lag is not None:
        parts.append(f"read replica: {lag.describe()}")
    st.caption(" · ".join(parts))


# -- Overview -----------------------------------------------------------------------------------


#: Percentile changes smaller than this share are drawn grey (no test: a rule of thumb).
PERCENTILE_NOISE = 0.10


def _rate_delta(change: Change) -> tuple[str | None, DeltaColor, str]:
    """The metric's delta (percentage points), its colour (red up, grey within noise) and
    the help sentence with the baseline and the verdict."""
    if change.before is None:
        return None, "off", " The baseline window has no runs."
    points = 100.0 * (change.delta or 0.0)
    delta = f"{points:+.1f} pp"  # the baseline's rate is in the help (the cell is narrow)
    colour: DeltaColor = "inverse" if change.significant else "off"
    z = f" (z = {change.z:+.1f})" if change.z is not None else ""
    return delta, colour, f" Baseline {fmt.rate(change.before)}; the change is {change.verdict}{z}."


def _count_delta(
    change: Change, shown: Callable[[float | None], str]
) -> tuple[str | None, DeltaColor, str]:
    if change.before is None or change.delta is None:
        return None, "off", " The baseline window has no runs."
    relative = f" ({change.relative:+.0%})" if change.relative is not None else ""
    delta = f"{change.delta:+,.0f}{relative}" if abs(change.delta) >= 1 else f"{change.delta:+.2f}"
    colour: DeltaColor = "normal" if change.significant else "off"
    verdict = "" if change.verdict == "no test" else f"; the change is {change.verdict}"
    return delta, colour, f" Baseline {shown(change.before)}{verdict}."


#: How the headline prints a baseline value that is not a rate.
_SHOWN: dict[str, Callable[[float | None], str]] = {
    "runs": lambda v: fmt.count(None if v is None else int(v)),
    "avgNodes": lambda v: fmt.number(v, 0),
    "sumPoints": fmt.compact,
}


def headline(ov: Overview, comparison: Comparison | None = None) -> None:
    """Runs, error / timeout / limit rates, average nodes and points awarded; with a
    comparison, each beside its baseline value (grey when the change is within noise)."""
    changes = comparison.headline() if comparison is not None else {}
    figures = [
        ("Runs", fmt.count(ov.total), "runs", "Evaluations that finished in the window."),
        ("Error rate", fmt.rate(ov.rate("error")), "error", "Share of runs that ended in error."),
        ("Timeout rate", fmt.rate(ov.rate("timeout")), "timeout", "Share of runs that timed out."),
        ("Limit rate", fmt.rate(ov.rate("limit")), "limit", "Share of runs over the node budget."),
        ("Avg nodes", fmt.number(ov.summary.get("avgNodes"), 0), "avgNodes",
         "Interpreter nodes per run."),
        ("Points awarded", fmt.compact(ov.summary.get("sumPoints")), "sumPoints",
         "Sum over all runs."),
    ]  # fmt: skip
    for cell, (label, value, key, help_text) in zip(st.columns(6), figures, strict=True):
        change = changes.get(key)
        delta: str | None = None
        colour: DeltaColor = "off"
        if change is not None:
            if key in ("error", "timeout", "limit"):
                delta, colour, extra = _rate_delta(change)
            else:
                delta, colour, extra = _count_delta(change, _SHOWN[key])
            help_text += extra
        cell.metric(label, value, delta=delta, delta_color=colour, help=help_text, border=True)
    if ov.version is not None:
        st.caption(f"Only the runs of version {fmt.md_escape(fmt.clip(ov.version, 60))}.")
    if comparison is not None:
        before = comparison.before
        st.caption(
            f"Compared with {fmt.md_escape(comparison.baseline.label)}: "
            f"{fmt.utc(before.since, seconds=False)} → {fmt.utc(before.until, seconds=False)} "
            f"({fmt.count(before.total)} runs). A rate's change is coloured only when it is beyond "
            "noise (two-proportion z test, 1 %); grey means within noise or too few runs to tell."
        )


def _picked(event: Any, name: str, field: str) -> str | None:
    """The value of ``field`` in the first point of selection ``name`` (None when empty)."""
    selection = (event or {}).get("selection", {}).get(name)
    if isinstance(selection, list) and selection and isinstance(selection[0], dict):
        value = selection[0].get(field)
        return None if value is None else str(value)
    if isinstance(selection, dict) and selection.get(field):
        values = selection[field]
        return str(values[0]) if isinstance(values, list) else str(values)
    return None


def status_panel(ov: Overview, view: View, before: Overview | None = None) -> None:
    """Status donut with counts and shares; a click opens the runbook for that status."""
    panel_title(
        "Outcome by status",
        "Click a slice or a legend entry to list those runs.",
        _exports(ov, "status"),
    )
    if not ov.total:
        empty_state()
        return
    status = _clicked(ov, "status", charts.STATUS_SELECTION, before=before)
    if status in STATUSES:
        nav.go(nav.RUNBOOK, drill(view, ov).replace(status=status))


def timeseries_panel(
    ov: Overview,
    view: View,
    before: Overview | None = None,
    marks: tuple[tuple[str, datetime], ...] = (),
) -> None:
    """Runs per time bucket, stacked by status, the failure rate, the baseline dashed and a
    rule where each version was first seen. A click on a bucket lists its runs; a dragged time
    range becomes the window."""
    bucket = fmt.duration_label(ov.bucketSeconds)
    baseline = " Dashed: the baseline's runs per bucket, moved onto this window." if before else ""
    versions = " Orange rules: a version's first run." if marks else ""
    panel_title(
        "Runs over time",
        f"Buckets of {bucket}, stacked by status; the line with dots is the failure rate "
        f"(error + timeout + limit, right axis).{baseline}{versions} Click a bucket to list its "
        "runs; drag across a time range to zoom into it. Times in UTC.",
        _exports(ov, "timeseries"),
    )
    if not ov.total:
        empty_state()
        return
    event = st.vega_lite_chart(
        timeseries_spec(ov, before, marks),
        # Keyed by the window: after a zoom the new window's chart starts unselected (the same
        # key would carry the selection over and zoom again).
        key=f"ov_timeseries_{ov.since.timestamp()}_{ov.until.timestamp()}",
        on_select="rerun",
        selection_mode=[charts.BUCKET_SELECTION, charts.ZOOM_SELECTION],
        width="stretch",
    )
    picked = time_pick(event, ov)
    if picked is None:
        return
    page, (since, until) = picked
    if page == "zoom":
        nav.go(nav.OVERVIEW, view.replace(since=since, until=until, preset=None, before=None))
    nav.go(
        nav.RUNBOOK,
        drill(view, ov).replace(since=since, until=until, preset=None),
    )


#: A dragged range narrower than this is taken for a click, not a zoom.
MIN_ZOOM = timedelta(minutes=1)


def time_pick(event: Any, ov: Overview) -> tuple[str, tuple[datetime, datetime]] | None:
    """("zoom", window) for a dragged range, ("bucket", its bounds) for a clicked bucket, each
    inside the Overview's window; ``None`` for no (usable) selection."""
    selection = (event or {}).get("selection", {})
    zoom = selection.get(charts.ZOOM_SELECTION)
    if isinstance(zoom, dict) and zoom:
        ends = next(iter(zoom.values()))
        if isinstance(ends, list) and len(ends) == 2:
            low, high = (_instant(v) for v in ends)
            if low is not None and high is not None:
                since, until = max(min(low, high), ov.since), min(max(low, high), ov.until)
                since = since.replace(second=0, microsecond=0)  # whole minutes: a tidy link
                until = min(ceil_minute(until), ov.until)
                # The whole window again (a drag past both edges) is no zoom: navigating to the
                # same view would find the same selection and navigate again.
                if until - since >= MIN_ZOOM and (since, until) != (ov.since, ov.until):
                    return "zoom", (since, until)
    points = selection.get(charts.BUCKET_SELECTION)
    if isinstance(points, list) and points and isinstance(points[0], dict):
        low, high = _instant(points[0].get("start")), _instant(points[0].get("end"))
        if low is not None and high is not None and low < high:
            return "bucket", (max(low, ov.since), min(high, ov.until))
    return None


def _instant(value: Any) -> datetime | None:
    """A selection's time: epoch milliseconds (an interval) or ISO text (a clicked datum)."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / 1000.0, UTC)
        if isinstance(value, str):
            return parse_utc(value)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def versions_panel(versions: Versions, view: View) -> None:
    """Per version that ran in the window: first and last seen, runs, rates, p95, mean points
    and what is new against the version before it; selecting one lists its runs."""
    frame = tables.versions_frame(versions)

    def buttons() -> None:
        exports.versions_csv_button(versions)

    panel_title(
        "Versions",
        "Each strategyVersion that ran in the window, in the order they were first seen (at any "
        "time). New codes and cases, and cases stopped, are against the version first seen "
        "before it. p95 from the log histograms (within 1 %). Select a row to list its runs.",
        buttons if versions.rows else None,
    )
    if not versions.rows:
        empty_state()
        return
    start = versions.dataStart
    if start is not None and versions.since < start + RECORD_START:  # the window reaches it
        st.caption(
            f"The oldest run on record is from {fmt.utc(start)}: a version first seen within a "
            "day of it may have run before (retention keeps no older runs); it gets no deploy "
            "rule."
        )
    if len(versions.rows) == 1:
        only = versions.rows[0]
        st.caption(
            f"One version ran in this window ({fmt.md_escape(fmt.version_label(only.version))}, "
            f"first seen {fmt.utc(only.firstSeen) if only.firstSeen else fmt.DASH}): no deploy "
            "inside it."
        )
    event = st.dataframe(
        frame,
        key="ov_versions",
        on_select="rerun",
        selection_mode="single-row",
        hide_index=True,
        width="stretch",
        column_config={
            "Version": st.column_config.TextColumn(width=90, pinned=True),
            "Runs": st.column_config.NumberColumn(format="localized", width=70),
            "Share": st.column_config.ProgressColumn(
                format="percent", min_value=0.0, max_value=1.0, width=90
            ),
            **{
                name: st.column_config.NumberColumn(format="percent", width=70)
                for name in ("Error", "Timeout", "Limit")
            },
            "p95 (ms)": st.column_config.NumberColumn(format="%.1f", width=80),
            "Mean points": st.column_config.NumberColumn(format="%.1f", width=90),
        },
    )
    rows = event.selection.rows
    if rows:
        version = versions.rows[rows[0]].version
        chosen = NO_VERSION if version is None else version
        nav.go(nav.RUNBOOK, view.without_filters().replace(version=chosen, limit=view.limit))


def duration_time_panel(
    points: DurationSeries,
    baseline: DurationSeries,
    ov: Overview,
    bucket: int,
    offset: timedelta,
    marks: tuple[tuple[str, datetime], ...] = (),
) -> None:
    """p50 / p95 of the durations per bucket, the baseline's dashed, and the version rules."""
    dashed = " Dashed: the baseline's, moved onto this window." if baseline else ""
    panel_title(
        "Duration over time",
        f"Milliseconds per run: p50 and p95 per {fmt.duration_label(bucket)}, from the log "
        "histograms (within 1 %)."
        f"{dashed} Times in UTC.",
    )
    if not points:
        empty_state()
        return
    spec = duration_spec(points, baseline, ov.since, ov.until, bucket, offset, marks)
    st.vega_lite_chart(spec, width="stretch")


def error_codes_panel(ov: Overview, view: View, comparison: Comparison | None = None) -> None:
    """Top error codes with their share of failures (and, with a comparison, their runs in the
    baseline and "new" for a code it did not have); selecting one opens the runbook. The CSV
    holds the table as shown."""
    compared = comparison is not None
    frame = (
        tables.error_codes_frame(ov)
        if comparison is None
        else tables.error_codes_comparison_frame(comparison, len(ov.errorCodes))
    )

    def buttons() -> None:
        exports.png_button(ov, "errors")
        exports.frame_csv_button(
            frame, strategy=ov.strategyId, since=ov.since, until=ov.until, kind="error_codes"
        )

    panel_title(
        "Top error codes",
        "Select a row to list the runs that failed with that code.",
        buttons if ov.failures else None,
    )
    if not ov.total:
        empty_state()
        return
    if frame.empty:
        st.success("No failures in this window.", icon=":material/check_circle:")
        return
    shown = frame.assign(**{"Error code": frame["Error code"].map(fmt.visible)})
    event = st.dataframe(
        shown,
        key="ov_codes",
        on_select="rerun",
        selection_mode="single-row",
        hide_index=True,
        width="stretch",
        column_config={
            # Fixed widths: a long code must not push the share out of the panel.
            "Error code": st.column_config.TextColumn(width=170),
            "Runs": st.column_config.NumberColumn(format="localized", width=70),
            "Share of failures": st.column_config.ProgressColumn(
                format="percent", min_value=0.0, max_value=1.0, width=110 if compared else 160
            ),
            "Baseline": st.column_config.NumberColumn(format="localized", width=80),
            "Change": st.column_config.NumberColumn(format="%+d", width=70),
            "New": st.column_config.TextColumn(
                width=50, help="No run of this code in the baseline"
            ),
        },
    )
    rows = event.selection.rows
    if rows:
        code = str(ov.errorCodes[rows[0]]["errorCode"])  # the raw code, not its display
        nav.go(nav.RUNBOOK, drill(view, ov).replace(code=code))


def _clicked(
    ov: Overview,
    chart: str,
    selection: str,
    field: str | None = None,
    before: Overview | None = None,
) -> Any:
    """Draw a selectable Overview chart; the value of the clicked mark's ``field``, or None."""
    event = st.vega_lite_chart(
        overview_specs(ov, before)[chart],
        key=f"ov_{chart}",
        on_select="rerun",
        selection_mode=selection,
        width="stretch",
    )
    return _picked(event, selection, field or chart)


def cases_panel(ov: Overview, view: View, comparison: Comparison | None = None) -> None:
    """Rule cases of the ok runs, the fallthrough included; a click opens the runbook."""
    failed = f" {fmt.count(ov.failures)} failed runs have no case." if ov.failures else ""
    hint = f"Runs that ended ok, by the rule that fired.{failed} Click a bar to list its runs."
    panel_title("Rule cases", hint, _exports(ov, "cases"))
    if not ov.total:
        empty_state()
        return
    if not ov.ok:
        st.info("No run ended ok in this window.", icon=":material/rule:")
        return
    before = comparison.before if comparison is not None else None
    case = _clicked(ov, "cases", charts.CASE_SELECTION, field="case", before=before)
    if case is not None:
        nav.go(nav.RUNBOOK, drill(view, ov).replace(case=case))
    if comparison is not None:
        _case_changes(comparison, len(ov.caseNames))


def _case_changes(comparison: Comparison, top: int) -> None:
    """Share of ok runs now against the baseline; cases that stopped firing listed with 0."""
    frame = tables.cases_comparison_frame(comparison, top)
    stopped = int((frame["Note"] == "stopped firing").sum())
    words = f" {stopped} case(s) fired in the baseline and not once now." if stopped else ""
    st.caption(f"Share of ok runs now against the baseline.{words}")
    st.dataframe(
        frame.assign(Case=frame["Case"].map(fmt.visible)),
        hide_index=True,
        width="stretch",
        column_config={
            "Case": st.column_config.TextColumn(width=150),
            "Note": st.column_config.TextColumn(width=105),
            "Share": st.column_config.NumberColumn(format="percent", width=65),
            "Baseline share": st.column_config.NumberColumn(format="percent", width=75),
            "Change (pp)": st.column_config.NumberColumn(format="%+.1f", width=75),
            "Runs": st.column_config.NumberColumn(format="localized", width=55),
        },
    )


def durations_panel(ov: Overview, comparison: Comparison | None = None) -> None:
    """p50 / p95 / p99 beside min / avg / max, with n and exact-or-sampled wording; with a
    comparison, the percentiles beside the baseline's."""
    p, s = ov.durations, ov.summary
    buttons = _exports(ov, "durations") if p.p50 is not None else None
    panel_title("Duration", "Milliseconds per run.", buttons)
    if not ov.total or p.p50 is None:
        empty_state()
        return
    rows = (
        (("p50", p.p50), ("p95", p.p95), ("p99", p.p99)),
        (
            ("min", s.get("minDurationMs")),
            ("avg", s.get("avgDurationMs")),
            ("max", s.get("maxDurationMs")),
        ),
    )
    changes = comparison.durations() if comparison is not None else {}
    for figures in rows:
        for cell, (label, value) in zip(st.columns(3), figures, strict=True):
            change = changes.get(label)
            if change is None or change.relative is None:
                cell.metric(label, fmt.ms(value))
                continue
            slower = abs(change.relative) >= PERCENTILE_NOISE
            cell.metric(
                label,
                fmt.ms(value),
                delta=f"{change.relative:+.0%} vs {fmt.ms(change.before)}",
                delta_color="inverse" if slower else "off",
                help=f"Baseline {fmt.ms(change.before)}. Changes under "
                f"{PERCENTILE_NOISE:.0%} are grey (no test for percentiles).",
            )
    st.vega_lite_chart(overview_specs(ov, before_of(comparison))["durations"], width="stretch")
    st.caption(fmt.md_escape(f"Percentiles: n = {p.n:,}, {p.describe(few_values=True)}."))


def points_panel(ov: Overview, before: Overview | None = None) -> None:
    """Histogram of awarded points with the sample it rests on (the baseline as an outline)."""
    outline = " Dashed outline: the baseline, as shares of its runs." if before else ""
    panel_title(
        "Points awarded",
        f"Distribution of points per run (failed runs award none).{outline}",
        _exports(ov, "points") if ov.pointsHistogram else None,
    )
    if not ov.total:
        empty_state()
        return
    if not ov.pointsHistogram:
        st.info("No run in this window awarded points.", icon=":material/hourglass_empty:")
        return
    st.vega_lite_chart(overview_specs(ov, before)["points"], width="stretch")
    q = ov.points
    figures = f"p50 {fmt.number(q.p50)}, p95 {fmt.number(q.p95)}, p99 {fmt.number(q.p99)}"
    st.caption(fmt.md_escape(f"{figures}; n = {q.n:,}, {q.describe(few_values=True)}."))
