"""Per-panel rollups at real cardinality: many codes, cases and versions, any bucket size.

The answers must equal a plain-Python reference at any watermark (rows rolled up in batches,
then more rows anywhere in time), for bucket sizes that no rollup grain divides, and the
Overview's single statement must agree with the seed's methods.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog import sketch
from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.model import ROLLUP_TABLES, BinsRollup, StatusRollup, StrategyExecutionLog
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.repository import strategy_execution_log_repository as repo_module
from stratlog.rollups import RollupJob
from stratlog.rollups.plan import STATUS_GRAINS, epoch_us, from_epoch, plan_buckets
from stratlog.rollups.verify import verify
from stratlog.service import fetch_overview
from stratlog.service import overview as overview_module
from stratlog.timewindow import Window
from tests.cli.helpers import stratlog
from tests.conftest import T0, clear, make_row
from tests.repository.test_properties import (
    bucket_of,
    close,
    edges,
    in_window,
    ranked,
    reference_summary,
    windows,
)

CODES = [f"E{i:02d}" for i in range(25)] + ["", "Ä", "e01"]
CASES = [f"case_{i:02d}" for i in range(40)] + ["", "B", "b"]
VERSIONS = [None, "", "1.4.0", "1.5.0", "2.0.0-rc.1"]
#: Bucket sizes that no grain divides (and some that do), including one above a day.
ODD_BUCKETS = [25_920, 5_400, 1_000, 4_500, 7_777, 900, 600, 3_600, 172_800, 90_000]


@st.composite
def busy_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A row of a strategy with many codes, cases and versions (codes and cases skewed)."""
    status = draw(st.sampled_from(["ok"] * 5 + ["error", "error", "timeout", "limit"]))
    failed = status != "ok"
    skewed = st.integers(0, 10).map(lambda i: i * i // 4)
    return {
        "strategyId": draw(st.sampled_from(["alpha", "alpha", "beta"])),
        "strategyVersion": draw(st.sampled_from(VERSIONS)),
        "status": status,
        "errorCode": draw(skewed.map(lambda i: CODES[i % len(CODES)]))
        if failed and draw(st.integers(0, 9)) > 0
        else None,
        "caseName": draw(st.one_of(st.none(), skewed.map(lambda i: CASES[i % len(CASES)]))),
        "durationMs": draw(st.floats(0, 1e5, allow_nan=False, allow_infinity=False)),
        "nodes": draw(st.integers(0, 100_000)),
        "points": None if failed else draw(st.one_of(st.none(), st.floats(-1e4, 1e4))),
        "createdAt": draw(edges),
    }


def same_summary(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Counts, minima and maxima equal; float sums and means within 1e-12 (summation order)."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] if k in EXACT_FIGURES else close(a[k], b[k]) for k in a
    )


EXACT_FIGURES = ("count", "minDurationMs", "maxDurationMs", "minNodes", "maxNodes", "sumNodes")


def reference(selected: list[dict[str, Any]], bucket: int) -> dict[str, Any]:
    series = Counter((bucket_of(r["createdAt"], bucket), r["status"]) for r in selected)
    return {
        "status": dict(Counter(r["status"] for r in selected)),
        "codes": Counter(r["errorCode"] for r in selected if r["errorCode"] is not None),
        "cases": Counter(r["caseName"] for r in selected),
        "ok_cases": Counter(r["caseName"] for r in selected if r["status"] == "ok"),
        "series": [
            {"bucketStart": b, "status": s, "count": n} for (b, s), n in sorted(series.items())
        ],
    }


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    before=st.lists(busy_rows(), max_size=60),
    after=st.lists(busy_rows(), max_size=20),
    window=windows,
    batch=st.integers(1, 70),
    bucket=st.sampled_from(ODD_BUCKETS),
)
async def test_many_codes_cases_versions_any_bucket_equal_the_reference(
    repo: StrategyExecutionLogRepository,
    engine: AsyncEngine,
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    window: tuple[datetime | None, datetime | None],
    batch: int,
    bucket: int,
) -> None:
    await clear(engine)
    await repo.insert_many(before)
    await RollupJob(engine, batch_rows=batch).catch_up()
    await repo.insert_many(after)  # above the watermark, anywhere in time
    since, until = window
    scope = {"strategyId": "alpha", "sinceDt": since, "untilDt": until}
    selected = [r for r in before + after if r["strategyId"] == "alpha" and in_window(r, *window)]
    want = reference(selected, bucket)

    assert await repo.count_by_status(**scope) == want["status"]
    got_codes = await repo.count_by_error_code(**scope, limit=30)
    assert got_codes == ranked(want["codes"], "errorCode", 30)
    assert await repo.count_by_case_name(**scope, limit=50) == ranked(want["cases"], "caseName", 50)
    ok_cases = await repo.count_by_case_name(**scope, limit=7, status="ok")
    assert ok_cases == ranked(want["ok_cases"], "caseName", 7)
    summary = await repo.duration_and_nodes_summary(**scope)
    expected = reference_summary(selected)
    for key in ("count", "minDurationMs", "maxDurationMs", "minNodes", "maxNodes", "sumNodes"):
        assert summary[key] == expected.get(key), key
    for key, value in summary.items():
        assert close(value, expected.get(key)), key
    assert await repo.timeseries(**scope, bucketSeconds=bucket) == want["series"]
    for kind, present in (("duration", None), ("points", "points"), ("nodes", None)):
        bins = await repo.value_bins(**scope, kind=kind)
        assert sum(n for _, n in bins) == sum(
            1 for r in selected if not present or r[present] is not None
        )
    if since is not None and until is not None and since < until:
        ov = await fetch_overview(repo, "alpha", since, until, top=7)
        assert ov.statusCounts == dict(sorted(want["status"].items()))
        assert ov.errorCodes == ranked(want["codes"], "errorCode", 7)
        assert ov.caseNames == ranked(want["ok_cases"], "caseName", 7)
        assert same_summary(ov.summary, summary)
        assert ov.timeseries == reference(selected, ov.bucketSeconds)["series"]


