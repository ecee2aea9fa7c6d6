"""SQLite under a live writer: the dashboard's reads and 1,000 inserts/s share one WAL file.

A separate process (as the scoring engine would be) inserts about 1,000 rows/s in small batches
through the repository while this process runs the Overview queries and the runbook listing in a
loop, and a third process prunes expired rows (``stratlog prune``) and then runs the rollup job
beside them. No side may see "database is locked", every committed row must be counted, the
expired rows must be gone, and no reader may see a count go down.

Run on its own, this module is one of the other processes:
``python -m tests.test_sqlite_concurrency writer URL SECONDS RATE`` or ``... maintain URL SECONDS
INTERVAL``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.rollups.retention import prune
from stratlog.service import fetch_overview

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = "busy-writer"
WRITE_SECONDS = 5.0
RATE = 1_000  # rows per second
BATCH = 20  # rows per insert: one commit every 20 ms
READERS = 3
SEED_ROWS = 2_000
EXPIRED_ROWS = 10_000  # older than the retention: pruned while the writer writes
RETENTION = timedelta(days=90)
PRUNE_BATCH = 1_000
ROLLUP_EVERY_S = 0.5  # `stratlog rollup --watch 5` in production; more often here
LOCKED = "database is locked"


def writer_row(i: int, at: datetime) -> dict[str, Any]:
    """One small audit row of the writer's strategy."""
    failed = i % 10 == 0
    return {
        "strategyId": STRATEGY,
        "strategyVersion": "1.0.0",
        "requestId": f"w-{i}",
        "status": "error" if failed else "ok",
        "errorCode": "E_WRITER" if failed else None,
        "caseName": None if failed else f"case-{i % 4}",
        "durationMs": 1.0 + i % 50,
        "nodes": 20 + i % 30,
        "points": None if failed else float(i % 7),
        "inputPayload": {"i": i},
        "createdAt": at,
    }


async def write(url: str, seconds: float, rate: int) -> dict[str, Any]:
    """Insert ``rate`` rows/s in batches of ``BATCH`` for ``seconds``; report what happened."""
    engine = make_engine(url)
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    written, errors, locked, lateness = 0, [], 0, 0.0
    async with engine.connect() as conn:  # connected before saying "ready"
        await conn.execute(text("SELECT 1"))
    print("ready", flush=True)
    started = time.monotonic()
    batches = int(seconds * rate / BATCH)
    for n in range(batches):
        due = started + n * BATCH / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        lateness = max(lateness, time.monotonic() - due)
        now = datetime.now(UTC)
        rows = [writer_row(written + k, now) for k in range(BATCH)]
        try:
            written += await repo.insert_many(rows)
        except Exception as exc:  # counted and reported: the test asserts there are none
            locked += LOCKED in str(exc)
            errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
    elapsed = time.monotonic() - started
    await engine.dispose()
    return {"written": written, "errors": errors, "locked": locked, "seconds": elapsed,
            "maxLateness": lateness}  # fmt: skip


@dataclass
class ReaderLog:
    """What one reader saw: how often it read, its errors and the counts in order."""

    reads: int = 0
    errors: list[str] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    newest: list[int] = field(default_factory=list)


async def read_loop(
    repo: StrategyExecutionLogRepository, window: tuple[datetime, datetime], stop: asyncio.Event
) -> ReaderLog:
    """Overview and runbook queries back to back until ``stop``; errors are recorded."""
    log = ReaderLog()
    while not stop.is_set():
        try:
            overview = await fetch_overview(repo, STRATEGY, *window)
            listed = await repo.list_for_strategy(strategyId=STRATEGY, limit=200)
        except Exception as exc:  # recorded: the test asserts there are none
            log.errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
            continue
        log.reads += 1
        log.totals.append(overview.total)
        log.newest.append(max((r.id for r in listed), default=0))
        await asyncio.sleep(0)
    return log


async def maintain(url: str, seconds: float, interval: float) -> dict[str, Any]:
    """`stratlog prune --older-than 90d`, then `stratlog rollup --watch` (every ``interval`` s)."""
    engine = make_engine(url)
    job = RollupJob(engine)
    errors: list[str] = []
    runs: list[float] = []
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    try:
        pruned = await prune(engine, datetime.now(UTC) - RETENTION, batch_rows=PRUNE_BATCH)
    except Exception as exc:  # counted and reported: the test asserts there are none
        errors.append(f"prune: {type(exc).__name__}: {exc}".splitlines()[0])
        pruned = None
    prune_seconds = time.monotonic() - started
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            await job.catch_up()
        except Exception as exc:  # counted and reported: the test asserts there are none
            errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
        runs.append(time.monotonic() - started)
        await asyncio.sleep(interval)
    await engine.dispose()
    return {"runs": len(runs), "maxRunSeconds": max(runs, default=0.0), "errors": errors,
            "pruned": pruned.rows if pruned else None, "pruneSeconds": prune_seconds}  # fmt: skip


