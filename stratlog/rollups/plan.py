"""Window planning and the rollup-plus-raw row source behind every aggregation.

A window ``[since, until)`` is split into whole rollup buckets (answered from the rollup tables)
and raw edges (the partial buckets at either end, answered from the audit rows). Audit rows
newer than the rollup watermark are read raw in the whole-bucket part too. All parts are one
``UNION ALL`` with the same labelled columns, aggregated by one outer query: one statement, and
the same totals as the raw table, whatever the rollup job has or has not done yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Subquery,
    and_,
    bindparam,
    func,
    or_,
    select,
    union_all,
)

from stratlog.dialect import unindexed
from stratlog.model.rollup import RollupState
from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.timewindow import Window

#: Rollup bucket sizes in seconds, finest first. The status rollup (timeseries, headline figures)
#: keeps 10-minute, hourly and daily buckets: a 24-hour timeseries in 10-minute buckets reads
#: rollups, a 30-day window ~30 day rows plus the buckets at its ends. The detail rollups (error
#: codes, rule cases, histograms), which are several rows per bucket, keep hourly and daily ones.
DAY = 86_400
STATUS_GRAINS = (600, 3600, DAY)
DETAIL_GRAINS = (3600, DAY)
GRAINS = STATUS_GRAINS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ROLLUP_NAME = "default"
#: A bucketed read plans each requested bucket on its own (when no grain divides the bucket
#: size) up to this many buckets; beyond that only the grains that divide it are used.
MAX_PLANNED_BUCKETS = 5_000

Range = tuple[int | None, int | None]  # [lo, hi) in epoch seconds, None = open
Edge = tuple[datetime | None, datetime | None]  # [since, until) read from the audit rows


@dataclass(frozen=True)
class RollupPart:
    """One rollup table's contribution to a row source: its columns by label and filters."""

    model: Any
    columns: Mapping[str, Any]
    where: Sequence[ColumnElement[bool]] = ()


