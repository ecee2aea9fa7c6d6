"""Property tests: random rows and windows; every aggregation equals a plain-Python reference."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.repository import StrategyExecutionLogRepository
from tests.conftest import T0, clear

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=3)
STRATEGIES = ["alpha", "beta"]
safe_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=12,
)

moments = st.builds(
    lambda us: T0 + timedelta(microseconds=us), st.integers(0, int(SPAN.total_seconds() * 1e6))
)
# Round-minute moments too, so that window edges land exactly on rows and buckets.
edges = st.one_of(moments, st.builds(lambda m: T0 + timedelta(minutes=m), st.integers(0, 4320)))


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    """One random but valid row."""
    status = draw(st.sampled_from(["ok", "ok", "ok", "error", "timeout", "limit"]))
    failed = status != "ok"
    return {
        "strategyId": draw(st.sampled_from(STRATEGIES)),
        "status": status,
        "errorCode": draw(st.one_of(st.sampled_from(["E1", "E2", "e3", "Ä"]), safe_text))
        if failed and draw(st.booleans())
        else None,
        "caseName": draw(st.one_of(st.none(), st.sampled_from(["a", "b", "B", "ü"]), safe_text)),
        "durationMs": draw(st.floats(0, 1e5, allow_nan=False, allow_infinity=False)),
        "nodes": draw(st.integers(0, 100_000)),
        "points": None if failed else draw(st.one_of(st.none(), st.floats(-1e4, 1e4))),
        "createdAt": draw(edges),
    }


windows = st.tuples(st.one_of(st.none(), edges), st.one_of(st.none(), edges)).map(
    lambda w: tuple(sorted(w)) if None not in w else w  # type: ignore[type-var]
)


def in_window(row: dict[str, Any], since: datetime | None, until: datetime | None) -> bool:
    at = row["createdAt"]
    return (since is None or at >= since) and (until is None or at < until)


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def reference_summary(selected: list[dict[str, Any]]) -> dict[str, Any]:
    if not selected:
        return {"count": 0}
    durations = [r["durationMs"] for r in selected]
    nodes = [r["nodes"] for r in selected]
    points = [r["points"] for r in selected if r["points"] is not None]
    return {
        "count": len(selected),
        "avgDurationMs": sum(durations) / len(durations),
        "minDurationMs": min(durations),
        "maxDurationMs": max(durations),
        "sumDurationMs": sum(durations),
        "avgNodes": sum(nodes) / len(nodes),
        "minNodes": min(nodes),
        "maxNodes": max(nodes),
        "sumNodes": sum(nodes),
        "sumPoints": sum(points) if points else None,
    }


def ranked(counter: Counter[Any], key: str, limit: int) -> list[dict[str, Any]]:
    """count desc, then value by code point with None last."""
    items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    return [{key: value, "count": n} for value, n in items[:limit]]


def bucket_of(at: datetime, seconds: int) -> datetime:
    whole = (at - EPOCH) // timedelta(seconds=1)
    return EPOCH + timedelta(seconds=(whole // seconds) * seconds)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.lists(rows(), max_size=40),
    window=windows,
    limit=st.integers(1, 6),
    bucket=st.sampled_from([1, 7, 60, 900, 3600, 86400]),
)
async def test_aggregations_equal_reference(
    repo: StrategyExecutionLogRepository,
    engine: AsyncEngine,
    data: list[dict[str, Any]],
    window: tuple[datetime | None, datetime | None],
    limit: int,
    bucket: int,
) -> None:
    await clear(engine)
    await repo.insert_many(data)
    since, until = window
    scope = {"strategyId": "alpha", "sinceDt": since, "untilDt": until}
    selected = [r for r in data if r["strategyId"] == "alpha" and in_window(r, since, until)]

    assert await repo.count_by_status(**scope) == dict(Counter(r["status"] for r in selected))

    codes = Counter(r["errorCode"] for r in selected if r["errorCode"] is not None)
    assert await repo.count_by_error_code(**scope, limit=limit) == ranked(codes, "errorCode", limit)

    cases = Counter(r["caseName"] for r in selected)
    assert await repo.count_by_case_name(**scope, limit=limit) == ranked(cases, "caseName", limit)

    summary = await repo.duration_and_nodes_summary(**scope)
    expected = reference_summary(selected)
    assert summary["count"] == expected["count"]
    for key, value in summary.items():
        assert close(value, expected.get(key)), (key, value, expected.get(key))

    durations = await repo.sample_durations(**scope)
    assert sorted(durations) == sorted(r["durationMs"] for r in selected)
    points = await repo.sample_points(**scope, limit=limit)
    all_points = [r["points"] for r in selected if r["points"] is not None]
    assert len(points) == min(limit, len(all_points))
    assert Counter(points) <= Counter(all_points)

    series = await repo.timeseries(**scope, bucketSeconds=bucket)
    buckets = Counter((bucket_of(r["createdAt"], bucket), r["status"]) for r in selected)
    assert series == [
        {"bucketStart": b, "status": s, "count": n} for (b, s), n in sorted(buckets.items())
    ]

    listed = await repo.list_for_strategy(strategyId="alpha", limit=limit)
    everything = sorted(
        (r for r in data if r["strategyId"] == "alpha"), key=lambda r: r["createdAt"], reverse=True
    )
    assert [r.createdAt for r in listed] == [r["createdAt"] for r in everything[:limit]]
