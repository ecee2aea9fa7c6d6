"""The SELECT behind each panel: rollup rows keyed by what the panel shows, plus raw rows.

One builder per panel, used by the repository's seed methods (one statement each) and by the
Overview, which sends all of them as one statement (:func:`gather`): one round trip and one
snapshot, whatever the window. Each builder plans the window against the grains of the rollup
table it reads (:mod:`stratlog.rollups.plan`): whole buckets from the rollups, the partial
buckets at the edges and every row above the rollup watermark from the audit rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Double,
    Integer,
    LargeBinary,
    Select,
    String,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import aliased

from stratlog.dialect import binary_order, epoch_bucket
from stratlog.model.rollup import BinsRollup, CaseRollup, CodeRollup, StatusRollup
from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.rollups.plan import (
    DETAIL_GRAINS,
    STATUS_GRAINS,
    RollupPart,
    WindowPlan,
    bind_plan,
    epoch_floor,
    from_epoch,
    plan_buckets,
    plan_window,
    union_source,
)
from stratlog.sketch import bin_sql
from stratlog.timewindow import Window

L, S, C, K, B = StrategyExecutionLog, StatusRollup, CodeRollup, CaseRollup, BinsRollup
ONE: ColumnElement[int] = literal_column("1")
VALUE_KINDS = {"duration": 0, "points": 1, "nodes": 2}
#: The status rollup's figures by label: (status rollup column, raw expression).
FIGURES: dict[str, tuple[Any, Any]] = {
    "n": (S.n, ONE),
    "dur_sum": (S.durSum, L.durationMs),
    "dur_min": (S.durMin, L.durationMs),
    "dur_max": (S.durMax, L.durationMs),
    "nodes_sum": (S.nodesSum, L.nodes),
    "nodes_min": (S.nodesMin, L.nodes),
    "nodes_max": (S.nodesMax, L.nodes),
    "points_sum": (S.pointsSum, L.points),
    "points_n": (S.pointsN, case((L.points.is_(None), 0), else_=1)),
}


def typed_null(type_: Any) -> ColumnElement[Any]:
    """A NULL of a type (a bare NULL in a UNION leaves PostgreSQL guessing)."""
    return cast(null(), type_)


@dataclass(frozen=True)
class Scope:
    """One strategy (or every one), a half-open window and, optionally, one version."""

    strategyId: str | None
    window: Window
    #: Only the runs of this ``strategyVersion`` (``None``: every run, with or without one).
    version: str | None = None

    @classmethod
    def of(
        cls,
        strategyId: str | None,
        since: datetime | None,
        until: datetime | None,
        version: str | None = None,
    ) -> Scope:
        """Validated: a string strategy id and version, a well-formed window."""
        if strategyId is not None and not isinstance(strategyId, str):
            raise TypeError(f"strategyId must be a string, got {type(strategyId).__name__}")
        if version is not None and not isinstance(version, str):
            raise TypeError(f"strategyVersion must be a string, got {type(version).__name__}")
        return cls(strategyId, Window.of(since, until), version)

    def raw_terms(self) -> list[ColumnElement[bool]]:
        """WHERE terms over the audit rows: this strategy, this window (named parameters)."""
        terms: list[ColumnElement[bool]] = []
        if self.strategyId is not None:
            terms.append(L.strategyId == self.strategy_bind())
        stamp = L.createdAt.type
        if self.window.since is not None:
            terms.append(L.createdAt >= bindparam("w_since", self.window.since, type_=stamp))
        if self.window.until is not None:
            terms.append(L.createdAt < bindparam("w_until", self.window.until, type_=stamp))
        return terms + self.version_terms()

    def version_terms(self) -> list[ColumnElement[bool]]:
        """The version term over the audit rows (none without a version)."""
        if self.version is None:
            return []
        return [L.strategyVersion == bindparam("ver", self.version, type_=String())]

    def rollup_parts(self, parts: Sequence[RollupPart]) -> list[RollupPart]:
        """``parts`` with the version term over their rollup table: the rollups key a version
        as (``version``, ``version_null``), the text and whether it was NULL."""
        if self.version is None:
            return list(parts)
        ver = bindparam("ver", self.version, type_=String())
        return [
            dataclasses.replace(
                part, where=[*part.where, part.model.version == ver, part.model.versionNull == 0]
            )
            for part in parts
        ]

    def strategy_bind(self) -> Any:
        """The strategy id as the named parameter ``sid``."""
        return bindparam("sid", self.strategyId, type_=String())

    def values(self) -> dict[str, Any]:
        """The named parameters of :meth:`raw_terms` and :meth:`strategy_bind`."""
        values: dict[str, Any] = {"sid": self.strategyId}
        values.update(w_since=self.window.since, w_until=self.window.until)
        if self.version is not None:
            values["ver"] = self.version
        return values

    def shape(self) -> tuple[bool, bool, bool, bool]:
        """Which of strategy, since, until and version are open (the SQL depends on it)."""
        return (
            self.strategyId is None,
            self.window.since is None,
            self.window.until is None,
            self.version is None,
        )


class Panels:
    """Builders of each panel's SELECT; ``use_rollups=False`` reads the audit rows only."""

    def __init__(self, use_rollups: bool = True) -> None:
        self.use_rollups = use_rollups

    # -- status rollup: counts, summary, timeseries, strategies ----------------------------

    def status_counts(self, scope: Scope) -> Select[Any]:
        """(status, count) of the runs in the window."""
        src = self._status_source(scope, {"status": (S.status, L.status), "n": (S.n, ONE)})
        return select(src.c.status, func.sum(src.c.n).label("count")).group_by(src.c.status)

    def summary(self, scope: Scope) -> Select[Any]:
        """One row: count, sum / min / max of durations and nodes, sum of points."""
        c = self._status_source(scope, FIGURES).c
        return select(
            func.coalesce(func.sum(c.n), 0).label("count"),
            func.sum(c.dur_sum).label("sumDurationMs"),
            func.min(c.dur_min).label("minDurationMs"),
            func.max(c.dur_max).label("maxDurationMs"),
            func.sum(c.nodes_sum).label("sumNodes"),
            func.min(c.nodes_min).label("minNodes"),
            func.max(c.nodes_max).label("maxNodes"),
            func.sum(c.points_sum).label("sumPoints"),
        )

    def series(self, scope: Scope, bucket: int) -> Select[Any]:
        """(bucket, status, n) per epoch-aligned bucket and status, by bucket then status.

        The bucket size is inlined as a validated integer literal: PostgreSQL only accepts the
        SELECT expression under GROUP BY when both carry the very same text.
        """
        n: ColumnElement[int] = literal_column(str(int(bucket)))
        columns = {
            "bucket": (epoch_floor(S.bucketEpoch, n), epoch_bucket(L.createdAt, n)),
            "status": (S.status, L.status),
            "n": FIGURES["n"],
        }
        src = self._status_source(scope, columns, bucket=bucket)
        return (
            select(src.c.bucket, src.c.status, func.sum(src.c.n).label("n"))
            .group_by(src.c.bucket, src.c.status)
            .order_by(src.c.bucket, binary_order(src.c.status))
        )

    def strategies(self) -> Select[Any]:
        """(strategyId, count, last createdAt) of every strategy, by strategyId."""
        columns = {
            "sid": (S.strategyId, L.strategyId),
            "last": (S.createdMax, L.createdAt),
            "n": (S.n, ONE),
        }
        src = self._status_source(Scope(None, Window(None, None)), columns)
        return (
            select(src.c.sid, func.sum(src.c.n).label("count"), func.max(src.c.last).label("last"))
            .group_by(src.c.sid)
            .order_by(binary_order(src.c.sid))
        )

    def plans(self, scope: Scope, bucket: int | None = None) -> dict[str, WindowPlan]:
        """The plans the builders read a scope with, by bind prefix: ``s`` (status rollup),
        ``d`` (detail rollups) and, with a bucket size, ``b`` (the bucketed status read)."""
        plans = {
            "s": plan_window(scope.window, STATUS_GRAINS, self.use_rollups),
            "d": plan_window(scope.window, DETAIL_GRAINS, self.use_rollups),
        }
        if bucket is not None:
            plans["b"] = plan_buckets(scope.window, bucket, STATUS_GRAINS, self.use_rollups)
        return plans

    def _status_source(
        self, scope: Scope, columns: Mapping[str, tuple[Any, Any]], *, bucket: int | None = None
    ) -> Any:
        prefix = "s" if bucket is None else "b"
        plan, _ = bind_plan(self.plans(scope, bucket)[prefix], prefix)
        parts = scope.rollup_parts(
            [RollupPart(S, {name: rollup for name, (rollup, _) in columns.items()})]
        )
        raw = {name: expr for name, (_, expr) in columns.items()}
        return union_source(
            plan, raw, parts, strategy_id=_sid(scope), raw_where=scope.version_terms()
        )

    # -- detail rollups: error codes, rule cases -------------------------------------------

    def top_codes(self, scope: Scope, limit: int) -> Select[Any]:
        """(errorCode, count): the ``limit`` most frequent codes, ties by code; no nulls."""
        part = RollupPart(C, {"key": C.errorCode, "n": C.n})
        src = self._detail_source(scope, {"key": L.errorCode, "n": ONE}, [part])
        count = func.sum(src.c.n).label("count")
        return (
            select(src.c.key, count)
            .where(src.c.key.is_not(None))
            .group_by(src.c.key)
            .order_by(count.desc(), binary_order(src.c.key))
            .limit(limit)
        )

    def top_cases(self, scope: Scope, limit: int, status: str | None = None) -> Select[Any]:
        """(caseName, count): the ``limit`` most frequent cases, ``None`` (no case) counted too.

        Cases come from the case rollup, the ``None`` bucket from the status rollup's
        ``no_case_n``: both over the same plan, so the same buckets.
        """
        case_where = [K.status == status] if status is not None else []
        status_where = [S.status == status] if status is not None else []
        parts = [
            RollupPart(K, {"key": K.caseName, "n": K.n}, case_where),
            RollupPart(
                S, {"key": typed_null(String), "n": S.noCaseN}, [*status_where, S.noCaseN > 0]
            ),
        ]
        raw_where = [L.status == status] if status is not None else []
        src = self._detail_source(scope, {"key": L.caseName, "n": ONE}, parts, raw_where)
        count = func.sum(src.c.n).label("count")
        return (
            select(src.c.key, count)
            .group_by(src.c.key)
            .order_by(count.desc(), src.c.key.is_(None), binary_order(src.c.key))
            .limit(limit)
        )

    def bins(self, scope: Scope, kind: str) -> Select[Any]:
        """Rows of (packed histogram, NULL, n) from the rollups and (NULL, bin, count) raw."""
        column, code = value_column(kind)
        part = RollupPart(
            B, {"blob": B.bins, "bin": typed_null(Integer), "n": B.n}, [B.kind == code]
        )
        raw = {"blob": typed_null(LargeBinary), "bin": bin_sql(column), "n": ONE}
        src = self._detail_source(scope, raw, [part], [column.is_not(None)])
        return histogram_rows(src, [], "bins")

    def bins_series(self, scope: Scope, kind: str, bucket: int) -> tuple[Select[Any], WindowPlan]:
        """Per epoch-aligned bucket: rows of (bucket, packed histogram, NULL, n) from the
        detail rollups and (bucket, NULL, bin, count) from the audit rows; and the plan (bind
        prefix ``h``). Buckets finer than the hourly rollups read the audit rows only."""
        column, code = value_column(kind)
        n: ColumnElement[int] = literal_column(str(int(bucket)))
        plan = plan_buckets(scope.window, bucket, DETAIL_GRAINS, self.use_rollups)
        bound, _ = bind_plan(plan, "h")
        part = RollupPart(
            B,
            {"bucket": epoch_floor(B.bucketEpoch, n), "blob": B.bins,
             "bin": typed_null(Integer), "n": B.n},
            [B.kind == code],
        )  # fmt: skip
        raw = {"bucket": epoch_bucket(L.createdAt, n), "blob": typed_null(LargeBinary),
               "bin": bin_sql(column), "n": ONE}  # fmt: skip
        src = union_source(
            bound, raw, scope.rollup_parts([part]), strategy_id=_sid(scope),
            raw_where=[column.is_not(None), *scope.version_terms()],
        )  # fmt: skip
        return histogram_rows(src, ["bucket"], "hbins"), plan

    def codes_series(
        self, scope: Scope, bucket: int, *, floor: int = 0, codes: Sequence[str] = ()
    ) -> tuple[Select[Any], WindowPlan]:
        """(bucket, key, n): runs per epoch-aligned bucket and error code (no nulls), and the
        plan (bind prefix ``h``). Buckets finer than the hourly rollups read the audit rows.
        ``floor`` keeps the buckets with at least that many runs of their code; ``codes``
        limits the read to those codes (bound as ``code0``, ``code1``...)."""
        n: ColumnElement[int] = literal_column(str(int(bucket)))
        plan = plan_buckets(scope.window, bucket, DETAIL_GRAINS, self.use_rollups)
        bound, _ = bind_plan(plan, "h")
        names = [bindparam(f"code{i}", code, type_=String()) for i, code in enumerate(codes)]
        part = RollupPart(
            C, {"bucket": epoch_floor(C.bucketEpoch, n), "key": C.errorCode, "n": C.n},
            [C.errorCode.in_(names)] if names else [],
        )  # fmt: skip
        raw = {"bucket": epoch_bucket(L.createdAt, n), "key": L.errorCode, "n": ONE}
        only = [L.errorCode.in_(names)] if names else [L.errorCode.is_not(None)]
        src = union_source(
            bound, raw, scope.rollup_parts([part]), strategy_id=_sid(scope),
            raw_where=[*only, *scope.version_terms()],
        )  # fmt: skip
        c = src.c
        total = func.sum(c.n)
        stmt = select(c.bucket, c.key, total.label("n")).group_by(c.bucket, c.key)
        if floor > 0:
            stmt = stmt.having(total >= literal_column(str(int(floor))))
        return stmt, plan

    def codes_hour_stats(self, scope: Scope, bucket: int) -> tuple[Select[Any], WindowPlan]:
        """(key, n, n2, top): per error code, the sum of its runs per bucket, of their squares
        and the busiest bucket's runs (what a baseline's hourly mean and spread need: the
        buckets without a run of the code count as 0 from the number of buckets)."""
        series, plan = self.codes_series(scope, bucket)
        h = series.subquery("per_bucket")
        stmt = select(
            h.c.key, func.sum(h.c.n).label("n"), func.sum(h.c.n * h.c.n).label("n2"),
            func.max(h.c.n).label("top"),
        ).group_by(h.c.key)  # fmt: skip
        return stmt, plan

    def status_nodes(self, scope: Scope) -> Select[Any]:
        """(status, n, nodes_min, nodes_max) of the runs in the window, per status."""
        columns = {
            "status": (S.status, L.status),
            "n": FIGURES["n"],
            "nodes_min": FIGURES["nodes_min"],
            "nodes_max": FIGURES["nodes_max"],
        }
        c = self._status_source(scope, columns).c
        return select(
            c.status, func.sum(c.n).label("n"), func.min(c.nodes_min).label("nodes_min"),
            func.max(c.nodes_max).label("nodes_max"),
        ).group_by(c.status)  # fmt: skip

    def _detail_source(
        self,
        scope: Scope,
        raw: Mapping[str, Any],
        parts: Sequence[RollupPart],
        raw_where: Sequence[ColumnElement[bool]] = (),
    ) -> Any:
        plan, _ = bind_plan(self.plans(scope)["d"], "d")
        return union_source(
            plan, raw, scope.rollup_parts(parts), strategy_id=_sid(scope),
            raw_where=[*raw_where, *scope.version_terms()],
        )  # fmt: skip

    # -- per version: the Versions panel -----------------------------------------------------

    def version_status(self, scope: Scope) -> Select[Any]:
        """(ver, vnull, status, n, dur_sum, points_sum, points_n, last) per version and status;
        ``last`` is the newest run's time in whole epoch seconds."""
        one: ColumnElement[int] = literal_column("1")
        columns = {
            **_version_columns(S),
            "status": (S.status, L.status),
            "n": FIGURES["n"],
            "dur_sum": FIGURES["dur_sum"],
            "points_sum": FIGURES["points_sum"],
            "points_n": FIGURES["points_n"],
            "last": (epoch_bucket(S.createdMax, one), epoch_bucket(L.createdAt, one)),
        }
        c = self._status_source(scope, columns).c
        return select(
            c.ver, c.vnull, c.status, func.sum(c.n).label("n"),
            func.sum(c.dur_sum).label("dur_sum"), func.sum(c.points_sum).label("points_sum"),
            func.sum(c.points_n).label("points_n"), func.max(c.last).label("last"),
        ).group_by(c.ver, c.vnull, c.status)  # fmt: skip

    def version_codes(self, scope: Scope) -> Select[Any]:
        """(ver, vnull, key, n): runs per version and error code."""
        part = RollupPart(C, {**_version_rollup(C), "key": C.errorCode, "n": C.n})
        src = self._detail_source(scope, {**_version_raw(), "key": L.errorCode, "n": ONE}, [part])
        c = src.c
        return (
            select(c.ver, c.vnull, c.key, func.sum(c.n).label("n"))
            .where(c.key.is_not(None))
            .group_by(c.ver, c.vnull, c.key)
        )

    def version_cases(self, scope: Scope) -> Select[Any]:
        """(ver, vnull, key, n): ok runs per version and rule case (``None``: no case)."""
        parts = [
            RollupPart(K, {**_version_rollup(K), "key": K.caseName, "n": K.n}, [K.status == "ok"]),
            RollupPart(
                S, {**_version_rollup(S), "key": typed_null(String), "n": S.noCaseN},
                [S.status == "ok", S.noCaseN > 0],
            ),
        ]  # fmt: skip
        raw = {**_version_raw(), "key": L.caseName, "n": ONE}
        c = self._detail_source(scope, raw, parts, [L.status == "ok"]).c
        return select(c.ver, c.vnull, c.key, func.sum(c.n).label("n")).group_by(
            c.ver, c.vnull, c.key
        )

    def version_bins(self, scope: Scope, kind: str) -> Select[Any]:
        """Per version: rows of (ver, vnull, packed histogram, NULL, n) from the rollups and
        (ver, vnull, NULL, bin, count) from the audit rows."""
        column, code = value_column(kind)
        blob_cols = {"blob": B.bins, "bin": typed_null(Integer), "n": B.n}
        part = RollupPart(B, {**_version_rollup(B), **blob_cols}, [B.kind == code])
        raw = {**_version_raw(), "blob": typed_null(LargeBinary), "bin": bin_sql(column), "n": ONE}
        src = self._detail_source(scope, raw, [part], [column.is_not(None)])
        return histogram_rows(src, ["ver", "vnull"], "vbins")

    def first_buckets(self, strategy_id: str, above_id: int | None = None) -> Select[Any]:
        """(ver, vnull, first): per version of a strategy, the start of the first finest-grain
        bucket holding one of its runs, or the first unfolded run's whole second.

        Every version, at any time: the status grains are kept for all time. The daily rows
        say which day a version ran first (one row per day), the 10-minute rows of that day
        which bucket, both from the rollup's primary key. ``above_id`` is the watermark, read
        before (a literal bound: the planner then sees how few rows lie above it).
        """
        sid = bindparam("sid", strategy_id, type_=String())
        one: ColumnElement[int] = literal_column("1")
        raw_ver = _version_raw()
        raw = select(
            raw_ver["ver"].label("ver"), raw_ver["vnull"].label("vnull"),
            func.min(epoch_bucket(L.createdAt, one)).label("first"),
        ).where(L.strategyId == sid)  # fmt: skip
        if not self.use_rollups:
            return raw.group_by(raw_ver["ver"], raw_ver["vnull"])
        day, fine = STATUS_GRAINS[-1], STATUS_GRAINS[0]
        days = (
            select(S.version.label("ver"), S.versionNull.label("vnull"),
                   func.min(S.bucketEpoch).label("day"))
            .where(S.strategyId == sid, S.grain == day)
            .group_by(S.version, S.versionNull)
            .subquery("first_days")
        )  # fmt: skip
        inner = aliased(S, name="fine")
        first_fine = (
            select(func.min(inner.bucketEpoch))
            .where(
                inner.strategyId == sid, inner.grain == fine,
                inner.bucketEpoch >= days.c.day, inner.bucketEpoch < days.c.day + day,
                inner.version == days.c.ver, inner.versionNull == days.c.vnull,
            )
            .scalar_subquery()
        )  # fmt: skip
        rolled = select(days.c.ver, days.c.vnull, first_fine.label("first"))
        above = bindparam("above", above_id or 0, type_=BigInteger())
        fresh = raw.where(L.id > above).group_by(raw_ver["ver"], raw_ver["vnull"])
        u = union_all(rolled, fresh).subquery("firsts")
        return select(u.c.ver, u.c.vnull, func.min(u.c.first).label("first")).group_by(
            u.c.ver, u.c.vnull
        )

    def first_in_bucket(
        self, strategy_id: str, buckets: Sequence[tuple[str | None, int]]
    ) -> Select[Any]:
        """(i, first) per (version, bucket start): the first run of that version of the strategy
        in that finest-grain bucket, as a timestamp; ``i`` is the position in ``buckets``."""
        grain = STATUS_GRAINS[0]
        selects = []
        for i, (version, start) in enumerate(buckets):
            ver = (
                L.strategyVersion.is_(None)
                if version is None
                else L.strategyVersion == bindparam(f"fv{i}", version, type_=String())
            )
            stamp = L.createdAt.type
            terms = [
                L.createdAt >= bindparam(f"flo{i}", from_epoch(start), type_=stamp),
                L.createdAt < bindparam(f"fhi{i}", from_epoch(start + grain), type_=stamp),
            ]
            selects.append(
                select(
                    literal(i, BigInteger()).label("i"), func.min(L.createdAt).label("first")
                ).where(L.strategyId == bindparam("sid", strategy_id, type_=String()), *terms, ver)
            )
        return union_all(*selects)  # type: ignore[return-value]

    # -- raw only: order statistics ----------------------------------------------------------

    def order_statistics(self, scope: Scope, kind: str, ranks: Sequence[int]) -> Select[Any]:
        """(rank, value) at 0-based ranks of the window's sorted values (nulls left out)."""
        column, _ = value_column(kind)
        rank = (func.row_number().over(order_by=column) - 1).label("rank")
        inner = (
            select(column.label("value"), rank)
            .where(*scope.raw_terms(), column.is_not(None))
            .subquery()
        )
        wanted = inner.c.rank.in_(sorted({int(r) for r in ranks}))
        return select(inner.c.rank, inner.c.value).where(wanted)

    def near_ranks(
        self, scope: Scope, wanted: Mapping[str, Sequence[tuple[int, tuple[float, float]]]]
    ) -> dict[str, Select[Any]]:
        """For each kind: the value at each wanted 0-based rank, looked for inside a closed
        value range that should hold it, and how many values there are.

        ``wanted`` maps a kind to (rank, (low, high)) pairs. The window's values are read once
        (a CTE referenced several times, which SQLite 3.35+ and PostgreSQL 12+ materialise).
        For each distinct range the database counts the values below it, numbers the values
        inside it in order, and returns only the ones whose rank (count below + position) is
        wanted: tags ``<kind>_n`` (one row: ``n``) and ``<kind>_ranks`` (``rank``, ``value``;
        no row for a rank whose value is not inside its range).
        """
        columns = {kind: value_column(kind)[0].label(kind) for kind in wanted}
        window = select(*columns.values()).where(*scope.raw_terms()).cte("window_values")
        parts: dict[str, Select[Any]] = {}
        for kind, pairs in wanted.items():
            value = window.c[kind]
            ranges: dict[tuple[float, float], list[int]] = {}
            for rank, interval in pairs:
                ranges.setdefault(interval, []).append(int(rank))
            below = [
                func.coalesce(func.sum(case((value < low, 1), else_=0)), 0).label(f"below{i}")
                for i, (low, _) in enumerate(ranges)
            ]
            counts = (
                select(func.count().label("n"), *below)
                .where(value.is_not(None))
                .cte(f"{kind}_counts")
            )
            parts[f"{kind}_n"] = select(counts.c.n)
            picks = []
            for i, ((low, high), ranks) in enumerate(ranges.items()):
                position = func.row_number().over(order_by=value) - 1
                inside = (
                    select(value.label("value"), (position + counts.c[f"below{i}"]).label("rank"))
                    .select_from(window)
                    .join(counts, true())
                    .where(value >= low, value <= high)
                    .subquery(f"{kind}_inside{i}")
                )
                picks.append(
                    select(inside.c.rank, inside.c.value).where(inside.c.rank.in_(sorted(ranks)))
                )
            parts[f"{kind}_ranks"] = union_all(*picks).subquery(f"{kind}_picked").select()
        return parts


