"""Overview: headline figures and every panel for one strategy and window, each beside the same
figure in the baseline window the sidebar picked (one cached service call either way)."""

import streamlit as st

from stratlog.service.compare import trimmed
from stratlog.ui import context, nav, panels

TOP = 10

state = context.current()
comparison = context.comparison(state)
if comparison is not None:
    overview, before = trimmed(comparison.current, TOP), comparison.before
else:
    overview, before = context.overview(state), None
panels.page_header(
    "Overview",
    state,
    f"fetched {overview.fetchedAt:%H:%M:%S} UTC",
    actions=panels.overview_actions(overview, state.view, nav.OVERVIEW, comparison),
)
panels.headline(overview, comparison)
if not overview.total:  # one notice, not one per panel
    panels.empty_state()
    st.stop()

left, right = st.columns([2, 3], gap="medium", border=True)
with left:
    panels.status_panel(overview, state.view, before)
with right:
    panels.timeseries_panel(overview, before)

left, right = st.columns(2, gap="medium", border=True)
with left:
    panels.error_codes_panel(overview, state.view, comparison)
with right:
    panels.cases_panel(overview, state.view, comparison)

left, right = st.columns(2, gap="medium", border=True)
with left:
    panels.durations_panel(overview, comparison)
with right:
    panels.points_panel(overview, before)
