"""Repository for StrategyExecutionLog rows: the seed's methods plus timeseries and the picker.

Writes are best-effort at the service layer (see ``stratlog.service.recording``). Every read is a
single SQL statement (the Overview's is one for every panel, plus one for a small window's exact
percentiles in the same read transaction). Dialect differences (bucketing,
collation) are compiled in ``stratlog.dialect``; this module never looks at the backend's name,
only asks that module what it can do (``has_array_agg``).
"""

from __future__ import annotations

import json
import math
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from operator import is_not, itemgetter
from typing import Any

import numpy as np
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Double,
    Executable,
    Select,
    String,
    and_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import aliased

from stratlog.dialect import (
    DriverStatement,
    SessionFactory,
    epoch_bucket,
    has_array_agg,
    json_text,
    one_read_transaction,
)
from stratlog.model.strategy_execution_log import STATUSES, StrategyExecutionLog
from stratlog.repository.base import BaseRepository
from stratlog.repository.bulk import PreparedBulk, insert_prepared, prepare_bulk
from stratlog.repository.panels import (
    VALUE_KINDS,
    Panels,
    Scope,
    gather,
    scope_values,
    split,
    typed_null,
    value_column,
)
from stratlog.rollups.plan import STATUS_GRAINS, bind_plan, plan_shape, watermark
from stratlog.sketch import merge_arrays, merge_packed, rank_ranges
from stratlog.timewindow import Window, as_utc

