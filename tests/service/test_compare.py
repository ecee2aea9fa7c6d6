"""The comparison with a baseline: every figure against numbers computed here from the rows,
on both backends, with rollups caught up and without; the noise rule on hand-made cases."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.service.compare import (
    Baseline,
    count_change,
    fetch_comparison,
    rate_change,
    trimmed,
)
from tests.conftest import T0, make_row

CODES = [f"E{i:02d}" for i in range(14)]
CASES = [f"case_{i:02d}" for i in range(25)]


def rows_between(
    rng: random.Random,
    start: Any,
    hours: float,
    n: int,
    *,
    codes: list[str],
    cases: list[str | None],
    fail: float,
    slow: float = 1.0,
) -> list[dict[str, Any]]:
    """``n`` runs spread over ``hours`` from ``start``."""
    out = []
    for _ in range(n):
        failed = rng.random() < fail
        status = rng.choice(["error", "timeout", "limit"]) if failed else "ok"
        out.append(
            make_row(
                status=status,
                errorCode=rng.choice(codes) if failed else None,
                caseName=None if failed else rng.choice(cases),
                durationMs=rng.lognormvariate(2, 0.5) * slow,
                points=None if failed else rng.uniform(0, 80),
                createdAt=start + timedelta(seconds=rng.uniform(0, hours * 3600)),
            )
        )
    return out


def expected_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of a window, computed from its rows in Python."""
    status = Counter(r["status"] for r in rows)
    ok = [r for r in rows if r["status"] == "ok"]
    return {
        "total": len(rows),
        "status": status,
        "codes": Counter(r["errorCode"] for r in rows if r["errorCode"] is not None),
        "cases": Counter(r["caseName"] for r in ok),
        "ok": len(ok),
        "p95": float(np.percentile([r["durationMs"] for r in rows], 95)) if rows else None,
    }


@pytest.mark.parametrize("rolled_up", [False, True])
@pytest.mark.parametrize("name", ["previous", "1d", "7d"])
async def test_every_figure_against_the_rows(
    empty_repo: StrategyExecutionLogRepository, engine: AsyncEngine, name: str, rolled_up: bool
):
    rng = random.Random(7)
    since, until = T0, T0 + timedelta(hours=6)
    baseline = Baseline.parse(name)
    then_since, then_until = baseline.window(since, until)
    # Now: new codes E12/E13 appear, case_24 and the fallthrough stop firing, runs get slower.
    now_rows = rows_between(rng, since, 6, 900, codes=CODES, cases=CASES[:24], fail=0.12, slow=2)
    then_rows = rows_between(
        rng, then_since, 6, 800, codes=CODES[:12], cases=[*CASES, None], fail=0.04
    )
    then_rows += [  # every old code at least once, so that only E12 and E13 are new
        make_row(status="error", errorCode=code, caseName=None, points=None,
                 createdAt=then_since + timedelta(minutes=i))
        for i, code in enumerate(CODES[:12])
    ]  # fmt: skip
    # Neighbours outside both windows must count nowhere.
    edge = [make_row(createdAt=until), make_row(createdAt=then_since - timedelta(microseconds=1))]
    await empty_repo.insert_many(now_rows + then_rows + edge)
    if rolled_up:
        await RollupJob(engine).catch_up()
    comparison = await fetch_comparison(empty_repo, "credit-limit", since, until, baseline)
    now, then = expected_of(now_rows), expected_of(then_rows)

    assert comparison.offset == baseline.offset(since, until)
    assert (comparison.before.since, comparison.before.until) == (then_since, then_until)
    head = comparison.headline()
    assert (head["runs"].now, head["runs"].before) == (now["total"], then["total"])
    failures_now = now["total"] - now["status"]["ok"]
    failures_then = then["total"] - then["status"]["ok"]
    assert head["failure"].now == pytest.approx(failures_now / now["total"])
    assert head["failure"].before == pytest.approx(failures_then / then["total"])
    assert head["failure"].significant  # 12 % against 4 % of ~850 runs
    for status in ("error", "timeout", "limit"):
        assert head[status].now == pytest.approx(now["status"][status] / now["total"])

    codes = comparison.codes()
    assert {c.errorCode: c.now for c in codes} == dict(now["codes"])
    assert all(c.before == then["codes"].get(c.errorCode, 0) for c in codes)
    assert {c.errorCode for c in codes if c.new} == set(now["codes"]) - set(then["codes"])
    assert {c.errorCode for c in codes if c.new} == {"E12", "E13"}

    cases = comparison.cases()
    firing = {c.caseName: c for c in cases if not c.stopped}
    stopped = {c.caseName: c for c in cases if c.stopped}
    assert {k: c.now for k, c in firing.items()} == dict(now["cases"])
    assert set(stopped) == set(then["cases"]) - set(now["cases"]) == {"case_24", None}
    for name_, c in {**firing, **stopped}.items():
        assert c.before == then["cases"].get(name_, 0)
        assert c.shareNow == pytest.approx(now["cases"].get(name_, 0) / now["ok"])
        assert c.shareBefore == pytest.approx(then["cases"].get(name_, 0) / then["ok"])
    assert all(c.now == 0 for c in stopped.values())

    p95 = comparison.durations()["p95"]
    assert p95.now == pytest.approx(now["p95"], rel=0.01)
    assert p95.before == pytest.approx(then["p95"], rel=0.01)
    assert p95.relative is not None and p95.relative > 0.5  # twice as slow

    shown = trimmed(comparison.current, 10)
    assert len(shown.errorCodes) == min(10, len(now["codes"])) and len(shown.caseNames) <= 10


