"""What the entry point does on every run before the page: URL → view, sidebar, URL ← view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import streamlit as st

from stratlog import export
from stratlog.config import redact_url
from stratlog.ui import auth, context, downloads, nav, sidebar
from stratlog.ui.errors import DATABASE_ERRORS
from stratlog.ui.state import (
    PARAMS,
    Notice,
    View,
    canonical,
    for_page,
    parse_view,
    repeated,
    resolve_strategy,
)
from stratlog.vocabulary import clip, md_escape

EMPTY_RETRY_S = 10


def _sync_url(current: dict[str, str], view: View) -> None:
    diff = canonical(current, view)
    if diff.changed:
        st.query_params.from_dict(diff.target)


def _show(notices: list[Notice]) -> None:
    for notice in notices:
        if notice.level == "warning":
            st.warning(notice.text, icon=":material/link_off:")
        else:
            st.info(notice.text, icon=":material/info:")


def _unknown_page(page_path: str) -> list[Notice]:
    """A notice when the browser asked for a page that does not exist (the Overview shows)."""
    url = st.context.url
    if not url:
        return []
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    asked = urlsplit(url).path.strip("/").removeprefix(base).strip("/")
    known = {p.url_path for p in nav.PAGES}
    if asked in known or asked == page_path or not asked:
        return []
    text = f"There is no page “{md_escape(clip(asked, 60))}”: showing the Overview."
    return [Notice("warning", text)]


def _load_strategies(url: str, box: Any, view: View) -> list[dict[str, Any]]:
    try:
        context.backend(url).check_file()  # every page, even one whose results are cached
        return context.load_strategies(url)
    except DATABASE_ERRORS as exc:
        sidebar.navigation(box, view)
        context.show_failure(url, exc)


def _empty_database(url: str) -> None:
    st.title("No runs recorded yet")
    st.info(
        f"The audit log in {md_escape(redact_url(url))} is empty: no strategy has recorded a run. "
        "Let the scoring engine write to it, point STRATLOG_DATABASE_URL at the right database, "
        "or load demo data with `stratlog demo`. The Health page shows what the recorders "
        "report. This page looks again every "
        f"{EMPTY_RETRY_S} s.",
        icon=":material/inbox:",
    )
    _wait_for_rows(url)
    st.stop()


@st.fragment(run_every=EMPTY_RETRY_S)
def _wait_for_rows(url: str) -> None:
    """While the log is empty: look again now and then; rerun the app once rows arrive."""
    context.forget_strategies()
    try:
        if context.load_strategies(url):
            st.rerun(scope="app")
    except DATABASE_ERRORS:
        return


def start(page_path: str = "") -> context.AppState:
    """Pass the gate, resolve the view from the URL, draw the sidebar, write the URL back."""
    export.skip_instantiation_checks()
    export.render_in_helper_process()
    downloads.keep_this_process_downloads()
    gate = auth.gate()  # before anything touches the database
    url = context.database_url()
    now = datetime.now(UTC)
    raw = st.query_params.to_dict()
    view, notices = parse_view(raw, now)
    notices += repeated({key: st.query_params.get_all(key) for key in st.query_params})
    notices += _unknown_page(page_path)
    view = sidebar.live_window(view, raw)
    nav_box = sidebar.brand()
    strategies = _load_strategies(url, nav_box, view)
    if not strategies and page_path != nav.HEALTH.url_path:
        sidebar.navigation(nav_box, view)
        _empty_database(url)
    ids = [s["strategyId"] for s in strategies]
    from_link = any(key in raw for key in PARAMS)
    view, more = resolve_strategy(view, ids, from_link=from_link)
    sidebar.navigation(nav_box, view)
    state = context.AppState(url=url, view=view, strategies=strategies, started=now)
    if strategies:
        # The Insights page has a baseline of its own and reads every version.
        narrowing = page_path != nav.INSIGHTS.url_path
        sidebar.controls(view, strategies, lambda: _named_versions(state), narrowing=narrowing)
    with st.sidebar:
        auth.account(gate)
    _sync_url(raw, view)
    _show(for_page(notices + more, page_path))
    context.remember(state)
    return state


def _named_versions(state: context.AppState) -> list[str]:
    """The named versions of the view's strategy that ran in its window (cached)."""
    if state.view.strategy is None:
        return []
    return [r.version for r in context.versions(state).rows if r.version is not None]
