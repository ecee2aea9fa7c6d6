"""Performance at scale: stratlog's Overview against the plain SQL a competent engineer would write.

Data set (both backends, generated here, seed 1): rows in time order over the 30 days ending
now; half of them for one strategy ("busy"), the rest spread over 49 others; status 95 % ok,
3 % error (4 codes, skewed), 1 % timeout, 1 % limit; 7 rule cases and "no rule matched" on ok
runs; durations lognormal around 8 ms; a small JSON input payload on every row. PostgreSQL 15 (a
throwaway server started here): ``--pg-rows`` (default 10 million); SQLite: ``--sqlite-rows``
(default 1 million). The covering index is built after the load, then VACUUM ANALYZE / ANALYZE,
then the rollup job catches up.

For windows of 1 h, 24 h, 7 d and 30 d ending now, every Overview panel and the whole Overview
are timed three ways, each with the same number of runs after one warm-up (median and min-max):

- ``stratlog``: the repository call / ``fetch_overview`` (rollups plus raw edges);
- ``stratlog, rollups off``: the same code with ``use_rollups=False`` (it reads raw rows only);
- ``plain SQL``: the floor. One literal GROUP BY statement per panel over the audit table (see
  ``PLAIN_SQL``): status counts, top 10 error codes, top 10 rule cases of the ok runs, the
  duration / nodes / points summary, the timeseries buckets, and p50/p95/p99 of duration and of
  points, with ``percentile_cont`` on PostgreSQL and, on SQLite (no percentile_cont), the values at the
  interpolation ranks picked with ``row_number()``. The whole plain Overview runs the seven
  statements concurrently, one connection each, as ``fetch_overview`` runs its queries. It
  draws no points histogram (``fetch_overview`` derives one from bins it reads anyway).

Both answers are checked against each other (counts equal) and the percentiles against numpy
over the same rows. Then K more rows are inserted above the rollup watermark and not rolled up
(``--behind-rows``, default a tenth of the data set: 1 million at full size), spread over the
newest days at the data set's own rate, and the Overview is timed again ("rollup K rows
behind"). Last, the buffered recorder into PostgreSQL at 30,000 rows/s: ``submit()`` latency
and the event-loop lag a 1 ms ticker task on the same loop sees while the writer prepares and
COPYs its batches.

Run: ``python -m bench.bench_scale [--pg-rows 10000000] [--sqlite-rows 1000000] [--runs 5]
[--behind-rows N] [--sqlite-behind-rows N] [--only sqlite|postgresql] [--explain]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import (
    PG_SETTINGS,
    Timing,
    load_average,
    postgres_bytes,
    row_counts,
    size_line,
    sqlite_bytes,
    timed,
    write_results,
)
from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.model.strategy_execution_log import COVERING_INDEX_COLUMNS
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.service import choose_bucket_seconds, fetch_overview
from stratlog.service.buffered import BufferedRecorder
from stratlog.service.overview import EXACT_LIMIT, Overview, _exact
from stratlog.service.stats import Percentiles, percentiles_from_bins
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


# -- the data set ---------------------------------------------------------------------------


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


def chunks(
    total: int, start: datetime, end: datetime, pieces: int, seed: int
) -> Iterator[pd.DataFrame]:
    """``total`` rows between start and end as ``pieces`` frames, oldest first."""
    rng = np.random.default_rng(seed)
    step = (end - start) / pieces
    per = total // pieces
    for i in range(pieces):
        n = per if i < pieces - 1 else total - per * (pieces - 1)
        yield frame(rng, n, start + step * i, start + step * (i + 1))


def dataset(total: int, end: datetime) -> Iterator[pd.DataFrame]:
    """The data set: one frame per day of the 30, oldest first."""
    return chunks(total, end - timedelta(days=DAYS), end, DAYS, seed=1)


def late_rows(total: int, rows: int, end: datetime) -> tuple[Iterator[pd.DataFrame], timedelta]:
    """``rows`` more rows over the newest days at the data set's rate (``rows / total`` of 30 d)."""
    span = timedelta(days=DAYS) * rows / total
    pieces = max(1, rows // 200_000)
    return chunks(rows, end - span, end, pieces, seed=2), span


async def copy_postgres(engine: AsyncEngine, frames: Iterator[pd.DataFrame]) -> None:
    """COPY frames into the audit table, in one transaction."""
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        for i, df in enumerate(frames):
            buffer = io.BytesIO(
                df.to_csv(index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f+00").encode()
            )
            await raw.copy_to_table(
                "strategy_execution_log", source=buffer, columns=COLUMNS, format="csv"
            )
            print(f"  copied part {i + 1}", end="\r", flush=True)
        await conn.commit()


async def vacuum_analyze(engine: AsyncEngine, table: str = "") -> None:
    """What autovacuum would have done by the time anyone reads (visibility map, statistics)."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"VACUUM ANALYZE {table}"))


async def load_postgres(engine: AsyncEngine, rows: int, end: datetime) -> None:
    """COPY the data set in, with the covering index built after the load."""
    async with engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_strategy_execution_log_covering"))
    await copy_postgres(engine, dataset(rows, end))
    async with engine.begin() as conn:
        cols = ", ".join(COVERING_INDEX_COLUMNS)
        await conn.execute(
            text(
                f"CREATE INDEX ix_strategy_execution_log_covering ON strategy_execution_log ({cols})"
            )
        )
    await vacuum_analyze(engine, "strategy_execution_log")


def insert_sqlite(path: Path, frames: Iterator[pd.DataFrame]) -> None:
    """executemany frames into the audit table."""
    con = sqlite3.connect(path)
    placeholders = ", ".join("?" for _ in COLUMNS)
    sql = f"INSERT INTO strategy_execution_log ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    for df in frames:
        df["created_at"] = df["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        df = df.astype(object).where(df.notna(), None)
        con.executemany(sql, df.itertuples(index=False, name=None))
        con.commit()
    con.close()


def load_sqlite(path: Path, rows: int, end: datetime) -> None:
    """Insert the data set, with the covering index built after the load."""
    con = sqlite3.connect(path)
    con.execute("DROP INDEX ix_strategy_execution_log_covering")
    con.close()
    insert_sqlite(path, dataset(rows, end))
    con = sqlite3.connect(path)
    con.execute(
        f"CREATE INDEX ix_strategy_execution_log_covering ON strategy_execution_log ({', '.join(COVERING_INDEX_COLUMNS)})"
    )
    con.execute("ANALYZE")
    con.commit()
    con.close()


# -- the floor: plain SQL, one GROUP BY statement per Overview panel --------------------------

#: The plain implementation, statement by statement: (panel, dialect) -> SQL. "any": both.
PLAIN_SQL: dict[tuple[str, str], str] = {
    ("status", "any"): """
        SELECT status, count(*) AS n
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
        GROUP BY status""",
    ("codes", "any"): """
        SELECT error_code, count(*) AS n
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
          AND error_code IS NOT NULL
        GROUP BY error_code
        ORDER BY n DESC, error_code
        LIMIT 10""",
    ("cases", "any"): """
        SELECT case_name, count(*) AS n
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
          AND status = 'ok'
        GROUP BY case_name
        ORDER BY n DESC, case_name NULLS LAST
        LIMIT 10""",
    ("summary", "any"): """
        SELECT count(*) AS n,
               avg(duration_ms), min(duration_ms), max(duration_ms), sum(duration_ms),
               avg(nodes), min(nodes), max(nodes), sum(nodes),
               sum(points)
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until""",
    ("timeseries", "postgresql"): """
        SELECT floor(extract(epoch FROM created_at) / :bucket) * :bucket AS bucket_start,
               status, count(*) AS n
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
        GROUP BY 1, 2
        ORDER BY 1, 2""",
    ("timeseries", "sqlite"): """
        SELECT CAST(strftime('%s', created_at) AS INTEGER) / :bucket * :bucket AS bucket_start,
               status, count(*) AS n
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
        GROUP BY 1, 2
        ORDER BY 1, 2""",
    ("duration", "postgresql"): """
        SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms)
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until""",
    ("points", "postgresql"): """
        SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY points)
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until""",
    # SQLite has no percentile_cont: sort once, keep the values at floor(q (n - 1)) and the
    # next rank for each q, interpolate those few in Python (numpy's default, like
    # percentile_cont).
    ("duration", "sqlite"): """
        WITH ranked AS (
            SELECT duration_ms AS value,
                   row_number() OVER (ORDER BY duration_ms) - 1 AS rank,
                   count(*) OVER () AS n
            FROM strategy_execution_log
            WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
        )
        SELECT rank, value, n FROM ranked
        WHERE rank IN (CAST(0.5 * (n - 1) AS INTEGER), CAST(0.5 * (n - 1) AS INTEGER) + 1,
                       CAST(0.95 * (n - 1) AS INTEGER), CAST(0.95 * (n - 1) AS INTEGER) + 1,
                       CAST(0.99 * (n - 1) AS INTEGER), CAST(0.99 * (n - 1) AS INTEGER) + 1)""",
    ("points", "sqlite"): """
        WITH ranked AS (
            SELECT points AS value,
                   row_number() OVER (ORDER BY points) - 1 AS rank,
                   count(*) OVER () AS n
            FROM strategy_execution_log
            WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
              AND points IS NOT NULL
        )
        SELECT rank, value, n FROM ranked
        WHERE rank IN (CAST(0.5 * (n - 1) AS INTEGER), CAST(0.5 * (n - 1) AS INTEGER) + 1,
                       CAST(0.95 * (n - 1) AS INTEGER), CAST(0.95 * (n - 1) AS INTEGER) + 1,
                       CAST(0.99 * (n - 1) AS INTEGER), CAST(0.99 * (n - 1) AS INTEGER) + 1)""",
}
PLAIN_PANELS = ("status", "codes", "cases", "summary", "timeseries", "duration", "points")


def plain_statement(panel: str, dialect: str) -> TextClause:
    """The plain statement of one panel on one backend."""
    return text(PLAIN_SQL.get((panel, dialect)) or PLAIN_SQL[(panel, "any")])


def ranked_percentiles(rows: Sequence[Any]) -> list[float | None]:
    """p50/p95/p99 from the (rank, value, n) rows of the SQLite statement, as numpy does."""
    if not rows:
        return [None, None, None]
    values = {int(rank): float(value) for rank, value, _ in rows}
    n = int(rows[0][2])
    answers: list[float | None] = []
    for q in (0.5, 0.95, 0.99):
        position = q * (n - 1)
        low = int(position)
        high = values.get(low + 1, values[low])
        answers.append(values[low] + (high - values[low]) * (position - low))
    return answers


async def plain_panel(engine: AsyncEngine, panel: str, params: dict[str, Any]) -> Any:
    """Run one panel's plain statement on a connection of its own; rows (or p50/p95/p99)."""
    dialect = engine.dialect.name
    async with engine.connect() as conn:
        rows = (await conn.execute(plain_statement(panel, dialect), params)).all()
    if panel in ("duration", "points"):
        if dialect == "sqlite":
            return ranked_percentiles(rows)
        return list(rows[0][0]) if rows[0][0] is not None else [None, None, None]
    return rows


