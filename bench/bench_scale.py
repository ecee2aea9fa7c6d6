"""Performance at scale: rollup-backed answers against the raw-table floor, in the same run.

PostgreSQL 15 (a throwaway server started here): 10 million rows, one strategy ("busy") holding
5 million of them over 30 days; SQLite: 1 million rows, half of them "busy". For windows of 1 h,
24 h, 7 d and 30 d ending now, each Overview panel's repository call and the whole
``fetch_overview`` are timed (median of several runs after a warm-up) with the rollups and
without them (``use_rollups=False``: plain SQL over the audit table, the floor a straightforward
implementation gets), plus PostgreSQL's exact ``percentile_cont``. Percentiles are checked
against numpy over the same rows. The buffered recorder's ``submit`` latency and sustained
ingest into PostgreSQL are measured last.

Run: ``python -m bench.bench_scale [--pg-rows 10000000] [--sqlite-rows 1000000] [--explain]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.model.strategy_execution_log import COVERING_INDEX_COLUMNS
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.service import choose_bucket_seconds, fetch_overview
from stratlog.service.buffered import BufferedRecorder
from tests.pg import PostgresServer

BUSY = "busy"
DAYS = 30
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
           "30d": timedelta(days=30)}  # fmt: skip
COLUMNS = [
    "strategy_id", "strategy_version", "status", "error_code", "case_name", "duration_ms",
    "nodes", "points", "input_payload", "created_at",
]  # fmt: skip
CASES = np.array(["prime", "standard", "thin_file", "high_util", "young", "gold", "silver", ""])
CODES = np.array(["MISSING_FACT", "TYPE_MISMATCH", "DIV_BY_ZERO", "UPSTREAM_UNAVAILABLE"])
PG_SETTINGS = {"shared_buffers": "2GB", "work_mem": "64MB", "effective_cache_size": "8GB",
               "jit": "off", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}  # fmt: skip


def frame(rng: np.random.Generator, n: int, start: datetime, end: datetime) -> pd.DataFrame:
    """``n`` rows in time order between start and end, half of them for the busy strategy."""
    span = (end - start).total_seconds()
    seconds = np.sort(rng.random(n) * span)
    status = rng.choice(
        np.array(["ok", "error", "timeout", "limit"]), n, p=[0.95, 0.03, 0.01, 0.01]
    )
    ok = status == "ok"
    code = np.where(status == "error", rng.choice(CODES, n, p=[0.5, 0.25, 0.15, 0.1]), "")
    code = np.where(status == "timeout", "TIMEOUT", code)
    code = np.where(status == "limit", "NODE_LIMIT_EXCEEDED", code)
    case = np.where(ok, rng.choice(CASES, n), "")
    duration = np.round(rng.lognormal(math.log(8.0), 0.6, n), 3)
    strategy = np.where(
        rng.random(n) < 0.5, BUSY, np.char.add("s", rng.integers(1, 50, n).astype(str))
    )
    return pd.DataFrame({
        "strategy_id": strategy,
        "strategy_version": "1.0.0",
        "status": status,
        "error_code": np.where(code == "", None, code),
        "case_name": np.where(case == "", None, case),
        "duration_ms": duration,
        "nodes": (duration * 20).astype(np.int64) + rng.integers(0, 50, n),
        "points": np.where(ok, np.round(rng.normal(50, 20, n), 1), np.nan),
        "input_payload": '{"amount": 120.5, "country": "DE", "channel": "web"}',
        "created_at": pd.to_datetime(start) + pd.to_timedelta(seconds, unit="s"),
    })  # fmt: skip


def chunks(total: int, end: datetime, seed: int = 1) -> Any:
    """The dataset as one frame per day, oldest first."""
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=DAYS)
    per_day = total // DAYS
    for day in range(DAYS):
        n = per_day if day < DAYS - 1 else total - per_day * (DAYS - 1)
        yield frame(rng, n, start + timedelta(days=day), start + timedelta(days=day + 1))


async def load_postgres(engine: AsyncEngine, rows: int, end: datetime) -> None:
    """COPY the dataset in, with the covering index built after the load."""
    async with engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_strategy_execution_log_covering"))
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        for i, df in enumerate(chunks(rows, end)):
            buffer = io.BytesIO(
                df.to_csv(index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f+00").encode()
            )
            await raw.copy_to_table(
                "strategy_execution_log", source=buffer, columns=COLUMNS, format="csv"
            )
            print(f"  loaded day {i + 1}/{DAYS}", end="\r", flush=True)
        await conn.commit()
    async with engine.connect() as conn:
        cols = ", ".join(COVERING_INDEX_COLUMNS)
        await conn.execute(
            text(
                f"CREATE INDEX ix_strategy_execution_log_covering ON strategy_execution_log ({cols})"
            )
        )
        await conn.commit()
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE strategy_execution_log"))


def load_sqlite(path: Path, rows: int, end: datetime) -> None:
    """executemany the dataset in, with the covering index built after the load."""
    con = sqlite3.connect(path)
    con.execute("DROP INDEX ix_strategy_execution_log_covering")
    placeholders = ", ".join("?" for _ in COLUMNS)
    sql = f"INSERT INTO strategy_execution_log ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    for df in chunks(rows, end):
        df["created_at"] = df["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        df = df.astype(object).where(df.notna(), None)
        con.executemany(sql, df.itertuples(index=False, name=None))
        con.commit()
    con.execute(
        f"CREATE INDEX ix_strategy_execution_log_covering ON strategy_execution_log ({', '.join(COVERING_INDEX_COLUMNS)})"
    )
    con.execute("ANALYZE")
    con.commit()
    con.close()


async def median_ms(call: Callable[[], Awaitable[Any]], runs: int) -> float:
    await call()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def panels(
    repo: StrategyExecutionLogRepository, since: datetime, until: datetime
) -> dict[str, Callable[[], Awaitable[Any]]]:
    scope = {"strategyId": BUSY, "sinceDt": since, "untilDt": until}
    bucket = choose_bucket_seconds((until - since).total_seconds())
    return {
        "count_by_status": lambda: repo.count_by_status(**scope),
        "count_by_error_code": lambda: repo.count_by_error_code(**scope),
        "count_by_case_name": lambda: repo.count_by_case_name(**scope),
        "duration_and_nodes_summary": lambda: repo.duration_and_nodes_summary(**scope),
        f"timeseries ({bucket}s buckets)": lambda: repo.timeseries(**scope, bucketSeconds=bucket),
        "duration bins (percentiles)": lambda: repo.value_bins(**scope),
        "points bins (histogram)": lambda: repo.value_bins(**scope, kind="points"),
        "fetch_overview (all panels)": lambda: fetch_overview(repo, BUSY, since, until),
    }


async def exact_percentile_cont(engine: AsyncEngine, since: datetime, until: datetime) -> Any:
    sql = text(
        "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) "
        "FROM strategy_execution_log WHERE strategy_id = :s AND created_at >= :a AND created_at < :b"
    )
    async with engine.connect() as conn:
        return (await conn.execute(sql, {"s": BUSY, "a": since, "b": until})).scalar()


async def percentile_error(
    repo: StrategyExecutionLogRepository, engine: AsyncEngine, since: datetime, until: datetime
) -> tuple[float, int]:
    """Worst relative error of the overview's p50/p95/p99 (durations and points) against numpy."""
    overview = await fetch_overview(repo, BUSY, since, until)
    sql = text("SELECT duration_ms, points FROM strategy_execution_log "
               "WHERE strategy_id = :s AND created_at >= :a AND created_at < :b")  # fmt: skip
    async with engine.connect() as conn:
        rows = (await conn.execute(sql, {"s": BUSY, "a": since, "b": until})).all()
    durations = np.array([r[0] for r in rows])
    points = np.array([r[1] for r in rows if r[1] is not None])
    worst = 0.0
    for got, values in ((overview.durations, durations), (overview.points, points)):
        exact = np.percentile(values, [50, 95, 99])
        for estimate, truth in zip((got.p50, got.p95, got.p99), exact, strict=True):
            worst = max(worst, abs(float(estimate) - truth) / abs(truth))  # type: ignore[arg-type]
    return worst, len(rows)


