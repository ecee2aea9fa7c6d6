"""The runbook service: filters, order, keyset paging and neighbours, on the demo data."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stratlog.demo import write_demo
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.service.runbook import RunbookQuery, fetch_neighbours, fetch_runbook
from stratlog.vocabulary import NO_RULE
from tests.cli.helpers import create_schema, repository

#: The dashboard tests' demo: five strategies, 4,000 rows over the two days up to FIXED_END.
FIXED_END = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def repo(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[StrategyExecutionLogRepository]:
    url = f"sqlite+aiosqlite:///{Path(tmp_path_factory.mktemp('runbook')) / 'demo.db'}"
    await create_schema(url)
    async with repository(url) as repo:
        await write_demo(repo, 4000, days=2, end=FIXED_END)
        yield repo


@pytest.fixture
def query() -> Callable[..., RunbookQuery]:
    since, until = FIXED_END - timedelta(hours=24), FIXED_END

    def make(strategy: str, **filters: Any) -> RunbookQuery:
        return RunbookQuery(strategy, since, until, **filters)

    return make


async def test_runbook_filters_and_order(
    repo: StrategyExecutionLogRepository, query: Callable[..., RunbookQuery]
) -> None:
    everything = await fetch_runbook(repo, query("fraud-screen"))
    keys = [(r["createdAt"], r["id"]) for r in everything.rows]
    assert keys == sorted(keys, reverse=True)
    assert all(
        everything.query.since <= r["createdAt"] < everything.query.until for r in everything.rows
    )
    assert "UPSTREAM_UNAVAILABLE" in everything.codes
    assert everything.more and everything.matched is not None and everything.matched > 50
    spike = await fetch_runbook(repo, query("fraud-screen", errorCode="UPSTREAM_UNAVAILABLE"))
    assert spike.rows and {r["errorCode"] for r in spike.rows} == {"UPSTREAM_UNAVAILABLE"}
    assert spike.matched == len(spike.rows) and not spike.more
    none = await fetch_runbook(repo, query("promo-eligibility", case=NO_RULE))
    assert none.rows and {r["caseName"] for r in none.rows} == {None}
    both = await fetch_runbook(repo, query("fraud-screen", status="error", case=NO_RULE))
    assert both.rows == [] and both.matched == 0  # "no rule matched" is an ok run's case
    ghost = await fetch_runbook(repo, query("fraud-screen", errorCode="NOPE"))
    assert ghost.rows == [] and ghost.matched == 0


async def test_runbook_pages_back_through_the_whole_window(
    repo: StrategyExecutionLogRepository, query: Callable[..., RunbookQuery]
) -> None:
    """Keyset paging reaches every run of a busy window: no 200-per-status ceiling any more."""
    wide = query("credit-limit")
    wide = RunbookQuery(wide.strategyId, wide.since - timedelta(days=1), wide.until, limit=200)
    seen: list[int] = []
    page = await fetch_runbook(repo, wide)
    total = page.matched
    while True:
        seen += [r["id"] for r in page.rows]
        if not page.more:
            break
        following = dataclasses.replace(wide, before=page.last)
        page = await fetch_runbook(repo, following)
        assert page.paged and page.start is not None
    assert total is not None and total > 400 and len(seen) == total == len(set(seen))
    lost = await fetch_runbook(repo, dataclasses.replace(wide, before=10**12))
    assert lost.lost_start and not lost.paged and lost.rows  # back to the newest runs


async def test_runbook_neighbours_follow_the_filters(
    repo: StrategyExecutionLogRepository, query: Callable[..., RunbookQuery]
) -> None:
    wanted = query("kyc-depth", status="ok", limit=200)
    book = await fetch_runbook(repo, wanted)
    ids = [r["id"] for r in book.rows]

    async def around(row_id: int) -> tuple[int | None, int | None]:
        return await fetch_neighbours(repo, wanted, row_id)

    assert await around(ids[0]) == (None, ids[1])
    assert await around(ids[1]) == (ids[0], ids[2])
    # Beyond the first page too: the repository answers for any run, not a list in memory.
    assert book.more
    last = await around(ids[-1])
    assert last[0] == ids[-2] and last[1] is not None and last[1] not in ids