async def plain_overview(engine: AsyncEngine, params: dict[str, Any]) -> dict[str, Any]:
    """Every panel's plain statement at once, one connection each."""
    results = await asyncio.gather(*(plain_panel(engine, p, params) for p in PLAIN_PANELS))
    return dict(zip(PLAIN_PANELS, results, strict=True))


# -- the measurements -----------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """One Overview panel: stratlog's call for a repository, and the plain statement's name."""

    name: str
    stratlog: Callable[[StrategyExecutionLogRepository], Awaitable[Any]]
    plain: str | None  # None: the whole plain Overview


async def stratlog_percentiles(
    repo: StrategyExecutionLogRepository, scope: dict[str, Any], kind: str, total: int
) -> Percentiles:
    """The percentile part of ``fetch_overview`` for one kind: bins, exact order statistics
    for windows of at most ``EXACT_LIMIT`` runs (the service's own ``_exact``)."""
    bins = await repo.value_bins(**scope, kind=kind)
    if total > EXACT_LIMIT:
        return percentiles_from_bins(bins)
    return await _exact(repo, scope, kind, sum(n for _, n in bins))


def panels(since: datetime, until: datetime, total: int) -> list[Panel]:
    """The Overview's panels for one window of the busy strategy (``total`` runs in it)."""
    scope: dict[str, Any] = {"strategyId": BUSY, "sinceDt": since, "untilDt": until}
    bucket = choose_bucket_seconds((until - since).total_seconds())
    return [
        Panel("status counts", lambda r: r.count_by_status(**scope), "status"),
        Panel("top 10 error codes", lambda r: r.count_by_error_code(**scope, limit=10), "codes"),
        Panel("top 10 cases (ok runs)",
              lambda r: r.count_by_case_name(**scope, limit=10, status="ok"), "cases"),
        Panel("duration/nodes/points summary",
              lambda r: r.duration_and_nodes_summary(**scope), "summary"),
        Panel(f"timeseries ({bucket} s buckets)",
              lambda r: r.timeseries(**scope, bucketSeconds=bucket), "timeseries"),
        Panel("duration p50/p95/p99",
              lambda r: stratlog_percentiles(r, scope, "duration", total), "duration"),
        Panel("points p50/p95/p99",
              lambda r: stratlog_percentiles(r, scope, "points", total), "points"),
        Panel("Overview, all panels", lambda r: fetch_overview(r, BUSY, since, until), None),
    ]  # fmt: skip


