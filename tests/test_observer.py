"""The observer: outcome -> status, points only on ok, malformed input logged and dropped."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from stratlog.observer import InterpreterResult, Observer, outcome_status, to_row
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.service import Recorder
from tests.conftest import T0


def result(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "strategyId": "credit-limit",
        "strategyVersion": "3.2.1",
        "requestId": "req-9",
        "durationMs": 4.2,
        "nodes": 77,
        "caseName": "prime_customer",
        "points": 80.0,
        "facts": {"applicant": {"age": 33}},
        "output": {"trace": ["prime_customer"]},
        "finishedAt": T0,
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({}, "ok", None),
        ({"error": {"code": "MISSING_FACT", "message": "no income"}}, "error", "MISSING_FACT"),
        ({"timedOut": True}, "timeout", "TIMEOUT"),
        ({"nodeLimitExceeded": True}, "limit", "NODE_LIMIT_EXCEEDED"),
        ({"nodeLimitExceeded": True, "timedOut": True}, "limit", "NODE_LIMIT_EXCEEDED"),
        ({"timedOut": True, "error": {"code": "SLOW_LOOKUP"}}, "timeout", "SLOW_LOOKUP"),
    ],
)
def test_outcome_maps_to_status(overrides: dict[str, Any], status: str, code: str | None):
    parsed = InterpreterResult.model_validate(result(**overrides))
    assert outcome_status(parsed) == status
    row = to_row(parsed)
    assert (row.status, row.errorCode) == (status, code)
    assert row.points == (80.0 if status == "ok" else None)
    assert row.inputPayload == {"applicant": {"age": 33}} and row.createdAt == T0


async def test_observe_records_the_row(empty_repo: StrategyExecutionLogRepository):
    observer = Observer(Recorder(empty_repo))
    row = await observer.observe(result(error={"code": "E", "message": "boom"}))
    assert row is not None and row.id is not None
    stored = await empty_repo.get(row.id)
    assert stored is not None
    assert (stored.status, stored.errorCode, stored.errorMessage) == ("error", "E", "boom")


@pytest.mark.parametrize(
    "bad",
    [
        {},
        result(strategyId=""),
        result(strategyId=12),
        "not even a mapping",
        None,
        [1, 2],
    ],
)
async def test_malformed_input_without_a_strategy_is_dropped(
    empty_repo: StrategyExecutionLogRepository, caplog: pytest.LogCaptureFixture, bad: Any
):
    observer = Observer(Recorder(empty_repo))
    with caplog.at_level(logging.WARNING, logger="stratlog.observer"):
        assert await observer.observe(bad) is None
    assert (observer.dropped, observer.malformed) == (1, 0)
    assert any("dropped" in r.getMessage() for r in caplog.records)
    assert await empty_repo.list_strategies() == []


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        (result(durationMs=-1), "durationMs"),
        (result(nodes="many"), "nodes"),
        (result(finishedAt=(T0 + timedelta(hours=1)).replace(tzinfo=None)), "finishedAt"),
        (result(durationMs=float("nan")), "durationMs"),
        (result(error={"message": "no code"}), "error.code"),
        (result(points="lots", durationMs="7.5", nodes=3.0), "points"),
    ],
)
async def test_malformed_input_with_a_strategy_is_stored_as_an_error(
    empty_repo: StrategyExecutionLogRepository,
    caplog: pytest.LogCaptureFixture,
    bad: dict[str, Any],
    where: str,
):
    observer = Observer(Recorder(empty_repo))
    with caplog.at_level(logging.WARNING, logger="stratlog.observer"):
        row = await observer.observe(bad)
    assert row is not None and (observer.dropped, observer.malformed) == (0, 1)
    assert any("stored as MALFORMED_RESULT" in r.getMessage() for r in caplog.records)
    (stored,) = await empty_repo.list_for_strategy(strategyId="credit-limit")
    assert (stored.status, stored.errorCode, stored.points) == ("error", "MALFORMED_RESULT", None)
    assert where in (stored.errorMessage or "")
    assert stored.durationMs >= 0 and stored.nodes >= 0
    assert stored.requestId == "req-9"


async def test_malformed_storage_can_be_turned_off(empty_repo: StrategyExecutionLogRepository):
    observer = Observer(Recorder(empty_repo), store_malformed=False)
    assert await observer.observe(result(durationMs=-1)) is None
    assert observer.dropped == 1 and await empty_repo.list_strategies() == []