def epoch_us(at: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (no float rounding)."""
    return (at - EPOCH) // timedelta(microseconds=1)


def from_epoch(seconds: int) -> datetime:
    """Aware UTC datetime of epoch seconds."""
    return EPOCH + timedelta(seconds=seconds)


@dataclass(frozen=True)
class WindowPlan:
    """Which rollup buckets to read, which time they cover, and which time ranges are raw.

    ``rollups`` holds (grain, lo, hi) ranges of whole rollup buckets, ``covered`` the same time
    merged into disjoint ranges, ``edges`` the ranges read from the audit rows; together they
    tile the window exactly once.
    """

    rollups: tuple[tuple[int, Any, Any], ...]
    covered: tuple[tuple[Any, Any], ...]
    edges: tuple[tuple[Any, Any], ...]
    #: ``covered`` holds bind parameters of timestamps (see :func:`bind_plan`), not epochs.
    bound_covered: bool = False


def _ceil(at: datetime | None, grain: int) -> int | None:
    return None if at is None else -(-epoch_us(at) // (grain * 1_000_000)) * grain


def _floor(at: datetime | None, grain: int) -> int | None:
    return None if at is None else (epoch_us(at) // (grain * 1_000_000)) * grain


def _split(lo: int | None, hi: int | None, grains: Sequence[int]) -> list[tuple[int, Any, Any]]:
    """Cover ``[lo, hi)`` (multiples of the finest grain) with the coarsest buckets that fit."""
    fine, *coarser = grains
    if not coarser:
        return [(fine, lo, hi)]
    big = coarser[0]
    big_lo = None if lo is None else -(-lo // big) * big
    big_hi = None if hi is None else (hi // big) * big
    if big_lo is not None and big_hi is not None and big_lo >= big_hi:
        return [(fine, lo, hi)]
    parts = _split(big_lo, big_hi, coarser)
    if lo is not None and big_lo is not None and lo < big_lo:
        parts.append((fine, lo, big_lo))
    if hi is not None and big_hi is not None and big_hi < hi:
        parts.append((fine, big_hi, hi))
    return parts


def plan_window(window: Window, grains: Sequence[int] = GRAINS, rollups: bool = True) -> WindowPlan:
    """Split a window into rollup buckets (coarsest that fit) and raw edges."""
    since, until = window.since, window.until
    everything_raw = WindowPlan((), (), ((since, until),))
    if not rollups or not grains:
        return everything_raw
    grains = sorted(grains)
    lo, hi = _ceil(since, grains[0]), _floor(until, grains[0])
    if lo is not None and hi is not None and lo >= hi:
        return everything_raw
    edges = []
    if since is not None and lo is not None and since < from_epoch(lo):
        edges.append((since, from_epoch(lo)))
    if until is not None and hi is not None and from_epoch(hi) < until:
        edges.append((from_epoch(hi), until))
    return WindowPlan(tuple(_split(lo, hi, grains)), ((lo, hi),), tuple(edges))


def plan_buckets(
    window: Window, bucket: int, grains: Sequence[int] = GRAINS, rollups: bool = True
) -> WindowPlan:
    """Plan a read grouped into epoch-aligned ``bucket``-second buckets.

    A rollup bucket can stand in for its rows only if it lies inside one requested bucket. The
    grains that divide ``bucket`` always do, so the window is planned with those. When some
    finer grain does not divide it (e.g. 25,920-second buckets over 10-minute, hourly and daily
    rollups), each requested bucket is planned on its own, like a small window: the rollup
    buckets inside it are read from the rollups, the partial ones at its edges raw.
    """
    usable = sorted(g for g in grains if g <= bucket)
    dividing = [g for g in usable if bucket % g == 0]
    since, until = window.since, window.until
    if not rollups or not usable:
        return plan_window(window, (), rollups=False)
    if dividing == usable or since is None or until is None:
        return plan_window(window, dividing, rollups)
    first = epoch_us(since) // (bucket * 1_000_000)
    last = -(-epoch_us(until) // (bucket * 1_000_000))
    if since >= until:  # an empty window: one (empty) raw range, so the read still has a part
        return plan_window(window, (), rollups=False)
    if last - first > MAX_PLANNED_BUCKETS:
        return plan_window(window, dividing, rollups)
    parts: list[tuple[int, int | None, int | None]] = []
    edges: list[Edge] = []
    for k in range(first, last):
        sub = Window.of(
            max(since, from_epoch(k * bucket)), min(until, from_epoch((k + 1) * bucket))
        )
        plan = plan_window(sub, usable)
        parts += plan.rollups
        edges += plan.edges
    merged = []
    for grain in usable:
        merged += [
            (grain, lo, hi) for lo, hi in _merge([(lo, hi) for g, lo, hi in parts if g == grain])
        ]
    covered = _merge([(lo, hi) for _, lo, hi in parts])
    return WindowPlan(tuple(merged), tuple(covered), tuple(_merge(edges)))


def bind_plan(plan: WindowPlan, prefix: str) -> tuple[WindowPlan, dict[str, Any]]:
    """The plan with every bound a named bind parameter, and those parameters' values.

    A statement built from the bound plan has the same SQL for every window of the same shape
    (:func:`plan_shape`), so it can be built once and run with new values: building a big
    statement costs more Python time than the database spends on a short window.
    """
    values: dict[str, Any] = {}

    def bound(value: Any, kind: str, index: int, side: str, type_: Any) -> Any:
        if value is None:
            return None
        name = f"{prefix}_{kind}{index}_{side}"
        values[name] = value
        return bindparam(name, value, type_=type_)

    stamp = StrategyExecutionLog.createdAt.type
    rollups = tuple(
        (grain, bound(lo, "r", i, "lo", BigInteger()), bound(hi, "r", i, "hi", BigInteger()))
        for i, (grain, lo, hi) in enumerate(plan.rollups)
    )
    covered = tuple(
        (
            bound(None if lo is None else from_epoch(lo), "c", i, "lo", stamp),
            bound(None if hi is None else from_epoch(hi), "c", i, "hi", stamp),
        )
        for i, (lo, hi) in enumerate(plan.covered)
    )
    edges = tuple(
        (bound(a, "e", i, "lo", stamp), bound(b, "e", i, "hi", stamp))
        for i, (a, b) in enumerate(plan.edges)
    )
    return WindowPlan(rollups, covered, edges, bound_covered=True), values


def plan_shape(plan: WindowPlan) -> tuple[Any, ...]:
    """What the SQL of a plan depends on: grains and which bounds are open, not their values."""
    return (
        tuple((grain, lo is None, hi is None) for grain, lo, hi in plan.rollups),
        tuple((lo is None, hi is None) for lo, hi in plan.covered),
        tuple((a is None, b is None) for a, b in plan.edges),
    )


def _merge(ranges: Sequence[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Sort bounded ranges and join those that touch (one ends where the next begins)."""
    merged: list[tuple[Any, Any]] = []
    for lo, hi in sorted(ranges):
        if merged and merged[-1][1] == lo:
            merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def epoch_floor(epoch: Any, seconds: Any) -> ColumnElement[int]:
    """Start of the ``seconds`` bucket holding an integer epoch column (floor, also below 0)."""
    result: ColumnElement[int] = epoch - (((epoch % seconds) + seconds) % seconds)
    return result


#: More ids than any audit table hands out (the after-watermark read's upper bound).
ID_HORIZON = 10**15


def watermark() -> ColumnElement[int]:
    """The rollup watermark as a scalar subquery (0 before the first rollup run)."""
    return (
        select(func.coalesce(func.max(RollupState.watermark), 0))
        .where(RollupState.name == ROLLUP_NAME)
        .scalar_subquery()
    )


def _time_terms(column: Any, low: Any | None, high: Any | None) -> list[ColumnElement[bool]]:
    terms: list[ColumnElement[bool]] = []
    if low is not None:
        terms.append(column >= low)
    if high is not None:
        terms.append(column < high)
    return terms


def newest_id() -> ColumnElement[int]:
    """The largest audit row id, as a scalar subquery."""
    return select(func.coalesce(func.max(StrategyExecutionLog.id), 0)).scalar_subquery()


def union_source(
    plan: WindowPlan,
    raw_columns: Mapping[str, Any],
    parts: Sequence[RollupPart],
    *,
    strategy_id: str | None,
    raw_where: Sequence[ColumnElement[bool]] = (),
) -> Subquery:
    """``UNION ALL`` of rollup rows (whole buckets) and audit rows (edges, after watermark).

    Every part yields the same labels: ``raw_columns`` over the audit rows, each
    :class:`RollupPart`'s columns over its table (several tables may share a plan, e.g. the
    rule cases and the status rollup's "no case" counts).
    """
    raw = StrategyExecutionLog
    raw_cols = [expr.label(name) for name, expr in raw_columns.items()]
    selects: list[Select[Any]] = []
    by_grain: dict[int, list[Range]] = {}
    for grain, lo, hi in plan.rollups:
        by_grain.setdefault(grain, []).append((lo, hi))
    for part in parts:
        model = part.model
        cols = [part.columns[name].label(name) for name in raw_columns]
        where = list(part.where)
        if strategy_id is not None:
            where.append(model.strategyId == strategy_id)
        for grain, ranges in by_grain.items():
            spans = _any_range(model.bucketEpoch, ranges)
            selects.append(select(*cols).where(*where, model.grain == grain, *spans))
    if plan.covered:
        selects.append(select(*raw_cols).where(*raw_where, *_after_watermark(plan, strategy_id)))
    for since, until in plan.edges:
        edge = _time_terms(raw.createdAt, since, until)
        if strategy_id is not None:
            edge.append(raw.strategyId == strategy_id)
        selects.append(select(*raw_cols).where(*raw_where, *edge))
    if len(selects) == 1:
        return selects[0].subquery("src")
    return union_all(*selects).subquery("src")


def _any_range(column: Any, ranges: Sequence[tuple[Any, Any]]) -> list[ColumnElement[bool]]:
    """WHERE terms: ``column`` in one of the half-open ranges."""
    if len(ranges) == 1:
        return _time_terms(column, *ranges[0])
    # Several ranges are those of a bucketed plan: sorted, disjoint and bounded. The outer
    # bounds keep the read an index range; the OR picks the ranges inside it.
    bounds = _time_terms(column, ranges[0][0], ranges[-1][1])
    return [*bounds, or_(*[and_(*_time_terms(column, lo, hi)) for lo, hi in ranges])]


def _after_watermark(plan: WindowPlan, strategy_id: str | None) -> list[ColumnElement[bool]]:
    """Audit rows inside the whole buckets that the rollups do not hold yet, by id range."""
    raw = StrategyExecutionLog
    ranges = (
        list(plan.covered)
        if plan.bound_covered
        else [
            (None if lo is None else from_epoch(lo), None if hi is None else from_epoch(hi))
            for lo, hi in plan.covered
        ]
    )
    terms = _any_range(unindexed(raw.createdAt), ranges)
    if strategy_id is not None:
        terms.append(unindexed(raw.strategyId) == strategy_id)
    # Closed above so the planner estimates a narrow id range (an open "id > watermark" reads
    # as a third of the table). The bound is the watermark plus more ids than any table will
    # hand out (10^15: 2,700 years at 10^9 rows a day), not max(id): on a partitioned table
    # that subquery reads every partition's key, once per panel of the statement.
    mark = watermark()
    return [*terms, raw.id > mark, raw.id <= mark + ID_HORIZON]