async def start(*args: str) -> asyncio.subprocess.Process:
    """This module in a child process (writer or maintenance), once it says it is ready."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.test_sqlite_concurrency", *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    ready = await asyncio.wait_for(child.stdout.readline(), 30)
    assert ready.strip() == b"ready", ready
    return child


async def finish(child: asyncio.subprocess.Process, limit: float) -> dict[str, Any]:
    """The child's JSON report (it stops by itself after its time)."""
    out, err = await asyncio.wait_for(child.communicate(), limit)
    assert child.returncode == 0, err.decode()[-2000:]
    report: dict[str, Any] = json.loads(out)
    return report


async def seed(url: str) -> None:
    """Schema, recent rows of the strategy, rows past retention, and their rollups."""
    engine = make_engine(url)
    try:
        await upgrade(engine)
        repo = StrategyExecutionLogRepository(make_session_factory(engine))
        expired = datetime.now(UTC) - RETENTION - timedelta(days=30)
        await repo.insert_many([writer_row(-i - 1, expired) for i in range(EXPIRED_ROWS)])
        recent = datetime.now(UTC) - timedelta(hours=2)
        await repo.insert_many([writer_row(-i - 1, recent) for i in range(SEED_ROWS)])
        await RollupJob(engine).catch_up()
    finally:
        await engine.dispose()


async def test_reads_beside_a_writer_at_1000_rows_per_second(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'concurrent.db'}"
    await seed(url)
    children: list[asyncio.subprocess.Process] = []
    engine = make_engine(url)  # the dashboard's engine: its own pool, WAL, busy timeout
    try:
        children.append(await start("writer", url, str(WRITE_SECONDS), str(RATE)))
        children.append(await start("maintain", url, str(WRITE_SECONDS), str(ROLLUP_EVERY_S)))
        repo = StrategyExecutionLogRepository(make_session_factory(engine))
        now = datetime.now(UTC)
        window = (now - timedelta(hours=3), now + timedelta(hours=1))
        stop = asyncio.Event()
        readers = [asyncio.create_task(read_loop(repo, window, stop)) for _ in range(READERS)]
        report = await finish(children[0], WRITE_SECONDS + 30)
        stop.set()
        logs = await asyncio.gather(*readers)
        maintenance = await finish(children[1], WRITE_SECONDS + 30)
        print(  # shown with -s or on failure
            f"writer: {report['written']} rows in {report['seconds']:.2f} s (max lateness "
            f"{report['maxLateness'] * 1000:.0f} ms); prune: {maintenance['pruned']} rows in "
            f"{maintenance['pruneSeconds']:.2f} s; rollup: {maintenance['runs']} runs, longest "
            f"{maintenance['maxRunSeconds'] * 1000:.0f} ms; readers: {[log.reads for log in logs]} "
            f"Overview+runbook reads"
        )

        assert report["errors"] == [] and report["locked"] == 0, report
        assert report["written"] == int(WRITE_SECONDS * RATE / BATCH) * BATCH
        assert report["seconds"] < WRITE_SECONDS * 1.5, report  # it kept up with 1,000 rows/s
        assert maintenance["errors"] == [] and maintenance["runs"] >= 2, maintenance
        assert maintenance["pruned"] == EXPIRED_ROWS, maintenance
        for log in logs:
            assert log.errors == [], log.errors[:5]
            assert log.reads >= 5
            assert log.totals == sorted(log.totals), "a reader saw the count go down"
            assert log.newest == sorted(log.newest), "a reader saw the newest row go back"
        assert max(log.totals[-1] for log in logs) > SEED_ROWS  # they did read during the writes

        expected = SEED_ROWS + report["written"]
        assert (await fetch_overview(repo, STRATEGY, *window)).total == expected
        async with engine.connect() as conn:
            counted = await conn.scalar(text("SELECT count(*) FROM strategy_execution_log"))
        assert counted == expected
        await RollupJob(engine).catch_up()
        assert (await fetch_overview(repo, STRATEGY, *window)).total == expected
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
        await engine.dispose()


if __name__ == "__main__":
    role, target, span = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if role == "writer":
        result = asyncio.run(write(target, span, int(sys.argv[4])))
    else:
        result = asyncio.run(maintain(target, span, float(sys.argv[4])))
    print(json.dumps(result), flush=True)
