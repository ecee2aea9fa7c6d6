"""The buffered recorder: submit never blocks, drops and failures are counted, close flushes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.model import StrategyExecutionLog
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.service.buffered import BufferedRecorder, BufferedStats
from tests.conftest import make_row
from tests.net import free_port
from tests.pg import PostgresServer


def balanced(stats: BufferedStats) -> bool:
    return stats.submitted == stats.written + stats.dropped + stats.failed + stats.pending


async def test_everything_submitted_is_written(empty_repo: StrategyExecutionLogRepository):
    recorder = BufferedRecorder(empty_repo, batch_size=300)
    recorder.start()
    for i in range(2_000):
        row = make_row(requestId=f"r{i}")
        assert recorder.submit(row if i % 2 else StrategyExecutionLog(**row))
    stats = await recorder.close()
    assert (stats.submitted, stats.written, stats.dropped, stats.failed) == (2000, 2000, 0, 0)
    assert await empty_repo.count_by_status(strategyId="credit-limit") == {"ok": 2000}


class StalledRepository(StrategyExecutionLogRepository):
    async def insert_many(self, rows: Sequence[Mapping[str, Any]]) -> int:
        await asyncio.sleep(3600)
        return 0


async def test_stalled_database_drops_and_counts(repo: StrategyExecutionLogRepository):
    recorder = BufferedRecorder(
        StalledRepository(repo.session_factory), max_queue=100, batch_size=10, write_timeout_s=60
    )
    recorder.start()
    results = [recorder.submit(make_row()) for _ in range(1_000)]
    await asyncio.sleep(0.1)  # the writer takes a batch and hangs on it
    results += [recorder.submit(make_row()) for _ in range(50)]
    stats = recorder.stats
    assert results.count(False) == stats.dropped >= 900
    assert balanced(stats)
    final = await recorder.close(timeout_s=0.2)
    assert final.pending == 0 and final.written == 0
    assert final.failed + final.dropped == final.submitted == 1050


async def test_submit_after_close_is_dropped(empty_repo: StrategyExecutionLogRepository):
    recorder = BufferedRecorder(empty_repo)
    recorder.start()
    await recorder.close()
    assert recorder.submit(make_row()) is False
    assert recorder.stats.dropped == 1


async def test_failing_database_counts_failures_and_logs_once(
    caplog: pytest.LogCaptureFixture,
):
    engine = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    recorder = BufferedRecorder(repo, batch_size=100, retries=1)
    with caplog.at_level(logging.WARNING, logger="stratlog.buffered"):
        recorder.start()
        for _ in range(500):
            recorder.submit(make_row())
        stats = await recorder.close(timeout_s=20)
    await engine.dispose()
    assert stats.written == 0 and stats.failed == 500 and stats.submitted == 500
    assert stats.lastError and "refused" in stats.lastError.lower()
    assert len([r for r in caplog.records if "not written" in r.getMessage()]) == 1


async def test_outage_then_recovery(private_postgres: PostgresServer):
    engine = make_engine(private_postgres.url)
    await upgrade(engine)
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    recorder = BufferedRecorder(repo, batch_size=50, retries=2)
    recorder.start()
    for _ in range(100):
        recorder.submit(make_row())
    await asyncio.sleep(0.5)
    private_postgres.stop()
    for _ in range(100):
        recorder.submit(make_row())
    await asyncio.sleep(0.5)
    private_postgres.start()
    for _ in range(100):
        recorder.submit(make_row())
    stats = await recorder.close(timeout_s=30)
    stored = (await repo.count_by_status(strategyId="credit-limit")).get("ok", 0)
    await engine.dispose()
    assert stats.submitted == 300 and stats.pending == 0
    assert stats.written == stored >= 200
    assert stats.written + stats.dropped + stats.failed == 300
