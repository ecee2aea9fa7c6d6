"""Insights (issue 16, second part): hourly spikes, distribution shifts, payload lift and
node-budget headroom; each planted alone in rows built here, on both backends (folded into
the rollups and not), and the same volume with nothing changed finds nothing."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.service import drift
from stratlog.service.compare import Baseline
from stratlog.service.insights import (
    fetch_insights,
    lift_findings,
    parse_baseline,
    payload_fields,
    sample_slices,
    spike_threshold,
)
from stratlog.sketch import bins_of
from tests.conftest import T0, make_row

SINCE, UNTIL = T0, T0 + timedelta(hours=6)
BEFORE = SINCE - timedelta(hours=6)
PREVIOUS = Baseline("previous")
COUNTRIES = ["DE", "FR", "NL", "PL", "ES", "IT"]


def varied(
    rng: random.Random,
    start: Any,
    hours: float,
    n: int,
    *,
    fail: float = 0.05,
    codes: tuple[str, ...] = ("E01", "E02", "E03"),
    points: float = 1.0,
    slow: float = 1.0,
    nodes: float = 1.0,
    failing_country: str | None = None,
    failing_without_income: bool = False,
) -> list[dict[str, Any]]:
    """``n`` runs over ``hours`` with payloads, nodes and points that vary; failures fall on
    any payload unless ``failing_country`` / ``failing_without_income`` plant a cause."""
    out = []
    for _ in range(n):
        country = rng.choice(COUNTRIES)
        failed = rng.random() < fail
        if failing_country is not None and failed:
            country = failing_country if rng.random() < 0.7 else country
        applicant: dict[str, Any] = {"country": country, "age": rng.randint(18, 90),
                                     "income": round(rng.lognormvariate(10, 0.5), 2)}  # fmt: skip
        if failed and failing_without_income and rng.random() < 0.6:
            del applicant["income"]
        status = rng.choice(["error", "timeout"]) if failed else "ok"
        out.append(make_row(
            status=status, errorCode=rng.choice(codes) if failed else None,
            caseName=None if failed else rng.choice(["alpha", "beta", "gamma", None]),
            durationMs=rng.lognormvariate(2, 0.5) * slow,
            nodes=int(rng.lognormvariate(6, 0.3) * nodes),
            points=None if failed else rng.choice([10.0, 20.0, 40.0]) * points
            + rng.uniform(0, 5),
            inputPayload={"applicant": applicant, "channel": rng.choice(["web", "app"])},
            createdAt=start + timedelta(seconds=rng.uniform(0, hours * 3600)),
        ))  # fmt: skip
    return out


async def found_in(
    repo: StrategyExecutionLogRepository,
    engine: Any,
    rows: list[dict[str, Any]],
    *,
    fold: bool,
    baseline: Baseline = PREVIOUS,
    since: Any = SINCE,
    until: Any = UNTIL,
    **kw: Any,
) -> Any:
    await repo.insert_many(rows)
    if fold:
        await RollupJob(engine).catch_up()
    insights = await fetch_insights(repo, "credit-limit", since, until, baseline, **kw)
    return {(f.kind, f.subject) for f in insights.findings}, insights


def one(insights: Any, kind: str) -> Any:
    (finding,) = [f for f in insights.findings if f.kind == kind]
    return finding


@pytest.mark.parametrize("seed", range(8))
async def test_steady_varied_runs_yield_no_finding(empty_repo, engine, seed: int):
    rng = random.Random(100 + seed)
    rows = varied(rng, BEFORE, 6, 1500) + varied(rng, SINCE, 6, 1500)
    found, insights = await found_in(empty_repo, engine, rows, fold=seed % 2 == 0)
    assert found == set(), [f.summary for f in insights.findings]
    assert any("payloads" in check and "sampled" in check for check in insights.checks)


@pytest.mark.parametrize("fold", [False, True], ids=["raw", "rolled-up"])
@pytest.mark.parametrize(
    ("kind", "subject", "knob"),
    [
        ("points_shift", "points", {"points": 1.6}),
        ("duration_shift", "durationMs", {"slow": 1.6}),
        ("nodes_shift", "nodes", {"nodes": 1.6}),
    ],
)
async def test_a_distribution_shift(empty_repo, engine, fold, kind, subject, knob):
    rng = random.Random(11)
    rows = varied(rng, BEFORE, 6, 1500) + varied(rng, SINCE, 6, 1500, **knob)
    found, insights = await found_in(empty_repo, engine, rows, fold=fold)
    assert found == {(kind, subject)}, [f.summary for f in insights.findings]
    shift = one(insights, kind)
    assert shift.evidence["psi"] >= 0.1 and shift.evidence["ks"] > shift.evidence["ksCritical"]
    assert shift.evidence["runs"] >= 1400 and shift.evidence["baselineRuns"] >= 1400
    assert shift.evidence["p50"] > shift.evidence["baselineP50"]


async def test_a_small_sample_is_no_shift(empty_repo, engine):
    """Twice the points, but 300 runs a side: under MIN_SHIFT_RUNS, nothing to say."""
    rng = random.Random(12)
    rows = varied(rng, BEFORE, 6, 300) + varied(rng, SINCE, 6, 300, points=2.0)
    found, _ = await found_in(empty_repo, engine, rows, fold=False)
    assert not {k for k, _ in found} & {"points_shift"}


@pytest.mark.parametrize("fold", [False, True], ids=["raw", "rolled-up"])
async def test_a_failure_payload_lift(empty_repo, engine, fold):
    rng = random.Random(13)
    rows = varied(rng, BEFORE, 6, 1500) + varied(rng, SINCE, 6, 1500, failing_country="PL")
    found, insights = await found_in(empty_repo, engine, rows, fold=fold)
    assert found == {("failure_payload_lift", "inputPayload.applicant.country=PL")}
    lift = one(insights, "failure_payload_lift")
    e = lift.evidence
    now = rows[1500:]
    assert e["failingRuns"] == sum(r["status"] != "ok" for r in now)
    assert e["failedSample"] == e["failingRuns"]  # fewer than the sample's size: all of them
    assert e["failedWith"] == sum(
        r["status"] != "ok" and r["inputPayload"]["applicant"]["country"] == "PL" for r in now
    )
    assert e["lift"] >= 2 and e["support"] >= 0.25 and e["field"] == "applicant.country=PL"


async def test_a_missing_field_among_failures(empty_repo, engine):
    rng = random.Random(14)
    rows = varied(rng, SINCE, 6, 3000, fail=0.08, failing_without_income=True)
    found, insights = await found_in(empty_repo, engine, rows, fold=False)
    assert found == {("failure_payload_lift", "inputPayload.applicant.income missing")}
    assert one(insights, "failure_payload_lift").evidence["field"] is None  # no filter for it


async def test_the_payload_sample_follows_the_failures_and_reads_only_them(empty_repo):
    """3,000 failing runs, most of them in one hour, and ok runs all along: the plan gives
    that hour its share of a 400-run sample, no slice lies where nothing failed, the failing
    sample holds failing runs only and the ok sample comes from the same hours."""
    rng = random.Random(15)
    burst = SINCE + timedelta(hours=2)
    failing = [make_row(status="error", errorCode="E", caseName=None, points=None,
                        createdAt=(burst if i % 4 else SINCE) + timedelta(seconds=rng.uniform(
                            0, 3600))) for i in range(3000)]  # fmt: skip
    ok = [make_row(createdAt=SINCE + timedelta(seconds=rng.uniform(0, 6 * 3600)))
          for _ in range(2000)]  # fmt: skip
    await empty_repo.insert_many(failing + ok)
    hourly = await empty_repo.timeseries(
        strategyId="credit-limit", sinceDt=SINCE, untilDt=UNTIL, bucketSeconds=3600
    )
    per_hour: dict[int, int] = {}
    for p in hourly:
        if p["status"] != "ok":
            start = int(p["bucketStart"].timestamp())
            per_hour[start] = per_hour.get(start, 0) + p["count"]
    plan = sample_slices(per_hour, SINCE, UNTIL, 400, 40)
    assert sum(n for _, _, n in plan) == pytest.approx(400, abs=40)
    assert all(lo in (SINCE, burst) and hi - lo == timedelta(hours=1) for lo, hi, _ in plan)
    in_burst = sum(n for lo, _, n in plan if lo == burst)
    assert in_burst == pytest.approx(300, abs=30)  # three quarters of the failures
    failed = await empty_repo.payload_sample(strategyId="credit-limit", slices=plan, failing=True)
    oks = await empty_repo.payload_sample(strategyId="credit-limit", slices=plan, failing=False)
    assert len(failed) == sum(n for _, _, n in plan) and {s for s, _ in failed} == {"error"}
    assert {s for s, _ in oks} == {"ok"} and 0 < len(oks) <= len(failed)
    everything = sample_slices(per_hour, SINCE, UNTIL, 5000, 40)  # fewer failures than asked
    assert sum(n for _, _, n in everything) == 3000
    with pytest.raises(ValueError, match="slices"):
        await empty_repo.payload_sample(
            strategyId="credit-limit", slices=[(SINCE, UNTIL, 1)] * 65, failing=True
        )


def test_a_sample_plan_has_no_slice_without_failures() -> None:
    hour = int(SINCE.timestamp())
    plan = sample_slices({hour: 10, hour + 3600 * 5: 10}, SINCE, UNTIL, 1000, 40)
    assert [(lo - SINCE, hi - SINCE, n) for lo, hi, n in plan] == [
        (timedelta(0), timedelta(hours=1), 10), (timedelta(hours=5), timedelta(hours=6), 10)
    ]  # fmt: skip
    assert sample_slices({}, SINCE, UNTIL, 1000, 40) == []


def test_lift_needs_support_and_a_strong_z() -> None:
    ok = [{"a": "x"}] * 500 + [{"a": "y"}] * 500
    assert lift_findings([{"a": "x"}] * 30 + [{"a": "y"}] * 30, ok, 60, 1000) == []  # same mix
    assert lift_findings([{"a": "x"}] * 40, ok, 40, 1000) == []  # under MIN_LIFT_FAILED
    (f,) = lift_findings([{"a": "z"}] * 20 + [{"a": "x"}] * 40, ok, 60, 1000)
    assert f.subject == "inputPayload.a=z" and f.evidence["okWith"] == 0


def test_payload_fields_are_bounded_and_hostile_text_stays_text() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for i in range(20):
        node["k"] = {"v": i}
        node = node["k"]
    fields = payload_fields(deep)
    assert max(len(p.split(".")) for p in fields) <= 6
    wide = {f"f{i}": i for i in range(1000)}
    assert len(payload_fields(wide)) == 200
    hostile = {"<script>": "<img src=x onerror=alert(1)>", "long": "x" * 500, "l": [1, 2]}
    assert payload_fields(hostile) == {"<script>": "<img src=x onerror=alert(1)>"}
    assert payload_fields(None) == {} and payload_fields("text") == {}


# -- spiking_error_code: the 7 days before the window, hour by hour -------------------------


def week_and_day(rng: random.Random, spike: int = 0) -> list[dict[str, Any]]:
    """A week of 40 runs an hour, then a day of the same; ``spike`` extra E01 failures in one
    hour of the day."""
    rows = varied(rng, T0 - timedelta(days=7), 168, 40 * 168, fail=0.03)
    rows += varied(rng, T0, 24, 40 * 24, fail=0.03)
    at = T0 + timedelta(hours=9)
    rows += [make_row(status="error", errorCode="E01", caseName=None, points=None,
                      createdAt=at + timedelta(seconds=rng.uniform(0, 3600)))
             for _ in range(spike)]  # fmt: skip
    return rows


@pytest.mark.parametrize("fold", [False, True], ids=["raw", "rolled-up"])
async def test_a_spiking_error_code(empty_repo, engine, fold):
    rng = random.Random(16)
    found, insights = await found_in(
        empty_repo, engine, week_and_day(rng, spike=40), fold=fold, baseline=parse_baseline(None),
        since=T0, until=T0 + timedelta(days=1),
    )  # fmt: skip
    assert ("spiking_error_code", "E01") in found
    assert {k for k, _ in found} <= {"spiking_error_code", "failure_payload_lift"}
    spike = one(insights, "spiking_error_code")
    e = spike.evidence
    assert e["peakHour"] == (T0 + timedelta(hours=9)).isoformat()
    assert e["peakRuns"] > e["threshold"] >= 14 and e["baselineHours"] == 168
    assert (insights.baselineSince, insights.baselineUntil) == (T0 - timedelta(days=7), T0)


@pytest.mark.parametrize("seed", range(4))
async def test_a_steady_week_has_no_spike(empty_repo, engine, seed: int):
    rng = random.Random(200 + seed)
    found, insights = await found_in(
        empty_repo, engine, week_and_day(rng), fold=seed % 2 == 1, baseline=parse_baseline("week"),
        since=T0, until=T0 + timedelta(days=1),
    )  # fmt: skip
    assert found == set(), [f.summary for f in insights.findings]


def test_the_spike_threshold_rule() -> None:
    threshold, mean, _ = spike_threshold([0] * 160 + [1] * 8)
    assert threshold == 14 and mean == pytest.approx(8 / 168)
    threshold, mean, _ = spike_threshold([100] * 168)  # flat: Poisson spread, 2x the mean
    assert threshold == pytest.approx(200.0)
    threshold, _, _ = spike_threshold([10, 90] * 84)  # a spread baseline: mean + 4 sigma
    assert threshold == pytest.approx(50 + 4 * np.std([10, 90] * 84, ddof=1))


# -- node_budget_headroom ---------------------------------------------------------------------


def budget_rows(rng: random.Random, near: bool) -> list[dict[str, Any]]:
    rows = varied(rng, SINCE, 6, 2000, fail=0.0)
    for r in rows:
        r["nodes"] = int(rng.uniform(1000, 1950 if near else 1400))
    rows += [make_row(status="limit", errorCode="NODE_LIMIT", caseName=None, points=None,
                      nodes=2000, createdAt=SINCE + timedelta(minutes=10 * i))
             for i in range(10)]  # fmt: skip
    return rows


@pytest.mark.parametrize("near", [True, False])
async def test_node_budget_headroom(empty_repo, engine, near: bool):
    rng = random.Random(17)
    found, insights = await found_in(empty_repo, engine, budget_rows(rng, near), fold=near)
    if not near:
        assert ("node_budget_headroom", "nodes") not in found
        assert any("node budget of 2,000" in check for check in insights.checks)
        return
    assert ("node_budget_headroom", "nodes") in found
    e = one(insights, "node_budget_headroom").evidence
    assert e["budget"] == 2000 and e["budgetSource"] == "limit runs" and e["limitRuns"] == 10
    assert e["runs"] == 2000 and e["p99"] >= 1800 and 0.1 < e["nearShare"] < 0.3


async def test_a_configured_node_budget(empty_repo, engine):
    rng = random.Random(18)
    rows = varied(rng, SINCE, 6, 2000, fail=0.0)  # no limit runs: the budget is unknown
    found, insights = await found_in(empty_repo, engine, rows, fold=False)
    assert any("unknown" in check for check in insights.checks)
    p99 = float(np.percentile([r["nodes"] for r in rows], 99))
    found = {(f.kind, f.subject) for f in (await fetch_insights(
        empty_repo, "credit-limit", SINCE, UNTIL, Baseline("previous"),
        nodeBudget=int(p99 * 1.05))).findings}  # fmt: skip
    assert ("node_budget_headroom", "nodes") in found
    with pytest.raises(ValueError, match="node budget"):
        await fetch_insights(empty_repo, "credit-limit", SINCE, UNTIL, nodeBudget=0)


async def test_a_version_is_no_insights_baseline(empty_repo):
    with pytest.raises(ValueError, match="earlier window"):
        await fetch_insights(empty_repo, "credit-limit", SINCE, UNTIL, Baseline("version", "1"))
    with pytest.raises(ValueError, match="week, previous"):
        parse_baseline("version:1.0")
    assert parse_baseline(None).label == "the 7 days before the window"


# -- the measures --------------------------------------------------------------------------------

samples = st.lists(st.floats(0.001, 1e6, allow_nan=False), min_size=1, max_size=200)


def hist(values: list[float]) -> drift.Bins:
    keys, counts = np.unique(bins_of(np.array(values)), return_counts=True)
    return keys, counts


@given(samples, samples)
def test_psi_and_ks_are_zero_on_identical_inputs_and_symmetric(a: list[float], b: list[float]):
    x, y = hist(a), hist(b)
    assert drift.psi(x, x) == pytest.approx(0.0, abs=1e-12)
    assert drift.ks(x, x) == pytest.approx(0.0, abs=1e-12)
    assert drift.psi(x, (x[0], x[1] * 3)) == pytest.approx(0.0, abs=1e-9)  # proportional
    assert drift.psi(x, y) == pytest.approx(drift.psi(y, x), abs=1e-9)
    assert drift.ks(x, y) == pytest.approx(drift.ks(y, x), abs=1e-12)
    assert drift.psi(x, y) >= 0.0 and 0.0 <= drift.ks(x, y) <= 1.0 + 1e-12
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert drift.psi(x, empty) == 0.0 and drift.ks(empty, x) == 0.0


def test_ks_critical_shrinks_with_the_samples() -> None:
    assert drift.ks_critical(100, 100, 0.001) > drift.ks_critical(10_000, 10_000, 0.001)
    assert drift.ks_critical(0, 10, 0.001) == float("inf")


@pytest.mark.parametrize("fold", [False, True], ids=["raw", "rolled-up"])
async def test_twice_the_traffic_is_no_spike(empty_repo, engine, fold):
    """The day has twice the week's runs per hour, failures at the same rate: every code's
    hourly count doubles, its share of the runs does not."""
    rng = random.Random(19)
    rows = varied(rng, T0 - timedelta(days=7), 168, 40 * 168, fail=0.05)
    rows += varied(rng, T0, 24, 80 * 24, fail=0.05)
    found, insights = await found_in(
        empty_repo, engine, rows, fold=fold, baseline=parse_baseline("week"),
        since=T0, until=T0 + timedelta(days=1),
    )  # fmt: skip
    assert not {k for k, _ in found} & {"spiking_error_code"}, [
        f.summary for f in insights.findings
    ]


@pytest.mark.parametrize("seed", range(6))
async def test_a_small_window_of_many_cases_is_no_case_mix_shift(empty_repo, seed: int):
    """Ten cases, 220 ok runs against 1,400 of the same mix: the distance of two samples is
    near 0.1 by chance alone; the G test keeps it from being a finding."""
    rng = random.Random(300 + seed)
    cases = [f"case-{i}" for i in range(10)]

    def runs(start: Any, hours: float, n: int) -> list[dict[str, Any]]:
        return [make_row(caseName=rng.choice(cases),
                         createdAt=start + timedelta(seconds=rng.uniform(0, hours * 3600)))
                for _ in range(n)]  # fmt: skip

    await empty_repo.insert_many(runs(SINCE - timedelta(days=7), 168, 1400) + runs(SINCE, 6, 220))
    insights = await fetch_insights(empty_repo, "credit-limit", SINCE, UNTIL)
    assert not [f for f in insights.findings if f.kind == "case_mix_shift"], [
        f.summary for f in insights.findings
    ]


def test_psi_keeps_discrete_values_apart() -> None:
    """Points of 0, 10 and 20: 9 % / 51 % / 40 % against 1 % / 59 % / 40 % is a PSI of 0.187,
    each value in a range of its own (a light value is not merged into a heavy one)."""
    keys = np.array([0, 1, 2])
    now, then = (keys, np.array([9, 51, 40])), (keys, np.array([1, 59, 40]))
    assert len(drift.groups_of(now, then)) == 3
    assert drift.psi(now, then) == pytest.approx(0.1874, abs=1e-3)


def test_the_g_test_and_its_critical_value() -> None:
    same = {"a": 100, "b": 200, "c": 300}
    assert drift.g_test(same, {k: 2 * v for k, v in same.items()}) == (pytest.approx(0.0), 2)
    g, df = drift.g_test({"a": 300, "b": 100}, {"a": 100, "b": 300})
    assert df == 1 and g > drift.chi2_critical(1, 0.001)
    assert drift.chi2_critical(1, 0.001) == pytest.approx(10.83, rel=0.05)
    assert drift.chi2_critical(9, 0.001) == pytest.approx(27.88, rel=0.02)
