"""The demo generator: deterministic for a seed, and each strategy's story shows in the data."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import stratlog.demo
from stratlog.demo import (
    NODE_BUDGET,
    SPIKE_ERROR_CODE,
    generate,
    generate_batch,
    make_clock,
    make_plan,
    prepared_batch,
    write_demo,
)
from stratlog.repository import StrategyExecutionLogRepository

END = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return [r for batch in generate(60_000, 5, 7, seed=7, end=END) for r in batch]


def test_deterministic_for_a_seed(rows: list[dict[str, Any]]):
    again = [r for batch in generate(60_000, 5, 7, seed=7, end=END) for r in batch]
    assert again == rows
    other = [r for batch in generate(60_000, 5, 7, seed=8, end=END) for r in batch]
    assert other != rows


def test_shape(rows: list[dict[str, Any]]):
    assert len(rows) == 60_000
    stamps = [r["createdAt"] for r in rows]
    assert stamps == sorted(stamps)
    assert END - timedelta(days=7) <= stamps[0] and stamps[-1] < END
    assert {r["strategyId"] for r in rows} == {
        "credit-limit", "fraud-screen", "kyc-depth", "pricing-tier", "promo-eligibility",
    }  # fmt: skip
    for r in rows:
        assert (r["errorCode"] is None) == (r["status"] == "ok")
        assert (r["points"] is None) == (r["status"] != "ok")


def test_failed_inputs_agree_with_their_messages(rows: list[dict[str, Any]]):
    def incomes(code: str | None) -> list[Any]:
        found = [r["inputPayload"]["applicant"] for r in rows if r["errorCode"] == code]
        assert found, code
        return [applicant.get("income", "missing") for applicant in found]

    assert set(incomes("MISSING_FACT")) == {"missing"}  # "fact 'applicant.income' is not defined"
    assert set(incomes("TYPE_MISMATCH")) == {"n/a"}  # "cannot compare str with number"
    assert set(incomes("DIV_BY_ZERO")) == {0.0}  # "division by zero in 'debt / income'"
    fine = incomes(None)
    assert all(isinstance(i, float) and i > 0 for i in fine)


def of(rows: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["strategyId"] == strategy]


def test_healthy_strategy_is_healthy(rows: list[dict[str, Any]]):
    credit = of(rows, "credit-limit")
    ok = sum(r["status"] == "ok" for r in credit) / len(credit)
    assert ok > 0.99
    codes = Counter(r["errorCode"] for r in credit if r["status"] == "error")
    (top, n), *_ = codes.most_common()
    assert top == "MISSING_FACT" and n / sum(codes.values()) > 0.4  # skewed towards one code
    no_rule = sum(r["caseName"] is None and r["status"] == "ok" for r in credit) / len(credit)
    assert 0.05 < no_rule < 0.2


def test_error_spike_at_the_known_hour(rows: list[dict[str, Any]]):
    clock = make_clock(END, 7)
    fraud = of(rows, "fraud-screen")
    spike = [
        r
        for r in fraud
        if clock.spike_start <= r["createdAt"] < clock.spike_start + timedelta(hours=1)
    ]
    rest = [r for r in fraud if r not in spike]
    spike_rate = sum(r["errorCode"] == SPIKE_ERROR_CODE for r in spike) / len(spike)
    assert spike_rate > 0.3
    # the code fails a few runs all along (a spike of a known code, not a new one)
    rest_rate = sum(r["errorCode"] == SPIKE_ERROR_CODE for r in rest) / len(rest)
    assert 0.0005 < rest_rate < 0.005
    assert sum(r["status"] == "error" for r in rest) / len(rest) < 0.03
    assert clock.spike_start == END - timedelta(hours=6)


def test_node_limit_story(rows: list[dict[str, Any]]):
    kyc = of(rows, "kyc-depth")
    limited = [r for r in kyc if r["status"] == "limit"]
    assert 0.03 < len(limited) / len(kyc) < 0.15
    assert all(
        r["nodes"] == NODE_BUDGET and r["errorCode"] == "NODE_LIMIT_EXCEEDED" for r in limited
    )
    assert sum(r["status"] == "limit" for r in rows if r["strategyId"] != "kyc-depth") == 0


def test_durations_double_after_version_change(rows: list[dict[str, Any]]):
    clock = make_clock(END, 7)
    pricing = of(rows, "pricing-tier")
    before = [r["durationMs"] for r in pricing if r["createdAt"] < clock.version_change]
    after = [r["durationMs"] for r in pricing if r["createdAt"] >= clock.version_change]
    assert {r["strategyVersion"] for r in pricing if r["createdAt"] < clock.version_change} == {
        "1.4.0"
    }
    assert {r["strategyVersion"] for r in pricing if r["createdAt"] >= clock.version_change} == {
        "1.5.0"
    }
    ratio = statistics.median(after) / statistics.median(before)
    assert 1.8 < ratio < 2.2


def test_more_strategies_and_bad_parameters():
    extra = [r for b in generate(2000, 7, 1, seed=1, end=END) for r in b]
    assert {"strategy-06", "strategy-07"} <= {r["strategyId"] for r in extra}
    with pytest.raises(ValueError, match="rows"):
        next(generate(-1))
    with pytest.raises(ValueError, match="days"):
        next(generate(10, days=0))
    with pytest.raises(ValueError, match="strategies"):
        next(generate(10, strategies=0))


async def assert_demo_written(repo: StrategyExecutionLogRepository, rows: int) -> None:
    """The repository holds exactly ``generate(rows, 5, 2, seed=3, end=END)``."""
    batches = list(generate(rows, 5, 2, seed=3, end=END))
    expected = Counter(r["strategyId"] for b in batches for r in b)
    listed = await repo.list_strategies()
    assert {s["strategyId"]: s["count"] for s in listed} == dict(expected)
    newest = (await repo.list_for_strategy(strategyId="fraud-screen", limit=1))[0]
    last = [r for b in batches for r in b if r["strategyId"] == "fraud-screen"][-1]
    assert {k: v for k, v in newest.to_dict().items() if k != "id"} == last


@pytest.mark.parametrize("rows", [12_345, 31_234], ids=["in-process", "with-workers"])
@pytest.mark.parametrize("prepared", [False, True], ids=["dicts", "prepared"])
async def test_write_demo_equals_generate(
    empty_repo: StrategyExecutionLogRepository, engine, prepared: bool, rows: int
):
    seen: list[int] = []
    url = engine.url.render_as_string(hide_password=False) if prepared else None
    result = await write_demo(
        empty_repo, rows, 5, 2, seed=3, end=END, progress=seen.append, database_url=url
    )
    assert result.rows == rows and sum(seen) == rows
    await assert_demo_written(empty_repo, rows)


def test_worker_processes_build_the_same_batches():
    plan = make_plan(31_234, 5, 2, seed=3, end=END)
    url = "sqlite+aiosqlite:///never-opened.db"
    pool = stratlog.demo._start_workers()
    try:
        assert pool.submit(generate_batch, plan, 6).result() == generate_batch(plan, 6)
        assert pool.submit(prepared_batch, url, plan, 2).result() == prepared_batch(url, plan, 2)
    finally:
        pool.shutdown()


async def test_write_demo_without_worker_processes(
    empty_repo: StrategyExecutionLogRepository, monkeypatch, caplog
):
    def refuse() -> None:
        raise OSError("no processes here")

    monkeypatch.setattr(stratlog.demo, "_start_workers", refuse)
    result = await write_demo(empty_repo, 31_234, 5, 2, seed=3, end=END)
    assert result.rows == 31_234
    await assert_demo_written(empty_repo, 31_234)
    assert "demo worker processes did not start" in caplog.text


def test_the_deploy_brings_a_new_code_and_stops_a_case(rows: list[dict[str, Any]]):
    clock = make_clock(END, 7)
    pricing = of(rows, "pricing-tier")
    before = [r for r in pricing if r["createdAt"] < clock.version_change]
    after = [r for r in pricing if r["createdAt"] >= clock.version_change]
    assert END - clock.version_change <= timedelta(hours=18)  # inside the last day
    stale = [r for r in after if r["errorCode"] == "TIER_TABLE_STALE"]
    assert 0.02 < len(stale) / len(after) < 0.04
    assert all(r["status"] == "error" and r["errorMessage"] for r in stale)
    assert not [r for r in before if r["errorCode"] == "TIER_TABLE_STALE"]
    assert any(r["caseName"] == "gold" for r in before)
    assert not any(r["caseName"] == "gold" for r in after)