async def measure(name: str, engine: AsyncEngine, end: datetime, runs: int) -> list[str]:
    factory = make_session_factory(engine)
    fast = StrategyExecutionLogRepository(factory)
    raw = StrategyExecutionLogRepository(factory, use_rollups=False)
    lines = [f"\n{name}: median ms of {runs} runs after a warm-up (busy strategy)",
             f"{'window':<7}{'panel':<34}{'rollups':>10}{'raw floor':>12}{'ratio':>8}"]  # fmt: skip
    worst_error = 0.0
    for label, span in WINDOWS.items():
        since, until = end - span, end
        fast_calls, raw_calls = panels(fast, since, until), panels(raw, since, until)
        for panel, call in fast_calls.items():
            a = await median_ms(call, runs)
            b = await median_ms(raw_calls[panel], max(1, runs // 2))
            lines.append(f"{label:<7}{panel:<34}{a:>10.1f}{b:>12.1f}{b / a:>7.1f}x")
        if engine.dialect.name == "postgresql":
            exact = await median_ms(lambda s=since, u=until: exact_percentile_cont(engine, s, u), 1)
            lines.append(f"{label:<7}{'percentile_cont (exact, raw)':<34}{'':>10}{exact:>12.1f}")
        error, n = await percentile_error(fast, engine, since, until)
        worst_error = max(worst_error, error)
        lines.append(f"{label:<7}{'percentile error vs numpy':<34}{error:>9.3%}  over {n:,} rows")
        print("\n".join(lines[-len(fast_calls) - 3 :]), flush=True)
    lines.append(f"worst percentile error on {name}: {worst_error:.3%}")
    return lines


async def explain(engine: AsyncEngine, end: datetime) -> None:
    """Print PostgreSQL's plan for the 30-day status panel (edge and after-watermark parts)."""
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    captured: list[Any] = []
    original = repo._rows

    async def capture(stmt: Any) -> list[Any]:
        captured.append(stmt)
        return await original(stmt)

    repo._rows = capture  # type: ignore[method-assign]
    await repo.count_by_status(
        strategyId=BUSY, sinceDt=end - timedelta(days=30, minutes=17), untilDt=end
    )
    async with engine.connect() as conn:
        sql = str(captured[0].compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        for (line,) in (await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql))).all():
            print("  " + line)


async def ingest(engine: AsyncEngine, rate: int, seconds: float) -> list[str]:
    """submit() latency and sustained throughput of the buffered recorder into PostgreSQL."""
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    recorder = BufferedRecorder(repo, batch_size=2_000, max_queue=100_000)
    recorder.start()
    row = {"strategyId": "ingest", "status": "ok", "durationMs": 3.2, "nodes": 40, "points": 10.0,
           "caseName": "prime", "inputPayload": {"amount": 1}, "createdAt": datetime.now(UTC)}  # fmt: skip
    latencies: list[int] = []
    started = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            t0 = time.perf_counter_ns()
            recorder.submit(row)
            latencies.append(time.perf_counter_ns() - t0)
            sent += 1
        await asyncio.sleep(0.001)
    stats = await recorder.close(timeout_s=60)
    total = time.perf_counter() - started
    lat = np.array(latencies) / 1000
    return [
        f"\nbuffered recorder into PostgreSQL, producer at {rate:,} rows/s for {seconds:.0f} s:",
        f"  submit() latency: p50 {np.percentile(lat, 50):.1f} µs, p99 {np.percentile(lat, 99):.1f} µs, max {lat.max():.0f} µs",
        f"  submitted {stats.submitted:,} = written {stats.written:,} + dropped {stats.dropped:,} + failed {stats.failed:,} + pending {stats.pending}",
        f"  sustained ingest: {stats.written / total:,.0f} rows/s written (including the final flush)",
    ]  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg-rows", type=int, default=10_000_000)
    parser.add_argument("--sqlite-rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    end = datetime.now(UTC).replace(microsecond=0)
    report: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_path = Path(tmp) / "scale.db"
        engine = make_engine(f"sqlite+aiosqlite:///{sqlite_path}")
        await upgrade(engine)
        await engine.dispose()
        t0 = time.perf_counter()
        load_sqlite(sqlite_path, args.sqlite_rows, end)
        engine = make_engine(f"sqlite+aiosqlite:///{sqlite_path}")
        t1 = time.perf_counter()
        await RollupJob(engine, 500_000).catch_up()
        report.append(
            f"SQLite: loaded {args.sqlite_rows:,} rows in {t1 - t0:.0f} s, rollup {time.perf_counter() - t1:.0f} s"
        )
        print(report[-1], flush=True)
        report += await measure(f"SQLite, {args.sqlite_rows:,} rows", engine, end, args.runs)
        await engine.dispose()

    server = PostgresServer()
    server.start(PG_SETTINGS)
    try:
        engine = make_engine(server.url, pool_size=10)
        await upgrade(engine)
        t0 = time.perf_counter()
        await load_postgres(engine, args.pg_rows, end)
        t1 = time.perf_counter()
        await RollupJob(engine, 1_000_000).catch_up()
        async with engine.connect() as conn:  # what autovacuum would have done by now
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
        report.append(
            f"\nPostgreSQL: loaded {args.pg_rows:,} rows (COPY + index + VACUUM ANALYZE) in {t1 - t0:.0f} s, rollup {time.perf_counter() - t1:.0f} s"
        )
        print(report[-1], flush=True)
        if args.explain:
            await explain(engine, end)
        report += await measure(f"PostgreSQL, {args.pg_rows:,} rows", engine, end, args.runs)
        report += await ingest(engine, rate=30_000, seconds=10)
        await engine.dispose()
    finally:
        server.cleanup()
    print("\n".join(report))
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "scale.txt").write_text("\n".join(report) + "\n")
    print(f"\n(written to {results / 'scale.txt'}; pid {os.getpid()})")


if __name__ == "__main__":
    asyncio.run(main())
