"""Insights from the comparison and the versions: each kind planted alone in rows built here,
on both backends, found with the right subject; the same volume with nothing changed finds
nothing."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratlog.repository import StrategyExecutionLogRepository
from stratlog.service.compare import Baseline
from stratlog.service.insights import fetch_insights, js_distance, ranked
from tests.conftest import T0, make_row
from tests.service.test_compare import rows_between

SINCE, UNTIL = T0, T0 + timedelta(hours=6)
BEFORE = SINCE - timedelta(hours=6)  # the previous window of the same length
CODES = ["E01", "E02", "E03"]
CASES: list[str | None] = ["alpha", "beta", "gamma", "delta", None]


def window_rows(rng: random.Random, start: Any, **kw: Any) -> list[dict[str, Any]]:
    defaults: dict[str, Any] = {"codes": CODES, "cases": CASES, "fail": 0.04}
    return rows_between(rng, start, 6, 1500, **{**defaults, **kw})


async def kinds(repo: StrategyExecutionLogRepository, rows: list[dict[str, Any]]) -> Any:
    await repo.insert_many(rows)
    found = await fetch_insights(repo, "credit-limit", SINCE, UNTIL, Baseline("previous"))
    return {(f.kind, f.subject) for f in found.findings}, found


@pytest.mark.parametrize("seed", range(20))
async def test_a_steady_strategy_yields_no_finding(
    empty_repo: StrategyExecutionLogRepository, seed: int
):
    rng = random.Random(seed)
    found, insights = await kinds(empty_repo, window_rows(rng, BEFORE) + window_rows(rng, SINCE))
    assert found == set(), [f.summary for f in insights.findings]
    assert (insights.baselineSince, insights.baselineUntil) == (BEFORE, SINCE)


async def test_a_new_error_code(empty_repo: StrategyExecutionLogRepository):
    rng = random.Random(2)
    now = window_rows(rng, SINCE, codes=[*CODES, "E99"], fail=0.08)
    found, insights = await kinds(empty_repo, window_rows(rng, BEFORE) + now)
    assert found == {("new_error_code", "E99")}
    (finding,) = insights.findings
    assert finding.evidence["runs"] == sum(r["errorCode"] == "E99" for r in now)
    assert finding.evidence["baselineRuns"] == 0 and finding.evidence["expectedInBaseline"] >= 4.6


async def test_a_rare_new_code_is_not_a_finding(empty_repo: StrategyExecutionLogRepository):
    """Two runs of a new code: the baseline would have expected under one; nothing to say."""
    rng = random.Random(3)
    now = window_rows(rng, SINCE)
    now += [make_row(status="error", errorCode="E77", caseName=None, points=None,
                     createdAt=SINCE + timedelta(minutes=m)) for m in (5, 50)]  # fmt: skip
    found, _ = await kinds(empty_repo, window_rows(rng, BEFORE) + now)
    assert found == set()


async def test_a_dormant_case(empty_repo: StrategyExecutionLogRepository):
    rng = random.Random(4)
    # gamma's runs go to alpha: the fallthrough keeps its share.
    now = window_rows(rng, SINCE, cases=["alpha", "beta", "alpha", "delta", None])
    found, insights = await kinds(empty_repo, window_rows(rng, BEFORE) + now)
    assert ("dormant_case", "gamma") in found
    assert found <= {("dormant_case", "gamma"), ("case_mix_shift", "caseName")}
    dormant = next(f for f in insights.findings if f.kind == "dormant_case")
    assert dormant.evidence["runs"] == 0 and dormant.evidence["baselineRuns"] >= 20


async def test_a_fallthrough_shift(empty_repo: StrategyExecutionLogRepository):
    rng = random.Random(5)
    now = window_rows(rng, SINCE, cases=["alpha", "beta", "gamma", "delta", None, None, None])
    found, insights = await kinds(empty_repo, window_rows(rng, BEFORE) + now)
    assert ("fallthrough_shift", None) in found
    shift = next(f for f in insights.findings if f.kind == "fallthrough_shift")
    assert shift.evidence["share"] > shift.evidence["baselineShare"]


async def test_a_case_mix_shift(empty_repo: StrategyExecutionLogRepository):
    """The same cases, weighted differently: no case stops, the mix moves."""
    rng = random.Random(6)
    now = window_rows(rng, SINCE, cases=["alpha"] * 6 + ["beta", "gamma", "delta", None])
    found, _ = await kinds(empty_repo, window_rows(rng, BEFORE) + now)
    assert ("case_mix_shift", "caseName") in found
    assert not {k for k, _ in found} & {"dormant_case", "new_error_code"}


async def test_a_suspect_version(empty_repo: StrategyExecutionLogRepository):
    rng = random.Random(7)
    old = window_rows(rng, BEFORE) + window_rows(rng, SINCE)
    deploy = SINCE + timedelta(hours=3)
    new = [
        {**r, "strategyVersion": "2.0.0"}
        for r in rows_between(rng, deploy, 3, 800, codes=CODES, cases=CASES, fail=0.15)
    ]
    found, insights = await kinds(empty_repo, old + new)  # fmt: skip
    assert ("suspect_version", "2.0.0") in found
    suspect = next(f for f in insights.findings if f.kind == "suspect_version")
    assert suspect.evidence["previousVersion"] == "1.0.0"
    assert suspect.evidence["runs"] == len(new)


def test_ranking_puts_critical_first() -> None:
    from stratlog.service.insights import Finding

    a = Finding("new_error_code", "A", "warning", 9.0, "")
    b = Finding("dormant_case", "B", "critical", 1.0, "")
    c = Finding("new_error_code", "C", "warning", 20.0, "")
    assert [f.subject for f in ranked([a, b, c])] == ["B", "C", "A"]


counts = st.dictionaries(st.sampled_from(["a", "b", "c", "d", None]), st.integers(1, 1000),
                         min_size=1)  # fmt: skip


@given(counts, counts)
def test_js_distance_is_a_bounded_symmetric_distance(p: dict[Any, int], q: dict[Any, int]) -> None:
    assert js_distance(p, p) == pytest.approx(0.0, abs=1e-7)
    assert js_distance(p, {k: 3 * v for k, v in p.items()}) == pytest.approx(0.0, abs=1e-7)
    assert js_distance(p, q) == pytest.approx(js_distance(q, p))
    assert 0.0 <= js_distance(p, q) <= 1.0 + 1e-9
    assert js_distance(p, {}) == 0.0


@pytest.mark.parametrize("slow", [1.0, 2.0])
async def test_a_deploy_is_suspect_only_when_the_new_version_is_worse(
    empty_repo: StrategyExecutionLogRepository, slow: float
):
    """2.0.0 with the same failures: suspect when twice as slow, nothing when it behaves the
    same (a deploy alone is not a finding)."""
    rng = random.Random(8)
    old = window_rows(rng, BEFORE) + rows_between(rng, SINCE, 3, 750, codes=CODES, cases=CASES,
                                                  fail=0.04)  # fmt: skip
    deploy = SINCE + timedelta(hours=3)
    new = [{**r, "strategyVersion": "2.0.0"}
           for r in rows_between(rng, deploy, 3, 750, codes=CODES, cases=CASES, fail=0.04,
                                 slow=slow)]  # fmt: skip
    found, insights = await kinds(empty_repo, old + new)
    if slow == 1.0:
        assert found == set(), [f.summary for f in insights.findings]
        return
    # half the window twice as slow: the durations' distribution moved too
    assert found == {("suspect_version", "2.0.0"), ("duration_shift", "durationMs")}
    (suspect,) = [f for f in insights.findings if f.kind == "suspect_version"]
    assert suspect.evidence["p95Ratio"] == pytest.approx(2.0, rel=0.25)
    assert "p95" in suspect.summary
