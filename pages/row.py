"""Row detail: every field of one run, its error message and payloads, and its neighbours."""

import streamlit as st

from stratlog.ui import context, runs

state = context.current()
view = state.view
if view.row is None:
    st.title("Row detail", anchor=False)
    runs.no_row(view)
    st.stop()
row = context.row(state, view.row)
if row is None:
    st.title("Row detail", anchor=False)
    runs.missing_row(view)
    st.stop()

query = context.runbook_query(state, row["strategyId"])
runs.row_heading(row)
runs.row_links(
    view, context.neighbours(state, row["strategyId"], row["id"]), matches=query.matches(row)
)
if row["strategyId"] != view.strategy:
    runs.other_strategy_notice()
runs.row_facts(row)
left, right = st.columns([2, 3], gap="medium")
with left:
    runs.row_fields(row)
with right:
    runs.row_texts(row)