@settings(max_examples=300, deadline=None)
@given(
    since=st.integers(0, 40 * 86_400_000_000),
    length=st.integers(1, 9 * 86_400_000_000),
    bucket=st.sampled_from([*ODD_BUCKETS, 1, 7, 60, 599, 601, 86400]),
)
def test_bucket_plans_tile_the_window_once_inside_one_requested_bucket(
    since: int, length: int, bucket: int
) -> None:
    start = T0 + timedelta(microseconds=since)
    window = Window.of(start, start + timedelta(microseconds=length))
    plan = plan_buckets(window, bucket, STATUS_GRAINS)
    pieces: list[tuple[int, int]] = []
    for grain, lo, hi in plan.rollups:
        assert lo is not None and hi is not None and lo % grain == 0 and hi % grain == 0
        for b in range(lo, hi, grain):  # each rollup bucket lies inside one requested bucket
            assert b // bucket == (b + grain - 1) // bucket, (grain, b, bucket)
        pieces.append((lo * 1_000_000, hi * 1_000_000))
    for a, b in plan.edges:
        assert a is not None and b is not None
        pieces.append((epoch_us(a), epoch_us(b)))
    pieces.sort()
    assert pieces[0][0] == epoch_us(window.since) and pieces[-1][1] == epoch_us(window.until)
    for (_, end), (begin, _) in itertools.pairwise(pieces):
        assert end == begin  # no gap, no overlap
    covered = sorted((lo, hi) for lo, hi in plan.covered)
    assert sum(hi - lo for lo, hi in covered) == sum(hi - lo for _, lo, hi in plan.rollups)


def test_bucket_plan_reads_rollups_for_a_size_no_grain_divides() -> None:
    end = from_epoch(1_780_000_000 // 86_400 * 86_400)
    window = Window.of(end - timedelta(days=30), end)
    plan = plan_buckets(window, 25_920, STATUS_GRAINS)
    rolled = sum(hi - lo for _, lo, hi in plan.rollups if lo is not None and hi is not None)
    raw = sum((b - a).total_seconds() for a, b in plan.edges if a is not None and b is not None)
    assert rolled / (rolled + raw) > 0.95  # one partial 10-minute bucket per requested bucket
    assert len(plan.edges) <= 100


def test_packed_histograms_round_trip_and_bin_like_sql() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.lognormal(2, 2, 5000), -rng.lognormal(1, 1, 50), [0.0, 1e-12]])
    vectorised = sketch.bins_of(values)
    assert vectorised.tolist() == [sketch.bin_of(float(v)) for v in values]
    counts = Counter(vectorised.tolist())
    blob = sketch.pack(counts)
    bins, ns = sketch.unpack(blob)
    assert dict(zip(bins.tolist(), ns.tolist(), strict=True)) == dict(counts)
    assert sketch.merge_packed([blob, blob], [(0, 5)]) == {
        b: 2 * n + (5 if b == 0 else 0) for b, n in counts.items()
    }
    assert len(blob) < 3 * len(counts) + 16  # a few bytes per occupied bin
    with pytest.raises(ValueError, match="unknown histogram format"):
        sketch.unpack(b"\x09junk")


