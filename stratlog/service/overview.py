"""One call for the Overview page: every panel's data, fetched concurrently, as one typed object."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stratlog.model.strategy_execution_log import STATUSES
from stratlog.repository.strategy_execution_log_repository import StrategyExecutionLogRepository
from stratlog.service.stats import (
    HistogramBin,
    Percentiles,
    histogram_from_bins,
    percentiles,
    percentiles_from_bins,
)
from stratlog.timewindow import Window

#: Bucket sizes the timeseries may use, smallest first (seconds).
BUCKET_CHOICES = (
    10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800,
    604800,
)  # fmt: skip
MAX_BUCKETS = 150
#: Windows with at most this many runs get exact percentiles; larger ones use the histograms.
EXACT_LIMIT = 100_000
QUANTILES = (0.50, 0.95, 0.99)


def choose_bucket_seconds(window_seconds: float) -> int:
    """The smallest bucket size giving at most 150 buckets (about 50-150 for the presets)."""
    for seconds in BUCKET_CHOICES:
        if window_seconds / seconds <= MAX_BUCKETS:
            return seconds
    return BUCKET_CHOICES[-1]


@dataclass(frozen=True)
class Overview:
    """Everything the Overview page shows for one strategy and one window."""

    strategyId: str
    since: datetime
    until: datetime
    bucketSeconds: int
    statusCounts: dict[str, int]
    errorCodes: list[dict[str, Any]]
    #: Rule cases of the runs that ended ok; ``None`` is the fallthrough (defaultPoints). Failed
    #: runs carry no case and are left out (they are ``failures``).
    caseNames: list[dict[str, Any]]
    summary: dict[str, Any]
    durations: Percentiles
    points: Percentiles
    pointsHistogram: list[HistogramBin]
    timeseries: list[dict[str, Any]]
    fetchedAt: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def total(self) -> int:
        """Runs in the window."""
        return sum(self.statusCounts.values())

    @property
    def ok(self) -> int:
        """Runs that ended ``ok`` (the runs a rule case can describe)."""
        return self.statusCounts.get("ok", 0)

    @property
    def failures(self) -> int:
        """Runs that did not end ``ok``."""
        return self.total - self.statusCounts.get("ok", 0)

    def rate(self, status: str) -> float | None:
        """Share of runs with this status, or ``None`` with no runs."""
        return self.statusCounts.get(status, 0) / self.total if self.total else None

    def status_rows(self) -> list[dict[str, Any]]:
        """Every status in fixed order with count and share (zero counts included)."""
        return [
            {"status": s, "count": self.statusCounts.get(s, 0), "share": self.rate(s) or 0.0}
            for s in STATUSES
        ]


async def fetch_overview(
    repository: StrategyExecutionLogRepository,
    strategyId: str,
    sinceDt: datetime | None = None,
    untilDt: datetime | None = None,
    *,
    top: int = 10,
) -> Overview:
    """Every Overview panel, fetched concurrently from one snapshot; default: the last 24 h."""
    window = Window.of(sinceDt, untilDt)
    until = window.until or datetime.now(UTC)
    since = window.since or until - timedelta(hours=24)
    window = Window.of(since, until)
    bucket = choose_bucket_seconds(window.seconds or 1.0)
    scope: dict[str, Any] = {"strategyId": strategyId, "sinceDt": since, "untilDt": until}
    async with repository.consistent_view() as r:  # every figure from one snapshot
        try:
            async with asyncio.TaskGroup() as tg:
                status_t = tg.create_task(r.count_by_status(**scope))
                errors_t = tg.create_task(r.count_by_error_code(**scope, limit=top))
                cases_t = tg.create_task(r.count_by_case_name(**scope, limit=top, status="ok"))
                summary_t = tg.create_task(r.duration_and_nodes_summary(**scope))
                duration_bins_t = tg.create_task(r.value_bins(**scope, kind="duration"))
                point_bins_t = tg.create_task(r.value_bins(**scope, kind="points"))
                series_t = tg.create_task(r.timeseries(**scope, bucketSeconds=bucket))
        except ExceptionGroup as group:  # callers handle one plain error (e.g. database down)
            raise group.exceptions[0] from None
        summary = summary_t.result()
        durations, points, points_hist = await _distributions(
            r, scope, int(summary["count"]), duration_bins_t.result(), point_bins_t.result()
        )
    return Overview(
        strategyId=strategyId,
        since=since,
        until=until,
        bucketSeconds=bucket,
        statusCounts=status_t.result(),
        errorCodes=errors_t.result(),
        caseNames=cases_t.result(),
        summary=summary,
        durations=durations,
        points=points,
        pointsHistogram=points_hist,
        timeseries=series_t.result(),
    )


async def _distributions(
    r: StrategyExecutionLogRepository,
    scope: dict[str, Any],
    total: int,
    duration_bins: list[tuple[int, int]],
    point_bins: list[tuple[int, int]],
) -> tuple[Percentiles, Percentiles, list[HistogramBin]]:
    """Exact percentiles when the window is small, else ±1 % from the log histograms."""
    points_total = sum(n for _, n in point_bins)
    if total > EXACT_LIMIT:
        return (
            percentiles_from_bins(duration_bins),
            percentiles_from_bins(point_bins),
            histogram_from_bins(point_bins),
        )
    try:
        async with asyncio.TaskGroup() as tg:
            durations_t = tg.create_task(_exact(r, scope, "duration", total))
            points_t = tg.create_task(_exact(r, scope, "points", points_total))
    except ExceptionGroup as group:
        raise group.exceptions[0] from None
    return durations_t.result(), points_t.result(), histogram_from_bins(point_bins)


async def _exact(
    r: StrategyExecutionLogRepository, scope: dict[str, Any], kind: str, n: int
) -> Percentiles:
    """p50/p95/p99 exactly (numpy's linear interpolation) from the database's order statistics."""
    if n == 0:
        return percentiles([])
    ranks = {q: q * (n - 1) for q in QUANTILES}
    needed = {math.floor(x) for x in ranks.values()} | {math.ceil(x) for x in ranks.values()}
    values = await r.order_statistics(**scope, kind=kind, ranks=sorted(needed))
    p50, p95, p99 = (interpolate(values, ranks[q]) for q in QUANTILES)
    return Percentiles(p50, p95, p99, n, n, True)


def interpolate(values: dict[int, float], rank: float) -> float:
    """numpy's default: between the values at floor(rank) and ceil(rank)."""
    low, high = values[math.floor(rank)], values[math.ceil(rank)]
    return low + (high - low) * (rank - math.floor(rank))
