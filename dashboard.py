"""Entry point of the operator dashboard: `streamlit run dashboard.py`.

Page config, the navigation over pages/, and the shared sidebar (strategy, UTC window, refresh).
The view lives in the URL; see stratlog/ui/state.py for the query parameters.
"""

import streamlit as st

from stratlog.ui import app, nav

st.set_page_config(
    page_title="stratlog",
    page_icon=":material/monitoring:",
    layout="wide",
    initial_sidebar_state="expanded",
    menu_items={"About": "stratlog: operator dashboard for the scoring engine's audit log."},
)
page = st.navigation(nav.pages(), position="hidden")
app.start(page.url_path)
page.run()
