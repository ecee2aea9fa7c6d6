"""One snapshot per page: the Overview's and the runbook's figures add up while rows come and go."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.model import StrategyExecutionLog
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.rollups.retention import prune
from stratlog.service.overview import fetch_overview
from stratlog.service.runbook import RunbookQuery, fetch_runbook
from tests.conftest import T0, make_row

L = StrategyExecutionLog
SINCE, UNTIL = T0, T0 + timedelta(hours=3)
STATUSES = ("ok", "ok", "ok", "error", "timeout", "limit")
OLD = timedelta(days=3)


def some_rows(rng: random.Random, count: int) -> list[dict[str, object]]:
    """Runs spread over the window, a mix of statuses, durations and points."""
    rows = []
    for _ in range(count):
        status = rng.choice(STATUSES)
        rows.append(
            make_row(
                status=status,
                errorCode=None if status == "ok" else f"E{rng.randint(1, 3)}",
                caseName=rng.choice(["a", "b", None]) if status == "ok" else None,
                points=rng.uniform(-5, 50) if status == "ok" else None,
                durationMs=rng.lognormvariate(2, 0.7),
                createdAt=SINCE + timedelta(seconds=rng.uniform(0, 3 * 3600 - 1)),
            )
        )
    return rows


async def churn(
    repo: StrategyExecutionLogRepository,
    engine: AsyncEngine,
    stop: asyncio.Event,
    *,
    folding: bool = False,
) -> None:
    """Until stopped: a writer adding runs to the window, and a pruner deleting the oldest ones.

    With ``folding`` the rollup job runs too, and the pruner is ``prune`` on an older day (a
    row deleted by hand after it was folded would make the rollups disagree with the raw
    table, which ``stratlog rollup --verify`` reports).
    """
    rng = random.Random(7)
    job = RollupJob(engine, 300)
    while not stop.is_set():
        await repo.insert_many(some_rows(rng, 40))
        if folding:
            old = some_rows(rng, 20)
            await repo.insert_many([{**r, "createdAt": r["createdAt"] - OLD} for r in old])
            await job.run_once()
            await prune(engine, SINCE - timedelta(days=1), batch_rows=7)
        else:
            async with engine.begin() as conn:
                oldest = select(L.id).order_by(L.id).limit(rng.randint(5, 30)).scalar_subquery()
                await conn.execute(delete(L).where(L.id.in_(oldest)))
        await asyncio.sleep(0)


async def assert_overviews_add_up(repo: StrategyExecutionLogRepository, pages: int) -> None:
    """Every figure of each Overview counts the same runs."""
    for _ in range(pages):
        ov = await fetch_overview(repo, "credit-limit", SINCE, UNTIL)
        total = sum(ov.statusCounts.values())
        series = sum(item["count"] for item in ov.timeseries)
        cases = sum(item["count"] for item in ov.caseNames)  # at most 10 cases: all here
        assert total == ov.summary["count"] == series == ov.durations.total
        assert cases == ov.statusCounts.get("ok", 0)  # the cases describe the ok runs
        assert ov.durations.exact and ov.durations.n == total
        assert ov.points.total == ov.points.n == sum(b.count for b in ov.pointsHistogram)


@pytest.mark.parametrize("folding", [False, True], ids=["rows-come-and-go", "fold-and-prune"])
async def test_the_overview_adds_up_while_rows_arrive_and_are_deleted(
    empty_repo: StrategyExecutionLogRepository, engine: AsyncEngine, folding: bool
) -> None:
    await empty_repo.insert_many(some_rows(random.Random(1), 3000))
    async with churning(empty_repo, engine, folding=folding):
        await assert_overviews_add_up(empty_repo, 25)


@asynccontextmanager
async def churning(
    repo: StrategyExecutionLogRepository, engine: AsyncEngine, *, folding: bool = False
) -> AsyncIterator[None]:
    """:func:`churn` in the background for the block's duration."""
    stop = asyncio.Event()
    background = asyncio.create_task(churn(repo, engine, stop, folding=folding))
    try:
        yield
    finally:
        stop.set()
        await background


async def test_the_runbook_counts_match_its_rows_while_rows_arrive(
    empty_repo: StrategyExecutionLogRepository, engine: AsyncEngine
) -> None:
    await empty_repo.insert_many(some_rows(random.Random(2), 500))
    async with churning(empty_repo, engine):
        for _ in range(25):
            book = await fetch_runbook(
                empty_repo, RunbookQuery("credit-limit", SINCE, UNTIL, status="error", limit=200)
            )
            assert book.matched is not None
            if not book.more:
                assert book.matched == len(book.rows)


async def test_many_pages_at_once_share_a_small_pool(postgres_server) -> None:  # type: ignore[no-untyped-def]
    """Each view holds a leader connection: eight pages at once on a pool of three still finish."""
    from stratlog.db import make_engine, make_session_factory, upgrade

    engine = make_engine(postgres_server.url, pool_size=3, pool_timeout=5)
    try:
        await upgrade(engine)
        repo = StrategyExecutionLogRepository(make_session_factory(engine))
        pages = [fetch_overview(repo, "credit-limit", SINCE, UNTIL) for _ in range(8)]
        done = await asyncio.wait_for(asyncio.gather(*pages), 30)
        assert len({ov.total for ov in done}) == 1
    finally:
        await engine.dispose()