def params_of(since: datetime, until: datetime) -> dict[str, Any]:
    """The plain statements' parameters for one window."""
    bucket = choose_bucket_seconds((until - since).total_seconds())
    return {"s": BUSY, "since": since, "until": until, "bucket": bucket}


def plain_call(engine: AsyncEngine, panel: Panel, params: dict[str, Any]) -> Any:
    if panel.plain is None:
        return lambda: plain_overview(engine, params)
    name = panel.plain
    return lambda: plain_panel(engine, name, params)


async def window_rows(engine: AsyncEngine, since: datetime, until: datetime) -> Any:
    """Every duration and (non-null) point of the window, for numpy."""
    sql = text("SELECT duration_ms, points FROM strategy_execution_log "
               "WHERE strategy_id = :s AND created_at >= :a AND created_at < :b")  # fmt: skip
    async with engine.connect() as conn:
        rows = (await conn.execute(sql, {"s": BUSY, "a": since, "b": until})).all()
    durations = np.array([r[0] for r in rows])
    points = np.array([r[1] for r in rows if r[1] is not None])
    return durations, points


def relative_error(got: list[float | None], truth: Any) -> float:
    """Worst relative error of p50/p95/p99 against the true values."""
    return max(
        abs(float(g) - t) / abs(t) if g is not None else math.inf
        for g, t in zip(got, truth, strict=True)
    )