async def test_the_same_behaviour_is_within_noise(empty_repo: StrategyExecutionLogRepository):
    """Two windows drawn from one distribution: no rate is beyond noise, nothing is new."""
    rng = random.Random(11)
    since, until = T0, T0 + timedelta(hours=2)
    rows = rows_between(rng, since - timedelta(hours=2), 4, 2000, codes=CODES[:4],
                        cases=CASES[:5], fail=0.05)  # fmt: skip
    await empty_repo.insert_many(rows)
    comparison = await fetch_comparison(
        empty_repo, "credit-limit", since, until, Baseline("previous")
    )
    head = comparison.headline()
    assert not any(head[k].significant for k in ("runs", "failure", "error", "timeout", "limit"))
    assert not any(c.new for c in comparison.codes())
    assert not any(c.stopped for c in comparison.cases())


def test_noise_rule_on_hand_made_cases():
    assert rate_change(1, 10, 2, 10).verdict == "too few runs to tell"
    assert rate_change(10, 1000, 12, 1000).verdict == "within noise"
    big = rate_change(60, 1000, 20, 1000)
    assert big.verdict == "beyond noise" and big.z is not None and big.z > 4
    assert big.delta == pytest.approx(0.04) and big.relative == pytest.approx(2.0)
    assert rate_change(0, 0, 3, 100).verdict == "too few runs to tell"
    assert rate_change(5, 100, 0, 0).now == 0.05
    assert count_change(3, 4).verdict == "too few runs to tell"
    assert count_change(1000, 1040).verdict == "within noise"
    assert count_change(1400, 1000).verdict == "beyond noise"


def test_baselines_and_bad_names():
    since, until = T0, T0 + timedelta(hours=6)
    assert Baseline.parse("previous").window(since, until) == (since - timedelta(hours=6), since)
    assert Baseline.parse("1d").window(since, until)[0] == since - timedelta(days=1)
    assert Baseline.parse(" 7d ").offset(since, until) == timedelta(days=7)
    for bad in ("banana", "", "versions:1.4.0", "x" * 10_000):
        with pytest.raises(ValueError, match="previous, 1d, 7d, version:X"):
            Baseline.parse(bad)
    version = Baseline.parse(" version: 1.4.0 ")
    assert (version.is_version, version.version, version.text) == (True, "1.4.0", "version:1.4.0")
    assert version.window(since, until) == (since, until)  # the same window
    assert version.label == "version 1.4.0 in the same window"
    for bad in ("version:", "version:  ", "version:" + "x" * 101):
        with pytest.raises(ValueError, match="version"):
            Baseline.parse(bad)
