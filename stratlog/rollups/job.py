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
from sqlalchemy import (
    Column,
    MetaData,
    Table,
    case,
    func,
    insert,
    literal,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stratlog import partitions
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
from stratlog.rollups.plan import DETAIL_GRAINS, ROLLUP_NAME, STATUS_GRAINS, epoch_floor
from stratlog.sketch import bins_of, pack_arrays, pack_slices, unpack

log = logging.getLogger("stratlog.rollup")
#: How often ``run_forever`` makes the coming days' partitions (a partitioned table only).
PARTITIONS_EVERY_S = 3600.0
#: ... and how soon it tries again after a failure (each try may wait 5 s for a lock).
PARTITIONS_RETRY_S = 300.0

L, S, C, K, B = StrategyExecutionLog, StatusRollup, CodeRollup, CaseRollup, BinsRollup


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
        """Catch up every ``interval_s`` seconds until ``stop`` is set; failures are logged.

        On a partitioned table it also makes the partitions of today and the next
        :data:`~stratlog.partitions.AHEAD_DAYS` days, at the start and once an hour (five
        minutes after a failure)."""
        stop = stop or asyncio.Event()
        partitions_due = 0.0
        while not stop.is_set():
            try:
                await self.catch_up()
            except Exception as exc:  # keep going: the database may come back
                log.warning("rollup run failed: %s: %s", type(exc).__name__, exc)
            if time.monotonic() >= partitions_due:
                try:
                    for name in await partitions.ensure_ahead(self.engine):
                        log.info("created partition %s", name)
                    partitions_due = time.monotonic() + PARTITIONS_EVERY_S
                except Exception as exc:  # e.g. a lock not granted in time: in 5 minutes
                    log.warning("partition maintenance failed: %s: %s", type(exc).__name__, exc)
                    partitions_due = time.monotonic() + PARTITIONS_RETRY_S
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
        """Fold the audit rows matching ``rows`` (for a repair; the caller holds the lock).

        The rows are grouped once at the finest grain of each table into a temporary staging
        table; every grain's upsert then groups those few rows, not the batch again (on SQLite
        each pass over the batch parses every timestamp anew).
        """
        await conn.run_sync(_STAGE.create_all, checkfirst=True)
        for table in _STAGE.sorted_tables:
            await conn.execute(table.delete())
        await conn.execute(insert(STAGE_STATUS).from_select(_names(STAGE_STATUS), _status(rows)))
        await conn.execute(insert(STAGE_CODE).from_select(_names(STAGE_CODE), _codes(rows)))
        await conn.execute(insert(STAGE_CASE).from_select(_names(STAGE_CASE), _cases(rows)))
        for grain in STATUS_GRAINS:
            await conn.execute(_upsert_status(conn, grain))
        for grain in DETAIL_GRAINS:
            await conn.execute(_upsert_counts(conn, C, STAGE_CODE, grain, ("error_code",)))
            await conn.execute(_upsert_counts(conn, K, STAGE_CASE, grain, ("status", "case_name")))
        await _fold_bins(conn, rows)


def _version_key() -> tuple[Any, Any]:
    """The version as the rollups key it: ``''`` plus a null flag (key columns are NOT NULL)."""
    version = L.strategyVersion
    return func.coalesce(version, literal("")), case((version.is_(None), 1), else_=0)


def _add(a: Any, b: Any) -> Any:
    return a + b


def _add_nullable(a: Any, b: Any) -> Any:
    return case((a.is_(None), b), (b.is_(None), a), else_=a + b)


def _stage(name: str, model: Any) -> Table:
    """A temporary table with the rollup table's columns, emptied at commit on PostgreSQL."""
    columns = [Column(c.name, c.type) for c in model.__table__.columns]
    return Table(name, _STAGE, *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DELETE ROWS")


_STAGE = MetaData()
STAGE_STATUS = _stage("stratlog_stage_status", S)
STAGE_CODE = _stage("stratlog_stage_code", C)
STAGE_CASE = _stage("stratlog_stage_case", K)


def _names(table: Table) -> list[str]:
    return [c.name for c in table.columns]


def _status(rows: tuple[Any, ...]) -> Any:
    """The batch's status aggregates at the finest grain."""
    grain = STATUS_GRAINS[0]
    bucket = _bucket(grain)
    return (
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


def _codes(rows: tuple[Any, ...]) -> Any:
    grain = DETAIL_GRAINS[0]
    bucket = _bucket(grain)
    return (
        select(L.strategyId, _literal(grain), bucket, *_version_key(), L.errorCode, func.count())
        .where(*rows, L.errorCode.is_not(None))
        .group_by(L.strategyId, bucket, L.strategyVersion, L.errorCode)
    )


def _cases(rows: tuple[Any, ...]) -> Any:
    grain = DETAIL_GRAINS[0]
    bucket = _bucket(grain)
    keys = (L.status, L.caseName)
    return (
        select(L.strategyId, _literal(grain), bucket, *_version_key(), *keys, func.count())
        .where(*rows, L.caseName.is_not(None))
        .group_by(L.strategyId, bucket, L.strategyVersion, *keys)
    )


def _regrouped(stage: Table, grain: int, keys: tuple[str, ...], figures: list[Any]) -> Any:
    """The staged rows summed into ``grain`` buckets (WHERE: SQLite's upsert needs one)."""
    c = stage.c
    bucket = epoch_floor(c.bucket_epoch, _literal(grain))
    group = (c.strategy_id, bucket, c.version, c.version_null, *(c[k] for k in keys))
    return (
        select(
            c.strategy_id,
            _literal(grain),
            bucket,
            c.version,
            c.version_null,
            *(c[k] for k in keys),
            *figures,
        )
        .where(true())
        .group_by(*group)
    )


def _upsert_status(conn: AsyncConnection, grain: int) -> Any:
    c = STAGE_STATUS.c
    figures = [
        func.sum(c.n), func.sum(c.dur_sum), func.min(c.dur_min), func.max(c.dur_max),
        func.sum(c.nodes_sum), func.min(c.nodes_min), func.max(c.nodes_max),
        func.sum(c.points_sum), func.sum(c.points_n), func.sum(c.no_case_n),
        func.max(c.created_max),
    ]  # fmt: skip
    fresh = _regrouped(STAGE_STATUS, grain, ("status",), figures)

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


def _upsert_counts(
    conn: AsyncConnection, table: Any, stage: Table, grain: int, keys: tuple[str, ...]
) -> Any:
    fresh = _regrouped(stage, grain, keys, [func.sum(stage.c.n)])
    return upsert_from_select(conn, table, _columns(table), fresh, _add_n)


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


Histogram = tuple[Any, Any, bytes | None]  # bins, counts, packed (None: pack them again)


def _histograms(counted: pd.DataFrame) -> dict[BinKey, Histogram]:
    """{key: (bins, counts, packed)} from rows sorted by key then bin, one slice per key."""
    starts = np.flatnonzero(
        counted[_KEY_COLUMNS].ne(counted[_KEY_COLUMNS].shift()).any(axis=1).to_numpy()
    ).tolist()
    ends = [*starts[1:], len(counted)]
    bins = counted["bin"].to_numpy(np.int64)
    counts = counted[0].to_numpy(np.int64)
    packed = pack_slices(bins, counts, starts)
    heads = counted.iloc[starts][_KEY_COLUMNS].itertuples(index=False, name=None)
    return {
        (sid, ver, int(vnull), int(kind), int(bucket)): (bins[lo:hi], counts[lo:hi], blob)
        for (sid, ver, vnull, kind, bucket), lo, hi, blob in zip(
            heads, starts, ends, packed, strict=True
        )
    }


async def _merge_bins(conn: AsyncConnection, grain: int, touched: dict[BinKey, Histogram]) -> None:
    """Merge the batch's histograms into those already stored, write all touched back."""
    # The stored histograms of exactly the buckets touched (one late row from last year adds one
    # bucket to the list, not a year of buckets), per chunk of strategies and buckets.
    buckets = sorted({key[4] for key in touched})
    strategies = sorted({key[0] for key in touched})
    stored: list[Any] = []
    for some_buckets in _chunks(buckets, 1_000):
        for some_strategies in _chunks(strategies, 1_000):
            stmt = select(
                B.strategyId, B.version, B.versionNull, B.kind, B.bucketEpoch, B.bins
            ).where(
                B.grain == grain,
                B.strategyId.in_(some_strategies),
                B.bucketEpoch.in_(some_buckets),
            )
            stored += (await conn.execute(stmt)).all()
    for sid, ver, vnull, kind, start, blob in stored:
        key = (sid, ver, int(vnull), int(kind), int(start))
        fresh = touched.get(key)
        if fresh is not None:
            old_bins, old_counts = unpack(blob)
            both = np.concatenate([old_bins, fresh[0]])
            merged, where = np.unique(both, return_inverse=True)
            sums = np.bincount(where, weights=np.concatenate([old_counts, fresh[1]]))
            touched[key] = (merged, sums.astype(np.int64), None)
    values = [
        {
            "strategy_id": sid,
            "grain": grain,
            "bucket_epoch": start,
            "version": ver,
            "version_null": vnull,
            "kind": kind,
            "n": int(counts.sum()),
            "bins": packed if packed is not None else pack_arrays(bins, counts),
        }
        for (sid, ver, vnull, kind, start), (bins, counts, packed) in touched.items()
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
