"""Bulk writes (``insert_many``, prepared rows), on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.dialect import DriverStatement
from stratlog.model import StrategyExecutionLog
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.repository.bulk import prepare_bulk, prepare_bulk_columns
from tests.conftest import make_row


async def test_insert_many_round_trips_every_field(empty_repo: StrategyExecutionLogRepository):
    row = make_row(
        inputPayload={"a": [1, 2.5, None, {"é": "x'\""}]},
        outputPayload=["trace", 1],
        errorMessage="multi\nline",
        points=-3.25,
    )
    await empty_repo.insert_many([row])
    (got,) = await empty_repo.list_for_strategy(strategyId="credit-limit")
    assert {k: v for k, v in got.to_dict().items() if k != "id"} == row


async def test_prepared_columns_insert_what_insert_many_would(
    empty_repo: StrategyExecutionLogRepository, engine
):
    rows = [
        make_row(requestId="a", inputPayload={"k": [1, None]}, points=-1.5),
        make_row(requestId="b", status="error", errorCode="E", errorMessage="boom", points=None),
    ]
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    columns.pop("errorMessage")  # a missing attribute is NULL, as in insert_many
    prepared = prepare_bulk_columns(StrategyExecutionLog, engine.dialect, columns)
    by_row = prepare_bulk(StrategyExecutionLog, engine.dialect, rows)
    assert prepared[:2] == by_row[:2] and len(prepared[2]) == 2
    assert await empty_repo.insert_prepared(prepared) == 2
    got = await empty_repo.list_for_strategy(strategyId="credit-limit")
    assert [{k: v for k, v in g.to_dict().items() if k != "id"} for g in reversed(got)] == [
        {**row, "errorMessage": None} for row in rows
    ]
    with pytest.raises(ValueError, match="differ in length"):
        prepare_bulk_columns(StrategyExecutionLog, engine.dialect, {"nodes": [1], "status": []})


async def test_driver_statement_binds_like_sqlalchemy_and_raises_its_errors(
    empty_repo: StrategyExecutionLogRepository, engine: AsyncEngine
):
    """The driver-level read gets the model's bind processing (an aware time in another zone
    means the same instant in UTC) and turns the driver's own errors into SQLAlchemy's
    ``DBAPIError``, which the pages and commands catch."""
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    await empty_repo.insert_many([make_row(createdAt=at)])
    log = StrategyExecutionLog
    since = bindparam("since", None, type_=log.createdAt.type)
    counted = select(func.count()).select_from(log).where(log.createdAt >= since)
    statement = DriverStatement.compile(counted, engine.dialect)
    plus_two = timezone(timedelta(hours=2))
    async with engine.connect() as conn:
        for since_value, expected in ((at.astimezone(plus_two), 1), (at + timedelta(seconds=1), 0)):
            rows = await statement.rows(conn, {"since": since_value})
            assert [tuple(r) for r in rows] == [(expected,)]
        broken = DriverStatement.compile(select(text("x FROM no_such_table")), engine.dialect)
        with pytest.raises(DBAPIError):
            await broken.rows(conn, {})
