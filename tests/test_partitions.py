"""Daily partitions of the audit table on a real PostgreSQL (stratlog.partitions, migration 0008).

A new database is partitioned; rows of a day without a partition wait in the default one and
move in with their day; prune drops whole partitions and the rollups stay equal to the raw rows;
reads prune partitions with custom and with generic plans; a plain table with rows is converted
in resumable batches while a writer goes on, ids and grants kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog import partitions as parts
from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob, retention, verify
from tests.conftest import make_row

ScratchUrl = Callable[[str], Awaitable[str]]
NOW = datetime(2026, 12, 3, 10, 30, tzinfo=UTC)
DAY0 = date(2026, 11, 20)


@pytest.fixture
async def fresh(scratch_url: ScratchUrl) -> AsyncIterator[Callable[..., Awaitable[AsyncEngine]]]:
    """New PostgreSQL databases at head: ``await fresh()`` partitioned, ``fresh(False)`` plain."""
    engines: list[AsyncEngine] = []

    async def make(partitioned: bool = True) -> AsyncEngine:
        engine = make_engine(await scratch_url("postgres"))
        await upgrade(engine, partitioned=partitioned)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.dispose()


def repo_of(engine: AsyncEngine) -> StrategyExecutionLogRepository:
    return StrategyExecutionLogRepository(make_session_factory(engine))


async def where_rows_are(engine: AsyncEngine) -> dict[int, str]:
    """Each row's id and the partition (table) holding it."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id, CAST(tableoid::regclass AS text) FROM strategy_execution_log")
        )
        return {int(i): str(t) for i, t in rows}


def rows_over_days(first: date, count: int, per_day: int) -> list[dict[str, Any]]:
    """``per_day`` rows on each of ``count`` days, some failing, at varied hours."""
    out = []
    for d in range(count):
        day = datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(days=d)
        for i in range(per_day):
            failed = i % 7 == 0
            out.append(make_row(
                createdAt=day + timedelta(minutes=37 * i % 1440), requestId=f"r{d}-{i}",
                status="error" if failed else "ok", errorCode="E_UP" if failed else None,
                caseName=None if failed else f"case{i % 3}", durationMs=1.0 + i,
            ))  # fmt: skip
    return out


async def test_a_new_database_is_partitioned_by_day_and_plain_on_request(fresh: Any) -> None:
    engine = await fresh()
    async with engine.begin() as conn:
        assert await parts.is_partitioned(conn)
        found = await parts.partitions(conn)
        key = await conn.scalar(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'p' "
                "AND conrelid = to_regclass('strategy_execution_log')"
            )
        )
    today = datetime.now(UTC).date()
    days = [p for p in found if not p.is_default]
    assert [p.name for p in days] == [
        parts.partition_name(today + timedelta(days=n)) for n in range(parts.AHEAD_DAYS + 1)
    ]
    assert all(p.end - p.start == timedelta(days=1) for p in days if p.start and p.end)
    assert found[-1].name == parts.DEFAULT_PARTITION and found[-1].is_default
    assert key == "PRIMARY KEY (id, created_at)"
    plain = await fresh(False)
    async with plain.connect() as conn:
        assert not await parts.is_partitioned(conn)
    assert await parts.ensure_ahead(plain) == []  # nothing to do on a plain table


async def test_rows_without_a_partition_wait_in_the_default_and_move_in_with_their_day(
    fresh: Any,
) -> None:
    engine = await fresh()
    repo = repo_of(engine)
    future = datetime.now(UTC) + timedelta(days=400)  # a clock far ahead
    backfill = datetime(2026, 1, 15, 8, tzinfo=UTC)  # a day long gone
    await repo.insert_many([
        make_row(createdAt=datetime.now(UTC), requestId="now"),
        make_row(createdAt=future, requestId="future"),
        make_row(createdAt=backfill, requestId="backfill", status="error", errorCode="E1"),
        make_row(createdAt=backfill + timedelta(hours=10), requestId="backfill-2"),
    ])  # fmt: skip
    placed = await where_rows_are(engine)
    assert sorted(placed.values()).count(parts.DEFAULT_PARTITION) == 3
    before = await repo.count_by_status(
        strategyId="credit-limit", sinceDt=backfill - timedelta(days=1), untilDt=future
    )
    made = await parts.ensure(engine, date(2026, 1, 14), date(2026, 1, 16))
    assert made == [parts.partition_name(date(2026, 1, d)) for d in (14, 15, 16)]
    after = await where_rows_are(engine)
    assert set(after) == set(placed)  # no row lost or doubled, ids kept
    moved = [i for i, t in after.items() if t == parts.partition_name(date(2026, 1, 15))]
    assert len(moved) == 2
    assert list(after.values()).count(parts.DEFAULT_PARTITION) == 1  # the future row waits
    assert (
        await repo.count_by_status(
            strategyId="credit-limit", sinceDt=backfill - timedelta(days=1), untilDt=future
        )
        == before
    )
    assert await parts.ensure(engine, date(2026, 1, 14), date(2026, 1, 16)) == []  # idempotent
    await repo.insert_many([make_row(createdAt=backfill, requestId="later")])  # routed now
    assert list((await where_rows_are(engine)).values()).count(parts.DEFAULT_PARTITION) == 1


