"""Versions as deploy markers, on both backends, rollups caught up and not: the version filter
of the Overview, the comparison of two versions, the Versions panel and the durations per
bucket, each against numbers computed here from the rows."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.service.compare import Baseline, fetch_comparison
from stratlog.service.overview import fetch_overview
from stratlog.service.timeline import duration_bucket, fetch_duration_series
from stratlog.service.versions import fetch_versions
from tests.conftest import T0, make_row
from tests.service.test_compare import expected_of, rows_between

SINCE, UNTIL = T0, T0 + timedelta(hours=12)
#: 2.0.0 first runs 5 h 17 min 23.5 s into the window, mid-bucket (not on a rollup edge).
DEPLOY = T0 + timedelta(hours=5, minutes=17, seconds=23.5)


def versioned(rows: list[dict[str, Any]], version: str | None) -> list[dict[str, Any]]:
    return [{**r, "strategyVersion": version} for r in rows]


def story(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """1.0.0 since the day before; 2.0.0 from DEPLOY: twice as slow, a new code E99, case_03
    stops firing; a few runs without a version throughout."""
    codes, cases = ["E01", "E02"], ["case_01", "case_02", "case_03"]
    old_before = rows_between(rng, T0 - timedelta(days=1), 24, 600, codes=codes, cases=cases,
                              fail=0.03)  # fmt: skip
    old_before.append(make_row(strategyVersion="1.0.0", createdAt=T0 - timedelta(days=1)))
    old_hours = (DEPLOY - T0).total_seconds() / 3600
    old = rows_between(rng, T0, old_hours, 500, codes=codes, cases=cases, fail=0.03)
    new_hours = (UNTIL - DEPLOY).total_seconds() / 3600
    new = rows_between(rng, DEPLOY + timedelta(microseconds=1), new_hours, 700,
                       codes=[*codes, "E99"], cases=cases[:2], fail=0.08, slow=2.0)  # fmt: skip
    new.append(make_row(strategyVersion="2.0.0", createdAt=DEPLOY, status="ok"))
    bare = rows_between(rng, T0, 12, 60, codes=codes, cases=cases, fail=0.15)
    return {
        "old_before": versioned(old_before, "1.0.0"),
        "old": versioned(old, "1.0.0"),
        "new": versioned(new, "2.0.0"),
        "bare": versioned(bare, None),
    }


@pytest.fixture(params=[False, True], ids=["raw", "rolled-up"])
async def loaded(
    request: pytest.FixtureRequest, empty_repo: StrategyExecutionLogRepository, engine: AsyncEngine
) -> tuple[StrategyExecutionLogRepository, dict[str, list[dict[str, Any]]]]:
    rows = story(random.Random(5))
    await empty_repo.insert_many([r for part in rows.values() for r in part])
    if request.param:
        await RollupJob(engine).catch_up()
    return empty_repo, rows


async def test_the_overview_of_one_version(loaded: Any) -> None:
    repo, rows = loaded
    for version, mine in (("1.0.0", rows["old"]), ("2.0.0", rows["new"])):
        ov = await fetch_overview(repo, "credit-limit", SINCE, UNTIL, version=version, top=50)
        want = expected_of(mine)
        assert ov.version == version
        assert ov.total == want["total"]
        assert ov.statusCounts == {k: v for k, v in sorted(want["status"].items())}
        assert {c["errorCode"]: c["count"] for c in ov.errorCodes} == dict(want["codes"])
        assert {c["caseName"]: c["count"] for c in ov.caseNames} == dict(want["cases"])
        assert ov.durations.p95 == pytest.approx(want["p95"], rel=0.01)
    missing = await fetch_overview(repo, "credit-limit", SINCE, UNTIL, version="9.9.9")
    assert missing.total == 0 and missing.errorCodes == []
    # A short window (the one-statement path) filters the same way.
    short = (DEPLOY - timedelta(minutes=30), DEPLOY + timedelta(minutes=30))
    ov = await fetch_overview(repo, "credit-limit", *short, version="2.0.0")
    assert ov.total == sum(short[0] <= r["createdAt"] < short[1] for r in rows["new"])


async def test_version_against_version_in_the_same_window(loaded: Any) -> None:
    repo, rows = loaded
    comparison = await fetch_comparison(
        repo, "credit-limit", SINCE, UNTIL, Baseline.parse("version:1.0.0"), version="2.0.0"
    )
    assert comparison.offset == timedelta(0)
    assert (comparison.current.version, comparison.before.version) == ("2.0.0", "1.0.0")
    now, then = expected_of(rows["new"]), expected_of(rows["old"])
    head = comparison.headline()
    assert (head["runs"].now, head["runs"].before) == (now["total"], then["total"])
    assert {c.errorCode for c in comparison.codes() if c.new} == {"E99"}
    assert {c.caseName for c in comparison.cases() if c.stopped} == {"case_03"}
    assert comparison.durations()["p95"].relative > 0.5
    # Without --version the other side is the version with the newest run.
    implied = await fetch_comparison(
        repo, "credit-limit", SINCE, UNTIL, Baseline.parse("version:1.0.0")
    )
    assert implied.current.version == "2.0.0"
    with pytest.raises(LookupError, match="no version other than"):
        await fetch_comparison(repo, "credit-limit", SINCE, DEPLOY, Baseline.parse("version:1.0.0"))


async def test_the_versions_panel(loaded: Any) -> None:
    repo, rows = loaded
    versions = await fetch_versions(repo, "credit-limit", SINCE, UNTIL)
    assert [r.version for r in versions.rows] == ["1.0.0", None, "2.0.0"]  # by first run
    firsts = {
        v: min(r["createdAt"] for part in rows.values() for r in part if r["strategyVersion"] == v)
        for v in ("1.0.0", "2.0.0", None)
    }
    assert versions.firstSeen == firsts  # exact, to the microsecond, at any time
    # Rules where a version (or the runs without one) ran first inside the window.
    assert versions.marks() == [(None, firsts[None]), ("2.0.0", DEPLOY)]
    in_window = {"1.0.0": rows["old"], "2.0.0": rows["new"], None: rows["bare"]}
    for row in versions.rows:
        mine = in_window[row.version]
        want = expected_of(mine)
        assert row.runs == want["total"]
        assert row.statusCounts == {k: v for k, v in want["status"].items() if v}
        assert row.codes == dict(want["codes"])
        assert row.cases == dict(want["cases"])
        assert row.lastSeen == max(r["createdAt"] for r in mine).replace(microsecond=0)
        assert row.p95DurationMs == pytest.approx(want["p95"], rel=0.01)
        points = [r["points"] for r in mine if r["points"] is not None]
        assert row.meanPoints == pytest.approx(sum(points) / len(points))
        assert versions.share(row) == pytest.approx(len(mine) / sum(map(len, in_window.values())))
    new = versions.get("2.0.0")
    assert new is not None and new.previous is None and new.hasPrevious  # None ran before it
    # Against the runs without a version (first seen before 2.0.0): E99 is new.
    assert new.newCodes is not None and "E99" in new.newCodes


async def test_new_codes_in_a_window_after_the_deploy(loaded: Any) -> None:
    """A window after 2.0.0's deploy: the version first seen before it (the runs without a
    version) ran in this window too, so 2.0.0's codes are compared with theirs here."""
    repo, rows = loaded
    after = (DEPLOY + timedelta(hours=1), UNTIL)
    ours = [r for r in rows["new"] if after[0] <= r["createdAt"] < after[1]]
    bare = [r for r in rows["bare"] if after[0] <= r["createdAt"] < after[1]]
    versions = await fetch_versions(repo, "credit-limit", *after)
    new = versions.get("2.0.0")
    assert new is not None and new.runs == len(ours)
    assert new.previous is None and new.hasPrevious
    bare_codes = {r["errorCode"] for r in bare if r["errorCode"]}
    assert bare_codes  # the bare runs fail too: the difference is not "every code"
    assert set(new.newCodes or ()) == {r["errorCode"] for r in ours if r["errorCode"]} - bare_codes


