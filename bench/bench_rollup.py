"""Rollup throughput and size: audit rows folded per second, and the rollup tables against the raw.

Eight cases, each on a fresh database: {SQLite, PostgreSQL 15} x {in time order, backfill} x
{demo keys, high-cardinality keys}.

- demo keys: the rows ``stratlog.demo`` generates (5 strategies, each with a handful of error
  codes and rule cases, about 60 (strategy, status, code, case) keys in all), 30 days;
- high-cardinality keys: 100 strategies, 20 error codes, 30 rule cases, every one drawn with
  Zipf-like weights (the k-th most frequent value weighted 1/k), 8 % error, 2 % timeout, 1 %
  limit, 10 % of ok runs without a case: a few thousand keys;
- in time order: ``createdAt`` ascends with the id, as a live recorder writes;
- backfill: ids ascend but ``createdAt`` is drawn uniformly over the 30 days, as when an old
  log is imported: every batch of the job touches buckets that already hold rows, so it
  merges them.

Rows are inserted through the repository's bulk path (COPY on PostgreSQL), then ANALYZE (as
autovacuum would), then ``RollupJob(engine, --batch-rows).catch_up()`` is timed. Sizes: rows and
bytes of the audit table and of the four rollup tables (``stratlog.model.ROLLUP_TABLES``:
status, error code, rule case, packed histograms), indexes included (``pg_total_relation_size``
on PostgreSQL, as the job left them and after VACUUM FULL; the ``dbstat`` virtual table on
SQLite, or the growth of the page count where dbstat is missing). Each case checks that the
daily status rollups add up to the audit table's row count.

Run: ``python -m bench.bench_rollup [--sqlite-rows 100000] [--pg-rows 50000]
[--batch-rows N] [--only sqlite|postgresql]`` (defaults: about 2 + 3 minutes on 2 cores;
batch_rows a quarter of the rows, so the job folds each case in 4 runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import (
    PG_SETTINGS,
    RAW,
    ROLLUPS,
    load_average,
    postgres_bytes,
    rollup_bytes,
    row_counts,
    short_name,
    sqlite_file_bytes,
    sqlite_sizes,
    write_results,
)
from stratlog import demo
from stratlog.db import make_engine, upgrade
from stratlog.model import StatusRollup
from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.repository.bulk import insert_prepared, prepare_bulk_columns
from stratlog.rollups import RollupJob, RollupRun
from tests.pg import PostgresServer

DAYS = 30
BATCH = 5_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Columns = dict[str, list[Any]]


# -- the rows ---------------------------------------------------------------------------------


def zipf(rng: np.random.Generator, names: list[str], size: int) -> np.ndarray:
    """``size`` draws from ``names``, the k-th weighted 1/k."""
    weights = 1.0 / np.arange(1, len(names) + 1)
    return np.array(names, dtype=object)[rng.choice(len(names), size, p=weights / weights.sum())]


def high_cardinality(rng: np.random.Generator, at: np.ndarray) -> Columns:
    """One batch of 100 strategies x 20 codes x 30 cases, all skewed, at the moments ``at``."""
    n = len(at)
    status = rng.choice(np.array(["ok", "error", "timeout", "limit"], dtype=object), n,
                        p=[0.89, 0.08, 0.02, 0.01])  # fmt: skip
    ok = status == "ok"
    code = np.where(status == "error", zipf(rng, [f"E{i:02d}" for i in range(20)], n), None)
    code = np.where(status == "timeout", "TIMEOUT", code)
    code = np.where(status == "limit", "NODE_LIMIT_EXCEEDED", code)
    case = zipf(rng, [f"case_{i:02d}" for i in range(30)], n)
    case = np.where(ok & (rng.random(n) >= 0.1), case, None)
    duration = np.round(rng.lognormal(np.log(8.0), 0.6, n), 3)
    points = np.where(ok, np.round(rng.normal(50, 20, n), 1), np.nan)
    return {
        "strategyId": zipf(rng, [f"strategy-{i:03d}" for i in range(100)], n).tolist(),
        "strategyVersion": ["1.0.0"] * n,
        "status": status.tolist(),
        "errorCode": code.tolist(),
        "caseName": case.tolist(),
        "durationMs": duration.tolist(),
        "nodes": ((duration * 20).astype(np.int64) + rng.integers(0, 50, n)).tolist(),
        "points": [None if np.isnan(p) else float(p) for p in points],
        "inputPayload": [{"amount": 120.5, "country": "DE", "channel": "web"}] * n,
        "createdAt": [EPOCH + timedelta(microseconds=int(t)) for t in at],
    }


def moments(
    rng: np.random.Generator, index: int, batches: int, start_us: int, end_us: int, backfill: bool
) -> np.ndarray:
    """Batch ``index``'s moments: its slice of the 30 days in order, or anywhere (backfill)."""
    if backfill:
        return rng.integers(start_us, end_us, BATCH)
    step = (end_us - start_us) // batches
    low = start_us + index * step
    return np.sort(rng.integers(low, low + step, BATCH))