def check(overview: Overview, plain: dict[str, Any]) -> None:
    """The plain floor and stratlog answer the same: counts, codes, cases, totals."""
    assert overview.statusCounts == {s: int(n) for s, n in plain["status"]}, "status counts"
    assert {c["errorCode"]: c["count"] for c in overview.errorCodes} == {
        code: int(n) for code, n in plain["codes"]
    }, "error codes"
    assert {c["caseName"]: c["count"] for c in overview.caseNames} == {
        case: int(n) for case, n in plain["cases"]
    }, "cases"
    assert overview.summary["count"] == int(plain["summary"][0][0]), "summary count"
    assert sum(p["count"] for p in overview.timeseries) == sum(
        int(r[2]) for r in plain["timeseries"]
    )


HEADER = (
    f"{'window':<7}{'panel':<32}{'stratlog':>22}{'stratlog, rollups off':>24}"
    f"{'plain SQL':>22}{'plain/stratlog':>16}"
)


async def measure(
    name: str, engine: AsyncEngine, end: datetime, runs: int
) -> tuple[list[str], dict[str, Timing]]:
    """The three-way table for every window; returns the lines and the Overview timings."""
    factory = make_session_factory(engine)
    fast = StrategyExecutionLogRepository(factory)
    raw = StrategyExecutionLogRepository(factory, use_rollups=False)
    lines = [f"\n{name}: ms per call, median (min-max) of {runs} runs after a warm-up, "
             f"busy strategy; {load_average()} at the start", HEADER]  # fmt: skip
    print("\n".join(lines), flush=True)
    overview_times: dict[str, Timing] = {}
    for label, span in WINDOWS.items():
        since, until = end - span, end
        params = params_of(since, until)
        plain = await plain_overview(engine, params)
        total = int(plain["summary"][0][0])
        for panel in panels(since, until, total):
            a = await timed(lambda p=panel: p.stratlog(fast), runs)
            b = await timed(lambda p=panel: p.stratlog(raw), runs)
            c = await timed(plain_call(engine, panel, params), runs)
            lines.append(f"{label:<7}{panel.name:<32}{a.cell()}{b.cell(24)}{c.cell()}"
                         f"{c.median / a.median:>15.1f}x")  # fmt: skip
            print(lines[-1], flush=True)
            if panel.plain is None:
                overview_times[label] = a
        overview = await fetch_overview(fast, BUSY, since, until)
        check(overview, plain)
        durations, points = await window_rows(engine, since, until)
        truth_d, truth_p = (
            np.percentile(durations, [50, 95, 99]),
            np.percentile(points, [50, 95, 99]),
        )
        ours = max(
            relative_error(
                [overview.durations.p50, overview.durations.p95, overview.durations.p99], truth_d
            ),
            relative_error(
                [overview.points.p50, overview.points.p95, overview.points.p99], truth_p
            ),
        )
        floor = max(
            relative_error(plain["duration"], truth_d), relative_error(plain["points"], truth_p)
        )
        basis = "exact" if total <= EXACT_LIMIT else "log-histogram bins"
        lines.append(
            f"{label:<7}{'checks':<32}counts equal; p50/p95/p99 vs numpy over {total:,} runs: "
            f"stratlog {ours:.3%} ({basis}), plain SQL {floor:.1e}"
        )
        print(lines[-1], flush=True)
    lines.append(f"({load_average()} at the end)")
    return lines, overview_times


