"""Best-effort recording: nothing reaches the caller, whatever happens to the database."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text

from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.model import StrategyExecutionLog
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.service import Recorder
from tests.conftest import BACKENDS, make_row
from tests.net import free_port
from tests.pg import PostgresServer


def new_row(**overrides: object) -> StrategyExecutionLog:
    return StrategyExecutionLog(**make_row(**overrides))


async def test_record_writes_and_counts(empty_repo: StrategyExecutionLogRepository):
    recorder = Recorder(empty_repo)
    assert await recorder.record(new_row()) is True
    assert recorder.stats.attempted == 1 and recorder.stats.written == 1
    assert recorder.stats.failed == 0
    assert await empty_repo.count_by_status(strategyId="credit-limit") == {"ok": 1}


async def test_constraint_violation_is_counted_not_raised(
    empty_repo: StrategyExecutionLogRepository, caplog: pytest.LogCaptureFixture
):
    recorder = Recorder(empty_repo)
    with caplog.at_level(logging.WARNING, logger="stratlog.recording"):
        ok = await recorder.record(new_row(durationMs=-1.0, requestId="req-neg"))
    assert ok is False
    assert recorder.stats.failed == 1 and recorder.stats.written == 0
    messages = [r.getMessage() for r in caplog.records if r.name == "stratlog.recording"]
    assert len(messages) == 1
    assert "credit-limit" in messages[0] and "req-neg" in messages[0]


async def test_unreachable_database(caplog: pytest.LogCaptureFixture):
    engine = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nope")
    recorder = Recorder(StrategyExecutionLogRepository(make_session_factory(engine)))
    try:
        assert await recorder.record(new_row()) is False
        assert await recorder.record(new_row()) is False
    finally:
        await engine.dispose()
    assert recorder.stats.failed == 2 and recorder.stats.lastError


async def test_missing_sqlite_folder():
    engine = make_engine("sqlite+aiosqlite:////nonexistent-folder/x/y.db")
    recorder = Recorder(StrategyExecutionLogRepository(make_session_factory(engine)))
    try:
        assert await recorder.record(new_row()) is False
    finally:
        await engine.dispose()
    assert recorder.stats.failed == 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_table_dropped(backend: str, scratch_url):
    engine = make_engine(await scratch_url(backend))
    await upgrade(engine)
    recorder = Recorder(StrategyExecutionLogRepository(make_session_factory(engine)))
    try:
        assert await recorder.record(new_row()) is True
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE strategy_execution_log"))
        assert await recorder.record(new_row()) is False
    finally:
        await engine.dispose()
    assert recorder.stats.written == 1 and recorder.stats.failed == 1


async def test_engine_disposed_then_server_gone(private_postgres: PostgresServer):
    engine = make_engine(private_postgres.url)
    await upgrade(engine)
    recorder = Recorder(StrategyExecutionLogRepository(make_session_factory(engine)))
    await engine.dispose()
    private_postgres.stop("immediate")
    assert await recorder.record(new_row()) is False
    await engine.dispose()
    assert recorder.stats.failed == 1


async def test_server_stopped_then_back(private_postgres: PostgresServer):
    engine = make_engine(private_postgres.url)
    await upgrade(engine)
    recorder = Recorder(StrategyExecutionLogRepository(make_session_factory(engine)), timeout_s=5)
    try:
        assert await recorder.record(new_row()) is True
        private_postgres.stop()
        assert await recorder.record(new_row()) is False
        private_postgres.start()
        assert await recorder.record(new_row()) is True
    finally:
        await engine.dispose()
    assert (recorder.stats.attempted, recorder.stats.written, recorder.stats.failed) == (3, 2, 1)


class StalledRepository(StrategyExecutionLogRepository):
    async def insert_row(self, row: StrategyExecutionLog) -> None:
        await asyncio.sleep(3600)


async def test_stalled_database_times_out(repo: StrategyExecutionLogRepository):
    recorder = Recorder(StalledRepository(repo.session_factory), timeout_s=0.05)
    assert await recorder.record(new_row()) is False
    assert recorder.stats.failed == 1 and "Timeout" in (recorder.stats.lastError or "")


async def test_garbage_row_is_counted(repo: StrategyExecutionLogRepository):
    recorder = Recorder(repo)
    assert await recorder.record("not a row") is False  # type: ignore[arg-type]
    assert recorder.stats.failed == 1
