"""Panel renderers the pages call: one function per panel, each with its empty state.

Log content (codes, case names, messages, payloads) only ever reaches the screen through
Altair charts, dataframes, ``st.code``, ``st.text`` and ``st.json``; Markdown-rendering elements
get fixed wording or values passed through :func:`stratlog.vocabulary.md_escape`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from stratlog import charts
from stratlog import vocabulary as fmt
from stratlog.model.strategy_execution_log import STATUSES
from stratlog.service.overview import Overview
from stratlog.ui import exports, nav, tables
from stratlog.ui.context import AppState, overview_specs
from stratlog.ui.state import PRESET_LABELS, View

EMPTY = "No runs in this window."
EMPTY_HINT = "Pick a longer window or another strategy in the sidebar."


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


def overview_actions(ov: Overview, view: View, page: nav.PageSpec) -> Callable[[], None]:
    """The Overview header's actions: "Copy link" and the incident snapshot download."""

    def actions() -> None:
        exports.copy_link(view, page.url_path)
        exports.snapshot_button(ov)

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
    st.caption(" · ".join(parts))


# -- Overview -----------------------------------------------------------------------------------


def headline(ov: Overview) -> None:
    """Runs, error / timeout / limit rates, average nodes and points awarded."""
    figures = [
        ("Runs", fmt.count(ov.total), "Evaluations that finished in the window."),
        ("Error rate", fmt.rate(ov.rate("error")), "Share of runs that ended in error."),
        ("Timeout rate", fmt.rate(ov.rate("timeout")), "Share of runs that timed out."),
        ("Limit rate", fmt.rate(ov.rate("limit")), "Share of runs over the node budget."),
        ("Avg nodes", fmt.number(ov.summary.get("avgNodes"), 0), "Interpreter nodes per run."),
        ("Points awarded", fmt.compact(ov.summary.get("sumPoints")), "Sum over all runs."),
    ]
    for cell, (label, value, help_text) in zip(st.columns(6), figures, strict=True):
        cell.metric(label, value, help=help_text, border=True)


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


def status_panel(ov: Overview, view: View) -> None:
    """Status donut with counts and shares; a click opens the runbook for that status."""
    panel_title(
        "Outcome by status",
        "Click a slice or a legend entry to list those runs.",
        _exports(ov, "status"),
    )
    if not ov.total:
        empty_state()
        return
    status = _clicked(ov, "status", charts.STATUS_SELECTION)
    if status in STATUSES:
        nav.go(nav.RUNBOOK, view.without_filters().replace(status=status, limit=view.limit))


def timeseries_panel(ov: Overview) -> None:
    """Runs per time bucket, stacked by status."""
    bucket = fmt.duration_label(ov.bucketSeconds)
    panel_title(
        "Runs over time",
        f"Buckets of {bucket}, stacked by status; times in UTC.",
        _exports(ov, "timeseries"),
    )
    if not ov.total:
        empty_state()
        return
    st.vega_lite_chart(overview_specs(ov)["timeseries"], width="stretch")


def error_codes_panel(ov: Overview, view: View) -> None:
    """Top error codes with their share of failures; selecting one opens the runbook."""
    frame = tables.error_codes_frame(ov)

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
                format="percent", min_value=0.0, max_value=1.0, width=160
            ),
        },
    )
    rows = event.selection.rows
    if rows:
        code = str(ov.errorCodes[rows[0]]["errorCode"])  # the raw code, not its display
        nav.go(nav.RUNBOOK, view.without_filters().replace(code=code, limit=view.limit))


def _clicked(ov: Overview, chart: str, selection: str, field: str | None = None) -> Any:
    """Draw a selectable Overview chart; the value of the clicked mark's ``field``, or None."""
    event = st.vega_lite_chart(
        overview_specs(ov)[chart],
        key=f"ov_{chart}",
        on_select="rerun",
        selection_mode=selection,
        width="stretch",
    )
    return _picked(event, selection, field or chart)


def cases_panel(ov: Overview, view: View) -> None:
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
    case = _clicked(ov, "cases", charts.CASE_SELECTION, field="case")
    if case is not None:
        nav.go(nav.RUNBOOK, view.without_filters().replace(case=case, limit=view.limit))


def durations_panel(ov: Overview) -> None:
    """p50 / p95 / p99 beside min / avg / max, with n and exact-or-sampled wording."""
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
    for figures in rows:
        for cell, (label, value) in zip(st.columns(3), figures, strict=True):
            cell.metric(label, fmt.ms(value))
    st.vega_lite_chart(overview_specs(ov)["durations"], width="stretch")
    st.caption(fmt.md_escape(f"Percentiles: n = {p.n:,}, {p.describe(few_values=True)}."))


def points_panel(ov: Overview) -> None:
    """Histogram of awarded points with the sample it rests on."""
    panel_title(
        "Points awarded",
        "Distribution of points per run (failed runs award none).",
        _exports(ov, "points") if ov.pointsHistogram else None,
    )
    if not ov.total:
        empty_state()
        return
    if not ov.pointsHistogram:
        st.info("No run in this window awarded points.", icon=":material/hourglass_empty:")
        return
    st.vega_lite_chart(overview_specs(ov)["points"], width="stretch")
    q = ov.points
    figures = f"p50 {fmt.number(q.p50)}, p95 {fmt.number(q.p95)}, p99 {fmt.number(q.p99)}"
    st.caption(fmt.md_escape(f"{figures}; n = {q.n:,}, {q.describe(few_values=True)}."))
