"""Repository for StrategyExecutionLog rows: the seed's methods plus timeseries and the picker.

Writes are best-effort at the service layer (see ``stratlog.service.recording``). Every read is a
single SQL statement, so each dashboard panel is one round trip. Dialect differences (bucketing,
collation) are compiled in ``stratlog.dialect``; this module never looks at the backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    Subquery,
    and_,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from stratlog.dialect import SessionFactory, binary_order, epoch_bucket
from stratlog.model.rollup import StrategyExecutionBin, StrategyExecutionRollup
from stratlog.model.strategy_execution_log import STATUSES, StrategyExecutionLog
from stratlog.repository.base import BaseRepository
from stratlog.repository.bulk import PreparedBulk, insert_prepared, prepare_bulk
from stratlog.rollups.plan import (
    AGGREGATE_GRAINS,
    BIN_GRAINS,
    Spec,
    epoch_floor,
    plan_window,
    union_source,
)
from stratlog.sketch import bin_sql
from stratlog.timewindow import Window, as_utc

LIST_LIMIT_MAX = 200
SAMPLE_LIMIT_MAX = 1000
TOP_LIMIT_MAX = 1000


def _positive_limit(limit: int, name: str = "limit") -> int:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"{name} must be an integer, got {type(limit).__name__}: {limit!r}")
    if limit < 1:
        raise ValueError(f"{name} must be at least 1, got {limit}")
    return limit


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


class StrategyExecutionLogRepository(BaseRepository[StrategyExecutionLog]):
    """Async reads and writes of the audit log; one session and one statement per call."""

    def __init__(
        self,
        session_factory: SessionFactory,
        model: type[StrategyExecutionLog] = StrategyExecutionLog,
        *,
        use_rollups: bool = True,
    ) -> None:
        super().__init__(session_factory, model)
        #: False reads the audit rows only: the plain implementation (benchmark floor, tests).
        self.use_rollups = use_rollups

    # -- helpers ---------------------------------------------------------------------------

    def _scope(
        self, strategyId: str, sinceDt: datetime | None, untilDt: datetime | None
    ) -> list[ColumnElement[bool]]:
        """WHERE terms for one strategy and a half-open window (validated)."""
        if not isinstance(strategyId, str):
            raise TypeError(f"strategyId must be a string, got {type(strategyId).__name__}")
        window = Window.of(sinceDt, untilDt)
        m = self.model
        terms: list[ColumnElement[bool]] = [m.strategyId == strategyId]
        if window.since is not None:
            terms.append(m.createdAt >= window.since)
        if window.until is not None:
            terms.append(m.createdAt < window.until)
        return terms

    def _source(
        self,
        strategyId: str | None,
        sinceDt: datetime | None,
        untilDt: datetime | None,
        spec: Spec,
        *,
        bucket: int | None = None,
        bins_kind: int | None = None,
        raw_where: Sequence[ColumnElement[bool]] = (),
        status: str | None = None,
    ) -> Subquery:
        """Rows for one strategy and window: rollup buckets plus raw edges (see ``sources``)."""
        if strategyId is not None and not isinstance(strategyId, str):
            raise TypeError(f"strategyId must be a string, got {type(strategyId).__name__}")
        window = Window.of(sinceDt, untilDt)
        # A timeseries bucket can only be built from rollup buckets that divide it.
        available = AGGREGATE_GRAINS if bins_kind is None else BIN_GRAINS
        grains = [g for g in available if bucket is None or bucket % g == 0]
        plan = plan_window(window, grains, self.use_rollups)
        table: Any = StrategyExecutionRollup if bins_kind is None else StrategyExecutionBin
        rollup_where = [table.kind == bins_kind] if bins_kind is not None else []
        if status is not None:  # aggregates only: bins carry no status
            rollup_where.append(table.status == status)
            raw_where = [*raw_where, self.model.status == status]
        return union_source(
            plan,
            spec,
            strategy_id=strategyId,
            rollup_model=table,
            rollup_where=rollup_where,
            raw_where=raw_where,
        )

    async def _rows(self, stmt: Executable) -> list[Any]:
        async with self.session_factory() as session:
            return list((await session.execute(stmt)).all())

    # -- writes ----------------------------------------------------------------------------

    async def insert_row(self, row: StrategyExecutionLog) -> None:
        """Insert a pre-built model instance as-is (the observer builds it; no pydantic schema)."""
        async with self.session_factory() as session:
            session.add(row)
            await session.commit()

    async def insert_many(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Bulk insert of rows given as camelCase dicts, in one transaction; returns the count.

        The rows are bind-processed column type by column type and sent in one go
        (``executemany``; ``COPY`` on PostgreSQL); see :mod:`stratlog.repository.bulk`. Missing
        attributes are NULL.
        """
        if not rows:
            return 0
        async with self.session_factory() as session:
            conn = await session.connection()
            await insert_prepared(conn, self.model, prepare_bulk(self.model, conn.dialect, rows))
            await session.commit()
        return len(rows)

    async def insert_prepared(self, prepared: PreparedBulk) -> int:
        """Insert rows that :func:`~stratlog.repository.bulk.prepare_bulk` already processed."""
        async with self.session_factory() as session:
            count = await insert_prepared(await session.connection(), self.model, prepared)
            await session.commit()
        return count

    # -- reads -----------------------------------------------------------------------------

    async def list_for_strategy(
        self, *, strategyId: str, status: str | None = None, limit: int = 50
    ) -> list[StrategyExecutionLog]:
        """Most recent first (createdAt desc, id desc); ``limit`` is capped at 200."""
        limit = min(_positive_limit(limit), LIST_LIMIT_MAX)
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}: expected one of {', '.join(STATUSES)}")
        m = self.model
        stmt = select(m).where(*self._scope(strategyId, None, None))
        if status is not None:
            stmt = stmt.where(m.status == status)
        stmt = stmt.order_by(m.createdAt.desc(), m.id.desc()).limit(limit)
        async with self.session_factory() as session:
            return list((await session.scalars(stmt)).all())

    async def list_runs(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
        status: str | None = None,
        errorCode: str | None = None,
        caseName: str | None = None,
        caseIsNull: bool = False,
        before: tuple[datetime, int] | None = None,
        limit: int = 50,
    ) -> list[StrategyExecutionLog]:
        """The runbook: runs of a window and filters, newest first, ``limit`` capped at 200.

        ``before=(createdAt, id)`` continues a listing after its last row (keyset paging);
        ``caseIsNull`` selects the "no rule matched" bucket (``caseName`` null).
        """
        limit = min(_positive_limit(limit), LIST_LIMIT_MAX)
        m = self.model
        terms = self._run_filters(
            strategyId, sinceDt, untilDt, status, errorCode, caseName, caseIsNull
        )
        if before is not None:
            at, row_id = as_utc(before[0]), int(before[1])
            terms.append(or_(m.createdAt < at, and_(m.createdAt == at, m.id < row_id)))
        stmt = select(m).where(*terms).order_by(m.createdAt.desc(), m.id.desc()).limit(limit)
        async with self.session_factory() as session:
            return list((await session.scalars(stmt)).all())

    async def neighbours(
        self,
        id: int,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
        status: str | None = None,
        errorCode: str | None = None,
        caseName: str | None = None,
        caseIsNull: bool = False,
    ) -> tuple[int | None, int | None]:
        """Ids of the next newer and next older run with the same filters, in one statement."""
        m = self.model
        terms = self._run_filters(
            strategyId, sinceDt, untilDt, status, errorCode, caseName, caseIsNull
        )
        anchor = aliased(m)
        at = select(anchor.createdAt).where(anchor.id == id).scalar_subquery()
        newer = (
            select(m.id)
            .where(*terms, or_(m.createdAt > at, and_(m.createdAt == at, m.id > id)))
            .order_by(m.createdAt.asc(), m.id.asc())
            .limit(1)
            .scalar_subquery()
        )
        older = (
            select(m.id)
            .where(*terms, or_(m.createdAt < at, and_(m.createdAt == at, m.id < id)))
            .order_by(m.createdAt.desc(), m.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        row = (await self._rows(select(newer.label("newer"), older.label("older"))))[0]
        return _int(row.newer), _int(row.older)

    def _run_filters(
        self,
        strategyId: str,
        sinceDt: datetime | None,
        untilDt: datetime | None,
        status: str | None,
        errorCode: str | None,
        caseName: str | None,
        caseIsNull: bool,
    ) -> list[ColumnElement[bool]]:
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}: expected one of {', '.join(STATUSES)}")
        if caseIsNull and caseName is not None:
            raise ValueError("caseName and caseIsNull exclude each other")
        m = self.model
        terms = self._scope(strategyId, sinceDt, untilDt)
        if status is not None:
            terms.append(m.status == status)
        if errorCode is not None:
            terms.append(m.errorCode == errorCode)
        if caseName is not None:
            terms.append(m.caseName == caseName)
        if caseIsNull:
            terms.append(m.caseName.is_(None))
        return terms

    async def count_by_status(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
    ) -> dict[str, int]:
        """Counts grouped by status; only statuses that occur."""
        m, r = self.model, StrategyExecutionRollup
        src = self._source(strategyId, sinceDt, untilDt, {"status": (r.status, m.status), **_N})
        stmt = select(src.c.status, func.sum(src.c.n).label("count")).group_by(src.c.status)
        return {status: int(count) for status, count in await self._rows(stmt)}

    async def count_by_error_code(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
        limit: int = 10,
    ) -> list[dict[str, Any]]:
        """Top error codes: count desc, ties by code asc; rows without a code are left out."""
        m, r = self.model, StrategyExecutionRollup
        rows = await self._top(strategyId, sinceDt, untilDt, limit, (r.errorCode, m.errorCode))
        return [{"errorCode": code, "count": n} for code, n in rows]

    async def count_by_case_name(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
        limit: int = 10,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """Rule cases that fired: count desc, ties by name asc, the ``None`` bucket last.

        The seed's grouping counts every run; ``status="ok"`` counts only the runs that ended
        ok, whose ``None`` bucket is the real fallthrough (no rule matched, defaultPoints).
        """
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}: expected one of {', '.join(STATUSES)}")
        m, r = self.model, StrategyExecutionRollup
        key = (r.caseName, m.caseName)
        rows = await self._top(
            strategyId, sinceDt, untilDt, limit, key, keep_null=True, status=status
        )
        return [{"caseName": name, "count": n} for name, n in rows]

    async def _top(
        self,
        strategyId: str,
        sinceDt: datetime | None,
        untilDt: datetime | None,
        limit: int,
        key: tuple[Any, Any],
        *,
        keep_null: bool = False,
        status: str | None = None,
    ) -> list[tuple[Any, int]]:
        """The ``limit`` most frequent values of one key (rollup column, raw column) in a window.

        Count desc, ties by value in binary order; a null value is left out, or with
        ``keep_null`` counted as its own bucket and placed last among equal counts.
        """
        limit = min(_positive_limit(limit), TOP_LIMIT_MAX)
        src = self._source(strategyId, sinceDt, untilDt, {"key": key, **_N}, status=status)
        count = func.sum(src.c.n).label("count")
        stmt = select(src.c.key, count).group_by(src.c.key)
        if keep_null:
            stmt = stmt.order_by(count.desc(), src.c.key.is_(None), binary_order(src.c.key))
        else:
            stmt = stmt.where(src.c.key.is_not(None))
            stmt = stmt.order_by(count.desc(), binary_order(src.c.key))
        return [(value, int(n)) for value, n in await self._rows(stmt.limit(limit))]

    async def duration_and_nodes_summary(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
    ) -> dict[str, Any]:
        """count, avg/min/max/sum of duration and nodes, and the sum of points, in one row."""
        m, r = self.model, StrategyExecutionRollup
        spec: Spec = {
            **_N,
            "dur_sum": (r.durSum, m.durationMs),
            "dur_min": (r.durMin, m.durationMs),
            "dur_max": (r.durMax, m.durationMs),
            "nodes_sum": (r.nodesSum, m.nodes),
            "nodes_min": (r.nodesMin, m.nodes),
            "nodes_max": (r.nodesMax, m.nodes),
            "points_sum": (r.pointsSum, m.points),
        }
        c = self._source(strategyId, sinceDt, untilDt, spec).c
        stmt = select(
            func.coalesce(func.sum(c.n), 0).label("count"),
            func.sum(c.dur_sum).label("sumDurationMs"),
            func.min(c.dur_min).label("minDurationMs"),
            func.max(c.dur_max).label("maxDurationMs"),
            func.sum(c.nodes_sum).label("sumNodes"),
            func.min(c.nodes_min).label("minNodes"),
            func.max(c.nodes_max).label("maxNodes"),
            func.sum(c.points_sum).label("sumPoints"),
        )
        row = (await self._rows(stmt))[0]
        count = int(row.count)
        sum_duration, sum_nodes = _float(row.sumDurationMs), _int(row.sumNodes)
        return {
            "count": count,
            "avgDurationMs": sum_duration / count if count and sum_duration is not None else None,
            "minDurationMs": _float(row.minDurationMs),
            "maxDurationMs": _float(row.maxDurationMs),
            "sumDurationMs": sum_duration,
            "avgNodes": sum_nodes / count if count and sum_nodes is not None else None,
            "minNodes": _int(row.minNodes),
            "maxNodes": _int(row.maxNodes),
            "sumNodes": sum_nodes,
            "sumPoints": _float(row.sumPoints),
        }

    async def sample_durations(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
        limit: int = 1000,
    ) -> list[float]:
        """Up to ``min(limit, 1000)`` durations from the window (all of them when they fit)."""
        return await self._sample(self.model.durationMs, strategyId, sinceDt, untilDt, limit)

    async def sample_points(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
        limit: int = 1000,
    ) -> list[float]:
        """Up to ``min(limit, 1000)`` awarded points from the window; null points left out."""
        m = self.model
        return await self._sample(
            m.points, strategyId, sinceDt, untilDt, limit, m.points.is_not(None)
        )

    async def _sample(
        self,
        column: Any,
        strategyId: str,
        sinceDt: datetime | None,
        untilDt: datetime | None,
        limit: int,
        *extra: ColumnElement[bool],
    ) -> list[float]:
        # Newest rows first: an index range scan on (strategy_id, created_at) that stops after
        # `limit` rows. The service says when the figure rests on a sample rather than all rows.
        limit = min(_positive_limit(limit), SAMPLE_LIMIT_MAX)
        m = self.model
        stmt = (
            select(column)
            .where(*self._scope(strategyId, sinceDt, untilDt), *extra)
            .order_by(m.createdAt.desc(), m.id.desc())
            .limit(limit)
        )
        return [float(value) for (value,) in await self._rows(stmt)]

    async def timeseries(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
        bucketSeconds: int = 3600,
    ) -> list[dict[str, Any]]:
        """Runs per epoch-aligned bucket and status, sorted by bucket start then status."""
        seconds = _positive_limit(bucketSeconds, "bucketSeconds")
        m, r = self.model, StrategyExecutionRollup
        # The bucket size is inlined as a validated integer literal: PostgreSQL only accepts the
        # SELECT expression under GROUP BY when both carry the very same text, not two parameters.
        n: ColumnElement[int] = literal_column(str(int(seconds)))
        spec: Spec = {
            "bucket": (epoch_floor(r.bucketEpoch, n), epoch_bucket(m.createdAt, n)),
            "status": (r.status, m.status),
            **_N,
        }
        src = self._source(strategyId, sinceDt, untilDt, spec, bucket=seconds)
        stmt = (
            select(src.c.bucket, src.c.status, func.sum(src.c.n).label("count"))
            .group_by(src.c.bucket, src.c.status)
            .order_by(src.c.bucket, binary_order(src.c.status))
        )
        return [
            {
                "bucketStart": datetime.fromtimestamp(int(start), UTC),
                "status": status,
                "count": int(count),
            }
            for start, status, count in await self._rows(stmt)
        ]

    async def list_strategies(self) -> list[dict[str, Any]]:
        """Every strategy with its row count and last ``createdAt``, by strategyId."""
        m, r = self.model, StrategyExecutionRollup
        spec: Spec = {
            "sid": (r.strategyId, m.strategyId),
            "last": (r.createdMax, m.createdAt),
            **_N,
        }
        src = self._source(None, None, None, spec)
        last = func.max(src.c.last)
        stmt = (
            select(src.c.sid, func.sum(src.c.n).label("count"), last.label("lastCreatedAt"))
            .group_by(src.c.sid)
            .order_by(binary_order(src.c.sid))
        )
        return [
            {"strategyId": sid, "count": int(n), "lastCreatedAt": as_utc(_parse_dt(lastAt))}
            for sid, n, lastAt in await self._rows(stmt)
        ]

    async def value_bins(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
        kind: str = "duration",
    ) -> list[tuple[int, int]]:
        """Log-spaced histogram of durations or points in the window: ``[(bin, count), ...]``.

        Mergeable bins with a relative accuracy of ``stratlog.sketch.ALPHA`` (see there); the
        service turns them into p50 / p95 / p99 over the whole window.
        """
        column, kind_code = self._value_column(kind)
        b = StrategyExecutionBin
        spec: Spec = {"bin": (b.bin, bin_sql(column)), "n": (b.n, literal_column("1"))}
        extra = [column.is_not(None)] if kind == "points" else []
        src = self._source(strategyId, sinceDt, untilDt, spec, bins_kind=kind_code, raw_where=extra)
        stmt = select(src.c.bin, func.sum(src.c.n).label("n")).group_by(src.c.bin)
        return [(int(bin_), int(n)) for bin_, n in await self._rows(stmt)]

    async def order_statistics(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
        kind: str = "duration",
        ranks: Sequence[int],
    ) -> dict[int, float]:
        """The values at 0-based ``ranks`` of the window's sorted durations or (non-null) points.

        Exact percentiles for small windows without shipping the values: the database sorts,
        ``row_number()`` picks the few that interpolation needs.
        """
        column, _ = self._value_column(kind)
        wanted = sorted({int(r) for r in ranks})
        if not wanted:
            return {}
        rank = (func.row_number().over(order_by=column) - 1).label("rank")
        inner = (
            select(column.label("value"), rank)
            .where(*self._scope(strategyId, sinceDt, untilDt), column.is_not(None))
            .subquery()
        )
        stmt = select(inner.c.rank, inner.c.value).where(inner.c.rank.in_(wanted))
        return {int(r): float(v) for r, v in await self._rows(stmt)}

    def _value_column(self, kind: str) -> tuple[Any, int]:
        if kind not in VALUE_KINDS:
            raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(VALUE_KINDS)}")
        column = self.model.durationMs if kind == "duration" else self.model.points
        return column, VALUE_KINDS[kind]


_N: Spec = {"n": (StrategyExecutionRollup.n, literal_column("1"))}
VALUE_KINDS = {"duration": 0, "points": 1}


def _parse_dt(value: Any) -> datetime | None:
    # max() over a UNION of two timestamp columns loses the column type on SQLite: raw text.
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