async def test_versions_none_and_empty_are_different_keys(empty_repo, engine) -> None:
    await empty_repo.insert_many(
        [make_row(strategyVersion=None), make_row(strategyVersion=""), make_row()]
    )
    await RollupJob(engine).catch_up()
    async with engine.connect() as conn:
        keys = (
            await conn.execute(
                select(StatusRollup.version, StatusRollup.versionNull, StatusRollup.n).where(
                    StatusRollup.grain == 3600
                )
            )
        ).all()
    assert sorted(tuple(k) for k in keys) == [("", 0, 1), ("", 1, 1), ("1.0.0", 0, 1)]


async def test_the_overview_is_one_statement_plus_one_for_exact_percentiles(
    empty_repo, engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every panel in one statement; a small window's exact percentiles in a second one, in
    the same read transaction (the same snapshot)."""
    rows = [
        make_row(createdAt=T0 + timedelta(minutes=7 * i), caseName=f"c{i % 9}", durationMs=i % 37)
        for i in range(300)
    ]
    await empty_repo.insert_many(rows)
    await RollupJob(engine).catch_up()
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        word = statement.lstrip()[:6].upper()
        statements.append("SELECT" if word.startswith("WITH") else word)

    day = (T0, T0 + timedelta(days=1))
    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        exact = await fetch_overview(empty_repo, "credit-limit", *day)
        first = list(statements)
        monkeypatch.setattr(overview_module, "EXACT_LIMIT", 10)
        statements.clear()
        binned = await fetch_overview(empty_repo, "credit-limit", *day)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert [s for s in first if s != "BEGIN"] == ["SELECT", "SELECT"]
    assert first.count("BEGIN") <= 1  # SQLite: one explicit read transaction
    assert [s for s in statements if s != "BEGIN"] == ["SELECT"]
    inside = sorted(r["durationMs"] for r in rows if r["createdAt"] < day[1])
    assert exact.total == len(inside) and exact.durations.exact
    assert [exact.durations.p50, exact.durations.p95] == list(np.percentile(inside, [50, 95]))
    assert not binned.durations.exact and binned.summary == exact.summary


async def test_large_windows_use_the_histograms_within_one_percent(
    empty_repo, engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(5)
    rows = [
        make_row(
            durationMs=rng.lognormvariate(2, 1),
            points=rng.uniform(-50, 50),
            createdAt=T0 + timedelta(seconds=rng.randint(0, 2 * 86_400)),
        )
        for _ in range(3000)
    ]
    await empty_repo.insert_many(rows)
    await RollupJob(engine).catch_up()
    window = (T0 + timedelta(minutes=13), T0 + timedelta(days=2))
    chosen = [r for r in rows if window[0] <= r["createdAt"] < window[1]]
    exact = await fetch_overview(empty_repo, "credit-limit", *window)
    monkeypatch.setattr(overview_module, "EXACT_LIMIT", 100)
    binned = await fetch_overview(empty_repo, "credit-limit", *window)
    truth = np.percentile([r["durationMs"] for r in chosen], [50, 95, 99])
    assert exact.durations.exact and not binned.durations.exact
    for got in (exact.durations, binned.durations):
        for value, want in zip((got.p50, got.p95, got.p99), truth, strict=True):
            assert value is not None and math.isclose(value, want, rel_tol=0.01)
    assert [exact.durations.p50, exact.durations.p99] == pytest.approx(truth[[0, 2]], rel=1e-12)
    assert binned.statusCounts == exact.statusCounts and binned.summary == exact.summary


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_upgrade_from_joint_rollups_rebuilds_and_resumes(
    scratch_url: Any, backend: str
) -> None:
    """0004 (joint-key rollups, caught up) -> 0005: rebuilt by ``db upgrade``, interruptible."""
    url = await scratch_url(backend)
    engine = make_engine(url)
    try:
        await upgrade(engine, "0004")
        repo = StrategyExecutionLogRepository(make_session_factory(engine))
        rng = random.Random(8)
        rows = [
            make_row(
                strategyId=rng.choice(["a", "b", "c"]),
                strategyVersion=rng.choice(VERSIONS),
                status=rng.choice(["ok", "ok", "error"]),
                errorCode=rng.choice(CODES),
                caseName=rng.choice([*CASES, None]),
                createdAt=T0 + timedelta(seconds=rng.randint(0, 3 * 86_400)),
            )
            for _ in range(700)
        ]
        await repo.insert_many(rows)
        async with engine.begin() as conn:  # the old layout, caught up to the newest row
            await conn.execute(text("UPDATE stratlog_rollup_state SET watermark = 700"))
        await upgrade(engine, "0005")  # the revision alone: watermark back to 0
        job = RollupJob(engine, batch_rows=250)
        assert await job.behind() == 700
        first = await job.run_once()  # a rebuild interrupted after one batch
        assert first.rows == 250 and first.behind == 450
        done = stratlog("--database", url, "db", "upgrade")
        assert done.returncode == 0, done.stderr
        assert "rolled up 450 rows; watermark at id 700" in done.stdout
        assert await job.behind() == 0
        assert (await verify(engine)).differences == []
        raw = StrategyExecutionLogRepository(repo.session_factory, use_rollups=False)
        scope = {"strategyId": "a", "sinceDt": T0, "untilDt": T0 + timedelta(days=3)}
        assert await repo.count_by_error_code(**scope, limit=30) == await raw.count_by_error_code(
            **scope, limit=30
        )
        assert await repo.timeseries(**scope, bucketSeconds=25_920) == await raw.timeseries(
            **scope, bucketSeconds=25_920
        )
        again = stratlog("--database", url, "db", "upgrade")
        assert again.returncode == 0 and "rolled up" not in again.stdout
        async with engine.connect() as conn:
            names = {t.__tablename__ for t in ROLLUP_TABLES}
            for name in names:
                assert await conn.scalar(select(func.count()).select_from(text(name))) > 0
            assert await conn.scalar(
                select(func.sum(BinsRollup.n)).where(
                    BinsRollup.grain == 86_400, BinsRollup.kind == 0
                )
            ) == len(rows)
    finally:
        await engine.dispose()


def test_an_empty_window_still_plans_one_read() -> None:
    empty = Window.of(T0, T0)
    for bucket in (5_400, 600, 25_920):
        plan = plan_buckets(empty, bucket, STATUS_GRAINS)
        assert plan.rollups == () and plan.edges == ((T0, T0),)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_failed_rebuild_migration_leaves_the_old_layout_whole(
    scratch_url: Any, backend: str
) -> None:
    """0005 commits as one: failing half-way (a table already holds one of its names) leaves
    the old tables and the old watermark, so no reader sees new empty tables as caught up."""
    engine = make_engine(await scratch_url(backend))
    try:
        await upgrade(engine, "0004")
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE stratlog_rollup_state SET watermark = 700"))
            await conn.execute(text("CREATE TABLE strategy_execution_rollup_case (x INTEGER)"))
        with pytest.raises(Exception, match="strategy_execution_rollup_case"):
            await upgrade(engine, "0005")
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT watermark FROM stratlog_rollup_state")) == 700
            assert await conn.scalar(text("SELECT version_num FROM alembic_version")) == "0004"
            for old in ("strategy_execution_rollup", "strategy_execution_bin"):
                assert await conn.scalar(select(func.count()).select_from(text(old))) == 0
    finally:
        await engine.dispose()


async def test_exact_percentiles_hold_when_a_histogram_disagrees_with_the_rows(
    empty_repo, engine
) -> None:
    """A hand-written DELETE under the rollups: the histograms count rows that are gone, the
    exact percentiles still come from the rows (their count and their values)."""
    rng = random.Random(2)
    rows = [
        make_row(
            durationMs=round(rng.lognormvariate(2, 0.8), 3),
            points=50.0 if i % 3 else rng.uniform(0, 100),  # one value repeated: one dense bin
            createdAt=T0 + timedelta(minutes=rng.randint(0, 3 * 1440)),
        )
        for i in range(2000)
    ]
    await empty_repo.insert_many(rows)
    await RollupJob(engine).catch_up()
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM strategy_execution_log WHERE id % 7 = 0"))
    window = (T0 + timedelta(hours=30), T0 + timedelta(days=3))
    L = StrategyExecutionLog
    async with engine.connect() as conn:
        stmt = select(L.durationMs, L.points).where(
            L.createdAt >= window[0], L.createdAt < window[1]
        )
        inside = [{"durationMs": d, "points": p} for d, p in (await conn.execute(stmt)).all()]
    ov = await fetch_overview(empty_repo, "credit-limit", *window)
    assert ov.durations.exact and ov.durations.n == len(inside)
    durations = np.percentile([r["durationMs"] for r in inside], [50, 95, 99])
    assert [ov.durations.p50, ov.durations.p95, ov.durations.p99] == list(durations)
    points = np.percentile([r["points"] for r in inside], [50, 95, 99])
    assert [ov.points.p50, ov.points.p95, ov.points.p99] == list(points)


async def test_exact_percentiles_ship_one_value_per_rank_not_the_bins(
    empty_repo, engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4,000 distinct durations inside one histogram bin: the exact path's statement returns a
    row per wanted rank (and the counts), never the bin's values, and its answer is numpy's."""
    rows = [
        make_row(durationMs=100.0 + i * 1e-4, points=float(i % 5),
                 createdAt=T0 + timedelta(seconds=20 * i))
        for i in range(4000)
    ]  # fmt: skip
    assert len({sketch.bin_of(r["durationMs"]) for r in rows}) == 1
    await empty_repo.insert_many(rows)
    await RollupJob(engine).catch_up()
    shipped: dict[str, int] = {}
    real_split = repo_module.split

    def counting_split(got: Any, parts: Any) -> Any:
        out = real_split(got, parts)
        if "duration_ranks" in out:
            shipped.update({tag: len(values) for tag, values in out.items()})
        return out

    monkeypatch.setattr(repo_module, "split", counting_split)
    window = (T0, T0 + timedelta(days=1))
    ov = await fetch_overview(empty_repo, "credit-limit", *window)
    durations = sorted(r["durationMs"] for r in rows)
    assert ov.durations.exact and ov.durations.n == len(rows)
    assert [ov.durations.p50, ov.durations.p95, ov.durations.p99] == list(
        np.percentile(durations, [50, 95, 99])
    )
    ranks = {f(q * (len(rows) - 1)) for q in (0.5, 0.95, 0.99) for f in (math.floor, math.ceil)}
    assert shipped["duration_n"] == 1 and shipped["duration_ranks"] == len(ranks)
    assert shipped["points_ranks"] <= len(ranks)


async def test_short_windows_read_once_and_equal_the_rollup_path(
    empty_repo, engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to two hours and 20,000 runs the Overview is computed from one read of the runs; it
    equals the rollup path, and past the cap it falls back to it."""
    rng = random.Random(4)
    rows = [
        make_row(
            status=rng.choice(["ok", "ok", "ok", "error", "timeout"]),
            errorCode=rng.choice(CODES),
            caseName=rng.choice([*CASES[:6], None]),
            durationMs=rng.lognormvariate(1, 1),
            nodes=rng.randint(1, 900),
            points=rng.choice([None, rng.uniform(-20, 80)]),
            createdAt=T0 + timedelta(seconds=rng.randint(0, 3 * 3600)),
        )
        for _ in range(1500)
    ]
    await empty_repo.insert_many(rows)
    await RollupJob(engine).catch_up()
    window = (T0 + timedelta(minutes=37), T0 + timedelta(minutes=37 + 100))
    short = await fetch_overview(empty_repo, "credit-limit", *window)
    monkeypatch.setattr(overview_module, "SHORT_WINDOW_RUNS", 5)  # past the cap: rollup path
    capped = await fetch_overview(empty_repo, "credit-limit", *window)
    monkeypatch.setattr(overview_module, "SHORT_WINDOW_S", 0)
    rolled = await fetch_overview(empty_repo, "credit-limit", *window)
    for other in (capped, rolled):
        assert short.statusCounts == other.statusCounts and short.timeseries == other.timeseries
        assert short.errorCodes == other.errorCodes and short.caseNames == other.caseNames
        assert same_summary(short.summary, other.summary)
        assert short.durations == other.durations and short.points == other.points
        assert short.pointsHistogram == other.pointsHistogram
    assert short.total == sum(1 for r in rows if window[0] <= r["createdAt"] < window[1]) > 0
