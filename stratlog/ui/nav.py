"""The pages, links between them that carry the view in the URL, and drill-down jumps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import streamlit as st

from stratlog.ui.state import View


@dataclass(frozen=True)
class PageSpec:
    """One page script: where it lives, its title, icon and URL path."""

    path: str
    title: str
    icon: str
    url_path: str


OVERVIEW = PageSpec("pages/overview.py", "Overview", ":material/space_dashboard:", "overview")
INSIGHTS = PageSpec("pages/insights.py", "Insights", ":material/insights:", "insights")
RUNBOOK = PageSpec("pages/runbook.py", "Runbook", ":material/format_list_bulleted:", "runbook")
ROW = PageSpec("pages/row.py", "Row detail", ":material/receipt_long:", "row")
HEALTH = PageSpec("pages/health.py", "Health", ":material/monitor_heart:", "health")
PAGES = (OVERVIEW, INSIGHTS, RUNBOOK, ROW, HEALTH)


def pages() -> list[st.Page]:
    """``st.Page`` objects for ``st.navigation`` (Overview is the default page)."""
    return [
        st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=p is OVERVIEW)
        for p in PAGES
    ]


def link(page: PageSpec, view: View, label: str | None = None, icon: str | None = None) -> None:
    """A link to ``page`` that keeps the whole view (strategy, window, filters, row) in the URL."""
    st.page_link(
        page.path,
        label=label or page.title,
        icon=icon or page.icon,
        query_params=view.params(),
    )


def go(page: PageSpec, view: View) -> NoReturn:
    """Switch to ``page`` showing ``view`` (used by drill-down clicks)."""
    st.switch_page(page.path, query_params=view.params())