async def watermark_gap(engine: AsyncEngine) -> tuple[int, int]:
    """(rollup watermark, newest audit row id)."""
    async with engine.connect() as conn:
        mark = await conn.scalar(text("SELECT watermark FROM stratlog_rollup_state"))
        newest = await conn.scalar(text("SELECT max(id) FROM strategy_execution_log"))
    return int(mark or 0), int(newest or 0)


async def behind(
    name: str, engine: AsyncEngine, end: datetime, runs: int, span: timedelta,
    caught_up: dict[str, Timing],
) -> list[str]:  # fmt: skip
    """The Overview again, with rows above the watermark that the rollups do not hold."""
    mark, newest = await watermark_gap(engine)
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    lines = [
        f"\n{name}, rollup {newest - mark:,} rows behind (ids {mark + 1:,}-{newest:,}, not rolled "
        f"up; created over the newest {span.total_seconds() / 86400:.1f} days, half of them busy): "
        f"Overview ms, median (min-max) of {runs} runs; {load_average()} at the start",
        f"{'window':<7}{'caught up (above)':>22}{'behind':>22}{'plain SQL':>22}"
        f"{'plain/behind':>14}{'busy rows above the watermark':>32}",
    ]
    print("\n".join(lines), flush=True)
    sql = text("SELECT count(*) FROM strategy_execution_log WHERE id > :m AND strategy_id = :s "
               "AND created_at >= :a AND created_at < :b")  # fmt: skip
    for label, span_ in WINDOWS.items():
        since, until = end - span_, end
        params = params_of(since, until)
        late = await timed(lambda s=since, u=until: fetch_overview(repo, BUSY, s, u), runs)
        plain = await timed(lambda p=params: plain_overview(engine, p), runs)
        check(await fetch_overview(repo, BUSY, since, until), await plain_overview(engine, params))
        async with engine.connect() as conn:
            above = await conn.scalar(sql, {"m": mark, "s": BUSY, "a": since, "b": until})
        lines.append(f"{label:<7}{caught_up[label].cell()}{late.cell()}{plain.cell()}"
                     f"{plain.median / late.median:>13.1f}x{above:>32,}")  # fmt: skip
        print(lines[-1], flush=True)
    lines.append(f"(counts equal to the plain SQL's in every window; {load_average()} at the end)")
    return lines


