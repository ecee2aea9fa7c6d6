"""Retention: prune deletes old rows in batches, keeps rollups consistent, can be resumed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.model import StatusRollup
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.rollups.retention import (
    _delete_batch,
    count_older,
    cutoff_from_age,
    day_cutoff,
    prune,
)
from tests.conftest import T0, make_row


async def seed(repo: StrategyExecutionLogRepository, engine: AsyncEngine) -> list[dict]:
    rows = [
        make_row(createdAt=T0 - timedelta(hours=h), requestId=str(h)) for h in range(0, 24 * 10, 3)
    ]
    await repo.insert_many(rows[: len(rows) // 2])
    await RollupJob(engine).catch_up()  # half rolled up, half above the watermark
    await repo.insert_many(rows[len(rows) // 2 :])
    return rows


async def rollup_rows(engine: AsyncEngine, grain: int = 3600) -> int:
    async with engine.connect() as conn:
        stmt = select(func.coalesce(func.sum(StatusRollup.n), 0)).where(StatusRollup.grain == grain)
        return int(await conn.scalar(stmt) or 0)


def test_cutoff_is_a_utc_midnight():
    assert day_cutoff(datetime(2026, 3, 5, 17, 30, tzinfo=UTC)) == datetime(2026, 3, 5, tzinfo=UTC)
    assert cutoff_from_age(T0, timedelta(days=3)) == datetime(2026, 2, 26, tzinfo=UTC)
    with pytest.raises(ValueError, match="positive"):
        cutoff_from_age(T0, timedelta(0))


async def test_prune_removes_old_rows_and_their_rollups(empty_repo, engine):
    rows = await seed(empty_repo, engine)
    cutoff = day_cutoff(T0 - timedelta(days=4))
    older = [r for r in rows if r["createdAt"] < cutoff]
    assert await count_older(engine, cutoff) == len(older) > 0
    seen: list[int] = []
    result = await prune(engine, T0 - timedelta(days=4), batch_rows=7, progress=seen.append)
    assert result.cutoff == cutoff and result.rows == len(older) == sum(seen)
    if engine.dialect.name == "postgresql" and result.partitions:  # partitioned: whole days
        assert seen[0] == result.rows and result.partitions >= 6  # T0-10d .. T0-4d dropped
    else:
        assert max(seen) <= 7  # batched delete
    assert result.rollupRows > 0
    kept = len(rows) - len(older)
    everything = {"strategyId": "credit-limit"}
    assert await empty_repo.count_by_status(**everything) == {"ok": kept}
    assert await rollup_rows(engine) == kept == await rollup_rows(engine, 86400)
    recent = {**everything, "sinceDt": cutoff, "untilDt": T0 + timedelta(days=1)}
    assert (await empty_repo.duration_and_nodes_summary(**recent))["count"] == kept
    before = {**everything, "untilDt": cutoff}
    assert await empty_repo.count_by_status(**before) == {}


async def test_prune_is_resumable(empty_repo, engine):
    rows = await seed(empty_repo, engine)
    cutoff = day_cutoff(T0 - timedelta(days=2))
    await _delete_batch(engine, cutoff, 5)  # an interrupted run got this far
    result = await prune(engine, cutoff)
    older = [r for r in rows if r["createdAt"] < cutoff]
    assert result.rows == len(older) - 5
    assert await count_older(engine, cutoff) == 0
    assert await rollup_rows(engine) == len(rows) - len(older)
    again = await prune(engine, cutoff)
    assert again.rows == 0 and again.rollupRows == 0
