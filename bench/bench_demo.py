"""Demo generator throughput: generation alone, insert_many alone, and the whole `write_demo`.

Run: `python -m bench.bench_demo [ROWS]` (default 200,000, the `make run` default), SQLite file in
a temporary folder, median of three runs each.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.demo import generate, write_demo
from stratlog.repository import StrategyExecutionLogRepository

END = datetime(2026, 3, 1, tzinfo=UTC)
RUNS = 3


def time_generation(rows: int) -> float:
    started = time.perf_counter()
    for _ in generate(rows, end=END):
        pass
    return rows / (time.perf_counter() - started)


async def fresh_repository(
    folder: Path, name: str
) -> tuple[StrategyExecutionLogRepository, object]:
    engine = make_engine(f"sqlite+aiosqlite:///{folder / name}")
    await upgrade(engine)
    return StrategyExecutionLogRepository(make_session_factory(engine)), engine


async def time_insert(rows: int, folder: Path, run: int) -> float:
    batches = list(generate(rows, end=END))
    repo, engine = await fresh_repository(folder, f"insert-{run}.db")
    started = time.perf_counter()
    for batch in batches:
        await repo.insert_many(batch)
    elapsed = time.perf_counter() - started
    await engine.dispose()  # type: ignore[attr-defined]
    return rows / elapsed


async def time_write_demo(rows: int, folder: Path, run: int) -> float:
    repo, engine = await fresh_repository(folder, f"demo-{run}.db")
    result = await write_demo(repo, rows, end=END)
    await engine.dispose()  # type: ignore[attr-defined]
    return result.rows_per_second


async def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        gen = [time_generation(rows) for _ in range(RUNS)]
        ins = [await time_insert(rows, folder, i) for i in range(RUNS)]
        demo = [await time_write_demo(rows, folder, i) for i in range(RUNS)]
    print(f"rows per run: {rows:,} (SQLite file, median of {RUNS})")
    print(f"{'stage':<40}{'rows/s':>12}")
    print(f"{'generation only (one process)':<40}{statistics.median(gen):>12,.0f}")
    print(f"{'insert_many only (batches of 5,000)':<40}{statistics.median(ins):>12,.0f}")
    print(f"{'write_demo (generate + insert)':<40}{statistics.median(demo):>12,.0f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