def histogram_rows(src: Any, keys: Sequence[str], name: str) -> Select[Any]:
    """A histogram source's rows per ``keys``: each rollup row's packed histogram as it is
    (``*keys``, blob, NULL, n), the audit rows counted per bin (``*keys``, NULL, bin, count)."""
    c = src.c
    by = [c[k] for k in keys]
    blobs = select(*by, c.blob, c.bin, c.n).where(c.blob.is_not(None))
    counted = (
        select(*by, typed_null(LargeBinary).label("blob"), c.bin, func.sum(c.n).label("n"))
        .where(c.blob.is_(None))
        .group_by(*by, c.bin)
    )
    u = union_all(blobs, counted).subquery(name)
    return select(*(u.c[k] for k in keys), u.c.blob, u.c.bin, u.c.n)


def _version_rollup(model: Any) -> dict[str, Any]:
    """A rollup table's version key by label: ``ver`` (text, ``''`` for none), ``vnull``."""
    return {"ver": model.version, "vnull": model.versionNull}


def _version_raw() -> dict[str, Any]:
    """The audit rows' version keyed as the rollups key it."""
    return {
        "ver": func.coalesce(L.strategyVersion, literal("")),
        "vnull": case((L.strategyVersion.is_(None), 1), else_=0),
    }


