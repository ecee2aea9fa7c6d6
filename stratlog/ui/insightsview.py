"""The Insights page's parts: the baseline picker, one card per finding, the empty state.

Every text that comes from the log (codes, case names, payload values, versions) reaches the
screen through :func:`stratlog.vocabulary.md_escape` or a chart; the rest is fixed wording.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from stratlog import charts, export
from stratlog import vocabulary as fmt
from stratlog.baselines import INSIGHTS_BASELINES, PRECEDING_WEEK
from stratlog.service.insights import Finding, Insights, runs_behind, runs_filter, why
from stratlog.service.runbook import NO_VERSION
from stratlog.ui import nav
from stratlog.ui.state import View

K_BASELINE = "w_insights_baseline"
SEVERITY_BADGE = {"critical": "red", "warning": "orange", "info": "blue"}
KIND_LABEL = {
    "new_error_code": "New error code",
    "spiking_error_code": "Spiking error code",
    "dormant_case": "Rule stopped firing",
    "fallthrough_shift": "Fallthrough share moved",
    "case_mix_shift": "Case mix moved",
    "points_shift": "Points distribution moved",
    "duration_shift": "Duration distribution moved",
    "nodes_shift": "Nodes distribution moved",
    "failure_payload_lift": "Payload field among failures",
    "node_budget_headroom": "Close to the node budget",
    "suspect_version": "Suspect version",
}


def _on_baseline() -> None:
    params = st.query_params.to_dict()
    choice = st.session_state.get(K_BASELINE) or PRECEDING_WEEK
    if choice == PRECEDING_WEEK:
        params.pop("baseline", None)
    else:
        params["baseline"] = choice
    st.query_params.from_dict(params)


def baseline_picker(view: View) -> None:
    """What the findings compare with (``baseline=`` in the URL; default: the 7 days before)."""
    st.session_state[K_BASELINE] = view.baseline
    st.segmented_control(
        "Compare with",
        list(INSIGHTS_BASELINES),
        key=K_BASELINE,
        format_func=lambda key: INSIGHTS_BASELINES[key],
        on_change=_on_baseline,
        required=True,
        help="The findings compare shares, rates and hourly counts, so the baseline may be "
        "longer than the window: the 7 days before it unless you pick another.",
    )


def json_button(found: Insights) -> None:
    """The findings as ``stratlog insights --json`` prints them."""
    data = (json.dumps(found.to_json(), indent=2, default=str) + "\n").encode("utf-8")
    st.download_button(
        "JSON",
        data,
        file_name=export.file_name(found.strategyId, found.since, found.until, "insights", "json"),
        mime="application/json",
        on_click="ignore",
        key="insights_json",
        icon=":material/data_object:",
        help="The findings with their evidence, as `stratlog insights --json` prints them.",
    )


def summary(found: Insights) -> None:
    """One line: how many findings of each severity, and the runs on each side."""
    then = (
        f"{fmt.utc(found.baselineSince, seconds=False)} → "
        f"{fmt.utc(found.baselineUntil, seconds=False)}"
    )
    counts = {s: sum(f.severity == s for f in found.findings) for s in SEVERITY_BADGE}
    told = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no findings"
    st.caption(fmt.md_escape(
        f"{told} · {found.runs:,} runs now, {found.baselineRuns:,} in {found.baselineLabel} "
        f"({then})"
    ))  # fmt: skip


def nothing_unusual(found: Insights) -> None:
    """The empty state: nothing was flagged, and what was looked at."""
    st.success(
        "Nothing unusual: no finding passed its rule in this window.",
        icon=":material/check_circle:",
    )
    st.markdown("**Checked**")
    st.markdown("\n".join(f"- {fmt.md_escape(check)}" for check in found.checks))


def _runs_view(finding: Finding, view: View, found: Insights) -> View | None:
    wanted = runs_filter(finding)
    if wanted is None:
        return None
    target = view.without_filters().replace(limit=view.limit)
    window = wanted.pop("window", None)
    if window == "baseline":
        target = target.replace(preset=None, since=found.baselineSince, until=found.baselineUntil)
    elif isinstance(window, tuple):
        since, until = window
        target = target.replace(
            preset=None, since=max(since, found.since), until=min(until, found.until)
        )
    if "case" in wanted:
        wanted["case"] = fmt.NO_RULE if wanted["case"] is None else wanted["case"]
    if "version" in wanted and wanted["version"] is None:
        wanted["version"] = NO_VERSION
    return target.replace(**wanted)


def card(finding: Finding, view: View, found: Insights, index: int) -> None:
    """One finding: severity, kind and subject, the summary, why it was flagged, the runs
    behind it, a small chart, and a link to those runs."""
    with st.container(border=True, key=f"finding_{index}"):
        text, chart = st.columns([3, 2], gap="medium")
        with text:
            with st.container(horizontal=True, gap="small", vertical_alignment="center"):
                colour: Any = SEVERITY_BADGE[finding.severity]
                st.badge(finding.severity, color=colour)
                st.markdown(f"**{KIND_LABEL.get(finding.kind, finding.kind)}**")
            if finding.subject is not None:
                st.markdown(f"`{fmt.clip(fmt.visible(finding.subject), 200).replace('`', 'ˋ')}`")
            st.markdown(fmt.md_escape(finding.summary))
            st.caption(fmt.md_escape(f"{why(finding)} Behind it: {runs_behind(finding)}."))
            target = _runs_view(finding, view, found)
            if target is not None:
                label = (
                    "Open the runs with this value (ok and failing)"
                    if finding.kind == "failure_payload_lift" else "Open these runs"
                )  # fmt: skip
                nav.link(nav.RUNBOOK, target, label=label, icon=":material/list:")
            else:
                nav.link(nav.OVERVIEW, view, "Open the Overview", ":material/space_dashboard:")
        with chart:
            figure = charts.finding_chart(finding.kind, finding.evidence)
            spec = export.to_spec(charts.style(figure))
            st.vega_lite_chart(spec, width="stretch")
