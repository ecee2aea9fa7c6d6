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

#: Size of a rollup bucket in seconds: an hour keeps a 30-day window at ~720 buckets.
ROLLUP_SECONDS = 3600
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
    """Which buckets come from the rollups and which time ranges are read raw."""

    whole: tuple[int | None, int | None] | None
    edges: tuple[tuple[datetime | None, datetime | None], ...]


def plan_window(window: Window, grain: int = ROLLUP_SECONDS, rollups: bool = True) -> WindowPlan:
    """Split a window into whole ``grain`` buckets ``[lo, hi)`` (epoch s) and raw edges."""
    since, until = window.since, window.until
    if not rollups:
        return WindowPlan(None, ((since, until),))
    unit = grain * 1_000_000
    lo = None if since is None else -(-epoch_us(since) // unit) * grain
    hi = None if until is None else (epoch_us(until) // unit) * grain
    if lo is not None and hi is not None and lo >= hi:
        return WindowPlan(None, ((since, until),))
    edges = []
    if since is not None and lo is not None and since < from_epoch(lo):
        edges.append((since, from_epoch(lo)))
    if until is not None and hi is not None and from_epoch(hi) < until:
        edges.append((from_epoch(hi), until))
    return WindowPlan((lo, hi), tuple(edges))


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
    if plan.whole is not None:
        lo, hi = plan.whole
        if strategy_id is not None:
            rollup_where = [*rollup_where, rollup_model.strategyId == strategy_id]
        bucket_terms = _time_terms(rollup_model.bucketEpoch, lo, hi)
        parts.append(select(*rollup_cols).where(*rollup_where, *bucket_terms))
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
    assert plan.whole is not None
    lo, hi = plan.whole
    lo_dt = None if lo is None else from_epoch(lo)
    hi_dt = None if hi is None else from_epoch(hi)
    terms = _time_terms(unindexed(raw.createdAt), lo_dt, hi_dt)
    if strategy_id is not None:
        terms.append(unindexed(raw.strategyId) == strategy_id)
    return [*terms, raw.id > watermark(), raw.id <= newest_id()]
