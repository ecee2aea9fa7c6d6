"""verify finds each strategy-day where the rollups and the raw rows disagree; repair fixes it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.model import BinsRollup, StrategyExecutionLog
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.rollups.verify import repair, verify
from stratlog.sketch import pack_arrays, unpack
from tests.conftest import T0, make_row

L, B = StrategyExecutionLog, BinsRollup
DAY = 86_400


async def seeded(repo: StrategyExecutionLogRepository, engine: AsyncEngine) -> None:
    """Three days of two strategies, folded, and a few rows above the watermark."""
    rows = [
        make_row(
            strategyId=f"s{i % 2}",
            createdAt=T0 + timedelta(minutes=37 * i),
            durationMs=1.0 + i % 17,
            points=None if i % 5 == 0 else float(i % 9),
        )
        for i in range(120)
    ]
    await repo.insert_many(rows)
    await RollupJob(engine).catch_up()
    await repo.insert_many([make_row(strategyId="s0", createdAt=T0 + timedelta(hours=1))])


async def test_clean_rollups_verify(empty_repo: StrategyExecutionLogRepository, engine) -> None:
    await seeded(empty_repo, engine)
    found = await verify(engine)
    assert found.differences == [] and found.checked == 8 and found.watermark > 0  # 4 days x 2
    assert (await verify(engine, since=T0 + timedelta(days=1))).checked == 6


async def test_tampering_is_found_per_strategy_day_and_repaired(
    empty_repo: StrategyExecutionLogRepository, engine: AsyncEngine
) -> None:
    await seeded(empty_repo, engine)
    async with engine.begin() as conn:
        victim = await conn.scalar(select(func.min(L.id)).where(L.strategyId == "s1"))
        await conn.execute(delete(L).where(L.id == victim))  # a hand-written DELETE
        day = select(func.max(B.bucketEpoch)).where(B.strategyId == "s0", B.grain == DAY)
        tampered = (B.strategyId == "s0", B.grain == DAY, B.kind == 0)
        where = (*tampered, B.bucketEpoch == day.scalar_subquery())
        blob = await conn.scalar(select(B.bins).where(*where))
        bins, counts = unpack(blob)
        counts[0] += 3  # the counts readers add up, not the n column beside them
        await conn.execute(update(B).where(*where).values(bins=pack_arrays(bins, counts)))
    found = await verify(engine)
    first_day = int(T0.timestamp()) // DAY * DAY
    assert len(found.days) == 2 and ("s1", first_day) in found.days
    assert {strategy for strategy, _ in found.days} == {"s0", "s1"}
    runs = {(d.strategyId, d.table) for d in found.differences if d.figure == "runs"}
    assert ("s1", "status (3600 s)") in runs and ("s1", "duration histograms (86400 s)") in runs
    assert any(
        d.strategyId == "s0" and d.table.startswith("duration histograms (86400")
        for d in found.differences
    )
    assert await repair(engine, found.days) == len(found.days)
    assert (await verify(engine)).differences == []
    raw = StrategyExecutionLogRepository(empty_repo.session_factory, use_rollups=False)
    everything = {
        "strategyId": "s1",
        "sinceDt": T0 - timedelta(days=1),
        "untilDt": T0 + timedelta(days=4),
    }
    assert await empty_repo.count_by_status(**everything) == await raw.count_by_status(**everything)
    assert await empty_repo.value_bins(**everything) == await raw.value_bins(**everything)
