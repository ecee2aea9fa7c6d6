"""Percentiles, histograms, bucket choice, and the one-call Overview on both backends."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratlog.repository import StrategyExecutionLogRepository
from stratlog.service import choose_bucket_seconds, fetch_overview, percentiles, weighted_histogram
from tests.conftest import T0, make_row
from tests.rollups.test_cardinality import same_summary


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300))
def test_percentiles_match_numpy(values: list[float]):
    got = percentiles(values)
    expected = np.percentile(values, [50, 95, 99])
    assert [got.p50, got.p95, got.p99] == pytest.approx(list(expected), rel=1e-9, abs=1e-9)
    assert got.exact and got.n == len(values) == got.total


def test_percentiles_from_a_sample_say_so():
    got = percentiles([1.0, 2.0], total=10)
    assert not got.exact and "sample" in got.describe() and "10" in got.describe()
    none = percentiles([], total=0)
    assert none.p50 is None and none.describe() == "no runs in this window"


@given(st.lists(st.floats(-1e6, 1e6), max_size=300), st.integers(1, 40))
def test_histogram_counts_every_value(values: list[float], bins: int):
    got = weighted_histogram([(v, 1) for v in values], bins)
    assert sum(b.count for b in got) == len(values)
    if values:
        assert got[0].start == min(values) and got[-1].end == max(values)


@pytest.mark.parametrize("hours", [0.25, 1, 6, 24, 24 * 7, 24 * 30])
def test_bucket_choice_gives_50_to_150_buckets(hours: float):
    seconds = hours * 3600
    assert 50 <= seconds / choose_bucket_seconds(seconds) <= 150


async def test_overview_equals_the_repository(empty_repo: StrategyExecutionLogRepository):
    rng = random.Random(5)
    rows = []
    for _i in range(500):
        failed = rng.random() < 0.2
        rows.append(
            make_row(
                status=rng.choice(["error", "timeout", "limit"]) if failed else "ok",
                errorCode=rng.choice(["A", "B", "C"]) if failed else None,
                caseName=None if failed else rng.choice(["x", "y", None]),
                durationMs=rng.uniform(1, 100),
                points=None if failed else rng.uniform(0, 50),
                createdAt=T0 + timedelta(seconds=rng.randint(0, 86_399)),
            )
        )
    await empty_repo.insert_many(rows)
    since, until = T0, T0 + timedelta(days=1)
    got = await fetch_overview(empty_repo, "credit-limit", since, until)
    scope = {"strategyId": "credit-limit", "sinceDt": since, "untilDt": until}
    assert got.statusCounts == await empty_repo.count_by_status(**scope)
    assert got.errorCodes == await empty_repo.count_by_error_code(**scope)
    assert got.caseNames == await empty_repo.count_by_case_name(**scope, status="ok")
    assert same_summary(got.summary, await empty_repo.duration_and_nodes_summary(**scope))
    assert got.bucketSeconds == 600 and got.total == 500  # 144 ten-minute buckets
    durations = [r["durationMs"] for r in rows]
    assert got.durations.exact and got.durations.n == 500
    assert got.durations.p95 == pytest.approx(float(np.percentile(durations, 95)))
    assert sum(b.count for b in got.pointsHistogram) == sum(r["points"] is not None for r in rows)
    assert sum(p["count"] for p in got.timeseries) == 500
    assert sum(r["share"] for r in got.status_rows()) == pytest.approx(1.0)


async def test_overview_of_an_empty_window(empty_repo: StrategyExecutionLogRepository):
    got = await fetch_overview(empty_repo, "nothing", T0, T0 + timedelta(hours=1))
    assert got.total == 0 and got.rate("error") is None and got.pointsHistogram == []
    assert got.durations.describe() == "no runs in this window"


async def test_overview_reversed_window(empty_repo: StrategyExecutionLogRepository):
    with pytest.raises(ValueError, match="after untilDt"):
        await fetch_overview(empty_repo, "x", T0, T0 - timedelta(seconds=1))
