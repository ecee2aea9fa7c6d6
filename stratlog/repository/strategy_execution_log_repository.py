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
    Dialect,
    Executable,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
)

from stratlog.dialect import binary_order, epoch_bucket
from stratlog.model.strategy_execution_log import STATUSES, StrategyExecutionLog
from stratlog.repository.base import BaseRepository, SessionFactory
from stratlog.timewindow import Window

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
    ) -> None:
        super().__init__(session_factory, model)

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

        The statement is compiled once per call and the rows are run through each column type's
        own bind processor, then sent as one DBAPI ``executemany``: the same values a Core
        insert would send, without its per-row bookkeeping (3x faster on the demo generator).
        Missing attributes are NULL.
        """
        if not rows:
            return 0
        async with self.session_factory() as session:
            conn = await session.connection()
            sql, columns = self._bulk_insert(conn.dialect)
            params = [
                tuple(row.get(key) if p is None else p(row.get(key)) for key, p in columns)
                for row in rows
            ]
            await conn.exec_driver_sql(sql, params)
            await session.commit()
        return len(rows)

    def _bulk_insert(self, dialect: Dialect) -> tuple[str, list[tuple[str, Any]]]:
        """Positional INSERT text and (attribute, bind processor) pairs in parameter order."""
        table = self.model.__table__
        assert isinstance(table, Table)
        attr_of = {a.columns[0].name: a.key for a in self.model.__mapper__.column_attrs}
        names = [c.name for c in table.columns if not c.primary_key]
        compiled = insert(table).values({n: bindparam(n) for n in names}).compile(dialect=dialect)
        if not compiled.positional or compiled.positiontup is None:
            raise NotImplementedError(f"bulk insert needs a positional paramstyle ({dialect.name})")
        columns = [
            (attr_of[n], table.c[n].type.dialect_impl(dialect).bind_processor(dialect))
            for n in compiled.positiontup
        ]
        return compiled.string, columns

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

    async def count_by_status(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
    ) -> dict[str, int]:
        """Counts grouped by status; only statuses that occur."""
        m = self.model
        stmt = (
            select(m.status, func.count().label("count"))
            .where(*self._scope(strategyId, sinceDt, untilDt))
            .group_by(m.status)
        )
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
        limit = min(_positive_limit(limit), TOP_LIMIT_MAX)
        m = self.model
        count = func.count().label("count")
        stmt = (
            select(m.errorCode, count)
            .where(*self._scope(strategyId, sinceDt, untilDt), m.errorCode.is_not(None))
            .group_by(m.errorCode)
            .order_by(count.desc(), binary_order(m.errorCode))
            .limit(limit)
        )
        return [{"errorCode": code, "count": int(n)} for code, n in await self._rows(stmt)]

    async def count_by_case_name(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
        limit: int = 10,
    ) -> list[dict[str, Any]]:
        """Rule cases that fired: count desc, ties by name asc, the ``None`` bucket last."""
        limit = min(_positive_limit(limit), TOP_LIMIT_MAX)
        m = self.model
        count = func.count().label("count")
        stmt = (
            select(m.caseName, count)
            .where(*self._scope(strategyId, sinceDt, untilDt))
            .group_by(m.caseName)
            .order_by(count.desc(), m.caseName.is_(None), binary_order(m.caseName))
            .limit(limit)
        )
        return [{"caseName": name, "count": int(n)} for name, n in await self._rows(stmt)]

    async def duration_and_nodes_summary(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
    ) -> dict[str, Any]:
        """count, avg/min/max/sum of duration and nodes, and the sum of points, in one row."""
        m = self.model
        stmt = select(
            func.count().label("count"),
            func.avg(m.durationMs).label("avgDurationMs"),
            func.min(m.durationMs).label("minDurationMs"),
            func.max(m.durationMs).label("maxDurationMs"),
            func.sum(m.durationMs).label("sumDurationMs"),
            func.avg(m.nodes).label("avgNodes"),
            func.min(m.nodes).label("minNodes"),
            func.max(m.nodes).label("maxNodes"),
            func.sum(m.nodes).label("sumNodes"),
            func.sum(m.points).label("sumPoints"),
        ).where(*self._scope(strategyId, sinceDt, untilDt))
        row = (await self._rows(stmt))[0]
        return {
            "count": int(row.count),
            "avgDurationMs": _float(row.avgDurationMs),
            "minDurationMs": _float(row.minDurationMs),
            "maxDurationMs": _float(row.maxDurationMs),
            "sumDurationMs": _float(row.sumDurationMs),
            "avgNodes": _float(row.avgNodes),
            "minNodes": _int(row.minNodes),
            "maxNodes": _int(row.maxNodes),
            "sumNodes": _int(row.sumNodes),
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
        m = self.model
        # The bucket size is inlined as a validated integer literal: PostgreSQL only accepts the
        # SELECT expression under GROUP BY when both carry the very same text, not two parameters.
        bucket = epoch_bucket(m.createdAt, literal_column(str(int(seconds)))).label("bucket")
        stmt = (
            select(bucket, m.status, func.count().label("count"))
            .where(*self._scope(strategyId, sinceDt, untilDt))
            .group_by(bucket, m.status)
            .order_by(bucket, binary_order(m.status))
        )
        return [
            {
                "bucketStart": datetime.fromtimestamp(int(start), UTC),
                "status": status,
                "count": int(n),
            }
            for start, status, n in await self._rows(stmt)
        ]

    async def list_strategies(self) -> list[dict[str, Any]]:
        """Every strategy with its row count and last ``createdAt``, by strategyId."""
        m = self.model
        stmt = (
            select(
                m.strategyId,
                func.count().label("count"),
                func.max(m.createdAt).label("lastCreatedAt"),
            )
            .group_by(m.strategyId)
            .order_by(binary_order(m.strategyId))
        )
        return [
            {"strategyId": sid, "count": int(n), "lastCreatedAt": last}
            for sid, n, last in await self._rows(stmt)
        ]