# -- the buffered recorder -------------------------------------------------------------------


async def ticker(stop: asyncio.Event, lags_ms: list[float]) -> None:
    """Sleep 1 ms at a time until ``stop``; record how late each wake-up is."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        lags_ms.append((time.perf_counter() - started) * 1000 - 1.0)


def lag_line(label: str, lags_ms: list[float]) -> str:
    lag = np.array(lags_ms)
    return (
        f"  {label}: p50 {np.percentile(lag, 50):.2f} ms, p99 {np.percentile(lag, 99):.2f} ms, "
        f"max {lag.max():.1f} ms over {len(lag):,} wake-ups"
    )


async def idle_lag(seconds: float) -> list[float]:
    """The ticker alone: the floor of the lag on this machine."""
    stop, lags = asyncio.Event(), list[float]()
    task = asyncio.create_task(ticker(stop, lags))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    return lags


async def ingest(engine: AsyncEngine, rate: int, seconds: float) -> list[str]:
    """submit() latency, event-loop lag and sustained throughput of the buffered recorder."""
    idle = await idle_lag(2.0)
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    recorder = BufferedRecorder(repo, batch_size=2_000, max_queue=100_000)
    recorder.start()
    row = {"strategyId": "ingest", "status": "ok", "durationMs": 3.2, "nodes": 40, "points": 10.0,
           "caseName": "prime", "inputPayload": {"amount": 1}, "createdAt": datetime.now(UTC)}  # fmt: skip
    stop, lags = asyncio.Event(), list[float]()
    tick = asyncio.create_task(ticker(stop, lags))
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
    stop.set()
    await tick
    lat = np.array(latencies) / 1000
    return [
        f"\nbuffered recorder into PostgreSQL, producer at {rate:,} rows/s for {seconds:.0f} s "
        f"(batches of 2,000, COPY); {load_average()}:",
        f"  submit() latency: p50 {np.percentile(lat, 50):.1f} µs, p99 {np.percentile(lat, 99):.1f} µs, max {lat.max():.0f} µs",
        "  event-loop lag seen by a 1 ms ticker task on the same loop (how late each wake-up is):",
        lag_line("idle loop (2 s, no recorder)", idle),
        lag_line("while ingesting", lags),
        f"  submitted {stats.submitted:,} = written {stats.written:,} + dropped {stats.dropped:,} + failed {stats.failed:,} + pending {stats.pending}",
        f"  sustained ingest: {stats.written / total:,.0f} rows/s written (including the final flush)",
    ]  # fmt: skip


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


# -- the two backends -------------------------------------------------------------------------


async def run_sqlite(args: argparse.Namespace, end: datetime) -> list[str]:
    report: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.db"
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()
        t0 = time.perf_counter()
        load_sqlite(path, args.sqlite_rows, end)
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        t1 = time.perf_counter()
        await RollupJob(engine, 500_000).catch_up()
        report.append(
            f"SQLite {sqlite3.sqlite_version}: loaded {args.sqlite_rows:,} rows in {t1 - t0:.0f} s, "
            f"rollup {time.perf_counter() - t1:.0f} s; {load_average()}"
        )
        sizes = sqlite_bytes(path)
        if sizes is not None:
            report.append("  " + size_line(await row_counts(engine), sizes, "dbstat"))
        print("\n".join(report), flush=True)
        name = f"SQLite, {args.sqlite_rows:,} rows"
        lines, caught_up = await measure(name, engine, end, args.runs)
        report += lines
        if args.sqlite_behind_rows:
            frames, span = late_rows(args.sqlite_rows, args.sqlite_behind_rows, end)
            await engine.dispose()
            insert_sqlite(path, frames)
            report += await behind(name, engine, end, args.runs, span, caught_up)
        await engine.dispose()
    return report


async def run_postgres(args: argparse.Namespace, end: datetime) -> list[str]:
    report: list[str] = []
    server = PostgresServer()
    server.start(PG_SETTINGS)
    try:
        engine = make_engine(server.url, pool_size=10)
        await upgrade(engine)
        t0 = time.perf_counter()
        await load_postgres(engine, args.pg_rows, end)
        t1 = time.perf_counter()
        await RollupJob(engine, 1_000_000).catch_up()
        await vacuum_analyze(engine)
        report.append(
            f"\nPostgreSQL 15: loaded {args.pg_rows:,} rows (COPY + index + VACUUM ANALYZE) in "
            f"{t1 - t0:.0f} s, rollup {time.perf_counter() - t1:.0f} s; {load_average()}"
        )
        counts, sizes = await row_counts(engine), await postgres_bytes(engine)
        report.append("  " + size_line(counts, sizes, "pg_total_relation_size"))
        print("\n".join(report[-2:]), flush=True)
        if args.explain:
            await explain(engine, end)
        name = f"PostgreSQL, {args.pg_rows:,} rows"
        lines, caught_up = await measure(name, engine, end, args.runs)
        report += lines
        behind_rows = args.pg_rows // 10 if args.behind_rows is None else args.behind_rows
        if behind_rows:
            frames, span = late_rows(args.pg_rows, behind_rows, end)
            await copy_postgres(engine, frames)
            await vacuum_analyze(engine, "strategy_execution_log")
            report += await behind(name, engine, end, args.runs, span, caught_up)
        if args.ingest_seconds > 0:
            report += await ingest(engine, rate=args.ingest_rate, seconds=args.ingest_seconds)
        await engine.dispose()
    finally:
        server.cleanup()
    return report


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-rows", type=int, default=10_000_000)
    parser.add_argument("--sqlite-rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (all lines)")
    parser.add_argument("--behind-rows", type=int, default=None,
                        help="PostgreSQL rows left above the watermark (default: a tenth of --pg-rows)")  # fmt: skip
    parser.add_argument("--sqlite-behind-rows", type=int, default=None,
                        help="the same on SQLite (default: a tenth of --sqlite-rows)")  # fmt: skip
    parser.add_argument("--ingest-seconds", type=float, default=10.0)
    parser.add_argument("--ingest-rate", type=int, default=30_000)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    if args.sqlite_behind_rows is None:
        args.sqlite_behind_rows = args.sqlite_rows // 10
    end = datetime.now(UTC).replace(microsecond=0)
    print(f"{os.cpu_count()} CPUs; {load_average()}", flush=True)
    report: list[str] = [f"{os.cpu_count()} CPUs; {load_average()} at the start"]
    if args.only != "postgresql":
        report += await run_sqlite(args, end)
    if args.only != "sqlite":
        report += await run_postgres(args, end)
    print("\n" + "\n".join(report))
    target = write_results("scale.txt", report)
    print(f"\n(written to {target}; pid {os.getpid()})")


if __name__ == "__main__":
    asyncio.run(main())
