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
from stratlog.model.rollup import ROLLUP_TABLES, BinsRollup, CaseRollup, CodeRollup, StatusRollup
from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.rollups.job import RollupJob, lock_watermark
from stratlog.rollups.plan import (
    DAY,
    DETAIL_GRAINS,
    STATUS_GRAINS,
    epoch_floor,
    epoch_us,
    from_epoch,
    watermark,
)
from stratlog.rollups.retention import day_cutoff
from stratlog.sketch import unpack

L, S, C, K, B = StrategyExecutionLog, StatusRollup, CodeRollup, CaseRollup, BinsRollup
#: The raw figures per strategy-day, in order: (name, exact?). Float sums may differ in the last
#: bits (summation order), so they are compared with a relative tolerance.
FIGURES = (
    ("runs", True), ("duration sum", False), ("duration min", True), ("duration max", True),
    ("nodes sum", True), ("nodes min", True), ("nodes max", True), ("points sum", False),
    ("runs with points", True), ("runs without a case", True), ("runs with a code", True),
    ("runs with a case", True),
)  # fmt: skip
STATUS_FIGURES = FIGURES[:10]
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
        func.count(L.points), func.count() - func.count(L.caseName), func.count(L.errorCode),
        func.count(L.caseName),
    )  # fmt: skip
    stmt = select(L.strategyId, day, *figures).where(L.id <= watermark())
    if since is not None:
        stmt = stmt.where(L.createdAt >= from_epoch(_since_day(since)))
    return stmt.group_by(L.strategyId, day)


def _per_day(table: Any, grain: int, since: datetime | None, *figures: Any) -> Any:
    day = _day(table.bucketEpoch)
    stmt = select(table.strategyId, day, *figures).where(table.grain == grain)
    if since is not None:
        stmt = stmt.where(table.bucketEpoch >= _since_day(since))
    return stmt.group_by(table.strategyId, day)


def _status_query(grain: int, since: datetime | None) -> Any:
    figures = (
        func.sum(S.n), func.sum(S.durSum), func.min(S.durMin), func.max(S.durMax),
        func.sum(S.nodesSum), func.min(S.nodesMin), func.max(S.nodesMax), func.sum(S.pointsSum),
        func.sum(S.pointsN), func.sum(S.noCaseN),
    )  # fmt: skip
    return _per_day(S, grain, since, *figures)


def _checks(since: datetime | None) -> list[tuple[str, Any, tuple[int, ...]]]:
    """(table label, per-day query, which raw figures its columns must equal)."""
    checks = [
        (f"status ({grain} s)", _status_query(grain, since), tuple(range(len(STATUS_FIGURES))))
        for grain in STATUS_GRAINS
    ]
    for grain in DETAIL_GRAINS:
        checks.append((f"error codes ({grain} s)", _per_day(C, grain, since, func.sum(C.n)), (10,)))
        checks.append((f"rule cases ({grain} s)", _per_day(K, grain, since, func.sum(K.n)), (11,)))
    return checks


#: The histogram kinds and the raw figure each one's total must equal.
HISTOGRAMS = ((0, "duration", 0), (1, "points", 8), (2, "nodes", 0))


async def _histograms_per_day(
    session: Any, grain: int, kind: int, since: datetime | None
) -> dict[Key, tuple[Any, ...]]:
    """Per strategy-day, the counts inside the packed histograms (what readers add up)."""
    stmt = select(B.strategyId, _day(B.bucketEpoch), B.bins).where(B.grain == grain, B.kind == kind)
    if since is not None:
        stmt = stmt.where(B.bucketEpoch >= _since_day(since))
    totals: dict[Key, int] = {}
    for strategy, day, blob in (await session.execute(stmt)).all():
        key = (str(strategy), int(day))
        totals[key] = totals.get(key, 0) + int(unpack(blob)[1].sum())
    return {key: (total,) for key, total in totals.items()}


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
    raw: dict[Key, tuple[Any, ...]], other: dict[Key, tuple[Any, ...]], table: str,
    figures: tuple[int, ...],
) -> list[Difference]:  # fmt: skip
    found = []
    for key in sorted(set(raw) | set(other)):
        mine = raw.get(key)
        theirs = other.get(key, (None,) * len(figures))
        for position, index in enumerate(figures):
            name, exact = FIGURES[index]
            a = mine[index] if mine is not None else (0 if name.startswith("runs") else None)
            b = theirs[position]
            if not _same(a, b, exact) and not (name.startswith("runs") and not a and not b):
                found.append(Difference(key[0], from_epoch(key[1]), table, name, a, b))
    return found


async def verify(engine: AsyncEngine, since: datetime | None = None) -> Verification:
    """Compare every rollup table and grain with the raw rows, per strategy and day."""
    async with consistent_sessions(engine) as sessions, sessions() as session:
        mark = int(await session.scalar(select(watermark())) or 0)
        raw = _by_key((await session.execute(_raw_query(since))).all())
        differences: list[Difference] = []
        for table, query, figures in _checks(since):
            got = _by_key((await session.execute(query)).all())
            differences += _compare(raw, got, table, figures)
        for grain in DETAIL_GRAINS:
            for kind, what, figure in HISTOGRAMS:
                got = await _histograms_per_day(session, grain, kind, since)
                differences += _compare(raw, got, f"{what} histograms ({grain} s)", (figure,))
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
    for table in ROLLUP_TABLES:
        model: Any = table
        span = (model.bucketEpoch >= day, model.bucketEpoch < day + DAY)
        await conn.execute(delete(model).where(model.strategyId == strategy, *span))
    rows = (
        L.strategyId == strategy,
        L.createdAt >= from_epoch(day),
        L.createdAt < from_epoch(day + DAY),
        L.id <= mark,
    )
    await job.refold(conn, rows)
