"""Health: what the recorder processes report and how far the rollup job has got."""

import streamlit as st

from stratlog.ui import context, healthview, nav, panels

state = context.current()
health = context.health(state)
panels.title_row("Health", panels.link_action(state.view, nav.HEALTH))
st.caption("Recorder counters and rollup freshness of this database · times in UTC")
st.caption(healthview.served_by())
if (replica := healthview.replica_line(context.replica(state.url))) is not None:
    st.caption(replica)
healthview.page(health)
