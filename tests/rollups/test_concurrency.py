"""The rollups under concurrent writers, other databases' transactions and a concurrent prune.

Each interleaving is played step by step on two connections, so the tests are deterministic;
"waiting" is read off PostgreSQL's ``pg_stat_activity``, not guessed from a sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.model import StatusRollup, StrategyExecutionLog
from stratlog.model.rollup import RollupState
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.rollups.job import lock_watermark
from stratlog.rollups.plan import epoch_us
from stratlog.rollups.retention import _drop_rollups
from tests.conftest import T0, make_row

L = StrategyExecutionLog
ScratchUrl = Callable[[str], Awaitable[str]]


@pytest.fixture
async def fresh(scratch_url: ScratchUrl, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """Engines on new databases of a backend: ``await fresh("postgres")`` (partitioned),
    ``await fresh("postgres-plain")``."""
    engines: list[AsyncEngine] = []

    async def make(backend: str) -> AsyncEngine:
        engine = make_engine(await scratch_url(backend))
        await upgrade(engine, partitioned=backend != "postgres-plain")
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.dispose()


async def waiting_on_lock(engine: AsyncEngine, query: str) -> None:
    """Return once a session whose query contains ``query`` waits for a lock (10 s at most)."""
    probe = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND query LIKE :q AND pid <> pg_backend_pid()"
    )
    async with engine.connect() as conn:
        for _ in range(1000):
            if await conn.scalar(probe, {"q": f"%{query}%"}):
                return
            await conn.commit()
            await asyncio.sleep(0.01)
    raise AssertionError(f"nobody waited for a lock in {query!r}")


async def every_aggregation(repo: StrategyExecutionLogRepository) -> dict[str, Any]:
    """What each kind of aggregation says about the strategy's runs on T0's day."""
    scope = {"strategyId": "credit-limit", "sinceDt": T0 - timedelta(hours=12),
             "untilDt": T0 + timedelta(hours=12)}  # fmt: skip
    series = await repo.timeseries(**scope, bucketSeconds=86400)
    return {
        "status": sum((await repo.count_by_status(**scope)).values()),
        "summary": (await repo.duration_and_nodes_summary(**scope))["count"],
        "timeseries": sum(item["count"] for item in series),
        "cases": sum(c["count"] for c in await repo.count_by_case_name(**scope, limit=100)),
        "bins": sum(n for _, n in await repo.value_bins(**scope, kind="duration")),
        "strategies": sum(s["count"] for s in await repo.list_strategies()),
    }


async def folded(engine: AsyncEngine, grain: int = 86400) -> int:
    """Runs held in the rollup tables at one grain."""
    async with engine.connect() as conn:
        stmt = select(func.coalesce(func.sum(StatusRollup.n), 0))
        return int(await conn.scalar(stmt.where(StatusRollup.grain == grain)) or 0)


async def test_an_id_cannot_be_drawn_first_and_inserted_later(fresh: Any) -> None:
    """The gap PostgreSQL's sequences leave (nextval outside the insert) is closed."""
    engine = await fresh("postgres")
    async with engine.connect() as conn:
        sequence = await conn.scalar(
            text("SELECT pg_get_serial_sequence('strategy_execution_log', 'id')")
        )
        drawn = await conn.scalar(text(f"SELECT nextval('{sequence}')"))
        await conn.commit()
        with pytest.raises(DBAPIError, match="cannot insert a non-DEFAULT value"):
            await conn.execute(insert(L).values(id=drawn, **make_row()))


async def test_the_id_migration_keeps_the_sequence_and_runs_again(fresh: Any) -> None:
    """Down to 0003 and up again: no id handed out twice, and drawing one first stays refused.
    (A plain table: 0008 refuses to take a partitioned table with rows below it.)"""
    from alembic import command

    from stratlog.db import alembic_config

    engine = await fresh("postgres-plain")
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    await repo.insert_many([make_row(requestId=str(i)) for i in range(3)])
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: _alembic(c, command.downgrade, "0003", alembic_config()))
    await upgrade(engine)
    await repo.insert_many([make_row(requestId="after")])
    async with engine.connect() as conn:
        ids = list(await conn.scalars(select(L.id).order_by(L.id)))
        assert ids == [1, 2, 3, 4]
        with pytest.raises(DBAPIError, match="cannot insert a non-DEFAULT value"):
            await conn.execute(insert(L).values(id=99, **make_row()))


