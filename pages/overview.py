"""Overview: headline figures and every panel for one strategy and window (one service call)."""

import streamlit as st

from stratlog.ui import context, nav, panels

state = context.current()
overview = context.overview(state)
panels.page_header(
    "Overview",
    state,
    f"fetched {overview.fetchedAt:%H:%M:%S} UTC",
    actions=panels.overview_actions(overview, state.view, nav.OVERVIEW),
)
panels.headline(overview)
if not overview.total:  # one notice, not one per panel
    panels.empty_state()
    st.stop()

left, right = st.columns([2, 3], gap="medium", border=True)
with left:
    panels.status_panel(overview, state.view)
with right:
    panels.timeseries_panel(overview)

left, right = st.columns(2, gap="medium", border=True)
with left:
    panels.error_codes_panel(overview, state.view)
with right:
    panels.cases_panel(overview, state.view)

left, right = st.columns(2, gap="medium", border=True)
with left:
    panels.durations_panel(overview)
with right:
    panels.points_panel(overview)
