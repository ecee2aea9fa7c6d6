"""Demo generator throughput (issue 2: at least 50,000 rows/s into SQLite), stage by stage.

Run: `python -m bench.bench_demo [ROWS]` (default 200,000, the `make run` default). Each figure
is the median of five runs into a fresh SQLite file in a temporary folder:

- generation alone, in this process: column-wise (what the workers build), and as row dicts
  (what `generate()` yields);
- generation plus the column types' bind processors (what one worker does per batch);
- `insert_prepared` alone, batches already built (what the inserting process does);
- `write_demo` end to end, as `stratlog demo` runs it: worker processes generate and bind while
  this process inserts. Worker start-up is included.

The load average is printed before and after: on a busy machine the end-to-end figure drops.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.demo import batch_columns, generate_batch, make_plan, prepared_batch, write_demo
from stratlog.repository import StrategyExecutionLogRepository

END = datetime(2026, 3, 1, tzinfo=UTC)
RUNS = 5
TARGET = 50_000


def rate(rows: int, action: Callable[[], object]) -> float:
    """Rows per second of one call."""
    started = time.perf_counter()
    action()
    return rows / (time.perf_counter() - started)


async def fresh(folder: Path, name: str) -> tuple[StrategyExecutionLogRepository, AsyncEngine, str]:
    url = f"sqlite+aiosqlite:///{folder / name}"
    engine = make_engine(url)
    await upgrade(engine)
    return StrategyExecutionLogRepository(make_session_factory(engine)), engine, url


async def time_insert(rows: int, folder: Path, run: int) -> float:
    repo, engine, url = await fresh(folder, f"insert-{run}.db")
    plan = make_plan(rows, end=END)
    batches = [prepared_batch(url, plan, i) for i in range(plan.batches)]
    started = time.perf_counter()
    for batch in batches:
        await repo.insert_prepared(batch)
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return rows / elapsed


async def time_write_demo(rows: int, folder: Path, run: int) -> float:
    repo, engine, url = await fresh(folder, f"demo-{run}.db")
    result = await write_demo(repo, rows, end=END, database_url=url)
    await engine.dispose()
    return result.rows_per_second


def line(name: str, samples: list[float], target: float | None = None) -> None:
    runs = "  ".join(f"{s:,.0f}" for s in samples)
    verdict = ""
    if target is not None:
        verdict = "  meets target" if statistics.median(samples) >= target else "  MISSES target"
    print(f"{name:<46}{statistics.median(samples):>10,.0f}   runs: {runs}{verdict}")


async def main(rows: int) -> None:
    plan = make_plan(rows, end=END)
    url = "sqlite+aiosqlite:///bench.db"  # only its dialect is used: nothing is opened
    everything = range(plan.batches)
    print(f"rows per run: {rows:,}; SQLite file; {os.cpu_count()} CPUs; median of {RUNS} runs")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'stage':<46}{'rows/s':>10}")
    line(
        "generation, column-wise (one process)",
        [rate(rows, lambda: [batch_columns(plan, i) for i in everything]) for _ in range(RUNS)],
    )
    line(
        "generation, row dicts (one process)",
        [rate(rows, lambda: [generate_batch(plan, i) for i in everything]) for _ in range(RUNS)],
    )
    line(
        "generation + bind processors (one process)",
        [
            rate(rows, lambda: [prepared_batch(url, plan, i) for i in everything])
            for _ in range(RUNS)
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        line(
            "insert_prepared only (batches of 5,000)",
            [await time_insert(rows, folder, i) for i in range(RUNS)],
        )
        line(
            "write_demo end to end (stratlog demo)",
            [await time_write_demo(rows, folder, i) for i in range(RUNS)],
            TARGET,
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
