"""The rollup job: folds audit rows into the rollup tables at every grain, up to a watermark id.

Each run takes the rows with ``watermark < id <= upper`` (at most ``batch_rows`` of them), adds
them to the per-panel rollup tables of :mod:`stratlog.model.rollup` and moves the watermark, all
in one transaction. The status, error-code and rule-case rollups are upserts: one ``INSERT ...
SELECT ... GROUP BY ... ON CONFLICT DO UPDATE`` per table and grain adds the batch's aggregates
to the rows already there (sums added, minima and maxima compared), whether the batch's rows are
in time order or a shuffled backfill. The histograms are packed per bucket, so their merge
(read the touched buckets, add, write back) runs here in Python. Runs are serialised by the
lock on the watermark row, so running the job twice at once, or again after a crash, counts no
row twice and loses none.
Readers stay exact whatever the job has done: rows above the watermark are read raw (see
:mod:`stratlog.rollups.plan`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import case, func, literal, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stratlog.dialect import (
    epoch_bucket,
    greatest,
    insert_missing,
    least,
    settled_max_id,
    upsert_from_select,
    upsert_values,
)
from stratlog.model.rollup import BinsRollup, CaseRollup, CodeRollup, RollupState, StatusRollup
from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.rollups.plan import DETAIL_GRAINS, ROLLUP_NAME, STATUS_GRAINS
from stratlog.sketch import bins_of, pack_arrays, unpack

log = logging.getLogger("stratlog.rollup")

L, S, C, K, B = StrategyExecutionLog, StatusRollup, CodeRollup, CaseRollup, BinsRollup
#: Histogram kinds: the value column each kind bins (0, 1 and 2 in ``BinsRollup.kind``).
VALUE_COLUMNS = {0: L.durationMs, 1: L.points, 2: L.nodes}


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

    async def behind(self) -> int:
        """How many audit ids lie above the watermark (0 when caught up)."""
        async with self.engine.connect() as conn:
            mark = await conn.scalar(
                select(func.coalesce(func.max(RollupState.watermark), 0)).where(
                    RollupState.name == ROLLUP_NAME
                )
            )
            newest = await conn.scalar(select(func.coalesce(func.max(L.id), 0)))
        return max(int(newest or 0) - int(mark or 0), 0)

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
        for grain in STATUS_GRAINS:
            await conn.execute(_upsert_status(conn, grain, rows))
        for grain in DETAIL_GRAINS:
            await conn.execute(_upsert_codes(conn, grain, rows))
            await conn.execute(_upsert_cases(conn, grain, rows))
        await _fold_bins(conn, rows)


def _version_key() -> tuple[Any, Any]:
    """The version as the rollups key it: ``''`` plus a null flag (key columns are NOT NULL)."""
    version = L.strategyVersion
    return func.coalesce(version, literal("")), case((version.is_(None), 1), else_=0)


def _add(a: Any, b: Any) -> Any:
    return a + b


def _add_nullable(a: Any, b: Any) -> Any:
    return case((a.is_(None), b), (b.is_(None), a), else_=a + b)


def _upsert_status(conn: AsyncConnection, grain: int, rows: tuple[Any, ...]) -> Any:
    bucket = _bucket(grain)
    fresh = (
        select(
            L.strategyId,
            _literal(grain),
            bucket,
            *_version_key(),
            L.status,
            func.count(),
            func.sum(L.durationMs),
            func.min(L.durationMs),
            func.max(L.durationMs),
            func.sum(L.nodes),
            func.min(L.nodes),
            func.max(L.nodes),
            func.sum(L.points),
            func.count(L.points),
            func.count() - func.count(L.caseName),
            func.max(L.createdAt),
        )
        .where(*rows)
        .group_by(L.strategyId, bucket, L.strategyVersion, L.status)
    )

    def merge(t: Any, new: Any) -> dict[str, Any]:
        return {
            "n": _add(t.n, new.n),
            "dur_sum": _add(t.dur_sum, new.dur_sum),
            "dur_min": least(t.dur_min, new.dur_min),
            "dur_max": greatest(t.dur_max, new.dur_max),
            "nodes_sum": _add(t.nodes_sum, new.nodes_sum),
            "nodes_min": least(t.nodes_min, new.nodes_min),
            "nodes_max": greatest(t.nodes_max, new.nodes_max),
            "points_sum": _add_nullable(t.points_sum, new.points_sum),
            "points_n": _add(t.points_n, new.points_n),
            "no_case_n": _add(t.no_case_n, new.no_case_n),
            "created_max": greatest(t.created_max, new.created_max),
        }

    return upsert_from_select(conn, S, _columns(S), fresh, merge)


def _upsert_codes(conn: AsyncConnection, grain: int, rows: tuple[Any, ...]) -> Any:
    bucket = _bucket(grain)
    fresh = (
        select(L.strategyId, _literal(grain), bucket, *_version_key(), L.errorCode, func.count())
        .where(*rows, L.errorCode.is_not(None))
        .group_by(L.strategyId, bucket, L.strategyVersion, L.errorCode)
    )
    return upsert_from_select(conn, C, _columns(C), fresh, _add_n)


def _upsert_cases(conn: AsyncConnection, grain: int, rows: tuple[Any, ...]) -> Any:
    bucket = _bucket(grain)
    fresh = (
        select(
            L.strategyId,
            _literal(grain),
            bucket,
            *_version_key(),
            L.status,
            L.caseName,
            func.count(),
        )
        .where(*rows, L.caseName.is_not(None))
        .group_by(L.strategyId, bucket, L.strategyVersion, L.status, L.caseName)
    )
    return upsert_from_select(conn, K, _columns(K), fresh, _add_n)


def _add_n(t: Any, new: Any) -> dict[str, Any]:
    return {"n": _add(t.n, new.n)}


def _columns(table: Any) -> list[str]:
    return [c.name for c in table.__table__.columns]


BinKey = tuple[str, str, int, int, int]  # strategy, version, version_null, kind, bucket
_KEY_COLUMNS = ["sid", "ver", "vnull", "kind", "bucket"]


async def _fold_bins(conn: AsyncConnection, rows: tuple[Any, ...]) -> None:
    """Add the rows' histogram bins to the packed histograms of their hours and days.

    One read of the batch's values (strategy, version, hour, duration, points, nodes); numpy
    bins them (:func:`stratlog.sketch.bins_of`, the formula readers run in SQL on raw edges)
    and pandas counts them per bucket; the packed histograms of the buckets touched are read,
    merged and written back in one upsert per grain. (Binning inside each GROUP BY costs a
    logarithm per value and kind in SQL: on SQLite that was half of the whole fold.)
    """
    version, version_null = _version_key()
    stmt = select(
        L.strategyId, version, version_null, _bucket(3600), L.durationMs, L.points, L.nodes
    ).where(*rows)
    batch = (await conn.execute(stmt)).all()
    if not batch:
        return
    columns = list(zip(*batch, strict=True))
    keys = pd.DataFrame({"sid": columns[0], "ver": columns[1], "vnull": columns[2]})
    hour = np.asarray(columns[3], dtype=np.int64)
    frames = []
    for kind, values in enumerate(columns[4:]):
        numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)
        present = ~np.isnan(numbers)
        frames.append(
            keys[present].assign(kind=kind, hour=hour[present], bin=bins_of(numbers[present]))
        )
    values = pd.concat(frames, ignore_index=True)
    for grain in DETAIL_GRAINS:
        values["bucket"] = values["hour"] // grain * grain
        counted = values.groupby([*_KEY_COLUMNS, "bin"], sort=True).size().reset_index()
        await _merge_bins(conn, grain, _histograms(counted))


def _histograms(counted: pd.DataFrame) -> dict[BinKey, tuple[Any, Any]]:
    """{key: (bins, counts)} from rows sorted by key then bin, one slice per key."""
    starts = np.flatnonzero(
        counted[_KEY_COLUMNS].ne(counted[_KEY_COLUMNS].shift()).any(axis=1).to_numpy()
    )
    ends = [*starts[1:], len(counted)]
    bins = counted["bin"].to_numpy(np.int64)
    counts = counted[0].to_numpy(np.int64)
    heads = counted.iloc[starts][_KEY_COLUMNS].itertuples(index=False, name=None)
    return {
        (sid, ver, int(vnull), int(kind), int(bucket)): (bins[lo:hi], counts[lo:hi])
        for (sid, ver, vnull, kind, bucket), lo, hi in zip(heads, starts, ends, strict=True)
    }


async def _merge_bins(
    conn: AsyncConnection, grain: int, touched: dict[BinKey, tuple[Any, Any]]
) -> None:
    buckets = [key[4] for key in touched]
    strategies = sorted({key[0] for key in touched})
    stmt = select(B.strategyId, B.version, B.versionNull, B.kind, B.bucketEpoch, B.bins).where(
        B.grain == grain, B.bucketEpoch >= min(buckets), B.bucketEpoch <= max(buckets)
    )
    if len(strategies) <= 500:
        stmt = stmt.where(B.strategyId.in_(strategies))
    for sid, ver, vnull, kind, start, blob in (await conn.execute(stmt)).all():
        key = (sid, ver, int(vnull), int(kind), int(start))
        fresh = touched.get(key)
        if fresh is not None:
            old_bins, old_counts = unpack(blob)
            both = np.concatenate([old_bins, fresh[0]])
            merged, where = np.unique(both, return_inverse=True)
            sums = np.bincount(where, weights=np.concatenate([old_counts, fresh[1]]))
            touched[key] = (merged, sums.astype(np.int64))
    values = [
        {
            "strategy_id": sid,
            "grain": grain,
            "bucket_epoch": start,
            "version": ver,
            "version_null": vnull,
            "kind": kind,
            "n": int(counts.sum()),
            "bins": pack_arrays(bins, counts),
        }
        for (sid, ver, vnull, kind, start), (bins, counts) in touched.items()
    ]
    for chunk in _chunks(values, 5_000):
        await conn.execute(upsert_values(conn, B, ("n", "bins")), chunk)


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


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