def _version_columns(model: Any) -> dict[str, tuple[Any, Any]]:
    """(rollup column, raw expression) of the version key, for the status source."""
    rollup, raw = _version_rollup(model), _version_raw()
    return {name: (rollup[name], raw[name]) for name in rollup}


def _sid(scope: Scope) -> Any:
    return None if scope.strategyId is None else scope.strategy_bind()


def scope_values(scope: Scope, plans: Mapping[str, WindowPlan]) -> dict[str, Any]:
    """Every named parameter of a statement built for ``scope`` with ``plans``."""
    values = scope.values()
    for prefix, plan in plans.items():
        values.update(bind_plan(plan, prefix)[1])
    return values


def value_column(kind: str) -> tuple[Any, int]:
    """The audit column and histogram kind code of ``duration``, ``points`` or ``nodes``."""
    if kind not in VALUE_KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(VALUE_KINDS)}")
    column = {"duration": L.durationMs, "points": L.points, "nodes": L.nodes}[kind]
    return column, VALUE_KINDS[kind]


#: Columns of :func:`gather`'s single statement: every part's labels map onto these slots.
SLOTS: tuple[tuple[str, Any], ...] = (
    ("t1", String()), ("t2", String()),
    ("i1", BigInteger()), ("i2", BigInteger()), ("i3", BigInteger()), ("i4", BigInteger()),
    ("i5", BigInteger()), ("i6", BigInteger()), ("i7", BigInteger()),
    ("f1", Double()), ("f2", Double()), ("f3", Double()), ("f4", Double()),
    ("b1", LargeBinary()),
)  # fmt: skip


