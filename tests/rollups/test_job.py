"""The rollup job and rollup-backed reads: exact answers at any watermark, honest percentiles."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.model import StatusRollup
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.service.stats import percentiles_from_bins
from tests.conftest import T0, clear, make_row
from tests.repository.test_properties import (
    bucket_of,
    close,
    in_window,
    ranked,
    reference_summary,
    rows,
    windows,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    before=st.lists(rows(), max_size=30),
    after=st.lists(rows(), max_size=15),
    window=windows,
    batch=st.integers(1, 50),
    bucket=st.sampled_from([60, 600, 1800, 3600, 7200, 86400]),
)
async def test_rollup_backed_answers_equal_the_reference(
    repo: StrategyExecutionLogRepository,
    engine: AsyncEngine,
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    window: tuple[datetime | None, datetime | None],
    batch: int,
    bucket: int,
) -> None:
    """Rows rolled up (in batches), then more rows (any time, so also inside rolled-up hours)."""
    await clear(engine)
    await RollupJob(engine).catch_up()  # watermark at the (empty) table's end
    await repo.insert_many(before)
    await RollupJob(engine, batch_rows=batch).catch_up()
    await repo.insert_many(after)
    data = before + after
    since, until = window
    scope = {"strategyId": "alpha", "sinceDt": since, "untilDt": until}
    selected = [r for r in data if r["strategyId"] == "alpha" and in_window(r, since, until)]

    assert await repo.count_by_status(**scope) == dict(Counter(r["status"] for r in selected))
    codes = Counter(r["errorCode"] for r in selected if r["errorCode"] is not None)
    assert await repo.count_by_error_code(**scope, limit=5) == ranked(codes, "errorCode", 5)
    cases = Counter(r["caseName"] for r in selected)
    assert await repo.count_by_case_name(**scope, limit=5) == ranked(cases, "caseName", 5)
    summary = await repo.duration_and_nodes_summary(**scope)
    expected = reference_summary(selected)
    for key in ("count", "minDurationMs", "maxDurationMs", "minNodes", "maxNodes", "sumNodes"):
        assert summary[key] == expected.get(key), key  # exact, not approximately
    for key, value in summary.items():
        assert close(value, expected.get(key)), (key, value, expected.get(key))
    series = await repo.timeseries(**scope, bucketSeconds=bucket)
    buckets = Counter((bucket_of(r["createdAt"], bucket), r["status"]) for r in selected)
    assert series == [
        {"bucketStart": b, "status": s, "count": n} for (b, s), n in sorted(buckets.items())
    ]
    bins = await repo.value_bins(**scope)
    assert sum(n for _, n in bins) == len(selected)
    listed = {s["strategyId"]: s["count"] for s in await repo.list_strategies()}
    assert listed == dict(Counter(r["strategyId"] for r in data))


async def test_percentiles_within_one_percent_of_numpy(empty_repo, engine):
    rng = random.Random(11)
    rows_ = [
        make_row(
            durationMs=rng.lognormvariate(2, 1.2),
            points=rng.choice([-1, 1]) * rng.lognormvariate(3, 2),
            createdAt=T0 + timedelta(seconds=rng.randint(0, 3 * 86_400)),
        )
        for _ in range(20_000)
    ]
    rows_.append(make_row(durationMs=0.0, points=0.0))
    await empty_repo.insert_many(rows_)
    await RollupJob(engine).catch_up()
    for since_h, until_h in [(0, 72), (5.5, 30.25), (0.1, 0.9), (-10, 100)]:
        since, until = T0 + timedelta(hours=since_h), T0 + timedelta(hours=until_h)
        scope = {"strategyId": "credit-limit", "sinceDt": since, "untilDt": until}
        chosen = [r for r in rows_ if since <= r["createdAt"] < until]
        for kind, field in (("duration", "durationMs"), ("points", "points")):
            got = percentiles_from_bins(await empty_repo.value_bins(**scope, kind=kind))
            exact = np.percentile([r[field] for r in chosen], [50, 95, 99])
            assert got.total == len(chosen)
            for estimate, truth in zip((got.p50, got.p95, got.p99), exact, strict=True):
                assert estimate is not None
                assert math.isclose(estimate, truth, rel_tol=0.01, abs_tol=1e-9), (
                    kind,
                    estimate,
                    truth,
                )


async def rollup_total(engine: AsyncEngine, grain: int = 3600) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                select(func.coalesce(func.sum(StatusRollup.n), 0)).where(
                    StatusRollup.grain == grain
                )
            )
            or 0
        )


async def test_rollup_is_idempotent(empty_repo, engine):
    await empty_repo.insert_many(
        [make_row(createdAt=T0 + timedelta(minutes=i)) for i in range(500)]
    )
    job = RollupJob(engine, batch_rows=77)
    assert await job.catch_up() == 500
    assert await job.catch_up() == 0
    assert await rollup_total(engine) == 500 == await rollup_total(engine, 86400)
    async with engine.connect() as conn:
        per_grain = dict(
            (
                await conn.execute(
                    select(StatusRollup.grain, func.count()).group_by(StatusRollup.grain)
                )
            ).all()
        )
    # one row per key and bucket: 500 minutes from 12:00 = 50 ten-minute buckets, 9 hours, 1 day
    assert per_grain == {600: 50, 3600: 9, 86400: 1}
    assert await rollup_total(engine, 600) == 500


async def test_rollup_concurrent_with_inserts_counts_every_row_once(empty_repo, engine):
    inserted = 0

    async def writer() -> None:
        nonlocal inserted
        rng = random.Random(3)
        for i in range(40):
            batch = [
                make_row(createdAt=T0 + timedelta(seconds=rng.randint(0, 86_400)), requestId=f"{i}")
                for _ in range(50)
            ]
            await empty_repo.insert_many(batch)
            inserted += len(batch)
            await asyncio.sleep(0)

    async def roller(job: RollupJob) -> None:
        for _ in range(30):
            await job.run_once()
            await asyncio.sleep(0)

    await asyncio.gather(writer(), roller(RollupJob(engine, 60)), roller(RollupJob(engine, 500)))
    await RollupJob(engine).catch_up()
    assert inserted == 2000
    assert await rollup_total(engine) == 2000 == await rollup_total(engine, 86400)
    counts = await empty_repo.count_by_status(strategyId="credit-limit")
    assert counts == {"ok": 2000}
    raw = StrategyExecutionLogRepository(empty_repo.session_factory, use_rollups=False)
    window = {
        "strategyId": "credit-limit",
        "sinceDt": T0 + timedelta(minutes=13),
        "untilDt": T0 + timedelta(hours=20),
    }
    assert await empty_repo.duration_and_nodes_summary(
        **window
    ) == await raw.duration_and_nodes_summary(**window)
