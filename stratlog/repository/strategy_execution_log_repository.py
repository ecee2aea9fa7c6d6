"""Repository for StrategyExecutionLog rows: the seed's methods plus timeseries and the picker.

Writes are best-effort at the service layer (see ``stratlog.service.recording``). Every read is a
single SQL statement, so each dashboard panel is one round trip. Dialect differences (bucketing,
collation) are compiled in ``stratlog.dialect``; this module never looks at the backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Executable, and_, func, or_, select
from sqlalchemy.orm import aliased

from stratlog.dialect import SessionFactory
from stratlog.model.strategy_execution_log import STATUSES, StrategyExecutionLog
from stratlog.repository.base import BaseRepository
from stratlog.repository.bulk import PreparedBulk, insert_prepared, prepare_bulk
from stratlog.repository.panels import Panels, Scope, gather, split, value_column
from stratlog.sketch import merge_packed
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

    @property
    def panels(self) -> Panels:
        """The panel SELECT builders, reading rollups unless ``use_rollups`` is False."""
        return Panels(self.use_rollups)

    # -- helpers ---------------------------------------------------------------------------

    def _terms(
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
        stmt = select(m).where(*self._terms(strategyId, None, None))
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
        terms = self._terms(strategyId, sinceDt, untilDt)
        if status is not None:
            terms.append(m.status == status)
        if errorCode is not None:
            terms.append(m.errorCode == errorCode)
        if caseName is not None:
            terms.append(m.caseName == caseName)
        if caseIsNull:
            terms.append(m.caseName.is_(None))
        return terms

    def _scope(self, strategyId: str, sinceDt: datetime | None, untilDt: datetime | None) -> Scope:
        if not isinstance(strategyId, str):
            raise TypeError(f"strategyId must be a string, got {type(strategyId).__name__}")
        return Scope.of(strategyId, sinceDt, untilDt)

    async def count_by_status(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
    ) -> dict[str, int]:
        """Counts grouped by status; only statuses that occur."""
        stmt = self.panels.status_counts(self._scope(strategyId, sinceDt, untilDt))
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
        stmt = self.panels.top_codes(self._scope(strategyId, sinceDt, untilDt), limit)
        return [{"errorCode": code, "count": int(n)} for code, n in await self._rows(stmt)]

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
        limit = min(_positive_limit(limit), TOP_LIMIT_MAX)
        scope = self._scope(strategyId, sinceDt, untilDt)
        stmt = self.panels.top_cases(scope, limit, status)
        return [{"caseName": name, "count": int(n)} for name, n in await self._rows(stmt)]

    async def duration_and_nodes_summary(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
    ) -> dict[str, Any]:
        """count, avg/min/max/sum of duration and nodes, and the sum of points, in one row."""
        stmt = self.panels.summary(self._scope(strategyId, sinceDt, untilDt))
        return summary_of((await self._rows(stmt))[0]._mapping)

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
            .where(*self._terms(strategyId, sinceDt, untilDt), *extra)
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
        stmt = self.panels.series(self._scope(strategyId, sinceDt, untilDt), seconds)
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
        return [
            {"strategyId": sid, "count": int(n), "lastCreatedAt": as_utc(_parse_dt(lastAt))}
            for sid, n, lastAt in await self._rows(self.panels.strategies())
        ]

    async def value_bins(
        self,
        *,
        strategyId: str,
        sinceDt: datetime | None = None,
        untilDt: datetime | None = None,
        kind: str = "duration",
    ) -> list[tuple[int, int]]:
        """Log-spaced histogram of durations, points or nodes in the window: ``[(bin, n)]``.

        Mergeable bins with a relative accuracy of ``stratlog.sketch.ALPHA`` (see there); the
        service turns them into p50 / p95 / p99 over the whole window. Sorted by bin.
        """
        value_column(kind)
        stmt = self.panels.bins(self._scope(strategyId, sinceDt, untilDt), kind)
        return bins_of(await self._rows(stmt))

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
        value_column(kind)
        if not ranks:
            return {}
        scope = self._scope(strategyId, sinceDt, untilDt)
        stmt = self.panels.order_statistics(scope, kind, ranks)
        return {int(r): float(v) for r, v in await self._rows(stmt)}

    async def overview_rows(
        self,
        *,
        strategyId: str,
        sinceDt: datetime,
        untilDt: datetime,
        bucketSeconds: int,
        top: int,
        exactLimit: int,
        quantiles: Sequence[float],
    ) -> dict[str, list[dict[str, Any]]]:
        """Every Overview panel's rows from ONE statement (one round trip, one snapshot).

        Tags: ``series`` (per bucket and status: count and every figure), ``summary`` (the
        row of :meth:`duration_and_nodes_summary`, summed the same way), ``codes`` and
        ``cases`` (top ``top``, cases of ok runs), ``duration_bins`` / ``points_bins`` (packed
        histograms and raw bins), and ``duration_ranks`` / ``points_ranks``: the order statistics
        around each quantile, present only when the window holds at most ``exactLimit`` runs
        (otherwise the database skips them: an empty index range).
        """
        scope = self._scope(strategyId, sinceDt, untilDt)
        top = min(_positive_limit(top, "top"), TOP_LIMIT_MAX)
        panels = self.panels
        counted = panels.status_counts(scope).subquery("gate")
        gate = select(func.coalesce(func.sum(counted.c.count), 0)).scalar_subquery() <= exactLimit
        figures = {
            "bucket": "i1", "status": "t1", "n": "i2", "dur_sum": "f1", "dur_min": "f2",
            "dur_max": "f3", "nodes_sum": "i3", "nodes_min": "i4", "nodes_max": "i5",
            "points_sum": "f4", "points_n": "i6",
        }  # fmt: skip
        top_slots = {"key": "t1", "count": "i2"}
        bin_slots = {"blob": "b1", "bin": "i1", "n": "i2"}
        rank_slots = {"rank": "i1", "value": "f1"}
        parts = {
            "series": (panels.series(scope, _positive_limit(bucketSeconds), figures=True), figures),
            "summary": (panels.summary(scope), SUMMARY_SLOTS),
            "codes": (panels.top_codes(scope, top), top_slots),
            "cases": (panels.top_cases(scope, top, "ok"), top_slots),
            "duration_bins": (panels.bins(scope, "duration"), bin_slots),
            "points_bins": (panels.bins(scope, "points"), bin_slots),
            "duration_ranks": (
                panels.order_statistics(scope, "duration", quantiles=quantiles, gate=gate),
                rank_slots,
            ),
            "points_ranks": (
                panels.order_statistics(scope, "points", quantiles=quantiles, gate=gate),
                rank_slots,
            ),
        }
        return split(await self._rows(gather(parts)), parts)


SUMMARY_SLOTS = {
    "count": "i1", "sumDurationMs": "f1", "minDurationMs": "f2", "maxDurationMs": "f3",
    "sumNodes": "i2", "minNodes": "i3", "maxNodes": "i4", "sumPoints": "f4",
}  # fmt: skip


def summary_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The seed's summary dict from the figures' sums, minima and maxima."""
    count = int(row["count"] or 0)
    sum_duration, sum_nodes = _float(row["sumDurationMs"]), _int(row["sumNodes"])
    return {
        "count": count,
        "avgDurationMs": sum_duration / count if count and sum_duration is not None else None,
        "minDurationMs": _float(row["minDurationMs"]),
        "maxDurationMs": _float(row["maxDurationMs"]),
        "sumDurationMs": sum_duration,
        "avgNodes": sum_nodes / count if count and sum_nodes is not None else None,
        "minNodes": _int(row["minNodes"]),
        "maxNodes": _int(row["maxNodes"]),
        "sumNodes": sum_nodes,
        "sumPoints": _float(row["sumPoints"]),
    }


def bins_of(rows: Sequence[Any]) -> list[tuple[int, int]]:
    """(bin, n) pairs, sorted, from rows of (packed histogram or NULL, bin or NULL, n)."""
    blobs = [row[0] for row in rows if row[0] is not None]
    counted = [(int(row[1]), int(row[2])) for row in rows if row[0] is None]
    return sorted(merge_packed(blobs, counted).items())


def _parse_dt(value: Any) -> datetime | None:
    # max() over a UNION of two timestamp columns loses the column type on SQLite: raw text.
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