def gather(parts: Mapping[str, tuple[Select[Any], Mapping[str, str]]]) -> Select[Any]:
    """One ``UNION ALL`` statement of several panels' SELECTs, each row tagged with its panel.

    ``parts`` maps a tag to (select, {label: slot}); the rows come back as
    ``(tag, t1, t2, i1, ..., b1)`` with each label in its slot (see :func:`split`). One statement
    is one snapshot on every backend and isolation level, and one round trip.
    """
    selects = []
    types = dict(SLOTS)
    for index, (tag, (stmt, slots)) in enumerate(parts.items()):
        sub = stmt.subquery(f"p{index}")
        by_slot = {slot: label for label, slot in slots.items()}
        columns = [literal(tag, String()).label("tag")]
        for slot, type_ in SLOTS:
            label = by_slot.get(slot)
            expr = cast(sub.c[label], types[slot]) if label is not None else typed_null(type_)
            columns.append(expr.label(slot))
        selects.append(select(*columns))
    return union_all(*selects)  # type: ignore[return-value]


def split(
    rows: Sequence[Any], parts: Mapping[str, tuple[Select[Any], Mapping[str, str]]]
) -> dict[str, list[dict[str, Any]]]:
    """:func:`gather`'s rows back as ``{tag: [{label: value}, ...]}``."""
    position = {slot: i + 1 for i, (slot, _) in enumerate(SLOTS)}
    picks = {tag: [(label, position[slot]) for label, slot in slots.items()]
             for tag, (_, slots) in parts.items()}  # fmt: skip
    labels = {tag: tuple(label for label, _ in pick) for tag, pick in picks.items()}
    getters = {tag: itemgetter(*(i for _, i in pick)) for tag, pick in picks.items()}
    out: dict[str, list[dict[str, Any]]] = {tag: [] for tag in parts}
    for row in rows:
        tag = row[0]
        got = getters[tag](row)
        names = labels[tag]
        out[tag].append(dict(zip(names, got if len(names) > 1 else (got,), strict=True)))
    return out
