"""Retention: delete audit rows older than a cutoff in bounded batches, rollups kept consistent.

The cutoff is moved back to a UTC midnight, so every rollup bucket (hour or day) lies wholly
before or wholly after it. Order of work: bring the rollups up to date, drop the rollup buckets
before the cutoff (from here on every answer already reads as after the prune), then delete the
audit rows (on a partitioned PostgreSQL table, whole day partitions are dropped first: see
:mod:`stratlog.partitions`; what is left, e.g. in the default partition, is deleted) in batches
of ``batch_rows`` ids, one short transaction each, and drop any rollup
bucket before the cutoff that a concurrent rollup run re-created. Each drop holds the
watermark lock, so it comes after any fold in flight and no fold can commit a bucket before the
cutoff behind its back. Interrupted, it is resumed by
running it again: each step only removes what is older than the cutoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog import partitions
from stratlog.model.rollup import ROLLUP_TABLES
from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.rollups.job import RollupJob, lock_watermark
from stratlog.rollups.plan import epoch_us
from stratlog.timewindow import as_utc

L = StrategyExecutionLog


@dataclass(frozen=True)
class PruneResult:
    """What a prune removed."""

    cutoff: datetime
    rows: int
    rollupRows: int
    seconds: float
    #: Day partitions dropped (their rows are counted in ``rows``).
    partitions: int = 0


def day_cutoff(older_than: datetime) -> datetime:
    """The UTC midnight at or before ``older_than`` (rollup buckets never straddle it)."""
    at = as_utc(older_than)
    assert at is not None
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


async def count_older(engine: AsyncEngine, cutoff: datetime) -> int:
    """How many audit rows a prune at ``cutoff`` would delete."""
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).where(L.createdAt < cutoff)) or 0)


async def prune(
    engine: AsyncEngine,
    older_than: datetime,
    *,
    batch_rows: int = 10_000,
    progress: Callable[[int], None] | None = None,
) -> PruneResult:
    """Delete every audit row created before ``day_cutoff(older_than)``; see the module doc."""
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    started = time.perf_counter()
    cutoff = day_cutoff(older_than)
    await RollupJob(engine).catch_up()
    rollup_rows = await _drop_rollups(engine, cutoff)
    dropped, rows = await partitions.drop_before(engine, cutoff)
    if progress is not None and rows:
        progress(rows)
    while deleted := await _delete_batch(engine, cutoff, batch_rows):
        rows += deleted
        if progress is not None:
            progress(deleted)
    rollup_rows += await _drop_rollups(engine, cutoff)
    return PruneResult(cutoff, rows, rollup_rows, time.perf_counter() - started, dropped)


async def _delete_batch(engine: AsyncEngine, cutoff: datetime, batch_rows: int) -> int:
    """One short transaction: up to ``batch_rows`` of the oldest-id rows before the cutoff."""
    old = L.createdAt < cutoff
    async with engine.begin() as conn:
        first = await conn.scalar(select(func.min(L.id)).where(old))
        if first is None:
            return 0
        # The id range holding the next batch_rows old rows: no parameter list per id.
        last = await conn.scalar(
            select(L.id).where(old).order_by(L.id).offset(batch_rows - 1).limit(1)
        )
        bound = [L.id <= last] if last is not None else []
        result = await conn.execute(delete(L).where(old, *bound))
    return int(result.rowcount or 0)


async def _drop_rollups(engine: AsyncEngine, cutoff: datetime) -> int:
    """Remove rollup buckets that end at or before the cutoff; returns how many rows."""
    limit = epoch_us(cutoff) // 1_000_000
    removed = 0
    async with engine.begin() as conn:
        await lock_watermark(conn)  # after any fold in flight: none re-creates what goes here
        for table in ROLLUP_TABLES:
            model: Any = table
            ends = model.bucketEpoch + model.grain
            result = await conn.execute(delete(table).where(ends <= literal_column(str(limit))))
            removed += int(result.rowcount or 0)
    return removed


def cutoff_from_age(now: datetime, age: timedelta) -> datetime:
    """The cutoff for "older than ``age``" at ``now``, moved back to a UTC midnight."""
    if age <= timedelta(0):
        raise ValueError(f"the age must be positive, got {age}")
    return day_cutoff(now - age)
