"""One call for the Overview page: every panel's data, from one statement, as one typed object."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from stratlog import sketch
from stratlog.model.strategy_execution_log import STATUSES
from stratlog.repository.strategy_execution_log_repository import (
    StrategyExecutionLogRepository,
    WindowFigures,
    summary_of,
)
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
#: Windows up to this long with at most ``SHORT_WINDOW_RUNS`` runs are computed from their audit
#: rows in one statement (``window_figures``): a dozen rollup and edge reads cost more than one
#: pass over a few thousand rows (1 h on PostgreSQL, 10M rows: 26 ms against 29 ms for seven
#: plain GROUP BYs in parallel; the rollup path took 54 ms).
SHORT_WINDOW_S = 2 * 3600
SHORT_WINDOW_RUNS = 20_000
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
    #: The ``strategyVersion`` the figures are limited to (``None``: every run).
    version: str | None = None
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
    version: str | None = None,
) -> Overview:
    """Every Overview panel from one statement (one snapshot); default: the last 24 h.

    ``version`` limits every figure to the runs of that ``strategyVersion``.

    The status rollup's per-bucket figures give the timeseries, the status counts and the
    summary; exact percentiles come from order statistics when the window holds at most
    ``EXACT_LIMIT`` runs, else ±1 % from the log histograms.
    """
    window = Window.of(sinceDt, untilDt)
    until = window.until or datetime.now(UTC)
    since = window.since or until - timedelta(hours=24)
    window = Window.of(since, until)
    bucket = choose_bucket_seconds(window.seconds or 1.0)
    if (window.seconds or 0.0) <= SHORT_WINDOW_S:
        _, figures = await repository.window_figures(
            strategyId=strategyId, sinceDt=since, untilDt=until, bucketSeconds=bucket,
            cap=SHORT_WINDOW_RUNS, strategyVersion=version,
        )  # fmt: skip
        if figures is not None:
            overview = _from_figures(strategyId, since, until, bucket, figures, top)
            return dataclasses.replace(overview, version=version)
    rows = await repository.overview_rows(
        strategyId=strategyId,
        sinceDt=since,
        untilDt=until,
        bucketSeconds=bucket,
        top=top,
        exactLimit=EXACT_LIMIT,
        quantiles=QUANTILES,
        strategyVersion=version,
    )
    series = sorted(rows["series"], key=lambda r: (r["bucket"], r["status"]))
    status_counts: dict[str, int] = {}
    for row in series:
        status_counts[row["status"]] = status_counts.get(row["status"], 0) + int(row["n"])
    summary = summary_of(rows["summary"][0])
    total = int(summary["count"])
    duration_bins, point_bins = rows["duration_bins"], rows["points_bins"]
    points_total = int(rows["points_n"])
    if total > EXACT_LIMIT:
        durations, points = percentiles_from_bins(duration_bins), percentiles_from_bins(point_bins)
    else:
        durations = _from_ranks(rows["duration_ranks"], int(rows["duration_n"]))
        points = _from_ranks(rows["points_ranks"], points_total)
    return _overview(
        strategyId, since, until, bucket, status_counts,
        codes=[(r["key"], int(r["count"])) for r in rows["codes"]],
        cases=[(r["key"], int(r["count"])) for r in rows["cases"]],
        series=[((int(r["bucket"]), r["status"]), int(r["n"])) for r in series],
        summary=summary, durations=durations, points=points, point_bins=point_bins, top=None,
        version=version,
    )  # fmt: skip


def _overview(
    strategyId: str,
    since: datetime,
    until: datetime,
    bucket: int,
    status_counts: Mapping[str, int],
    *,
    codes: list[tuple[str, int]],
    cases: list[tuple[str | None, int]],
    series: list[tuple[tuple[int, str], int]],
    summary: dict[str, Any],
    durations: Percentiles,
    points: Percentiles,
    point_bins: list[tuple[int, int]],
    top: int | None,
    version: str | None = None,
) -> Overview:
    """The Overview of either path: codes and cases ranked (count desc, the ``None`` case last
    among equals, then by code point) and cut to ``top``, buckets in time then status order."""
    ranked_codes = sorted(codes, key=lambda kv: (-kv[1], kv[0]))[:top]
    ranked_cases = sorted(cases, key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))[:top]
    return Overview(
        strategyId=strategyId,
        since=since,
        until=until,
        bucketSeconds=bucket,
        statusCounts=dict(sorted(status_counts.items())),
        errorCodes=[{"errorCode": code, "count": n} for code, n in ranked_codes],
        caseNames=[{"caseName": name, "count": n} for name, n in ranked_cases],
        summary=summary,
        durations=durations,
        points=points,
        pointsHistogram=histogram_from_bins(point_bins),
        timeseries=[
            {"bucketStart": datetime.fromtimestamp(start, UTC), "status": status, "count": n}
            for (start, status), n in sorted(series)
        ],
        version=version,
    )


def _from_figures(
    strategyId: str, since: datetime, until: datetime, bucket: int, f: WindowFigures, top: int
) -> Overview:
    """The Overview of a short window from its exact figures: the rollup path's numbers.

    Counts, minima and maxima are the same numbers; float sums computed here are correctly
    rounded (``math.fsum``), so they may differ from the database's in the last bits.
    """
    status_counts: Counter[str] = Counter()
    for (_, status), n in f.series:
        status_counts[status] += n
    bins, counts = np.unique(sketch.bins_of(f.points), return_counts=True)
    return _overview(
        strategyId, since, until, bucket, status_counts,
        codes=f.codes, cases=f.cases, series=f.series, summary=summary_of(f.summary),
        durations=percentiles(f.durations.tolist()),  # sorted already: a linear pass
        points=percentiles(f.points.tolist()),
        point_bins=list(zip(bins.tolist(), counts.tolist(), strict=True)), top=top,
    )  # fmt: skip


def _from_ranks(values: dict[int, float], n: int) -> Percentiles:
    """p50/p95/p99 exactly (numpy's linear interpolation) from the values at their ranks."""
    if n == 0:
        return percentiles([])
    p50, p95, p99 = (interpolate(values, q * (n - 1)) for q in QUANTILES)
    return Percentiles(p50, p95, p99, n, n, True)


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
