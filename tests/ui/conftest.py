"""Fixtures for the AppTest suite: deterministic demo databases and a page opener.

AppTest runs the app in this process, so Streamlit's caches are global here: every test starts
and ends with empty caches, and clearing ``st.cache_resource`` closes the cached backends (their
event-loop threads and engines) through ``on_release``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from stratlog.demo import write_demo
from stratlog.ui.bridge import Backend
from stratlog.ui.state import iso_utc

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboard.py"
#: The last moment of the demo data: fixed, so every run sees the same rows.
FIXED_END = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
DEMO_ROWS = 4000
DEMO_DAYS = 2
PAGE_TIMEOUT_S = 30

OpenApp = Callable[..., AppTest]


def file_url(path: Path) -> str:
    """The aiosqlite URL of a file."""
    return f"sqlite+aiosqlite:///{path}"


def day_window(end: datetime = FIXED_END) -> dict[str, str]:
    """Query parameters of the 24 h ending at ``end`` (inside the demo data)."""
    return {"since": iso_utc(end - timedelta(hours=24)), "until": iso_utc(end)}


@pytest.fixture(scope="session")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A demo database (five strategies, two days up to FIXED_END), built once."""
    url = file_url(tmp_path_factory.mktemp("ui-demo") / "demo.db")
    backend = Backend(url)
    try:
        backend.run(write_demo(backend.repository, DEMO_ROWS, days=DEMO_DAYS, end=FIXED_END))
    finally:
        backend.close()
    return url


@pytest.fixture
def backend_for() -> Iterator[Callable[[str], Backend]]:
    """Open Backends on a URL for direct reads/writes in a test; all closed at the end."""
    opened: list[Backend] = []

    def open_backend(url: str) -> Backend:
        opened.append(Backend(url))
        return opened[-1]

    yield open_backend
    for backend in opened:
        backend.close()


@pytest.fixture
def empty_url(tmp_path: Path) -> str:
    """A database with the schema and no rows."""
    url = file_url(tmp_path / "empty.db")
    Backend(url).close()  # creating the backend runs the migrations on SQLite
    return url


@pytest.fixture
def down_url() -> str:
    """A PostgreSQL URL (with a password) where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+asyncpg://reader:s3cret-pw@127.0.0.1:{port}/audit"


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Empty Streamlit caches around every test; releasing resources closes the backends."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def open_app(monkeypatch: pytest.MonkeyPatch) -> OpenApp:
    """Run the dashboard on ``url`` with query ``params``, optionally switched to ``page``."""

    def run(
        url: str,
        page: str | None = None,
        *,
        secrets: dict[str, Any] | None = None,
        user: dict[str, Any] | None = None,
        **params: Any,
    ) -> AppTest:
        monkeypatch.setenv("STRATLOG_DATABASE_URL", url)
        at = AppTest.from_file(str(DASHBOARD), default_timeout=PAGE_TIMEOUT_S)
        at.query_params.update({k: str(v) for k, v in params.items()})
        at.secrets.update(secrets or {})
        if user is not None:
            at.user = user
        if page is not None:  # the file name is the page's URL path, so this works before a run
            at.switch_page(page)
        return at.run()

    return run


def texts(elements: Any) -> list[str]:
    """The ``value`` of every element in an AppTest element list, as text."""
    return [str(e.value) for e in elements]


def _rendered_markdown(at: AppTest) -> str:
    groups = (at.markdown, at.caption, at.title, at.header, at.subheader, at.warning, at.info)
    parts = [text for group in groups for text in texts(group)]
    parts += texts(at.error) + texts(at.success) + [m.label for m in at.metric]
    return "\n".join(parts)


@pytest.fixture
def markdown_text() -> Callable[[AppTest], str]:
    """All text the app handed to Markdown-rendering elements (titles, captions, alerts...)."""
    return _rendered_markdown


@pytest.fixture
def demo_end() -> datetime:
    """The last moment of the demo data."""
    return FIXED_END


@pytest.fixture
def window() -> dict[str, str]:
    """Query parameters of the 24 h that end with the demo data."""
    return day_window()
