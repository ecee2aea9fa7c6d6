"""Async bridged once: one long-lived event loop in a daemon thread that owns the engine.

Streamlit scripts are synchronous and an ``AsyncEngine`` is bound to the loop it first ran on,
so the engine is created inside the loop and every coroutine is submitted to it with
``asyncio.run_coroutine_threadsafe(...).result(timeout)``. The app keeps one :class:`Backend`
per database URL (in ``st.cache_resource``); benchmarks and tests can use it directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.config import load_settings, redact_url
from stratlog.db import (
    existing_file_url,
    make_engine,
    make_session_factory,
    sqlite_path,
    upgrade,
)
from stratlog.dialect import is_sqlite_url
from stratlog.repository.strategy_execution_log_repository import StrategyExecutionLogRepository

T = TypeVar("T")


class QueryTimeout(TimeoutError):
    """The database did not answer within the configured time."""


class MissingDatabaseFile(FileNotFoundError):
    """The SQLite file the dashboard reads is not there (moved, deleted, never created)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no database file at {path}")
        self.path = path


class Backend:
    """An event loop thread, the engine created on it, and the repository over that engine.

    ``reader=True`` is the dashboard's: it never creates, migrates or silently replaces an
    SQLite file. Every call first checks that the file is there; when it is gone, the pooled
    connections (which would go on reading the moved file) are dropped and the call raises
    :class:`MissingDatabaseFile`, so every page says the same; once the file is back, the next
    call opens it afresh.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float | None = None,
        migrate: bool | None = None,
        reader: bool = False,
    ):
        self.url = url
        self.reader = reader
        self._file = sqlite_path(url) if reader else None
        self._inode: int | None = None
        self.timeout = load_settings().query_timeout_s if timeout is None else timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="stratlog-db-loop", daemon=True
        )
        self._thread.start()
        try:
            self.engine: AsyncEngine = self.run(self._create_engine())
            self.repository = StrategyExecutionLogRepository(make_session_factory(self.engine))
            # Tests and benchmarks may let it set up a new SQLite file; the dashboard (a reader)
            # never alters a database (run `stratlog db upgrade` there).
            if (is_sqlite_url(url) and not reader) if migrate is None else migrate:
                self.run(upgrade(self.engine))
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"Backend({redact_url(self.url)!r})"

    async def _create_engine(self) -> AsyncEngine:
        return make_engine(existing_file_url(self.url) if self.reader else self.url)

    def check_file(self) -> None:
        """Raise :class:`MissingDatabaseFile` (dropping pooled connections) if the file is gone."""
        if self._file is None:
            return
        try:
            inode = self._file.stat().st_ino
        except OSError:
            inode = None
        if inode is not None and inode == self._inode:
            return
        # Gone, or another file now (a restored backup moved into place): pooled connections
        # still read the old one, so drop them.
        if self._inode is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.engine.dispose(), self._loop).result(5)
        self._inode = inode
        if inode is None:
            raise MissingDatabaseFile(self._file)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the backend's loop and wait for its result (or ``QueryTimeout``)."""
        if self._file is not None and hasattr(self, "engine"):
            try:
                self.check_file()
            except MissingDatabaseFile:
                coro.close()
                raise
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        limit = self.timeout if timeout is None else timeout
        try:
            return future.result(limit)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise QueryTimeout(
                f"the database did not answer within {limit:g} s ({redact_url(self.url)})"
            ) from None

    @property
    def alive(self) -> bool:
        """True while the loop thread runs."""
        return self._thread.is_alive() and not self._loop.is_closed()

    def close(self) -> None:
        """Dispose of the engine, stop the loop and join its thread; safe to call twice."""
        if self._loop.is_closed():
            return
        engine = getattr(self, "engine", None)
        if engine is not None and self._thread.is_alive():
            # Closing must not fail: the process may be shutting down, the server gone.
            with contextlib.suppress(Exception):
                self.run(engine.dispose(), timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
