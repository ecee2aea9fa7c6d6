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

from sqlalchemy import ColumnElement, Select, Subquery, func, select, union_all

from stratlog.dialect import unindexed
from stratlog.model.rollup import RollupState
from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.timewindow import Window

#: Rollup bucket sizes in seconds, finest first. Aggregates keep 10-minute, hourly and daily
#: buckets (a 24-hour timeseries in 10-minute buckets reads rollups, a 30-day window ~30 day
#: rows plus the buckets at its ends); histogram bins, which are many rows per bucket, keep
#: hourly and daily ones.
DAY = 86_400
AGGREGATE_GRAINS = (600, 3600, DAY)
BIN_GRAINS = (3600, 86400)
GRAINS = AGGREGATE_GRAINS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ROLLUP_NAME = "default"

#: label -> (expression over the rollup model, expression over the audit rows)
Spec = Mapping[str, tuple[Any, Any]]


def epoch_us(at: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (no float rounding)."""
    return (at - EPOCH) // timedelta(microseconds=1)


def from_epoch(seconds: int) -> datetime:
    """Aware UTC datetime of epoch seconds."""
    return EPOCH + timedelta(seconds=seconds)


@dataclass(frozen=True)
class WindowPlan:
    """Which rollup buckets to read, which span they cover, and which time ranges are raw."""

    rollups: tuple[tuple[int, int | None, int | None], ...]  # (grain, lo, hi) in epoch seconds
    covered: tuple[int | None, int | None] | None  # [lo, hi) of all rollup ranges together
    edges: tuple[tuple[datetime | None, datetime | None], ...]


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
    everything_raw = WindowPlan((), None, ((since, until),))
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
    return WindowPlan(tuple(_split(lo, hi, grains)), (lo, hi), tuple(edges))


def epoch_floor(epoch: Any, seconds: Any) -> ColumnElement[int]:
    """Start of the ``seconds`` bucket holding an integer epoch column (floor, also below 0)."""
    result: ColumnElement[int] = epoch - (((epoch % seconds) + seconds) % seconds)
    return result


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
    spec: Spec,
    *,
    strategy_id: str | None,
    rollup_model: Any,
    rollup_where: Sequence[ColumnElement[bool]] = (),
    raw_where: Sequence[ColumnElement[bool]] = (),
) -> Subquery:
    """``UNION ALL`` of rollup rows (whole buckets) and audit rows (edges, after watermark)."""
    raw = StrategyExecutionLog
    rollup_cols = [expr.label(name) for name, (expr, _) in spec.items()]
    raw_cols = [expr.label(name) for name, (_, expr) in spec.items()]
    parts: list[Select[Any]] = []
    if strategy_id is not None:
        rollup_where = [*rollup_where, rollup_model.strategyId == strategy_id]
    for grain, lo, hi in plan.rollups:
        bucket_terms = _time_terms(rollup_model.bucketEpoch, lo, hi)
        parts.append(
            select(*rollup_cols).where(*rollup_where, rollup_model.grain == grain, *bucket_terms)
        )
    if plan.covered is not None:
        parts.append(select(*raw_cols).where(*raw_where, *_after_watermark(plan, strategy_id)))
    for since, until in plan.edges:
        edge = _time_terms(raw.createdAt, since, until)
        if strategy_id is not None:
            edge.append(raw.strategyId == strategy_id)
        parts.append(select(*raw_cols).where(*raw_where, *edge))
    return union_all(*parts).subquery("src") if len(parts) > 1 else parts[0].subquery("src")


def _after_watermark(plan: WindowPlan, strategy_id: str | None) -> list[ColumnElement[bool]]:
    """Audit rows inside the whole buckets that the rollups do not hold yet, by id range."""
    raw = StrategyExecutionLog
    assert plan.covered is not None
    lo, hi = plan.covered
    lo_dt = None if lo is None else from_epoch(lo)
    hi_dt = None if hi is None else from_epoch(hi)
    terms = _time_terms(unindexed(raw.createdAt), lo_dt, hi_dt)
    if strategy_id is not None:
        terms.append(unindexed(raw.strategyId) == strategy_id)
    return [*terms, raw.id > watermark(), raw.id <= newest_id()]