def batches(keys: str, rows: int, end: datetime, backfill: bool) -> Iterator[Columns]:
    """The case's rows, ``BATCH`` at a time, ids ascending with the batches."""
    rng = np.random.default_rng(11)
    start = end - timedelta(days=DAYS)
    if keys == "demo":
        plan = demo.make_plan(rows, strategies=5, days=DAYS, seed=7, end=end)
        for index in range(plan.batches):
            columns = demo.batch_columns(plan, index)
            if backfill:
                at = rng.integers(_us(start), _us(end), len(columns["createdAt"]))
                columns["createdAt"] = [EPOCH + timedelta(microseconds=int(t)) for t in at]
            yield columns
        return
    count = -(-rows // BATCH)
    for index in range(count):
        at = moments(rng, index, count, _us(start), _us(end), backfill)
        columns = high_cardinality(rng, at)
        if index == count - 1 and rows % BATCH:
            columns = {k: v[: rows % BATCH] for k, v in columns.items()}
        yield columns


def _us(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


async def load(engine: AsyncEngine, columns: Iterator[Columns]) -> int:
    """Insert every batch through the repository's bulk path; returns the rows."""
    total = 0
    for batch in columns:
        prepared = prepare_bulk_columns(StrategyExecutionLog, engine.dialect, batch)
        async with engine.begin() as conn:
            total += await insert_prepared(conn, StrategyExecutionLog, prepared)
    return total


# -- sizes ------------------------------------------------------------------------------------


async def distinct_keys(engine: AsyncEngine) -> int:
    """(strategy, status, code, case) combinations in the audit table."""
    sql = ("SELECT count(*) FROM (SELECT DISTINCT strategy_id, status, error_code, case_name "
           f"FROM {RAW}) AS k")  # fmt: skip
    async with engine.connect() as conn:
        return int(await conn.scalar(text(sql)) or 0)


async def daily_total(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        sql = text(
            f"SELECT coalesce(sum(n), 0) FROM {StatusRollup.__tablename__} WHERE grain = 86400"
        )
        return int(await conn.scalar(sql) or 0)


# -- one case ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """What one case measured."""

    backend: str
    order: str
    keys: str
    distinct_keys: int
    rows: int
    runs: list[RollupRun]
    seconds: float
    counts: dict[str, int]
    bytes_: dict[str, int]
    compact: dict[str, int] | None
    size_source: str
    load: str

    def line(self) -> str:
        rollup_rows = sum(self.counts[t] for t in ROLLUPS)
        compact = ""
        if self.compact is not None:
            compact = f" ({_mb(rollup_bytes(self.compact))} MB after VACUUM FULL)"
        if self.size_source.startswith("page counts"):  # no dbstat: all under the first
            compact = " (sizes from page counts: status MB is all four rollup tables)"
        slowest = max(r.seconds for r in self.runs if r.rows) if self.rows else 0.0
        tables = "".join(f"{self.counts[t]:>12,}{_mb(self.bytes_[t]):>8}" for t in ROLLUPS)
        return (
            f"{self.backend:<11}{self.order:<10}{self.keys:<6}{self.distinct_keys:>6,}"
            f"{self.rows:>10,}{len([r for r in self.runs if r.rows]):>5}"
            f"{self.seconds:>8.1f}{self.rows / self.seconds:>10,.0f}{slowest:>8.1f}"
            f"{_mb(self.bytes_[RAW]):>10}{tables}"
            f"{rollup_rows / self.rows:>8.1%}{rollup_bytes(self.bytes_) / self.bytes_[RAW]:>8.1%}"
            f"{compact}  [{self.load}]"
        )


HEADER = (
    f"{'backend':<11}{'order':<10}{'keys':<6}{'keys#':>6}{'rows':>10}{'runs':>5}"
    f"{'s':>8}{'rows/s':>10}{'slow s':>8}{'raw MB':>10}"
    + "".join(f"{short_name(t) + ' rows':>12}{short_name(t)[:4] + ' MB':>8}" for t in ROLLUPS)
    + f"{'rows %':>8}{'bytes %':>8}"
)
LEGEND = (
    "keys#: distinct (strategy, status, code, case); runs: job runs (transactions) that folded "
    "rows; s: catch_up wall time; slow s: the slowest run; status / code / case / bins: rows "
    "and MB of the four rollup tables (status: 10 min, 1 h and 1 d buckets; error code, rule "
    "case and packed histograms: 1 h and 1 d); rows % / bytes %: the four rollup tables "
    "together against the audit table (bytes with indexes: dbstat on SQLite, "
    "pg_total_relation_size as the job left them on PostgreSQL)"
)


def _mb(value: int) -> str:
    return f"{value / 1e6:.1f}"


async def fold(engine: AsyncEngine, batch_rows: int) -> tuple[list[RollupRun], float]:
    runs: list[RollupRun] = []
    started = time.perf_counter()
    await RollupJob(engine, batch_rows).catch_up(progress=runs.append)
    return runs, time.perf_counter() - started


async def sqlite_case(
    tmp: Path, order: str, keys: str, rows: int, batch_rows: int, end: datetime
) -> Result:
    path = tmp / f"rollup-{order.replace(' ', '_')}-{keys}.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
        written = await load(engine, batches(keys, rows, end, order == "backfill"))
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
        before = sqlite_file_bytes(path)
        runs, seconds = await fold(engine, batch_rows)
        counts = await row_counts(engine)
        assert await daily_total(engine) == counts[RAW] == written, "daily rollups add up"
        keys_n = await distinct_keys(engine)
    finally:
        await engine.dispose()
    sizes, source = sqlite_sizes(path, before)
    path.unlink()
    return Result("SQLite", order, keys, keys_n, written, runs, seconds, counts, sizes, None,
                  source, load_average())  # fmt: skip


async def postgres_case(
    server: PostgresServer, order: str, keys: str, rows: int, batch_rows: int, end: datetime
) -> Result:
    name = f"rollup_{order.replace(' ', '_')}_{keys}"
    admin = make_engine(server.url)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"CREATE DATABASE {name}"))
    engine = make_engine(server.url.rsplit("/", 1)[0] + f"/{name}", pool_size=4)
    try:
        await upgrade(engine, partitioned=False)  # the plain table; bench_partitions compares
        written = await load(engine, batches(keys, rows, end, order == "backfill"))
        await _autocommit(engine, f"VACUUM ANALYZE {RAW}")
        runs, seconds = await fold(engine, batch_rows)
        counts = await row_counts(engine)
        assert await daily_total(engine) == counts[RAW] == written, "daily rollups add up"
        keys_n = await distinct_keys(engine)
        as_left = await postgres_bytes(engine)
        await _autocommit(engine, f"VACUUM FULL {', '.join(ROLLUPS)}")
        compact = await postgres_bytes(engine)
    finally:
        await engine.dispose()
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"DROP DATABASE {name}"))
    await admin.dispose()
    return Result("PostgreSQL", order, keys, keys_n, written, runs, seconds, counts, as_left,
                  compact, "pg_total_relation_size", load_average())  # fmt: skip


