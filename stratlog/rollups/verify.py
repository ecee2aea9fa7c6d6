"""Check the rollups against the raw rows per strategy and UTC day; rebuild the days that differ.

Every folded row (``id <= watermark``) is in each grain's aggregates and in the histogram bins
exactly once, so per strategy and day the rollups must give the raw table's count, sums, min and
max. A restore from a backup, a hand-written DELETE or a bug can break that; ``verify`` finds the
days, ``repair`` refolds them from the raw rows. Both read one snapshot; ``repair`` holds the
watermark lock, so no fold or prune runs beside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stratlog.dialect import consistent_sessions, epoch_bucket
from stratlog.model.rollup import StrategyExecutionBin, StrategyExecutionRollup
from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.rollups.job import RollupJob, lock_watermark
from stratlog.rollups.plan import (
    AGGREGATE_GRAINS,
    BIN_GRAINS,
    DAY,
    epoch_floor,
    epoch_us,
    from_epoch,
    watermark,
)
from stratlog.rollups.retention import day_cutoff

L, R, B = StrategyExecutionLog, StrategyExecutionRollup, StrategyExecutionBin
#: The figures compared, in order: (name, exact?). Float sums may differ in the last bits
#: (summation order), so they are compared with a relative tolerance.
FIGURES = (
    ("runs", True), ("duration sum", False), ("duration min", True), ("duration max", True),
    ("nodes sum", True), ("nodes min", True), ("nodes max", True), ("points sum", False),
    ("runs with points", True),
)  # fmt: skip
RELATIVE_TOLERANCE = 1e-9
Key = tuple[str, int]  # (strategy, day as epoch seconds)


@dataclass(frozen=True)
class Difference:
    """One figure of one strategy-day where a rollup table disagrees with the raw rows."""

    strategyId: str
    day: datetime
    table: str
    figure: str
    raw: Any
    rollup: Any


@dataclass(frozen=True)
class Verification:
    """What ``verify`` compared and what it found."""

    watermark: int
    checked: int
    differences: list[Difference]

    @property
    def days(self) -> set[Key]:
        """The strategy-days that differ."""
        return {(d.strategyId, int(d.day.timestamp())) for d in self.differences}


def _day(column: Any) -> Any:
    return epoch_floor(column, literal_column(str(DAY)))


def _raw_query(since: datetime | None) -> Any:
    day = epoch_bucket(L.createdAt, literal_column(str(DAY)))
    figures = (
        func.count(), func.sum(L.durationMs), func.min(L.durationMs), func.max(L.durationMs),
        func.sum(L.nodes), func.min(L.nodes), func.max(L.nodes), func.sum(L.points),
        func.count(L.points),
    )  # fmt: skip
    stmt = select(L.strategyId, day, *figures).where(L.id <= watermark())
    if since is not None:
        stmt = stmt.where(L.createdAt >= from_epoch(_since_day(since)))
    return stmt.group_by(L.strategyId, day)


def _rollup_query(grain: int, since: datetime | None) -> Any:
    day = _day(R.bucketEpoch)
    figures = (
        func.sum(R.n), func.sum(R.durSum), func.min(R.durMin), func.max(R.durMax),
        func.sum(R.nodesSum), func.min(R.nodesMin), func.max(R.nodesMax), func.sum(R.pointsSum),
        func.sum(R.pointsN),
    )  # fmt: skip
    stmt = select(R.strategyId, day, *figures).where(R.grain == grain)
    if since is not None:
        stmt = stmt.where(R.bucketEpoch >= _since_day(since))
    return stmt.group_by(R.strategyId, day)


def _bins_query(grain: int, kind: int, since: datetime | None) -> Any:
    day = _day(B.bucketEpoch)
    stmt = select(B.strategyId, day, func.sum(B.n)).where(B.grain == grain, B.kind == kind)
    if since is not None:
        stmt = stmt.where(B.bucketEpoch >= _since_day(since))
    return stmt.group_by(B.strategyId, day)


def _since_day(since: datetime) -> int:
    return epoch_us(day_cutoff(since)) // 1_000_000


def _same(raw: Any, rollup: Any, exact: bool) -> bool:
    if raw is None or rollup is None:
        return raw is None and rollup is None
    if exact:
        return float(raw) == float(rollup)
    return math.isclose(float(raw), float(rollup), rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-9)


def _by_key(rows: Iterable[Sequence[Any]]) -> dict[Key, tuple[Any, ...]]:
    return {(str(r[0]), int(r[1])): tuple(r[2:]) for r in rows}


def _compare(
    raw: dict[Key, tuple[Any, ...]], other: dict[Key, tuple[Any, ...]], table: str, names: Any
) -> list[Difference]:
    empty = (0, *([None] * (len(FIGURES) - 1)))
    found = []
    for key in sorted(set(raw) | set(other)):
        mine, theirs = raw.get(key, empty), other.get(key, empty)
        for (name, exact), a, b in zip(names, mine, theirs, strict=False):
            if not _same(a, b, exact) and not (name.startswith("runs") and not a and not b):
                found.append(Difference(key[0], from_epoch(key[1]), table, name, a, b))
    return found


async def verify(engine: AsyncEngine, since: datetime | None = None) -> Verification:
    """Compare every grain's aggregates and bins with the raw rows, per strategy and day."""
    async with consistent_sessions(engine) as sessions, sessions() as session:
        mark = int(await session.scalar(select(watermark())) or 0)
        raw = _by_key((await session.execute(_raw_query(since))).all())
        differences: list[Difference] = []
        for grain in AGGREGATE_GRAINS:
            got = _by_key((await session.execute(_rollup_query(grain, since))).all())
            differences += _compare(raw, got, f"aggregates ({grain} s)", FIGURES)
        counts = {
            0: {k: (v[0],) for k, v in raw.items()},
            1: {k: (v[8],) for k, v in raw.items()},
        }
        for grain in BIN_GRAINS:
            for kind, what in ((0, "duration bins"), (1, "points bins")):
                got = _by_key((await session.execute(_bins_query(grain, kind, since))).all())
                name = ((("runs" if kind == 0 else "runs with points"), True),)
                differences += _compare(counts[kind], got, f"{what} ({grain} s)", name)
    return Verification(mark, len(raw), differences)


async def repair(engine: AsyncEngine, days: Iterable[Key]) -> int:
    """Refold the given strategy-days from the raw rows (one transaction); returns how many."""
    wanted = sorted(set(days))
    if not wanted:
        return 0
    job = RollupJob(engine)
    async with engine.begin() as conn:
        mark = await lock_watermark(conn)
        for strategy, day in wanted:
            await _rebuild(conn, job, strategy, day, mark)
    return len(wanted)


async def _rebuild(
    conn: AsyncConnection, job: RollupJob, strategy: str, day: int, mark: int
) -> None:
    for table in (R, B):
        span = (table.bucketEpoch >= day, table.bucketEpoch < day + DAY)
        await conn.execute(delete(table).where(table.strategyId == strategy, *span))
    rows = (
        L.strategyId == strategy,
        L.createdAt >= from_epoch(day),
        L.createdAt < from_epoch(day + DAY),
        L.id <= mark,
    )
    await job.refold(conn, rows)