@pytest.mark.parametrize("rolled_up", [False, True])
async def test_a_deploy_with_the_previous_version_gone(
    empty_repo: StrategyExecutionLogRepository, engine: AsyncEngine, rolled_up: bool
) -> None:
    """1.0.0 ran only before the window: 2.0.0's new codes and stopped cases are against its
    runs in the hour before 2.0.0 was first seen."""
    rng = random.Random(3)
    old = versioned(rows_between(rng, T0 - timedelta(hours=3), 3, 300, codes=["E01"],
                                 cases=["a", "b"], fail=0.05), "1.0.0")  # fmt: skip
    new = versioned(rows_between(rng, T0, 3, 300, codes=["E01", "E02"], cases=["a"], fail=0.05),
                    "2.0.0")  # fmt: skip
    await empty_repo.insert_many(old + new)
    if rolled_up:
        await RollupJob(engine).catch_up()
    versions = await fetch_versions(empty_repo, "credit-limit", T0 + timedelta(hours=1),
                                    T0 + timedelta(hours=3))  # fmt: skip
    (row,) = versions.rows
    assert row.version == "2.0.0" and row.previous == "1.0.0"
    assert row.newCodes == ("E02",) and row.stoppedCases == ("b",) and row.newCases == ()


async def test_durations_per_bucket_against_the_rows(loaded: Any) -> None:
    repo, rows = loaded
    every = [r for part in ("old", "new", "bare") for r in rows[part]]
    bucket = duration_bucket((UNTIL - SINCE).total_seconds(), 300)
    assert bucket == 3600  # a 12 h window: hourly, from the hourly rollups
    points = await fetch_duration_series(repo, "credit-limit", SINCE, UNTIL, bucket)
    by_bucket: dict[datetime, list[float]] = {}
    for r in every:
        start = datetime.fromtimestamp(r["createdAt"].timestamp() // bucket * bucket, UTC)
        by_bucket.setdefault(start, []).append(r["durationMs"])
    assert [p.start for p in points] == sorted(by_bucket)
    for p in points:
        values = by_bucket[p.start]
        assert p.n == len(values)
        # Within the histogram's 1 % of a value at the rank (nearest-rank on the bins).
        low, high = (
            np.percentile(values, 95, method="lower"),
            np.percentile(values, 95, method="higher"),
        )
        assert low * 0.985 <= p.p95 <= high * 1.015
    # The slow deploy is visible: the median after it is about twice the median before.
    before = [p.p50 for p in points if p.start + timedelta(hours=1) <= DEPLOY]
    after = [p.p50 for p in points if p.start > DEPLOY]
    assert np.median(after) > 1.6 * np.median(before)
    # A version's line, and fine buckets from the audit rows (6 h or shorter windows).
    assert duration_bucket(6 * 3600, 300) == 300
    fine = await fetch_duration_series(
        repo, "credit-limit", DEPLOY, DEPLOY + timedelta(hours=1), 300, version="2.0.0"
    )
    counted = Counter(
        int(r["createdAt"].timestamp() // 300 * 300)
        for r in rows["new"]
        if DEPLOY <= r["createdAt"] < DEPLOY + timedelta(hours=1)
    )
    assert {int(p.start.timestamp()): p.n for p in fine} == dict(counted)


def test_quantiles_of_arrays_match_the_list_version() -> None:
    from stratlog import sketch

    rng = np.random.default_rng(4)
    for size in (1, 2, 7, 300):
        values = rng.lognormal(3, 1, size)
        bins = sorted(Counter(sketch.bins_of(values).tolist()).items())
        blob = sketch.pack(dict(bins[: len(bins) // 2]))
        keys, counts = sketch.merge_arrays([blob], bins[len(bins) // 2 :])
        assert list(zip(keys.tolist(), counts.tolist(), strict=True)) == bins
        qs = [0.0, 0.5, 0.95, 0.99, 1.0]
        assert sketch.quantiles_of_arrays(keys, counts, qs) == sketch.quantiles(bins, qs)
    empty = np.zeros(0, dtype=np.int64)
    assert sketch.quantiles_of_arrays(empty, empty, [0.5]) == [None]
    assert sketch.merge_arrays([], [])[0].tolist() == []


async def test_first_seen_mixes_rollups_and_rows_above_the_watermark(
    empty_repo: StrategyExecutionLogRepository, engine: AsyncEngine
) -> None:
    """A late row (written after the fold, created before every rolled-up run of its version)
    is the version's first run; a version only in unfolded rows is found too."""
    rolled = [make_row(strategyVersion="1.0.0", createdAt=T0 + timedelta(hours=h, minutes=7))
              for h in range(5)]  # fmt: skip
    await empty_repo.insert_many(rolled)
    await RollupJob(engine).catch_up()
    late = T0 - timedelta(hours=3, seconds=13.25)
    fresh = T0 + timedelta(hours=2, minutes=41, seconds=1.5)
    await empty_repo.insert_many([
        make_row(strategyVersion="1.0.0", createdAt=late),
        make_row(strategyVersion="1.1.0", createdAt=fresh),
        make_row(strategyVersion="1.1.0", createdAt=fresh + timedelta(minutes=1)),
    ])  # fmt: skip
    first = await empty_repo.first_seen(strategyId="credit-limit")
    assert first == {"1.0.0": late, "1.1.0": fresh}
    assert await empty_repo.first_seen(strategyId="credit-limit", versions=["1.1.0"]) == {
        "1.1.0": fresh
    }
    assert await empty_repo.first_seen(strategyId="nobody") == {}


async def test_no_deploy_rule_on_the_first_day_on_record(
    empty_repo: StrategyExecutionLogRepository,
) -> None:
    """After retention the oldest day held cannot tell a deploy from a running version."""
    await empty_repo.insert_many([
        make_row(strategyVersion="1.0.0", createdAt=T0),
        make_row(strategyVersion="1.1.0", createdAt=T0 + timedelta(hours=20)),  # day one
        make_row(strategyVersion="1.2.0", createdAt=T0 + timedelta(days=1, hours=2)),
    ])  # fmt: skip
    versions = await fetch_versions(empty_repo, "credit-limit", T0, T0 + timedelta(days=2))
    assert versions.dataStart == T0
    assert versions.marks() == [("1.2.0", T0 + timedelta(days=1, hours=2))]
    assert [r.version for r in versions.rows] == ["1.0.0", "1.1.0", "1.2.0"]
