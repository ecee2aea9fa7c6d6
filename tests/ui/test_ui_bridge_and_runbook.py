"""The async bridge (one loop, engine bound to it, timeouts) and the runbook filtering."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from stratlog.ui.bridge import Backend, QueryTimeout
from stratlog.ui.runbook import RunbookQuery, fetch_neighbours, fetch_runbook
from stratlog.ui.state import NO_RULE, parse_utc


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


@pytest.fixture
def query(window: dict[str, str]) -> Callable[..., RunbookQuery]:
    since, until = parse_utc(window["since"]), parse_utc(window["until"])

    def make(strategy: str, **filters: Any) -> RunbookQuery:
        return RunbookQuery(strategy, since, until, **filters)

    return make


def test_runbook_filters_and_order(
    demo_url: str, backend_for: Any, query: Callable[..., RunbookQuery]
) -> None:
    backend: Backend = backend_for(demo_url)
    everything = backend.run(fetch_runbook(backend.repository, query("fraud-screen")))
    keys = [(r["createdAt"], r["id"]) for r in everything.rows]
    assert keys == sorted(keys, reverse=True)
    assert all(
        everything.query.since <= r["createdAt"] < everything.query.until for r in everything.rows
    )
    assert "UPSTREAM_UNAVAILABLE" in everything.codes
    assert everything.more and everything.matched is not None and everything.matched > 50
    spike = backend.run(
        fetch_runbook(backend.repository, query("fraud-screen", errorCode="UPSTREAM_UNAVAILABLE"))
    )
    assert spike.rows and {r["errorCode"] for r in spike.rows} == {"UPSTREAM_UNAVAILABLE"}
    assert spike.matched == len(spike.rows) and not spike.more
    none = backend.run(fetch_runbook(backend.repository, query("promo-eligibility", case=NO_RULE)))
    assert none.rows and {r["caseName"] for r in none.rows} == {None}
    both = backend.run(
        fetch_runbook(backend.repository, query("fraud-screen", status="error", case=NO_RULE))
    )
    assert both.matched is None  # no single count answers two filters: the page says less
    ghost = backend.run(fetch_runbook(backend.repository, query("fraud-screen", errorCode="NOPE")))
    assert ghost.rows == [] and ghost.matched == 0


def test_runbook_pages_back_through_the_whole_window(
    demo_url: str, backend_for: Any, query: Callable[..., RunbookQuery]
) -> None:
    """Keyset paging reaches every run of a busy window: no 200-per-status ceiling any more."""
    backend: Backend = backend_for(demo_url)
    wide = query("credit-limit")
    wide = RunbookQuery(wide.strategyId, wide.since - timedelta(days=1), wide.until, limit=200)
    seen: list[int] = []
    page = backend.run(fetch_runbook(backend.repository, wide))
    total = page.matched
    while True:
        seen += [r["id"] for r in page.rows]
        if not page.more:
            break
        following = dataclasses.replace(wide, before=page.last)
        page = backend.run(fetch_runbook(backend.repository, following))
        assert page.paged and page.start is not None
    assert total is not None and total > 400 and len(seen) == total == len(set(seen))
    lost = backend.run(fetch_runbook(backend.repository, dataclasses.replace(wide, before=10**12)))
    assert lost.lost_start and not lost.paged and lost.rows  # back to the newest runs


def test_runbook_neighbours_follow_the_filters(
    demo_url: str, backend_for: Any, query: Callable[..., RunbookQuery]
) -> None:
    backend: Backend = backend_for(demo_url)
    wanted = query("kyc-depth", status="ok", limit=200)
    book = backend.run(fetch_runbook(backend.repository, wanted))
    ids = [r["id"] for r in book.rows]

    def around(row_id: int) -> tuple[int | None, int | None]:
        return backend.run(fetch_neighbours(backend.repository, wanted, row_id))

    assert around(ids[0]) == (None, ids[1])
    assert around(ids[1]) == (ids[0], ids[2])
    # Beyond the first page too: the repository answers for any run, not a list in memory.
    assert book.more
    last = around(ids[-1])
    assert last[0] == ids[-2] and last[1] is not None and last[1] not in ids
