"""Overview: headline figures and every panel for one strategy and window, each beside the same
figure in the baseline the sidebar picked (another window, or another version), the versions
that ran and where each was first seen."""

from datetime import timedelta

import streamlit as st

from stratlog import vocabulary as fmt
from stratlog.ui import context, nav, panels

TOP = 10

state = context.current()
comparison, problem = context.comparison(state)
if comparison is not None:
    overview, before = context.trimmed_current(comparison, TOP), comparison.before
else:
    overview, before = context.overview(state), None
versions = context.versions(state)
# Rules where a version ran first: in the window, or in the baseline window shown beside it.
marks = panels.version_marks(versions, overview, before)
panels.page_header(
    "Overview",
    state,
    f"fetched {overview.fetchedAt:%H:%M:%S} UTC",
    actions=panels.overview_actions(
        overview, state.view, nav.OVERVIEW, comparison, versions, context.insights_loader(state)
    ),
)
if problem:
    st.warning(f"No comparison: {fmt.md_escape(problem)}.", icon=":material/compare:")
panels.headline(overview, comparison)
if not overview.total:  # one notice, not one per panel
    panels.empty_state(panels.empty_text(overview))
    st.stop()

left, right = st.columns([2, 3], gap="medium", border=True)
with left:
    panels.status_panel(overview, state.view, before)
with right:
    panels.timeseries_panel(overview, state.view, before, marks)

left, right = st.columns(2, gap="medium", border=True)
with left:
    panels.error_codes_panel(overview, state.view, comparison)
with right:
    panels.cases_panel(overview, state.view, comparison)

with st.container(border=True):
    panels.versions_panel(versions, state.view)

left, right = st.columns(2, gap="medium", border=True)
with left:
    panels.durations_panel(overview, comparison)
with right:
    bucket, now, then = context.durations(state, overview, before)
    offset = overview.since - before.since if before is not None else timedelta(0)
    panels.duration_time_panel(now, then, overview, bucket, offset, marks)

with st.container(border=True):
    panels.points_panel(overview, before)