async def _autocommit(engine: AsyncEngine, sql: str) -> None:
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(sql))


CASES = [(order, keys) for keys in ("demo", "high") for order in ("in order", "backfill")]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite-rows", type=int, default=100_000)
    parser.add_argument("--pg-rows", type=int, default=50_000)
    parser.add_argument("--batch-rows", type=int, default=None,
                        help="rows per rollup run, the job's batch_rows (default: a quarter of the rows)")  # fmt: skip
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()

    def batch(rows: int) -> int:
        return args.batch_rows or max(1, -(-rows // 4))

    end = demo.floor_hour(datetime.now(UTC))
    lines = [
        f"Rollup catch-up of {DAYS} days of rows, batch_rows "
        f"{args.batch_rows or 'a quarter of the rows'}; "
        f"{os.cpu_count()} CPUs; {load_average()} at the start",
        LEGEND,
        "",
        HEADER + "  [load average after the case]",
    ]
    print("\n".join(lines), flush=True)
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            for order, keys in CASES:
                result = await sqlite_case(
                    Path(tmp), order, keys, args.sqlite_rows, batch(args.sqlite_rows), end
                )
                lines.append(result.line())
                print(lines[-1], flush=True)
    if args.only != "sqlite":
        server = PostgresServer()
        server.start(PG_SETTINGS)
        try:
            for order, keys in CASES:
                result = await postgres_case(
                    server, order, keys, args.pg_rows, batch(args.pg_rows), end
                )
                lines.append(result.line())
                print(lines[-1], flush=True)
        finally:
            server.cleanup()
    lines.append(f"({load_average()} at the end)")
    print(lines[-1])
    print(f"(written to {write_results('rollup.txt', lines)})")


if __name__ == "__main__":
    asyncio.run(main())