def _alembic(connection: Any, action: Any, revision: str, cfg: Any) -> None:
    cfg.attributes["connection"] = connection
    action(cfg, revision)


async def test_a_row_whose_id_was_taken_before_a_newer_commit_is_counted(fresh: Any) -> None:
    """T1 takes an id, T2 commits a larger one, the rollup runs, T1 commits: both are counted."""
    engine = await fresh("postgres")
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    t1 = await engine.connect()
    try:
        await t1.begin()
        first = await t1.scalar(insert(L).values(**make_row(requestId="t1")).returning(L.id))
        await repo.insert_many([make_row(requestId="t2")])  # T2: a larger id, committed
        postponed = await RollupJob(engine, lock_timeout_s=0.2).run_once()
        assert postponed.rows == 0 and postponed.watermark == -1  # it did not pass T1's id
        run = asyncio.create_task(RollupJob(engine, lock_timeout_s=30).run_once())
        await waiting_on_lock(engine, "LOCK TABLE")  # the next run waits for T1 to end
        await t1.commit()
    finally:
        await t1.close()
    done = await run
    assert done.rows == 2 and done.watermark == first + 1 and done.behind == 0
    assert await folded(engine) == 2
    assert set((await every_aggregation(repo)).values()) == {2}


async def test_an_open_transaction_elsewhere_does_not_stall_the_rollup(fresh: Any) -> None:
    """Write transactions in another database, or on another table here, are not waited for."""
    engine, other = await fresh("postgres"), await fresh("postgres")
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    async with other.connect() as elsewhere, engine.connect() as here:
        await elsewhere.begin()
        await elsewhere.execute(text("SELECT pg_current_xact_id()"))  # a write transaction's xid
        await here.begin()
        await here.execute(text("SELECT pg_current_xact_id()"))
        # Newer transactions commit after them, so both stay in every snapshot's in-progress list.
        await repo.insert_many([make_row(requestId=str(i)) for i in range(50)])
        assert await asyncio.wait_for(RollupJob(engine).catch_up(), 20) == 50
        await elsewhere.rollback()
        await here.rollback()
    assert await folded(engine) == 50


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_first_runs_at_once_do_not_collide(fresh: Any, backend: str) -> None:
    engine = await fresh(backend)
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    await repo.insert_many([make_row(requestId=str(i)) for i in range(20)])
    runs = await asyncio.gather(RollupJob(engine).run_once(), RollupJob(engine).run_once())
    assert sorted(r.rows for r in runs) == [0, 20]
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(RollupState)) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_prune_waits_for_a_fold_in_flight(fresh: Any, backend: str) -> None:
    """A fold of late rows that commits during a prune leaves no bucket before the cutoff."""
    engine = await fresh(backend)
    cutoff = T0 - timedelta(days=1)
    old_hour = epoch_us(cutoff - timedelta(hours=5)) // 1_000_000
    fold = await engine.connect()
    try:
        await fold.begin()
        await lock_watermark(fold, moved=True)  # a fold in flight, about to commit a late bucket
        await fold.execute(insert(StatusRollup).values(**late_bucket(old_hour)))
        drop = asyncio.create_task(_drop_rollups(engine, cutoff))
        if backend == "postgres":
            await waiting_on_lock(engine, ROLLUP_NAME_QUERY)
        else:
            await asyncio.sleep(0.3)
            assert not drop.done()  # SQLite: behind the fold's write lock
        await fold.commit()
    finally:
        await fold.close()
    assert await drop == 1  # it came after the fold and removed its bucket
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(StatusRollup)) == 0


#: The table of the prune's lock statement (the watermark row).
ROLLUP_NAME_QUERY = "stratlog_rollup_state"


def late_bucket(bucket_epoch: int) -> dict[str, Any]:
    """One rollup row of one run, as a fold would write it."""
    return {
        "strategyId": "credit-limit", "grain": 3600, "bucketEpoch": bucket_epoch,
        "version": "1.0.0", "versionNull": 0, "status": "ok", "n": 1,
        "durSum": 5.0, "durMin": 5.0, "durMax": 5.0, "nodesSum": 42, "nodesMin": 42,
        "nodesMax": 42, "pointsSum": 10.0, "pointsN": 1, "noCaseN": 0,
        "createdMax": T0 - timedelta(days=2),
    }  # fmt: skip
