"""The rollup job: folds audit rows into the rollup tables at every grain, up to a watermark id.

Each run takes the rows with ``watermark < id <= upper`` (at most ``batch_rows`` of them), adds
their aggregates (10-minute, hourly and daily buckets) and histogram bins (hourly and daily
buckets) to the rollup tables, merges the touched buckets back to one row per key, and moves
the watermark, all in one transaction. Runs are serialised by the lock on the watermark row, so
running the job twice at once, or again after a crash, counts no row twice and loses none.
Readers stay exact whatever the job has done: rows above the watermark are read raw (see
:mod:`stratlog.rollups.plan`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, literal, literal_column, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stratlog.dialect import epoch_bucket, insert_missing, settled_max_id
from stratlog.model.rollup import RollupState, StrategyExecutionBin, StrategyExecutionRollup
from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.rollups.plan import AGGREGATE_GRAINS, BIN_GRAINS, ROLLUP_NAME
from stratlog.sketch import bin_sql

log = logging.getLogger("stratlog.rollup")

L, R, B = StrategyExecutionLog, StrategyExecutionRollup, StrategyExecutionBin
GROUP_KEYS = ("strategy_id", "bucket_epoch", "status", "error_code", "case_name")


@dataclass(frozen=True)
class RollupRun:
    """What one run did: rows folded in, the new watermark, and how far behind it still is."""

    rows: int
    watermark: int
    behind: int
    seconds: float


class RollupJob:
    """Keeps the rollup tables up to date; ``run_once``, ``catch_up`` or ``run_forever``."""

    def __init__(
        self, engine: AsyncEngine, batch_rows: int = 250_000, *, lock_timeout_s: float = 0.5
    ) -> None:
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
        self.engine = engine
        self.batch_rows = batch_rows
        #: How long a run waits for write transactions on the audit table before it postpones
        #: (new inserts queue behind the waiting lock that long at most).
        self.lock_timeout_s = lock_timeout_s

    async def run_once(self) -> RollupRun:
        """Fold in the next batch of rows (possibly none) in one transaction."""
        started = time.perf_counter()
        async with self.engine.connect() as conn:
            newest = await settled_max_id(conn, L.__table__, self.lock_timeout_s)
        if newest is None:
            log.warning(
                "rollup postponed: a write transaction on %s stayed open for more than %g s",
                L.__tablename__,
                self.lock_timeout_s,
            )
            return RollupRun(0, -1, -1, time.perf_counter() - started)
        async with self.engine.begin() as conn:
            mark = await lock_watermark(conn, moved=True)
            upper = min(newest, await self._batch_end(conn, mark))
            rows = 0
            if upper > mark:
                rows = await self._fold(conn, mark, upper)
                await conn.execute(
                    update(RollupState)
                    .where(RollupState.name == ROLLUP_NAME)
                    .values(watermark=upper, updatedAt=datetime.now(UTC))
                )
                mark = upper
        return RollupRun(rows, mark, max(newest - mark, 0), time.perf_counter() - started)

    async def catch_up(self, progress: Callable[[RollupRun], None] | None = None) -> int:
        """Run until the watermark reaches the newest row; returns the rows folded in."""
        total = 0
        while True:
            run = await self.run_once()
            total += run.rows
            if progress is not None:
                progress(run)
            if run.behind <= 0:  # caught up (0), or postponed by a running transaction (-1)
                return total

    async def run_forever(self, interval_s: float = 5.0, stop: asyncio.Event | None = None) -> None:
        """Catch up every ``interval_s`` seconds until ``stop`` is set; failures are logged."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.catch_up()
            except Exception as exc:  # keep going: the database may come back
                log.warning("rollup run failed: %s: %s", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def _batch_end(self, conn: AsyncConnection, mark: int) -> int:
        """The id of the ``batch_rows``-th row after the watermark (ids may have gaps)."""
        stmt = select(L.id).where(L.id > mark).order_by(L.id).offset(self.batch_rows - 1).limit(1)
        end = await conn.scalar(stmt)
        return int(end) if end is not None else 2**62

    async def _fold(self, conn: AsyncConnection, low: int, high: int) -> int:
        new_rows = (L.id > low, L.id <= high)
        count = int(await conn.scalar(select(func.count()).where(*new_rows)) or 0)
        if count == 0:
            return 0
        await self.refold(conn, new_rows)
        return count

    async def refold(self, conn: AsyncConnection, rows: tuple[Any, ...]) -> None:
        """Fold the audit rows matching ``rows`` (for a repair; the caller holds the lock)."""
        await self._fold_aggregates(conn, rows)
        await self._fold_bins(conn, rows)

    async def _fold_aggregates(self, conn: AsyncConnection, new_rows: tuple[Any, ...]) -> None:
        for grain in AGGREGATE_GRAINS:
            bucket = _bucket(grain)
            keys = (L.status, L.errorCode, L.caseName)
            fresh = (
                select(
                    L.strategyId,
                    _literal(grain),
                    bucket,
                    *keys,
                    func.count(),
                    func.sum(L.durationMs),
                    func.min(L.durationMs),
                    func.max(L.durationMs),
                    func.sum(L.nodes),
                    func.min(L.nodes),
                    func.max(L.nodes),
                    func.sum(L.points),
                    func.count(L.points),
                    func.max(L.createdAt),
                )
                .where(*new_rows)
                .group_by(L.strategyId, bucket, *keys)
            )
            await self._append_and_merge(conn, R, fresh)

    async def _fold_bins(self, conn: AsyncConnection, new_rows: tuple[Any, ...]) -> None:
        for grain in BIN_GRAINS:
            bucket = _bucket(grain)
            for kind, column in ((0, L.durationMs), (1, L.points)):
                bin_ = bin_sql(column)
                fresh = (
                    select(L.strategyId, _literal(grain), bucket, literal(kind), bin_, func.count())
                    .where(*new_rows, column.is_not(None))
                    .group_by(L.strategyId, bucket, bin_)
                )
                await self._append_and_merge(conn, B, fresh)

    async def _append_and_merge(self, conn: AsyncConnection, table: Any, fresh: Any) -> None:
        """Insert new aggregates for one grain; merge the buckets that already had rows.

        Rows arrive roughly in time order, so most buckets a run touches are new and need no
        merging; only those that already held rows (an hour split across two runs, a late row)
        are re-aggregated to one row per key.
        """
        columns = [c.name for c in table.__table__.columns if c.name != "id"]
        before = await _max_id(conn, table)
        await conn.execute(insert(table).from_select(columns, fresh))
        after = await _max_id(conn, table)
        key = _bucket_key(table)
        fresh_keys = select(*key).where(table.id > before).distinct()
        touched = [tuple(row) for row in (await conn.execute(fresh_keys)).all()]
        buckets: list[tuple[Any, ...]] = []
        for chunk in _chunks(touched, 500):
            # Which of them already held rows: an index lookup per key, never a scan of the
            # (large) rollup table, whose statistics lag behind during a long catch-up.
            had_rows = select(*key).where(table.id <= before, tuple_(*key).in_(chunk)).distinct()
            buckets += [tuple(row) for row in (await conn.execute(had_rows)).all()]
        if not buckets:
            return
        for chunk in _chunks(buckets, 500):
            old_rows = (tuple_(*key).in_(chunk), table.id <= after)
            merged = _merge_aggregates(old_rows) if table is R else _merge_bins(old_rows)
            await conn.execute(insert(table).from_select(columns, merged))
            await conn.execute(table.__table__.delete().where(*old_rows))


async def lock_watermark(conn: AsyncConnection, *, moved: bool = False) -> int:
    """Lock the watermark row for this transaction (creating it once) and return its value.

    Every change to the rollup tables (a fold, a prune's drop, a repair) runs under this lock,
    so they serialise: a fold of late rows cannot commit buckets that a concurrent prune has
    just removed the rows of. A write first: on SQLite it takes the write lock before anything
    is read; on PostgreSQL it locks the row. ``moved`` also stamps ``updatedAt`` (a fold ran).
    """
    await insert_missing(conn, RollupState.__table__, {"name": ROLLUP_NAME, "watermark": 0})
    stamp = {"updatedAt": datetime.now(UTC)} if moved else {"watermark": RollupState.watermark}
    stmt = (
        update(RollupState)
        .where(RollupState.name == ROLLUP_NAME)
        .values(**stamp)
        .returning(RollupState.watermark)
    )
    return int((await conn.execute(stmt)).scalar_one())


def _bucket(grain: int) -> Any:
    return epoch_bucket(L.createdAt, _literal(grain))


def _literal(value: int) -> Any:
    return literal_column(str(int(value)))


def _bucket_key(table: Any) -> tuple[Any, ...]:
    if table is B:
        return (B.strategyId, B.kind, B.grain, B.bucketEpoch)
    return (R.strategyId, R.grain, R.bucketEpoch)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def _max_id(conn: AsyncConnection, table: Any) -> int:
    return int(await conn.scalar(select(func.coalesce(func.max(table.id), 0))) or 0)


def _merge_aggregates(where: Sequence[Any]) -> Any:
    keys = (R.strategyId, R.grain, R.bucketEpoch, R.status, R.errorCode, R.caseName)
    return (
        select(
            *keys,
            func.sum(R.n),
            func.sum(R.durSum),
            func.min(R.durMin),
            func.max(R.durMax),
            func.sum(R.nodesSum),
            func.min(R.nodesMin),
            func.max(R.nodesMax),
            func.sum(R.pointsSum),
            func.sum(R.pointsN),
            func.max(R.createdMax),
        )
        .where(*where)
        .group_by(*keys)
    )


def _merge_bins(where: Sequence[Any]) -> Any:
    keys = (B.strategyId, B.grain, B.bucketEpoch, B.kind, B.bin)
    return select(*keys, func.sum(B.n)).where(*where).group_by(*keys)