LIST_LIMIT_MAX = 200
#: The most slices one payload sample reads (one bounded statement on every backend).
PAYLOAD_SLICES_MAX = 64
#: The keyword filters of ``list_runs`` and ``neighbours`` beyond status, code and case.
RUN_FILTERS = frozenset(
    {"strategyVersion", "versionIsNull", "requestId", "payloadPath", "payloadValue"}
)
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

    async def _rows(self, stmt: Executable, values: Mapping[str, Any] | None = None) -> list[Any]:
        async with self.session_factory() as session:
            return list((await session.execute(stmt, dict(values or {}))).all())

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
        **more: Any,
    ) -> list[StrategyExecutionLog]:
        """The runbook: runs of a window and filters, newest first, ``limit`` capped at 200.

        ``before=(createdAt, id)`` continues a listing after its last row (keyset paging);
        ``caseIsNull`` selects the "no rule matched" bucket (``caseName`` null). More filters
        (:data:`RUN_FILTERS`): ``strategyVersion`` (``versionIsNull`` for runs without one),
        ``requestId``, and ``payloadPath`` (a list of keys into ``inputPayload``) with
        ``payloadValue`` (its value as text, see :class:`~stratlog.dialect.json_text`).
        """
        limit = min(_positive_limit(limit), LIST_LIMIT_MAX)
        m = self.model
        terms = self._run_filters(
            strategyId, sinceDt, untilDt, status, errorCode, caseName, caseIsNull, **more
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
        **more: Any,
    ) -> tuple[int | None, int | None]:
        """Ids of the next newer and next older run with the same filters, in one statement."""
        m = self.model
        terms = self._run_filters(
            strategyId, sinceDt, untilDt, status, errorCode, caseName, caseIsNull, **more
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
        **more: Any,
    ) -> list[ColumnElement[bool]]:
        unknown = set(more) - RUN_FILTERS
        if unknown:
            raise TypeError(f"unknown run filter(s): {', '.join(sorted(unknown))}")
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
        return terms + self._more_filters(**more)

    def _more_filters(
        self,
        *,
        strategyVersion: str | None = None,
        versionIsNull: bool = False,
        requestId: str | None = None,
        payloadPath: Sequence[str] | None = None,
        payloadValue: str | None = None,
    ) -> list[ColumnElement[bool]]:
        """The version, request id and payload terms of :meth:`list_runs`."""
        m = self.model
        if versionIsNull and strategyVersion is not None:
            raise ValueError("strategyVersion and versionIsNull exclude each other")
        if (payloadPath is None) != (payloadValue is None):
            raise ValueError("payloadPath and payloadValue go together")
        terms: list[ColumnElement[bool]] = []
        if strategyVersion is not None:
            terms.append(m.strategyVersion == strategyVersion)
        if versionIsNull:
            terms.append(m.strategyVersion.is_(None))
        if requestId is not None:
            terms.append(m.requestId == requestId)
        if payloadPath is not None:
            keys = [str(k) for k in payloadPath]
            if not keys:
                raise ValueError("payloadPath needs at least one key")
            path = bindparam("payload_path", json.dumps(keys), type_=String())
            terms.append(json_text(m.inputPayload, path) == payloadValue)
        return terms

    async def find_request(self, *, requestId: str, limit: int = 50) -> list[StrategyExecutionLog]:
        """Every run of one request id across all strategies, newest first (an index lookup);
        ``limit`` is capped at 200."""
        if not isinstance(requestId, str):
            raise TypeError(f"requestId must be a string, got {type(requestId).__name__}")
        limit = min(_positive_limit(limit), LIST_LIMIT_MAX)
        m = self.model
        stmt = (
            select(m)
            .where(m.requestId == requestId)
            .order_by(m.createdAt.desc(), m.id.desc())
            .limit(limit)
        )
        async with self.session_factory() as session:
            return list((await session.scalars(stmt)).all())

    def _scope(
        self,
        strategyId: str,
        sinceDt: datetime | None,
        untilDt: datetime | None,
        strategyVersion: str | None = None,
    ) -> Scope:
        if not isinstance(strategyId, str):
            raise TypeError(f"strategyId must be a string, got {type(strategyId).__name__}")
        return Scope.of(strategyId, sinceDt, untilDt, strategyVersion)

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
        strategyVersion: str | None = None,
    ) -> dict[str, Any]:
        """Every Overview panel's rows: one statement, then (small windows) one more.

        The first statement gathers every panel (:func:`~stratlog.repository.panels.gather`):
        tags ``series`` (runs per bucket and status), ``summary`` (the row of
        :meth:`duration_and_nodes_summary`, summed the same way), ``codes`` and ``cases`` (top
        ``top``, cases of ok runs), ``duration_bins`` / ``points_bins``. When the window holds
        at most ``exactLimit`` runs, a second statement in the same read transaction (same
        snapshot) fetches the exact values at the ranks the quantiles interpolate between:
        ``duration_ranks`` / ``points_ranks`` map rank to value. The histograms say which
        narrow value range holds each rank, so the database neither sorts the window nor ships
        it: it counts the values below each range and returns the few inside.

        ``strategyVersion`` keeps the runs of that version only (rollups and audit rows alike).
        """
        scope = self._scope(strategyId, sinceDt, untilDt, strategyVersion)
        top = min(_positive_limit(top, "top"), TOP_LIMIT_MAX)
        bucket = _positive_limit(bucketSeconds, "bucketSeconds")
        plans = self.panels.plans(scope, bucket)
        key = (self.use_rollups, bucket, top, scope.shape(),
               *(plan_shape(plan) for plan in plans.values()))  # fmt: skip
        cached = _OVERVIEW_STATEMENTS.get(key)
        if cached is None:
            cached = _OVERVIEW_STATEMENTS.put(key, self._overview_statement(scope, bucket, top))
        parts, statement = cached
        values = scope_values(scope, plans)
        async with self._snapshot() as session:
            rows: dict[str, Any] = split((await session.execute(statement, values)).all(), parts)
            for kind in ("duration", "points"):
                rows[f"{kind}_bins"] = bins_of(
                    [(r["blob"], r["bin"], r["n"]) for r in rows[f"{kind}_bins"]]
                )
                rows[f"{kind}_ranks"] = {}
            total = int(rows["summary"][0]["count"] or 0)
            if 0 < total <= exactLimit:
                await self._exact_ranks(session, scope, rows, quantiles)
            else:
                for kind in ("duration", "points"):
                    rows[f"{kind}_n"] = sum(count for _, count in rows[f"{kind}_bins"])
        return rows

    async def window_figures(
        self,
        *,
        strategyId: str,
        sinceDt: datetime,
        untilDt: datetime,
        bucketSeconds: int,
        cap: int,
        strategyVersion: str | None = None,
    ) -> tuple[int, WindowFigures | None]:
        """(runs in the window, the Overview's figures) from the audit rows in one statement;
        ``None`` for the figures when there are more than ``cap`` runs (the database counts
        first, then reads only if the count allows).

        For a short window this is cheaper than assembling the figures from a dozen rollup and
        edge reads. It runs on the driver's connection (:class:`~stratlog.dialect.DriverStatement`).
        Where the database returns arrays (PostgreSQL), it groups the counts and ships the
        window's durations and points as two arrays; elsewhere it returns the runs from the
        covering index and the counting happens here, in C (``map`` and ``Counter``).
        ``strategyVersion`` keeps the runs of that version only.
        """
        scope = self._scope(strategyId, sinceDt, untilDt, strategyVersion)
        seconds = _positive_limit(bucketSeconds, "bucketSeconds")
        values = {**scope.values(), "cap": _positive_limit(cap, "cap")}
        async with self._connection() as conn:
            arrays = has_array_agg(conn.dialect)
            key = ("window", self.model, conn.dialect.name, seconds, scope.shape())
            statement = _OVERVIEW_STATEMENTS.get(key)
            if statement is None:
                built = (self._grouped_window if arrays else self._window_rows)(scope, seconds)
                statement = _OVERVIEW_STATEMENTS.put(
                    key, DriverStatement.compile(built, conn.dialect)
                )
            rows = await statement.rows(conn, values)
        # The count's row: last as the databases append UNION ALL branches, else found.
        at = len(rows) - 1 if rows and rows[-1][0] == _COUNT_PART else _count_row(rows)
        n = int(rows.pop(at)[3 if arrays else -1])  # the n column of either statement
        if n > cap:
            return n, None
        return n, (WindowFigures.of_groups if arrays else WindowFigures.of_rows)(rows)

    async def version_rows(
        self,
        *,
        strategyId: str,
        sinceDt: datetime,
        untilDt: datetime,
    ) -> dict[str, list[dict[str, Any]]]:
        """Per version of the strategy in the window, one statement (one snapshot), tags:
        ``status`` (``ver``, ``vnull``, ``status``, ``n``, ``dur_sum``, ``points_sum``,
        ``points_n``, ``last`` in epoch seconds), ``codes`` and ``cases`` (``ver``, ``vnull``,
        ``key``, ``n``; cases of ok runs) and ``bins`` (the durations' histogram rows).

        A version is keyed as the rollups key it: its text (``''`` for none) and ``vnull``.
        """
        scope = self._scope(strategyId, sinceDt, untilDt)
        plans = self.panels.plans(scope)
        key = ("versions", self.use_rollups, scope.shape(),
               *(plan_shape(plan) for plan in plans.values()))  # fmt: skip
        cached = _OVERVIEW_STATEMENTS.get(key)
        if cached is None:
            panels = self.panels
            keyed = {"ver": "t1", "vnull": "i1", "key": "t2", "n": "i2"}
            parts = {
                "status": (panels.version_status(scope), {
                    "ver": "t1", "vnull": "i1", "status": "t2", "n": "i2", "points_n": "i3",
                    "last": "i4", "dur_sum": "f1", "points_sum": "f2"}),
                "codes": (panels.version_codes(scope), keyed),
                "cases": (panels.version_cases(scope), keyed),
                "bins": (panels.version_bins(scope, "duration"), {
                    "ver": "t1", "vnull": "i1", "blob": "b1", "bin": "i3", "n": "i2"}),
            }  # fmt: skip
            cached = _OVERVIEW_STATEMENTS.put(key, (parts, gather(parts)))
        parts, statement = cached
        async with self._snapshot() as conn:
            result = await conn.execute(statement, scope_values(scope, plans))
            return split(result.all(), parts)

    async def insight_rows(
        self,
        *,
        strategyId: str,
        sinceDt: datetime,
        untilDt: datetime,
        bucketSeconds: int = 3600,
        codeFloor: int = 0,
        codeStats: bool = False,
    ) -> dict[str, Any]:
        """What the insights read beyond the Overview, in one statement (one snapshot):

        - ``bins``: ``{kind: (sorted bins, counts)}`` for durations, points and nodes (numpy
          arrays; empty when the window holds no value of that kind);
        - ``codes``: ``{errorCode: {bucket start (epoch s): runs}}`` per ``bucketSeconds``
          bucket (whole hours from the hourly code rollup), the buckets with at least
          ``codeFloor`` runs of their code; with ``codeStats``, ``{errorCode: (sum of the
          runs per bucket, sum of their squares, the busiest bucket's)}`` instead;
        - ``status``: ``{status: (runs, min nodes, max nodes)}``;
        - ``hours``: ``{bucket start: runs}`` and ``failing``: ``{bucket start: runs not ok}``
          per ``bucketSeconds`` bucket (the timeseries' rows).
        """
        scope = self._scope(strategyId, sinceDt, untilDt)
        seconds = _positive_limit(bucketSeconds, "bucketSeconds")
        panels = self.panels
        plans = panels.plans(scope, seconds)
        if codeStats:
            series, hourly = panels.codes_hour_stats(scope, seconds)
            code_slots = {"key": "t1", "n": "i1", "n2": "i2", "top": "i3"}
        else:
            series, hourly = panels.codes_series(scope, seconds, floor=codeFloor)
            code_slots = {"bucket": "i1", "key": "t1", "n": "i2"}
        plans = {**plans, "h": hourly}
        key = ("insights", self.use_rollups, seconds, codeFloor, codeStats, scope.shape(),
               *(plan_shape(plan) for plan in plans.values()))  # fmt: skip
        cached = _OVERVIEW_STATEMENTS.get(key)
        if cached is None:
            blob = {"blob": "b1", "bin": "i1", "n": "i2"}
            parts = {
                **{f"bins_{kind}": (panels.bins(scope, kind), blob) for kind in VALUE_KINDS},
                "codes": (series, code_slots),
                "status": (panels.status_nodes(scope), {
                    "status": "t1", "n": "i1", "nodes_min": "i2", "nodes_max": "i3"}),
                "series": (panels.series(scope, seconds), {"bucket": "i1", "status": "t1",
                                                           "n": "i2"}),
            }  # fmt: skip
            cached = _OVERVIEW_STATEMENTS.put(key, (parts, gather(parts)))
        parts, statement = cached
        async with self._snapshot() as conn:
            result = await conn.execute(statement, scope_values(scope, plans))
            rows = split(result.all(), parts)
        bins = {}
        for kind in VALUE_KINDS:
            found = rows[f"bins_{kind}"]
            bins[kind] = merge_arrays(
                [r["blob"] for r in found if r["blob"] is not None],
                [(int(r["bin"]), int(r["n"])) for r in found if r["blob"] is None],
            )
        codes: dict[str, Any] = {}
        for r in rows["codes"]:
            if codeStats:
                codes[r["key"]] = (int(r["n"]), int(r["n2"]), int(r["top"]))
            else:
                codes.setdefault(r["key"], {})[int(r["bucket"])] = int(r["n"])
        status = {
            r["status"]: (int(r["n"]), _int(r["nodes_min"]), _int(r["nodes_max"]))
            for r in rows["status"]
            if r["n"]
        }
        hours: dict[int, int] = {}
        failing: dict[int, int] = {}
        for r in rows["series"]:
            start, n = int(r["bucket"]), int(r["n"])
            hours[start] = hours.get(start, 0) + n
            if r["status"] != "ok":
                failing[start] = failing.get(start, 0) + n
        return {"bins": bins, "codes": codes, "status": status, "hours": hours, "failing": failing}

    async def code_hours(
        self,
        *,
        strategyId: str,
        sinceDt: datetime,
        untilDt: datetime,
        codes: Sequence[str],
        bucketSeconds: int = 3600,
    ) -> dict[str, dict[int, int]]:
        """``{errorCode: {bucket start (epoch s): runs}}`` of the given codes (at most 100) in
        the window, every bucket with a run of the code."""
        if not codes:
            return {}
        if len(codes) > 100:
            raise ValueError(f"at most 100 codes, got {len(codes)}")
        scope = self._scope(strategyId, sinceDt, untilDt)
        stmt, plan = self.panels.codes_series(
            scope, _positive_limit(bucketSeconds, "bucketSeconds"), codes=list(codes)
        )
        values = {**scope.values(), **bind_plan(plan, "h")[1]}
        out: dict[str, dict[int, int]] = {}
        for bucket, code, n in await self._rows(stmt, values):
            out.setdefault(code, {})[int(bucket)] = int(n)
        return out

    async def payload_sample(
        self,
        *,
        strategyId: str,
        slices: Sequence[tuple[datetime, datetime, int]],
        failing: bool,
    ) -> list[tuple[str, Any]]:
        """``(status, inputPayload)`` of the first ``n`` runs of each ``(since, until, n)``
        slice, in one statement: the failing runs (status not ok) or the ok runs. The failing
        runs are read from their partial index (``ix_strategy_execution_log_failed``), the ok
        runs from the covering index; only the rows taken are read from the table. At most
        ``PAYLOAD_SLICES_MAX`` slices."""
        if not slices:
            return []
        if len(slices) > PAYLOAD_SLICES_MAX:
            raise ValueError(f"at most {PAYLOAD_SLICES_MAX} slices, got {len(slices)}")
        self._terms(strategyId, None, None)  # validates the strategy id
        values: dict[str, Any] = {"sid": strategyId}
        for i, (lo, hi, n) in enumerate(slices):
            window = Window.of(lo, hi)
            values.update({f"lo{i}": window.since, f"hi{i}": window.until,
                           f"n{i}": _positive_limit(n, "n")})  # fmt: skip
        key = ("payload", self.model, failing, len(slices))
        stmt = _OVERVIEW_STATEMENTS.get(key)
        if stmt is None:
            stmt = _OVERVIEW_STATEMENTS.put(key, self._payload_statement(failing, len(slices)))
        async with self._snapshot() as conn:
            result = await conn.execute(stmt, values)
            return [(str(status), payload) for status, payload in result.all()]

    def _payload_statement(self, failing: bool, count: int) -> Any:
        """The sample's statement for ``count`` slices (binds ``sid``, ``lo<i>``, ``hi<i>``,
        ``n<i>``): built once per shape."""
        m = self.model
        # Written as the partial index's predicate, so that PostgreSQL and SQLite both use it.
        status = m.status != "ok" if failing else m.status == "ok"
        sid = bindparam("sid", type_=String())
        parts = []
        for i in range(count):
            lo = bindparam(f"lo{i}", type_=m.createdAt.type)
            hi = bindparam(f"hi{i}", type_=m.createdAt.type)
            parts.append(
                select(m.status.label("status"), m.inputPayload.label("payload"))
                .where(m.strategyId == sid, m.createdAt >= lo, m.createdAt < hi, status)
                .order_by(m.createdAt)
                .limit(bindparam(f"n{i}", type_=BigInteger()))
                .subquery(f"s{i}")
            )
        return union_all(*(select(p.c.status, p.c.payload) for p in parts))

    async def bins_by_bucket(
        self,
        *,
        strategyId: str,
        sinceDt: datetime,
        untilDt: datetime,
        bucketSeconds: int,
        kind: str = "duration",
        strategyVersion: str | None = None,
    ) -> dict[int, tuple[Any, Any]]:
        """The log histogram of ``kind`` per epoch-aligned bucket: {bucket start (epoch s):
        (sorted distinct bins, counts) as numpy arrays}, buckets without a value left out.
        Whole hours come from the hourly rollups (buckets of an hour or more), the rest from
        the audit rows."""
        value_column(kind)
        scope = self._scope(strategyId, sinceDt, untilDt, strategyVersion)
        seconds = _positive_limit(bucketSeconds, "bucketSeconds")
        stmt, plan = self.panels.bins_series(scope, kind, seconds)
        values = {**scope.values(), **bind_plan(plan, "h")[1]}
        blobs: dict[int, list[bytes]] = {}
        counted: dict[int, list[tuple[int, int]]] = {}
        for bucket, blob, bin_, n in await self._rows(stmt, values):
            if blob is not None:
                blobs.setdefault(int(bucket), []).append(blob)
            else:
                counted.setdefault(int(bucket), []).append((int(bin_), int(n)))
        return {
            bucket: merge_arrays(blobs.get(bucket, ()), counted.get(bucket, ()))
            for bucket in sorted({*blobs, *counted})
        }

    async def first_seen(
        self, *, strategyId: str, versions: Iterable[str | None] | None = None
    ) -> dict[str | None, datetime]:
        """When each version of the strategy ran first, at any time (``None``: runs without a
        version); ``versions`` limits the answer to those.

        The finest status rollup says which 10-minute bucket holds a version's first run; the
        audit rows in that bucket say when exactly. Where retention has removed those rows the
        bucket's start stands.
        """
        if not isinstance(strategyId, str):
            raise TypeError(f"strategyId must be a string, got {type(strategyId).__name__}")
        wanted = None if versions is None else set(versions)
        async with self._snapshot() as conn:
            above = (await conn.execute(select(watermark()))).scalar_one()
            stmt = self.panels.first_buckets(strategyId, int(above or 0))
            rows = (await conn.execute(stmt)).all()
            firsts: dict[str | None, int] = {}
            for ver, vnull, first in rows:
                version = None if vnull else ver
                if first is not None and (wanted is None or version in wanted):
                    firsts[version] = int(first)
            if not firsts:
                return {}
            grain = STATUS_GRAINS[0]
            buckets = [(v, first - first % grain) for v, first in firsts.items()]
            exact: dict[str | None, datetime] = {}
            for start in range(0, len(buckets), 100):  # bounded statements
                chunk = buckets[start : start + 100]
                stmt = self.panels.first_in_bucket(strategyId, chunk)
                for i, at in (await conn.execute(stmt)).all():
                    found = as_utc(_parse_dt(at))
                    if found is not None:
                        exact[chunk[int(i)][0]] = found
        return {
            v: exact.get(v, datetime.fromtimestamp(first - first % grain, UTC))
            for v, first in sorted(firsts.items(), key=lambda kv: kv[1])
        }

    def _window_rows(self, scope: Scope, seconds: int) -> Any:
        """Every run of the window when the count allows, then the count:
        ``(part, bucket, status, errorCode, caseName, durationMs, nodes, points, n)``."""
        m = self.model
        terms, counted, allowed = self._counted(scope)
        runs = select(
            literal(_RUN_PART), epoch_bucket(m.createdAt, literal_column(str(seconds))),
            m.status, m.errorCode, m.caseName, m.durationMs, m.nodes, m.points,
            typed_null(BigInteger()),
        ).where(*terms, allowed)  # fmt: skip
        types: list[Any] = [BigInteger(), String(), String(), String(), Double(), BigInteger()]
        total = select(
            literal(_COUNT_PART), *(typed_null(t) for t in types), typed_null(Double()), counted.c.n
        )
        return union_all(runs, total)

    def _grouped_window(self, scope: Scope, seconds: int) -> Any:
        """The window's figures grouped by the database, durations and points as arrays, when
        the count allows; then the count. Columns: part, bucket, key, n, the summary's sums,
        minima and maxima (``_SUMMARY_COLUMNS``), the durations and the points."""
        m = self.model
        terms, counted, allowed = self._counted(scope)
        number = func.count()
        columns: list[tuple[str, Any]] = [
            ("bucket", BigInteger()), ("key", String()), ("n", BigInteger()),
            *((name, kind) for name, kind, _ in _SUMMARY_COLUMNS),
            ("durations", ARRAY(Double())), ("points", ARRAY(Double())),
        ]  # fmt: skip

        def part(tag: int, **given: Any) -> Select[Any]:
            cells = [given[name] if name in given else typed_null(t) for name, t in columns]
            return select(literal(tag), *cells)

        bucket = epoch_bucket(m.createdAt, literal_column(str(seconds)))
        ok = m.status == "ok"
        summary = {name: cast(f(getattr(m, attr)), t) for name, t, (f, attr) in _SUMMARY_COLUMNS}
        parts = [
            part(_SERIES_PART, bucket=bucket, key=m.status, n=number)
            .where(*terms, allowed).group_by(bucket, m.status),
            part(_CODE_PART, key=m.errorCode, n=number)
            .where(*terms, allowed, m.errorCode.is_not(None)).group_by(m.errorCode),
            part(_CASE_PART, key=m.caseName, n=number)
            .where(*terms, allowed, ok).group_by(m.caseName),
            part(_SUMMARY_PART, n=number, **summary,
                 durations=func.array_agg(m.durationMs),
                 points=func.array_agg(m.points).filter(m.points.is_not(None)))
            .where(*terms, allowed),
            part(_COUNT_PART, n=counted.c.n),
        ]  # fmt: skip
        return union_all(*parts)

    def _counted(self, scope: Scope) -> tuple[list[ColumnElement[bool]], Any, Any]:
        """The window's terms, its count as a CTE, and the term "the count is within cap"."""
        terms = scope.raw_terms()
        counted = select(func.count().label("n")).where(*terms).cte("counted")
        cap = bindparam("cap", 0, type_=BigInteger())
        return terms, counted, select(counted.c.n).scalar_subquery() <= cap

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A Core connection for one statement (the session's, when bound elsewhere)."""
        bind = await self._engine()
        if bind is None:
            async with self.session_factory() as session:
                yield await session.connection()
            return
        async with bind.connect() as conn:
            yield conn

    def _overview_statement(self, scope: Scope, bucket: int, top: int) -> tuple[Any, Any]:
        """The parts and the gathered statement of :meth:`overview_rows` for one shape."""
        panels = self.panels
        series_slots = {"bucket": "i1", "status": "t1", "n": "i2"}
        top_slots = {"key": "t1", "count": "i2"}
        bin_slots = {"blob": "b1", "bin": "i1", "n": "i2"}
        parts = {
            "series": (panels.series(scope, bucket), series_slots),
            "summary": (panels.summary(scope), SUMMARY_SLOTS),
            "codes": (panels.top_codes(scope, top), top_slots),
            "cases": (panels.top_cases(scope, top, "ok"), top_slots),
            "duration_bins": (panels.bins(scope, "duration"), bin_slots),
            "points_bins": (panels.bins(scope, "points"), bin_slots),
        }
        return parts, gather(parts)

    async def _exact_ranks(
        self, conn: Any, scope: Scope, rows: dict[str, Any], quantiles: Sequence[float]
    ) -> None:
        """Fill ``<kind>_ranks`` ({rank: value}) and ``<kind>_n`` exactly, from the rows.

        The histograms locate each rank's bin; one statement counts the window's values below
        each bin, numbers the few inside it, and returns the value at each rank (one row per
        rank, whatever the window's size). The answer is checked: when the histogram and the
        rows disagree (a row deleted by hand, a value binned across an edge, so a rank's value
        is not where the histogram put it) or the bins hold too many values to number, the
        database sorts the window instead.
        """
        wanted: dict[str, list[tuple[int, tuple[float, float]]]] = {}
        for kind in ("duration", "points"):
            bins = rows[f"{kind}_bins"]
            n = sum(count for _, count in bins)
            rows[f"{kind}_n"] = n
            if n == 0:
                continue
            ranks = _ranks(quantiles, n)
            located = rank_ranges(bins, ranks)
            inside = {interval: count for interval, count in located}
            if sum(inside.values()) > MAX_RANK_VALUES:  # e.g. one value repeated
                rows[f"{kind}_ranks"] = await self._sorted_ranks(conn, scope, kind, ranks)
                continue
            wanted[kind] = [(r, interval) for r, (interval, _) in zip(ranks, located, strict=True)]
        if not wanted:
            return
        selects = self.panels.near_ranks(scope, wanted)
        parts: dict[str, Any] = {}
        for kind in wanted:
            parts[f"{kind}_n"] = (selects[f"{kind}_n"], {"n": "i1"})
            parts[f"{kind}_ranks"] = (selects[f"{kind}_ranks"], {"rank": "i1", "value": "f1"})
        got = split((await conn.execute(gather(parts))).all(), parts)
        for kind, pairs in wanted.items():
            n = int(got[f"{kind}_n"][0]["n"])
            found = {int(r["rank"]): float(r["value"]) for r in got[f"{kind}_ranks"]}
            if n != rows[f"{kind}_n"] or len(found) < len(pairs):  # the histogram disagrees
                found = await self._sorted_ranks(conn, scope, kind, _ranks(quantiles, n))
            rows[f"{kind}_n"] = n
            rows[f"{kind}_ranks"] = found

    async def _sorted_ranks(
        self, conn: Any, scope: Scope, kind: str, ranks: list[int]
    ) -> dict[int, float]:
        stmt = self.panels.order_statistics(scope, kind, ranks)
        return {int(r): float(v) for r, v in (await conn.execute(stmt)).all()}

    @asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[Any]:
        """A connection whose statements read one snapshot (one read transaction)."""
        bind = await self._engine()
        if bind is None:  # a factory bound elsewhere: its own session
            async with self.session_factory() as session:
                yield await session.connection()
            return
        async with one_read_transaction(bind) as sessions, sessions() as session:
            yield await session.connection()  # Core: no ORM context per statement


_RUN_PART, _SERIES_PART, _CODE_PART, _CASE_PART, _SUMMARY_PART, _COUNT_PART = range(6)
#: The summary's figures in a grouped window: (label, type, (aggregate, attribute)).
_SUMMARY_COLUMNS: tuple[tuple[str, Any, tuple[Any, str]], ...] = (
    ("sumDurationMs", Double(), (func.sum, "durationMs")),
    ("minDurationMs", Double(), (func.min, "durationMs")),
    ("maxDurationMs", Double(), (func.max, "durationMs")),
    ("sumNodes", BigInteger(), (func.sum, "nodes")),
    ("minNodes", BigInteger(), (func.min, "nodes")),
    ("maxNodes", BigInteger(), (func.max, "nodes")),
    ("sumPoints", Double(), (func.sum, "points")),
)


def _count_row(rows: Sequence[Any]) -> int:
    """The position of the count's row."""
    return next(i for i, r in enumerate(rows) if r[0] == _COUNT_PART)


@dataclass(frozen=True)
class WindowFigures:
    """A short window's Overview figures, exact, from its audit rows.

    ``series``: runs per (bucket start, status); ``codes``: runs per error code; ``cases``: ok
    runs per case (``None``: no rule matched); ``summary``: the input of :func:`summary_of`;
    ``durations`` and ``points`` (not null): every value of the window, sorted.
    """

    series: list[tuple[tuple[int, str], int]]
    codes: list[tuple[str, int]]
    cases: list[tuple[str | None, int]]
    summary: dict[str, Any]
    durations: np.ndarray
    points: np.ndarray

    @classmethod
    def of_groups(cls, rows: Sequence[Any]) -> WindowFigures:
        """From the rows of a grouped window (``_grouped_window``)."""
        parts: dict[int, list[Any]] = {}
        for row in rows:
            parts.setdefault(row[0], []).append(row)
        (summary,) = parts[_SUMMARY_PART]
        figures = {name: summary[4 + i] for i, (name, _, _) in enumerate(_SUMMARY_COLUMNS)}
        return cls(
            series=[((int(r[1]), r[2]), int(r[3])) for r in parts.get(_SERIES_PART, [])],
            codes=[(r[2], int(r[3])) for r in parts.get(_CODE_PART, [])],
            cases=[(r[2], int(r[3])) for r in parts.get(_CASE_PART, [])],
            summary={"count": int(summary[3]), **figures},
            durations=np.sort(np.asarray(summary[-2] or (), dtype=float)),
            points=np.sort(np.asarray(summary[-1] or (), dtype=float)),
        )

    @classmethod
    def of_rows(cls, runs: Sequence[Any]) -> WindowFigures:
        """From every run of the window (``_window_rows``), counted in C."""
        cases = Counter(map(itemgetter(2, 4), runs))
        codes = Counter(map(itemgetter(3), runs))
        codes.pop(None, None)
        durations = np.fromiter(map(itemgetter(5), runs), dtype=float, count=len(runs))
        nodes = list(map(itemgetter(6), runs))
        points = np.fromiter(filter(partial(is_not, None), map(itemgetter(7), runs)), float)
        durations.sort()
        points.sort()
        return cls(
            series=list(Counter(map(itemgetter(1, 2), runs)).items()),
            codes=list(codes.items()),
            cases=[(case, n) for (status, case), n in cases.items() if status == "ok"],
            summary={
                "count": len(runs),
                "sumDurationMs": math.fsum(durations.tolist()) if runs else None,
                "minDurationMs": float(durations[0]) if runs else None,
                "maxDurationMs": float(durations[-1]) if runs else None,
                "sumNodes": sum(nodes) if runs else None,
                "minNodes": min(nodes, default=None),
                "maxNodes": max(nodes, default=None),
                "sumPoints": math.fsum(points.tolist()) if len(points) else None,
            },
            durations=durations,
            points=points,
        )


#: At most this many values (the bins' counts) are numbered to find the exact ranks; past it the
#: database sorts the window.
MAX_RANK_VALUES = 20_000


def _ranks(quantiles: Sequence[float], n: int) -> list[int]:
    """The 0-based ranks numpy's interpolation reads for each quantile of ``n`` values."""
    return sorted({f(q * (n - 1)) for q in quantiles for f in (math.floor, math.ceil)})


class _Statements:
    """A small LRU of built statements by shape (shapes are few: presets, alignments)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.items: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> Any:
        self.items[key] = value
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return value


_OVERVIEW_STATEMENTS = _Statements()

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
