"""Recorder health: counters published to the database, read back from another session."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.model import StrategyExecutionLog
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.service import Recorder
from stratlog.service.buffered import BufferedRecorder
from stratlog.service.health import HealthPublisher, fetch_health, read_health, read_rollup
from tests.conftest import make_row


async def test_published_counters_add_up(empty_repo: StrategyExecutionLogRepository):
    recorder = Recorder(empty_repo)
    await recorder.record(StrategyExecutionLog(**make_row()))
    await recorder.record(StrategyExecutionLog(**make_row(durationMs=-1)))  # refused
    buffered = BufferedRecorder(empty_repo)
    buffered.start()
    for _ in range(10):
        buffered.submit(make_row())
    await buffered.close()
    buffered.submit(make_row())  # dropped: closed
    first = HealthPublisher(empty_repo.session_factory, recorder, name="scorer-1")
    second = HealthPublisher(empty_repo.session_factory, buffered, name="scorer-2")
    assert await first.publish_now() and await second.publish_now()
    rows = {r.name: r for r in await read_health(empty_repo.session_factory)}
    awaited, queued = rows["scorer-1"], rows["scorer-2"]
    assert (awaited.kind, awaited.submitted, awaited.written, awaited.failed) == (
        "awaited",
        2,
        1,
        1,
    )
    assert (queued.kind, queued.submitted, queued.written, queued.dropped) == (
        "buffered",
        11,
        10,
        1,
    )
    for row in rows.values():
        assert row.submitted == row.written + row.dropped + row.failed + row.pending
    await first.publish_now()  # replaces, does not add a row
    assert len(await read_health(empty_repo.session_factory)) == 2


async def test_publisher_loop_and_stop(empty_repo: StrategyExecutionLogRepository):
    recorder = Recorder(empty_repo)
    publisher = HealthPublisher(empty_repo.session_factory, recorder, name="p", interval_s=0.01)
    publisher.start()
    await recorder.record(StrategyExecutionLog(**make_row()))
    await publisher.stop()
    (row,) = [r for r in await read_health(empty_repo.session_factory) if r.name == "p"]
    assert row.written == 1 and row.updatedAt.tzinfo is not None


async def test_rollup_status_follows_the_watermark(
    empty_repo: StrategyExecutionLogRepository, engine: AsyncEngine
):
    factory = empty_repo.session_factory
    before = await read_rollup(factory)
    assert (before.watermark, before.newestId, before.behind, before.ran) == (0, 0, 0, False)
    for _ in range(3):
        await empty_repo.insert_row(StrategyExecutionLog(**make_row()))
    pending = await read_rollup(factory)
    assert pending.newestId > 0 and pending.behind == pending.newestId and not pending.ran
    await RollupJob(engine).catch_up()
    health = await fetch_health(factory)  # the Health page's one call
    done = health.rollup
    assert (done.watermark, done.behind, done.ran) == (pending.newestId, 0, True)
    assert done.updatedAt is not None and done.updatedAt.tzinfo is not None
    await empty_repo.insert_row(StrategyExecutionLog(**make_row()))
    assert (await read_rollup(factory)).behind == 1
