"""The async bridge: one loop, the engine bound to it, timeouts that cancel, clean failed starts."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from stratlog.ui.bridge import Backend, QueryTimeout


def test_one_loop_thread_runs_every_call(demo_url: str) -> None:
    backend = Backend(demo_url, migrate=False)
    try:

        async def where() -> tuple[int, int]:
            return threading.get_ident(), id(asyncio.get_running_loop())

        first, second = backend.run(where()), backend.run(where())
        assert first == second and first[0] != threading.get_ident()
        strategies = backend.run(backend.repository.list_strategies())
        assert [s["strategyId"] for s in strategies][:2] == ["credit-limit", "fraud-screen"]
    finally:
        backend.close()
    assert not backend.alive
    backend.close()  # twice is fine


def test_a_slow_call_times_out_and_is_cancelled(demo_url: str) -> None:
    backend = Backend(demo_url, timeout=0.05, migrate=False)
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    try:
        with pytest.raises(QueryTimeout, match="did not answer"):
            backend.run(slow())
        assert cancelled.wait(2)
    finally:
        backend.close()


def test_a_failed_start_leaves_no_thread_behind(tmp_path: Any) -> None:
    before = threading.active_count()
    with pytest.raises(Exception, match="unable to open"):
        Backend(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}")
    assert threading.active_count() == before