async def test_a_day_whose_lock_is_not_granted_is_reported_and_made_by_the_next_run(
    fresh: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await fresh()
    monkeypatch.setattr(parts, "LOCK_TIMEOUT_MS", 200)
    async with engine.connect() as holder:  # a long transaction on the default partition
        await holder.execute(text(f"SELECT count(*) FROM {parts.DEFAULT_PARTITION}"))
        with pytest.raises(parts.PartitionsBusy) as busy:
            await parts.ensure(engine, date(2026, 1, 1), date(2026, 1, 3))
        assert busy.value.created == [] and busy.value.day == date(2026, 1, 1)
        await holder.rollback()
    made = await parts.ensure(engine, date(2026, 1, 1), date(2026, 1, 3))
    assert len(made) == 3


async def test_prune_drops_whole_partitions_and_the_rollups_stay_equal_to_the_rows(
    fresh: Any,
) -> None:
    engine = await fresh()
    repo = repo_of(engine)
    await parts.ensure(engine, DAY0, DAY0 + timedelta(days=9))
    rows = rows_over_days(DAY0, 10, 40)
    stray = make_row(createdAt=datetime(2025, 6, 1, tzinfo=UTC), requestId="stray")  # default
    await repo.insert_many([*rows, stray])
    await RollupJob(engine).catch_up()
    cutoff = datetime(DAY0.year, DAY0.month, DAY0.day, tzinfo=UTC) + timedelta(days=4)
    pending = await retention.count_older(engine, cutoff)
    assert pending == 4 * 40 + 1
    result = await retention.prune(engine, cutoff + timedelta(hours=5))  # back to midnight
    assert (result.rows, result.partitions, result.cutoff) == (pending, 4, cutoff)
    left = [p for p in await parts.list_partitions(engine) if p.start and p.start < cutoff]
    assert left == []
    assert len(await where_rows_are(engine)) == 6 * 40
    checked = await verify.verify(engine)
    assert checked.differences == [] and checked.checked > 0
    summary = await repo.count_by_status(
        strategyId="credit-limit",
        sinceDt=cutoff - timedelta(days=30),
        untilDt=cutoff + timedelta(days=30),
    )
    assert sum(summary.values()) == 6 * 40


async def test_a_partition_a_reader_holds_is_left_to_the_batched_delete(fresh: Any) -> None:
    engine = await fresh()
    await parts.ensure(engine, DAY0, DAY0 + timedelta(days=2))
    await repo_of(engine).insert_many(rows_over_days(DAY0, 3, 10))
    held = parts.partition_name(DAY0 + timedelta(days=1))  # the newer of the two old days
    cutoff = datetime(DAY0.year, DAY0.month, DAY0.day, tzinfo=UTC) + timedelta(days=2)
    async with engine.connect() as reader:  # a long report reading the oldest day
        await reader.execute(text(f"SELECT count(*) FROM {held}"))
        dropped, rows = await parts.drop_before(engine, cutoff, lock_timeout_ms=200)
        assert (dropped, rows) == (1, 10)  # the older day went; the held one waits
        await reader.rollback()
    names = [p.name for p in await parts.list_partitions(engine)]
    assert held in names and parts.partition_name(DAY0) not in names
    result = await retention.prune(engine, cutoff)  # the reader is gone: now it drops
    assert (result.rows, result.partitions) == (10, 1)
    assert len(await where_rows_are(engine)) == 10


async def _plan(engine: AsyncEngine, settings: dict[str, str]) -> str:
    """EXPLAIN ANALYZE of the sixth run of one prepared window query on a raw asyncpg
    connection (PostgreSQL decides on a generic plan from the sixth run on)."""
    async with engine.connect() as conn:
        raw: Any = (await conn.get_raw_connection()).driver_connection
        for name, value in settings.items():
            await raw.execute(f"SET {name} = '{value}'")
        query = (
            "SELECT count(*) FROM strategy_execution_log WHERE strategy_id = $1 "
            "AND created_at >= $2 AND created_at < $3"
        )
        await raw.execute(f"PREPARE w(text, timestamptz, timestamptz) AS {query}")
        since = datetime(DAY0.year, DAY0.month, DAY0.day, tzinfo=UTC) + timedelta(days=2)
        until = since + timedelta(hours=30)
        run = f"EXECUTE w('credit-limit', '{since.isoformat()}', '{until.isoformat()}')"
        for _ in range(5):
            await raw.fetchval(run)
        lines = await raw.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {run}")
        await raw.execute("DEALLOCATE w")
        return "\n".join(r[0] for r in lines)


async def test_reads_prune_partitions_with_custom_and_generic_plans(fresh: Any) -> None:
    engine = await fresh()
    await parts.ensure(engine, DAY0, DAY0 + timedelta(days=9))
    await repo_of(engine).insert_many(rows_over_days(DAY0, 10, 5))
    window = {parts.partition_name(DAY0 + timedelta(days=d)) for d in (2, 3)}
    # stratlog's connections (stratlog.db.CONNECTION_SETTINGS): planned per run, pruned then.
    custom = await _plan(engine, {"plan_cache_mode": "force_custom_plan"})
    scanned = {t for t in window | {parts.DEFAULT_PARTITION} if t in custom}
    assert scanned == window and "Subplans Removed" not in custom, custom
    # A generic plan (what asyncpg's prepared statements become by default) prunes at run time.
    generic = await _plan(engine, {"plan_cache_mode": "force_generic_plan"})
    total = len(await parts.list_partitions(engine))  # 10 days, today and 7 ahead, default
    assert f"Subplans Removed: {total - 2}" in generic, generic
    executed = [line for line in generic.splitlines() if "never executed" not in line]
    assert {t for t in window if any(t in line for line in executed)} == window


async def test_a_plain_table_is_converted_in_batches_while_a_writer_goes_on(
    fresh: Any, scratch_url: ScratchUrl
) -> None:
    engine = await fresh(False)
    repo = repo_of(engine)
    await repo.insert_many(rows_over_days(DAY0, 5, 200))
    await RollupJob(engine).catch_up()
    async with engine.begin() as conn:
        await conn.execute(text("CREATE ROLE conversion_reader"))
        await conn.execute(text("GRANT SELECT ON strategy_execution_log TO conversion_reader"))
    stop = asyncio.Event()
    written = 0

    async def writer() -> None:
        nonlocal written
        while not stop.is_set():
            await repo.insert_many([make_row(createdAt=datetime.now(UTC), requestId="live")])
            written += 1
            await asyncio.sleep(0.005)

    batches: list[int] = []
    task = asyncio.create_task(writer())
    try:
        await asyncio.sleep(0.1)
        done = await parts.convert(engine, batch_rows=150, progress=lambda c, t: batches.append(c))
        await asyncio.sleep(0.1)  # the writer goes on into the new table
    finally:
        stop.set()
        await task
    assert done.swapped and len(batches) >= 6 and written > 0
    async with engine.connect() as conn:
        assert await parts.is_partitioned(conn)
        ids = list(await conn.scalars(text("SELECT id FROM strategy_execution_log ORDER BY id")))
        old = int(await conn.scalar(text(f"SELECT count(*) FROM {parts.UNPARTITIONED}")) or 0)
        granted = await conn.scalar(
            text("SELECT has_table_privilege('conversion_reader', :t, 'SELECT')"),
            {"t": parts.PARENT},
        )
    assert len(ids) == len(set(ids)) == 1000 + written  # every row once: none lost to the swap
    assert old <= len(ids) and granted
    await repo.insert_many([make_row(createdAt=datetime.now(UTC), requestId="after")])
    async with engine.connect() as conn:
        newest = await conn.scalar(text("SELECT max(id) FROM strategy_execution_log"))
    assert newest == max(ids) + 1  # the identity goes on past every id
    await RollupJob(engine).catch_up()
    assert (await verify.verify(engine)).differences == []


async def test_a_conversion_crosses_gaps_in_the_ids_left_by_prune(fresh: Any) -> None:
    engine = await fresh(False)
    await repo_of(engine).insert_many(rows_over_days(DAY0, 4, 100))
    async with engine.begin() as conn:  # the oldest 250 ids pruned, and a hole in the middle
        await conn.execute(text("DELETE FROM strategy_execution_log WHERE id <= 250"))
        await conn.execute(text("DELETE FROM strategy_execution_log WHERE id BETWEEN 300 AND 360"))
    done = await asyncio.wait_for(parts.convert(engine, batch_rows=40), 60)
    assert done.swapped and done.copied == 400 - 250 - 61
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM strategy_execution_log")) == 89
        assert await conn.scalar(text("SELECT min(id) FROM strategy_execution_log")) == 251


async def test_an_interrupted_conversion_resumes_where_it_stopped(fresh: Any) -> None:
    engine = await fresh(False)
    await repo_of(engine).insert_many(rows_over_days(DAY0, 3, 100))

    def interrupt(copied: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await parts.convert(engine, batch_rows=70, progress=interrupt)
    async with engine.connect() as conn:
        assert not await parts.is_partitioned(conn)
        assert await conn.scalar(text(f"SELECT count(*) FROM {parts.CONVERTING}")) == 70
    done = await parts.convert(engine, batch_rows=70)
    assert done.swapped and done.copied == 230
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM strategy_execution_log")) == 300
    again = await parts.convert(engine)
    assert again.already and not again.swapped  # partitioned already: nothing
