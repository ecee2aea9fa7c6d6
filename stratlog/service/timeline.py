"""Durations over time: p50 and p95 per bucket, from the rollups' log histograms.

A version that doubles durations shows as a step in this line where the runs-per-bucket chart
shows nothing. Buckets of an hour or more read the hourly rollups; finer buckets (windows up to
``FINE_WINDOW_S``) read the audit rows. Each figure is within 1 % (the histograms' bins).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from stratlog.repository.strategy_execution_log_repository import StrategyExecutionLogRepository
from stratlog.sketch import quantiles_of_arrays
from stratlog.timewindow import Window

#: Windows up to this long keep the Overview's bucket size for the durations; longer ones use
#: at least hourly buckets, which the hourly rollups answer without reading runs.
FINE_WINDOW_S = 6 * 3600
HOURLY = 3600


@dataclass(frozen=True)
class DurationPoint:
    """One bucket's duration percentiles (ms) and how many runs they describe."""

    start: datetime
    p50: float
    p95: float
    n: int


def duration_bucket(window_seconds: float, bucket_seconds: int) -> int:
    """The bucket size of the durations line for a window drawn with ``bucket_seconds``."""
    if bucket_seconds >= HOURLY or window_seconds <= FINE_WINDOW_S:
        return bucket_seconds
    return HOURLY


async def fetch_duration_series(
    repository: StrategyExecutionLogRepository,
    strategyId: str,
    sinceDt: datetime,
    untilDt: datetime,
    bucketSeconds: int,
    *,
    version: str | None = None,
) -> list[DurationPoint]:
    """p50 / p95 of the durations per bucket of ``bucketSeconds`` over the window."""
    window = Window.of(sinceDt, untilDt)
    assert window.since is not None and window.until is not None
    bins = await repository.bins_by_bucket(
        strategyId=strategyId, sinceDt=window.since, untilDt=window.until,
        bucketSeconds=bucketSeconds, kind="duration", strategyVersion=version,
    )  # fmt: skip
    points = []
    for start, (keys, counts) in bins.items():
        p50, p95 = quantiles_of_arrays(keys, counts, [0.5, 0.95])
        if p50 is None or p95 is None:
            continue
        n = int(counts.sum())
        points.append(DurationPoint(datetime.fromtimestamp(start, UTC), p50, p95, n))
    return points
