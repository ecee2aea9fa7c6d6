"""Insights: what is different about this window and why, ranked, each finding with its
numbers, a small chart, the rule that flagged it and a link to its runs."""

import streamlit as st

from stratlog import vocabulary as fmt
from stratlog.ui import context, insightsview, nav, panels

state = context.current()
with st.spinner("Looking for what changed…"):
    found, problem = context.insights(state)


def actions() -> None:
    panels.link_action(state.view, nav.INSIGHTS)()
    if found is not None:
        insightsview.json_button(found)


panels.page_header("Insights", state, actions=actions)
insightsview.baseline_picker(state.view)
if found is None:
    st.warning(f"No insights: {fmt.md_escape(problem or '')}.", icon=":material/compare:")
    st.stop()
insightsview.summary(found)
if not found.runs:
    panels.empty_state()
    st.stop()
if not found.findings:
    insightsview.nothing_unusual(found)
    st.stop()
for index, finding in enumerate(found.findings):
    insightsview.card(finding, state.view, found, index)
