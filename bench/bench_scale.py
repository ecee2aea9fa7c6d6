"""Performance at scale: stratlog's Overview against the plain SQL a competent engineer would write.

Two data sets, both generated here with numpy (seeded, so every run draws the same rows), each
with its rows in time order (ids ascend with ``created_at``) over the 30 days ending now and half
of them for one strategy, "busy"; a small JSON input payload on every row. ``--dataset``
picks one of them or both (the default), printed one after the other with the same
measurements and the same number of runs:

- ``standard`` (seed 1): the other half spread evenly over 49 strategies ``s1``-``s49``; status
  95 % ok, 3 % error (4 codes, 50/25/15/10 %), 1 % timeout (code ``TIMEOUT``), 1 % limit
  (``NODE_LIMIT_EXCEEDED``); on ok runs 7 rule cases and "no rule matched" (null), each 1/8;
  durations lognormal around 8 ms (sigma 0.6), nodes 20 per ms plus 0-49, points normal (50, 20)
  on ok runs; every row version ``1.0.0``.
- ``high-cardinality`` (seed 1), the shape of the issue's 10-million-row table: the other half
  over 97 strategies ``strategy-01``-``strategy-97`` with Zipf weights (the k-th weighted 1/k:
  ``strategy-01`` holds 9.7 % of all rows, ``strategy-97`` 0.1 %); status 93.5 % ok, 4.5 % error,
  1.2 % timeout, 0.8 % limit (6.5 % failures); 20 error codes: 18 for ``error`` runs with Zipf
  weights (``MISSING_FACT`` most frequent) plus ``TIMEOUT`` and ``NODE_LIMIT_EXCEEDED``; on ok
  runs 30 rule cases ``rule_01``-``rule_30`` with Zipf weights (92 %) or no rule matched (null,
  8 %); failed runs carry no case. Durations lognormal around 8 ms (sigma 0.6) times a
  per-strategy factor (lognormal, sigma 0.5; 1 for busy), timeouts at 50 ms times that factor
  plus an exponential 10 %; nodes 20 per ms plus 0-49, exactly 5,000 on limit runs; points normal
  (50, 20) on ok runs. Versions: every strategy starts at ``1.4.0``; busy and 33 others
  (``strategy-01``, ``-04``, ..., ``-97``) deploy ``1.5.0`` at some hour of some day between day 5
  and day 24, after a two-hour canary (10 % of their runs on the new version); busy switches to
  ``1.5.1`` 12 hours before the end (inside the 24 h window).

Sizes: PostgreSQL 15 (a throwaway server started here, one per data set): ``--pg-rows``
(default 10 million); SQLite: ``--sqlite-rows`` (default 1 million). The covering index is built
after the load, then VACUUM ANALYZE / ANALYZE, then the rollup job catches up: timed, it is the
fold rate for rows in time order (rows/s, one run). The rollup size is the four rollup tables
(``stratlog.model.ROLLUP_TABLES``) against the audit table, indexes included
(``pg_total_relation_size``; SQLite's ``dbstat``).

For windows of 1 h, 24 h, 7 d and 30 d ending now, every Overview panel and the whole Overview
are timed three ways, each with the same number of runs after one warm-up (median and min-max):

- ``stratlog``: the repository call / ``fetch_overview`` (rollups plus raw edges);
- ``stratlog, rollups off``: the same code with ``use_rollups=False`` (it reads raw rows only);
- ``plain SQL``: the floor. One literal GROUP BY statement per panel over the audit table (see
  ``PLAIN_SQL``): status counts, top 10 error codes, top 10 rule cases of the ok runs, the
  duration / nodes / points summary, the timeseries buckets, and p50/p95/p99 of duration and of
  points, with ``percentile_cont`` on PostgreSQL and, on SQLite (no percentile_cont), the values at the
  interpolation ranks picked with ``row_number()``. The whole plain Overview runs the seven
  statements concurrently, one connection each, as the Overview panels would run. It
  draws no points histogram (``fetch_overview`` derives one from bins it reads anyway).

The last line of each window, "Overview + previous window", is the Overview with its comparison
(``fetch_comparison`` with the previous window of the same length as the baseline) against the
plain Overview of both windows at once (fourteen statements).

Both answers are checked against each other (counts equal) and the percentiles against numpy
over the same rows. Then the seed's seven calls (``count_by_status``, ``count_by_error_code``,
``count_by_case_name``, ``duration_and_nodes_summary``, ``sample_durations``, ``sample_points``,
``timeseries``) over the 30-day window, gathered (``asyncio.gather``), with ``bucketSeconds`` =
30 d / 100 = 25,920 s (no rollup grain divides it): stratlog, rollups off, and the plain floor
(the same GROUP BY statements, the rule cases over every run, and ``SELECT duration_ms`` /
``points ... ORDER BY created_at DESC, id DESC LIMIT 1000`` for the samples), answers compared.

Then K more rows are inserted above the rollup watermark and not rolled up
(``--behind-rows``, default a tenth of the data set: 1 million at full size), spread over the
newest days at the data set's own rate, and the Overview is timed again ("rollup K rows
behind"); the job then folds them (timed, shown for information). Then a shuffled backfill:
``--backfill-rows`` more rows (default a tenth of the data set) of the same data set's shape but
with ``created_at`` uniformly random over the 30 days (ids no longer in time order: every batch
merges into buckets that already hold rows), and the job's ``catch_up()`` over them is timed:
the fold rate of a shuffled backfill; the 30-day Overview is checked against the plain SQL again.
Last (PostgreSQL, once, on the last data set's server): the buffered recorder at 30,000 rows/s:
``submit()`` latency and the event-loop lag a 1 ms ticker task on the same loop sees while the
writer prepares and COPYs its batches.

At the end of each backend's high-cardinality section, one ``TARGET`` line per target of the
issue, computed from this run's figures (``met`` / ``NOT MET``): PostgreSQL: ``fetch_overview``
median under 250 ms in every window and at most the plain SQL's at 1 h, the seven calls gathered
at 30 d under 500 ms, rollups at most 25 % of the audit table's bytes, folding at least
50,000 rows/s in time order and 10,000 rows/s for the shuffled backfill; SQLite: folding at
least 30,000 rows/s (rows in time order), ``fetch_overview`` under 150 ms at 30 d and at most the
plain SQL's at 1 h and 24 h. The issue states them for 10 million (PostgreSQL) and 1 million
(SQLite) rows.

Run: ``python -m bench.bench_scale [--dataset standard|high-cardinality|both]
[--pg-rows 10000000] [--sqlite-rows 1000000] [--runs 5] [--behind-rows N]
[--sqlite-behind-rows N] [--backfill-rows N] [--sqlite-backfill-rows N] [--ingest-seconds 10]
[--only sqlite|postgresql] [--explain]``.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import (
    PG_SETTINGS,
    RAW,
    Timing,
    load_average,
    postgres_bytes,
    rollup_bytes,
    row_counts,
    size_line,
    sqlite_file_bytes,
    sqlite_sizes,
    timed,
    write_results,
)
from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.model.strategy_execution_log import COVERING_INDEX_COLUMNS
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.service import choose_bucket_seconds, fetch_overview
from stratlog.service.buffered import BufferedRecorder
from stratlog.service.compare import Baseline, fetch_comparison
from stratlog.service.insights import fetch_insights
from stratlog.service.overview import EXACT_LIMIT, Overview, _exact
from stratlog.service.stats import Percentiles, percentiles_from_bins
from stratlog.service.timeline import duration_bucket, fetch_duration_series
from stratlog.service.versions import fetch_versions
from tests.pg import PostgresServer

BUSY = "busy"
DAYS = 30
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
           "30d": timedelta(days=30)}  # fmt: skip
COLUMNS = [
    "strategy_id", "strategy_version", "status", "error_code", "case_name", "duration_ms",
    "nodes", "points", "input_payload", "created_at",
]  # fmt: skip
STATUS_NAMES = np.array(["ok", "error", "timeout", "limit"])
#: The seed's timeseries bucket for the seven calls: 30 days / 100 (no rollup grain divides it).
SEED_BUCKET = DAYS * 86_400 // 100
#: The sizes the issue states its targets for.
ISSUE_ROWS = {"PostgreSQL": 10_000_000, "SQLite": 1_000_000}


# -- the data sets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Deploy:
    """From ``at`` on, ``strategy``'s runs use ``version``; during the ``canary`` before it,
    ``canary_share`` of them already do."""

    strategy: int  # index into DataSet.names (0 = busy)
    at: datetime
    version: str
    canary: timedelta = timedelta(0)
    canary_share: float = 0.0


@dataclass(frozen=True)
class DataSet:
    """How one data set's rows are drawn (see the module docstring). Strategy index 0 is busy."""

    name: str
    others: np.ndarray
    other_p: np.ndarray | None  # None: uniform
    status_p: tuple[float, float, float, float]  # ok, error, timeout, limit
    codes: np.ndarray  # the codes of status "error"
    code_p: np.ndarray
    cases: np.ndarray  # "" = no rule matched
    case_p: np.ndarray | None  # None: uniform
    seed: int = 1
    version: str = "1.0.0"
    #: Per-strategy factor of the durations (index 0 = busy); None: 1 for all.
    scale: np.ndarray | None = None
    #: Timeouts last this long (times the strategy's factor, plus an exponential 10 %).
    timeout_ms: float | None = None
    #: Limit runs stop at exactly this many nodes.
    node_limit: int | None = None
    deploys: tuple[Deploy, ...] = ()

    @property
    def names(self) -> np.ndarray:
        """Every strategy id, busy first."""
        return np.concatenate([np.array([BUSY]), self.others])

    def describe(self) -> str:
        """One line: what the data set holds."""
        versions = f"{len(self.deploys)} deploys" if self.deploys else f"version {self.version}"
        codes = len(set(self.codes) | {"TIMEOUT", "NODE_LIMIT_EXCEEDED"})
        cases = len([c for c in self.cases if c])
        spread = "evenly" if self.other_p is None else "Zipf-weighted"
        return (
            f"busy + {len(self.others)} other strategies ({spread}), {codes} error codes, "
            f"{cases} rule cases, {1 - self.status_p[0]:.1%} failures, {versions}"
        )


def zipf_p(k: int) -> np.ndarray:
    """Weights of k values, the i-th proportional to 1/i."""
    weights = 1.0 / np.arange(1, k + 1)
    return weights / weights.sum()


def standard() -> DataSet:
    """The data set the benchmark always had (same draws as before it had a second one)."""
    return DataSet(
        name="standard",
        others=np.char.add("s", np.arange(1, 50).astype(str)),
        other_p=None,
        status_p=(0.95, 0.03, 0.01, 0.01),
        codes=np.array(["MISSING_FACT", "TYPE_MISMATCH", "DIV_BY_ZERO", "UPSTREAM_UNAVAILABLE"]),
        code_p=np.array([0.5, 0.25, 0.15, 0.1]),
        cases=np.array(
            ["prime", "standard", "thin_file", "high_util", "young", "gold", "silver", ""]
        ),
        case_p=None,
    )


ERROR_CODES = [
    "MISSING_FACT", "TYPE_MISMATCH", "UPSTREAM_UNAVAILABLE", "INVALID_INPUT", "DIV_BY_ZERO",
    "SCHEMA_VIOLATION", "UNKNOWN_FIELD", "NULL_REFERENCE", "STALE_FACT", "RULE_CONFLICT",
    "PARSE_ERROR", "RATE_LIMITED", "INVALID_DATE", "EXPRESSION_ERROR", "MISSING_TABLE",
    "OVERFLOW", "CIRCULAR_REFERENCE", "UPSTREAM_TIMEOUT",
]  # fmt: skip


def high_cardinality(end: datetime) -> DataSet:
    """The issue's shape: 98 strategies, 20 codes, 30 cases, all skewed; deploys (see above)."""
    start = end - timedelta(days=DAYS)
    others = np.array([f"strategy-{i:02d}" for i in range(1, 98)])
    cases = np.array([*(f"rule_{i:02d}" for i in range(1, 31)), ""])
    rng = np.random.default_rng(5)  # the fixed per-strategy traits
    scale = rng.lognormal(0.0, 0.5, len(others) + 1)
    scale[0] = 1.0
    deploys = [
        Deploy(index, start + timedelta(days=int(rng.integers(5, 25)),
                                        hours=float(rng.integers(8, 18))),
               "1.5.0", timedelta(hours=2), 0.1)
        for index in range(len(others) + 1) if index % 3 == 1 or index == 0
    ]  # fmt: skip
    deploys.append(Deploy(0, end - timedelta(hours=12), "1.5.1"))
    return DataSet(
        name="high-cardinality",
        others=others,
        other_p=zipf_p(len(others)),
        status_p=(0.935, 0.045, 0.012, 0.008),
        codes=np.array(ERROR_CODES),
        code_p=zipf_p(len(ERROR_CODES)),
        cases=cases,
        case_p=np.append(0.92 * zipf_p(30), 0.08),
        version="1.4.0",
        scale=scale,
        timeout_ms=50.0,
        node_limit=5_000,
        deploys=tuple(sorted(deploys, key=lambda d: d.at)),
    )


def make_dataset(name: str, end: datetime) -> DataSet:
    return standard() if name == "standard" else high_cardinality(end)


def frame(
    rng: np.random.Generator, data: DataSet, n: int, start: datetime, end: datetime,
    ordered: bool = True,
) -> pd.DataFrame:  # fmt: skip
    """``n`` rows of ``data`` between start and end (in time order unless ``ordered`` is false),
    half of them for the busy strategy."""
    span = (end - start).total_seconds()
    seconds = rng.random(n) * span
    if ordered:
        seconds = np.sort(seconds)
    status = rng.choice(STATUS_NAMES, n, p=data.status_p)
    ok = status == "ok"
    code = np.where(status == "error", rng.choice(data.codes, n, p=data.code_p), "")
    code = np.where(status == "timeout", "TIMEOUT", code)
    code = np.where(status == "limit", "NODE_LIMIT_EXCEEDED", code)
    case = np.where(ok, rng.choice(data.cases, n, p=data.case_p), "")
    duration = rng.lognormal(math.log(8.0), 0.6, n)
    busy = rng.random(n) < 0.5
    k = len(data.others)
    other = rng.integers(0, k, n) if data.other_p is None else rng.choice(k, n, p=data.other_p)
    index = np.where(busy, 0, other + 1)
    jitter = rng.integers(0, 50, n)
    points = np.where(ok, np.round(rng.normal(50, 20, n), 1), np.nan)
    if data.scale is not None:
        duration = duration * data.scale[index]
    if data.timeout_ms is not None:
        factor = data.scale[index] if data.scale is not None else 1.0
        late = data.timeout_ms * factor * (1 + rng.exponential(0.1, n))
        duration = np.where(status == "timeout", late, duration)
    duration = np.round(duration, 3)
    nodes = (duration * 20).astype(np.int64) + jitter
    if data.node_limit is not None:
        nodes = np.where(status == "limit", data.node_limit, nodes)
    version: Any = data.version
    if data.deploys:
        at = start.timestamp() + seconds
        draw = rng.random(n)
        version = np.full(n, data.version, dtype=object)
        for deploy in data.deploys:  # in time order: a later deploy overrides
            switch = deploy.at.timestamp()
            canary = (at >= switch - deploy.canary.total_seconds()) & (at < switch)
            moved = (at >= switch) | (canary & (draw < deploy.canary_share))
            version = np.where((index == deploy.strategy) & moved, deploy.version, version)
    return pd.DataFrame({
        "strategy_id": data.names[index],
        "strategy_version": version,
        "status": status,
        "error_code": np.where(code == "", None, code),
        "case_name": np.where(case == "", None, case),
        "duration_ms": duration,
        "nodes": nodes,
        "points": points,
        "input_payload": '{"amount": 120.5, "country": "DE", "channel": "web"}',
        "created_at": pd.to_datetime(start) + pd.to_timedelta(seconds, unit="s"),
    })  # fmt: skip


def chunks(
    data: DataSet, total: int, start: datetime, end: datetime, pieces: int, seed: int
) -> Iterator[pd.DataFrame]:
    """``total`` rows between start and end as ``pieces`` frames, oldest first."""
    rng = np.random.default_rng(seed)
    step = (end - start) / pieces
    per = total // pieces
    for i in range(pieces):
        n = per if i < pieces - 1 else total - per * (pieces - 1)
        yield frame(rng, data, n, start + step * i, start + step * (i + 1))


def dataset(data: DataSet, total: int, end: datetime) -> Iterator[pd.DataFrame]:
    """The data set: one frame per day of the 30, oldest first."""
    return chunks(data, total, end - timedelta(days=DAYS), end, DAYS, seed=data.seed)


def late_rows(
    data: DataSet, total: int, rows: int, end: datetime
) -> tuple[Iterator[pd.DataFrame], timedelta]:
    """``rows`` more rows over the newest days at the data set's rate (``rows / total`` of 30 d)."""
    span = timedelta(days=DAYS) * rows / total
    pieces = max(1, rows // 200_000)
    return chunks(data, rows, end - span, end, pieces, seed=2), span


def shuffled_rows(data: DataSet, rows: int, end: datetime) -> Iterator[pd.DataFrame]:
    """``rows`` more rows with ``created_at`` uniformly random over the whole 30 days."""
    rng = np.random.default_rng(3)
    pieces = max(1, rows // 200_000)
    per = rows // pieces
    for i in range(pieces):
        n = per if i < pieces - 1 else rows - per * (pieces - 1)
        yield frame(rng, data, n, end - timedelta(days=DAYS), end, ordered=False)


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


async def load_postgres(engine: AsyncEngine, data: DataSet, rows: int, end: datetime) -> None:
    """COPY the data set in, with the covering index built after the load."""
    async with engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_strategy_execution_log_covering"))
    await copy_postgres(engine, dataset(data, rows, end))
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


def load_sqlite(path: Path, data: DataSet, rows: int, end: datetime) -> None:
    """Insert the data set, with the covering index built after the load."""
    con = sqlite3.connect(path)
    con.execute("DROP INDEX ix_strategy_execution_log_covering")
    con.close()
    insert_sqlite(path, dataset(data, rows, end))
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
    # The seed's count_by_case_name: every run (failed runs fall in the null bucket).
    ("cases_all", "any"): """
        SELECT case_name, count(*) AS n
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
        GROUP BY case_name
        ORDER BY n DESC, case_name NULLS LAST
        LIMIT 10""",
    # The seed's samples: the newest 1,000 values of the window.
    ("sample_durations", "any"): """
        SELECT duration_ms
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
        ORDER BY created_at DESC, id DESC
        LIMIT 1000""",
    ("sample_points", "any"): """
        SELECT points
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
          AND points IS NOT NULL
        ORDER BY created_at DESC, id DESC
        LIMIT 1000""",
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
#: The plain form of the seed's seven calls, in the order of :func:`seed_calls`.
PLAIN_SEED = ("status", "codes", "cases_all", "summary", "sample_durations", "sample_points",
              "timeseries")  # fmt: skip


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


async def plain_seed(engine: AsyncEngine, params: dict[str, Any]) -> list[Any]:
    """The seven seed calls' plain statements at once, one connection each."""
    return list(await asyncio.gather(*(plain_panel(engine, p, params) for p in PLAIN_SEED)))


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
        Panel("Overview + previous window",
              lambda r: fetch_comparison(r, BUSY, since, until, Baseline("previous")), COMPARE),
    ]  # fmt: skip


async def page_data(repo: StrategyExecutionLogRepository, since: datetime, until: datetime) -> Any:
    """Everything the Overview page reads, at once: the comparison with the previous window,
    the Versions panel, and the durations per bucket of the window and of its baseline."""
    span = until - since
    bucket = duration_bucket(span.total_seconds(), choose_bucket_seconds(span.total_seconds()))
    return await asyncio.gather(
        fetch_comparison(repo, BUSY, since, until, Baseline("previous")),
        fetch_versions(repo, BUSY, since, until),
        fetch_duration_series(repo, BUSY, since, until, bucket),
        fetch_duration_series(repo, BUSY, since - span, since, bucket),
    )


def params_of(since: datetime, until: datetime) -> dict[str, Any]:
    """The plain statements' parameters for one window."""
    bucket = choose_bucket_seconds((until - since).total_seconds())
    return {"s": BUSY, "since": since, "until": until, "bucket": bucket}


#: The plain form of the comparison: the plain Overview of the window and of the one before.
COMPARE = "compare"
#: The key of the insights' timings (issue 16).
INSIGHTS = "insights"
INSIGHTS_LIMITS_MS = {"24h": 300, "30d": 1000}

#: Issue 16's floor (PostgreSQL): the reads a competent engineer would write for the same
#: findings without rollups, for the window and the 7 days before it. Error codes per hour,
#: runs and failures per hour, cases, deciles with ``percentile_cont`` (the PSI ranges) and the
#: node budget, versions with their p95, a random sample of failing and ok payloads; then one
#: ``width_bucket`` count per measure and side on the baseline's deciles. Only the SQL is timed:
#: the findings' arithmetic in Python is left out, in the floor's favour.
PLAIN_INSIGHTS_SQL: dict[str, str] = {
    "code_hours": """
        SELECT date_trunc('hour', created_at) AS h, error_code, count(*) AS n
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
          AND error_code IS NOT NULL
        GROUP BY 1, 2""",
    "hours": """
        SELECT date_trunc('hour', created_at) AS h, count(*) AS n,
               count(*) FILTER (WHERE status <> 'ok') AS failed
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
        GROUP BY 1""",
    "cases": """
        SELECT case_name, count(*) AS n
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
          AND status = 'ok'
        GROUP BY 1""",
    "deciles": """
        SELECT percentile_cont(ARRAY[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
                   WITHIN GROUP (ORDER BY points),
               percentile_cont(ARRAY[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
                   WITHIN GROUP (ORDER BY duration_ms),
               percentile_cont(ARRAY[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
                   WITHIN GROUP (ORDER BY nodes),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY nodes)
                   FILTER (WHERE status <> 'limit'),
               min(nodes) FILTER (WHERE status = 'limit')
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until""",
    "versions": """
        SELECT strategy_version, min(created_at), count(*) AS n,
               count(*) FILTER (WHERE status <> 'ok') AS failed,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
        FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
        GROUP BY 1""",
    "failing_sample": """
        SELECT input_payload FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
          AND status <> 'ok'
        ORDER BY random() LIMIT 1000""",
    "ok_sample": """
        SELECT input_payload FROM strategy_execution_log
        WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
          AND status = 'ok'
        ORDER BY random() LIMIT 1000""",
}
PLAIN_HISTOGRAM_SQL = """
    SELECT width_bucket({column}, CAST(:edges AS double precision[])) AS b, count(*) AS n
    FROM strategy_execution_log
    WHERE strategy_id = :s AND created_at >= :since AND created_at < :until
      AND {column} IS NOT NULL
    GROUP BY 1"""
PLAIN_MEASURES = ("points", "duration_ms", "nodes")


async def plain_rows(engine: AsyncEngine, sql: str, params: dict[str, Any]) -> list[Any]:
    """One plain statement on a connection of its own."""
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def plain_insights(engine: AsyncEngine, params: dict[str, Any]) -> list[Any]:
    """The plain floor of ``fetch_insights``: every statement of a stage at once, one
    connection each; the histograms wait for the baseline's deciles."""
    now = {**params}
    then = {**params, "since": params["since"] - timedelta(days=7), "until": params["since"]}
    both = {**params, "since": then["since"]}
    sql = PLAIN_INSIGHTS_SQL
    first = await asyncio.gather(
        *(plain_rows(engine, sql[k], p) for k in ("code_hours", "hours", "cases", "deciles")
          for p in (now, then)),
        plain_rows(engine, sql["versions"], both),
        plain_rows(engine, sql["failing_sample"], now),
        plain_rows(engine, sql["ok_sample"], now),
    )  # fmt: skip
    deciles_now, deciles_then = first[6][0], first[7][0]
    second = await asyncio.gather(
        *(plain_rows(engine, PLAIN_HISTOGRAM_SQL.format(column=column),
                     {**p, "edges": list(deciles_then[i] or deciles_now[i] or [0.0])})
          for i, column in enumerate(PLAIN_MEASURES) for p in (now, then))
    )  # fmt: skip
    return [*first, *second]


async def plain_compare(engine: AsyncEngine, params: dict[str, Any]) -> Any:
    """Both windows' plain Overviews at once (fourteen statements, one connection each)."""
    span = params["until"] - params["since"]
    before = {**params, "since": params["since"] - span, "until": params["since"]}
    return await asyncio.gather(plain_overview(engine, params), plain_overview(engine, before))


def plain_call(engine: AsyncEngine, panel: Panel, params: dict[str, Any]) -> Any:
    if panel.plain is None:
        return lambda: plain_overview(engine, params)
    if panel.plain == COMPARE:
        return lambda: plain_compare(engine, params)
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


@dataclass(frozen=True)
class ThreeWay:
    """One figure timed three ways: stratlog, stratlog with rollups off, the plain SQL floor."""

    stratlog: Timing
    off: Timing
    plain: Timing


async def measure(
    name: str, engine: AsyncEngine, end: datetime, runs: int
) -> tuple[list[str], dict[str, ThreeWay]]:
    """The three-way table for every window; returns the lines and the Overview's timings."""
    factory = make_session_factory(engine)
    fast = StrategyExecutionLogRepository(factory)
    raw = StrategyExecutionLogRepository(factory, use_rollups=False)
    lines = [f"\n{name}: ms per call, median (min-max) of {runs} runs after a warm-up, "
             f"busy strategy; {load_average()} at the start", HEADER]  # fmt: skip
    print("\n".join(lines), flush=True)
    overview_times: dict[str, ThreeWay] = {}
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
                overview_times[label] = ThreeWay(a, b, c)
            if panel.plain == COMPARE:
                overview_times[f"{COMPARE} {label}"] = ThreeWay(a, b, c)
        # The Overview page's other reads, stratlog only: no plain panel draws versions or
        # durations per bucket, so there is no floor to print beside them.
        a = await timed(lambda s=since, u=until: page_data(fast, s, u), runs)
        b = await timed(lambda s=since, u=until: page_data(raw, s, u), runs)
        lines.append(f"{label:<7}{'page: + versions, durations':<32}{a.cell()}{b.cell(24)}"
                     f"{'(no plain panel)':>22}")  # fmt: skip
        print(lines[-1], flush=True)
        # Issue 16: the Insights page's one call, against the 7 days before the window.
        a = await timed(lambda s=since, u=until: fetch_insights(fast, BUSY, s, u), runs)
        b = await timed(lambda s=since, u=until: fetch_insights(raw, BUSY, s, u), runs)
        found = await fetch_insights(fast, BUSY, since, until)
        if engine.dialect.name == "postgresql":
            c = await timed(lambda p=params: plain_insights(engine, p), runs)
            floor_cell = f"{c.cell()}{c.median / a.median:>15.1f}x"
        else:  # SQLite has no percentile_cont or width_bucket: no plain floor there
            c, floor_cell = a, f"{'(PostgreSQL only)':>22}"
        lines.append(f"{label:<7}{'insights (vs the 7 days before)':<32}{a.cell()}{b.cell(24)}"
                     f"{floor_cell}  {len(found.findings)} findings")  # fmt: skip
        print(lines[-1], flush=True)
        overview_times[f"{INSIGHTS} {label}"] = ThreeWay(a, b, c)
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
    caught_up: dict[str, ThreeWay],
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
        lines.append(f"{label:<7}{caught_up[label].stratlog.cell()}{late.cell()}{plain.cell()}"
                     f"{plain.median / late.median:>13.1f}x{above:>32,}")  # fmt: skip
        print(lines[-1], flush=True)
    lines.append(f"(counts equal to the plain SQL's in every window; {load_average()} at the end)")
    return lines


# -- the seed's seven calls, gathered ---------------------------------------------------------


def seed_calls(
    repo: StrategyExecutionLogRepository, since: datetime, until: datetime
) -> list[Awaitable[Any]]:
    """The seed's seven calls over one window (timeseries in ``SEED_BUCKET`` buckets)."""
    scope: dict[str, Any] = {"strategyId": BUSY, "sinceDt": since, "untilDt": until}
    return [
        repo.count_by_status(**scope),
        repo.count_by_error_code(**scope),
        repo.count_by_case_name(**scope),
        repo.duration_and_nodes_summary(**scope),
        repo.sample_durations(**scope),
        repo.sample_points(**scope),
        repo.timeseries(**scope, bucketSeconds=SEED_BUCKET),
    ]


async def gathered(
    repo: StrategyExecutionLogRepository, since: datetime, until: datetime
) -> list[Any]:
    """The seven calls at once, as a page that shows all of them would make them."""
    return list(await asyncio.gather(*seed_calls(repo, since, until)))


def check_seed(ours: list[Any], plain: list[Any]) -> None:
    """stratlog's seven answers equal the plain statements' (timeseries bucket by bucket)."""
    status, codes, cases, summary, durations, points, series = ours
    p = dict(zip(PLAIN_SEED, plain, strict=True))
    assert status == {s: int(n) for s, n in p["status"]}, "seed: status counts"
    assert {c["errorCode"]: c["count"] for c in codes} == {c: int(n) for c, n in p["codes"]}, (
        "seed: error codes"
    )
    assert {c["caseName"]: c["count"] for c in cases} == {c: int(n) for c, n in p["cases_all"]}, (
        "seed: cases"
    )
    assert summary["count"] == int(p["summary"][0][0]), "seed: summary count"
    assert durations == [float(v) for (v,) in p["sample_durations"]], "seed: sample_durations"
    assert points == [float(v) for (v,) in p["sample_points"]], "seed: sample_points"
    assert {(int(r["bucketStart"].timestamp()), r["status"]): r["count"] for r in series} == {
        (int(b), s): int(n) for b, s, n in p["timeseries"]
    }, "seed: timeseries"


async def seven_calls(
    name: str, engine: AsyncEngine, end: datetime, runs: int
) -> tuple[list[str], ThreeWay]:
    """The seed's seven calls gathered over the 30-day window, three ways."""
    factory = make_session_factory(engine)
    fast = StrategyExecutionLogRepository(factory)
    raw = StrategyExecutionLogRepository(factory, use_rollups=False)
    since, until = end - WINDOWS["30d"], end
    params = {"s": BUSY, "since": since, "until": until, "bucket": SEED_BUCKET}
    lines = [
        f"\n{name}: the seed's seven calls gathered (asyncio.gather), 30d, timeseries in "
        f"{SEED_BUCKET:,} s buckets; ms, median (min-max) of {runs} runs after a warm-up; "
        f"{load_average()} at the start",
        f"{'window':<7}{'calls':<32}{'stratlog':>22}{'stratlog, rollups off':>24}"
        f"{'plain SQL':>22}{'plain/stratlog':>16}",
    ]
    print("\n".join(lines), flush=True)
    a = await timed(lambda: gathered(fast, since, until), runs)
    b = await timed(lambda: gathered(raw, since, until), runs)
    c = await timed(lambda: plain_seed(engine, params), runs)
    plain = await plain_seed(engine, params)
    check_seed(await gathered(fast, since, until), plain)
    check_seed(await gathered(raw, since, until), plain)
    lines += [
        f"{'30d':<7}{'seven calls, gathered':<32}{a.cell()}{b.cell(24)}{c.cell()}"
        f"{c.median / a.median:>15.1f}x",
        f"{'30d':<7}{'checks':<32}all seven answers equal to the plain SQL's (rollups on and "
        f"off; timeseries bucket by bucket, samples value by value)",
    ]
    print("\n".join(lines[-2:]), flush=True)
    return lines, ThreeWay(a, b, c)


# -- folding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fold:
    """One timed ``catch_up()``: rows folded, wall time, job runs that folded rows."""

    rows: int
    seconds: float
    runs: int

    @property
    def rate(self) -> float:
        """Rows folded per second."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        return (
            f"{self.rows:,} rows in {self.seconds:.1f} s ({self.runs} job runs): "
            f"{self.rate:,.0f} rows/s"
        )


async def fold(engine: AsyncEngine, batch_rows: int) -> Fold:
    """Time ``RollupJob(engine, batch_rows).catch_up()``."""
    runs: list[Any] = []
    started = time.perf_counter()
    rows = await RollupJob(engine, batch_rows).catch_up(progress=runs.append)
    seconds = time.perf_counter() - started
    return Fold(rows, seconds, len([r for r in runs if r.rows]))


# -- the targets ------------------------------------------------------------------------------


@dataclass
class Section:
    """What one backend measured on one data set (the inputs of the TARGET lines)."""

    backend: str  # "PostgreSQL" or "SQLite"
    data: DataSet
    rows: int
    fold_in_order: Fold | None = None
    sizes: tuple[int, int] | None = None  # (rollup tables' bytes, audit table's bytes)
    overview: dict[str, ThreeWay] = field(default_factory=dict)
    seven: ThreeWay | None = None
    backfill: Fold | None = None


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def target_lines(section: Section) -> list[str]:
    """One TARGET line per target of the issue for this backend, met or not from the figures."""
    b = section.backend
    lines = [
        f"\nTargets, {b}, {section.data.name} data set, {section.rows:,} rows, figures from this run"
        + (f" (the issue states them for {ISSUE_ROWS[b]:,} rows)"
           if section.rows != ISSUE_ROWS[b] else "") + ":"
    ]  # fmt: skip

    def add(what: str, measured: str, versus: str, met: bool) -> None:
        lines.append(f"TARGET {b} {what}: {measured} ({versus}) -> {'met' if met else 'NOT MET'}")

    def under(label: str, limit: float) -> None:
        t = section.overview[label]
        add(f"fetch_overview {label} median < {limit:,.0f} ms", _ms(t.stratlog.median),
            f"limit {limit:,.0f} ms; plain SQL floor {_ms(t.plain.median)}, rollups off "
            f"{_ms(t.off.median)}", t.stratlog.median < limit)  # fmt: skip

    def floor(label: str) -> None:
        t = section.overview[label]
        add(f"fetch_overview {label} median <= plain SQL floor",
            f"{_ms(t.stratlog.median)} vs {_ms(t.plain.median)}",
            f"plain/stratlog {t.plain.median / t.stratlog.median:.2f}x",
            t.stratlog.median <= t.plain.median)  # fmt: skip

    def folded(what: str, done: Fold | None, limit: int) -> None:
        if done is None or done.rows == 0:
            lines.append(f"TARGET {b} {what} >= {limit:,} rows/s: not measured -> NOT MET")
            return
        add(f"{what} >= {limit:,} rows/s", f"{done.rate:,.0f} rows/s",
            f"{done.rows:,} rows in {done.seconds:.1f} s", done.rate >= limit)  # fmt: skip

    if b == "PostgreSQL":
        for label in WINDOWS:
            under(label, 250)
        for label in WINDOWS:  # issue 15: the Overview with its comparison
            t = section.overview.get(f"{COMPARE} {label}")
            if t is None:
                lines.append(f"TARGET {b} fetch_comparison {label} median < 250 ms: not measured"
                             " -> NOT MET")  # fmt: skip
                continue
            add(f"fetch_comparison (Overview + previous window) {label} median < 250 ms",
                _ms(t.stratlog.median), f"limit 250 ms; plain SQL floor, both windows "
                f"{_ms(t.plain.median)}, rollups off {_ms(t.off.median)}",
                t.stratlog.median < 250)  # fmt: skip
        for label, limit in INSIGHTS_LIMITS_MS.items():  # issue 16
            t = section.overview.get(f"{INSIGHTS} {label}")
            if t is None:
                lines.append(f"TARGET {b} fetch_insights {label} median < {limit:,} ms: not "
                             "measured -> NOT MET")  # fmt: skip
                continue
            add(f"fetch_insights {label} median < {limit:,} ms", _ms(t.stratlog.median),
                f"limit {limit:,} ms; "
                + ("" if t.plain is t.stratlog else f"plain SQL floor {_ms(t.plain.median)}, ")
                + f"rollups off {_ms(t.off.median)}",
                t.stratlog.median < limit)  # fmt: skip
        floor("1h")
        if section.seven is not None:
            s = section.seven
            add(f"seven seed calls gathered, 30d, {SEED_BUCKET:,} s buckets, median < 500 ms",
                _ms(s.stratlog.median), f"limit 500 ms; plain SQL floor {_ms(s.plain.median)}, "
                f"rollups off {_ms(s.off.median)}", s.stratlog.median < 500)  # fmt: skip
        if section.sizes is not None:
            rollups, raw = section.sizes
            add("rollup size <= 25 % of raw", f"{100 * rollups / raw:.1f} %",
                f"{rollups / 1e6:,.1f} MB of {raw / 1e6:,.1f} MB", rollups <= 0.25 * raw)  # fmt: skip
        folded("fold, rows in time order", section.fold_in_order, 50_000)
        folded("fold, shuffled backfill", section.backfill, 10_000)
    else:
        folded("fold, rows in time order", section.fold_in_order, 30_000)
        under("30d", 150)
        floor("1h")
        floor("24h")
        if section.backfill is not None:
            lines.append(
                f"(not a target: SQLite fold, shuffled backfill {section.backfill.rate:,.0f} "
                f"rows/s, {section.backfill.rows:,} rows in {section.backfill.seconds:.1f} s)"
            )
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


@dataclass
class Backend:
    """What the shared measurement sequence needs from one backend."""

    name: str  # "PostgreSQL" or "SQLite"
    engine: AsyncEngine
    batch_rows: int
    #: Add frames to the audit table (then what autovacuum would do).
    append: Callable[[Iterator[pd.DataFrame]], Awaitable[None]]
    #: (bytes per table, how they were measured); after the initial fold, or later.
    sizes: Callable[[], Awaitable[tuple[dict[str, int], str]]]
    #: Run after the initial fold (VACUUM ANALYZE on PostgreSQL).
    settle: Callable[[], Awaitable[None]]


def emit(report: list[str], *lines: str) -> None:
    """Print lines now and keep them for the results file."""
    report.extend(lines)
    print("\n".join(lines), flush=True)


async def run_dataset(
    backend: Backend, data: DataSet, rows: int, behind_rows: int, backfill_rows: int,
    args: argparse.Namespace, end: datetime, report: list[str],
) -> Section:  # fmt: skip
    """Everything measured on one loaded data set: fold, sizes, Overview, seven calls, rows
    behind, shuffled backfill; the TARGET lines for the high-cardinality one."""
    engine, section = backend.engine, Section(backend.name, data, rows)
    section.fold_in_order = await fold(engine, backend.batch_rows)
    await backend.settle()
    emit(report, f"  rollup fold, rows in time order (the initial catch_up(), batch_rows "
                 f"{backend.batch_rows:,}): {section.fold_in_order.text()}; {load_average()}")  # fmt: skip
    sizes, how = await backend.sizes()
    emit(report, "  " + size_line(await row_counts(engine), sizes, how))
    section.sizes = (rollup_bytes(sizes), sizes[RAW])
    if args.explain and backend.name == "PostgreSQL":
        await explain(engine, end)
    name = f"{backend.name}, {data.name} data set, {rows:,} rows"
    lines, section.overview = await measure(name, engine, end, args.runs)
    report += lines
    lines, section.seven = await seven_calls(name, engine, end, args.runs)
    report += lines
    if behind_rows:
        frames, span = late_rows(data, rows, behind_rows, end)
        await backend.append(frames)
        report += await behind(name, engine, end, args.runs, span, section.overview)
        late = await fold(engine, backend.batch_rows)
        emit(report, f"  then the rollup fold of those late rows (for information; they land in "
                     f"buckets that hold rows already): {late.text()}")  # fmt: skip
    if backfill_rows:
        await backend.append(shuffled_rows(data, backfill_rows, end))
        section.backfill = await fold(engine, backend.batch_rows)
        since = end - WINDOWS["30d"]
        repo = StrategyExecutionLogRepository(make_session_factory(engine))
        check(await fetch_overview(repo, BUSY, since, end),
              await plain_overview(engine, params_of(since, end)))  # fmt: skip
        emit(
            report,
            f"\n{name}, shuffled backfill: {backfill_rows:,} more rows, created_at uniformly "
            f"random over the 30 days (ids not in time order), the rollups caught up before",
            f"  rollup fold of the backfill (catch_up(), batch_rows {backend.batch_rows:,}): "
            f"{section.backfill.text()}; {load_average()}",
            "  30d Overview after it: counts equal to the plain SQL's",
        )
        sizes, how = await backend.sizes()
        if not how.startswith("page counts"):
            emit(report, "  after it, as the job left them: "
                         + size_line(await row_counts(engine), sizes, how))  # fmt: skip
    if data.name == "high-cardinality":
        emit(report, *target_lines(section))
    return section


def heading(report: list[str], backend: str, data: DataSet, rows: int) -> None:
    bar = "=" * 24
    emit(report, f"\n{bar} {data.name} data set, {backend}, {rows:,} rows {bar}",
         f"({data.describe()})")  # fmt: skip


async def run_sqlite(args: argparse.Namespace, end: datetime, data: DataSet) -> list[str]:
    report: list[str] = []
    heading(report, f"SQLite {sqlite3.sqlite_version}", data, args.sqlite_rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.db"
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()
        t0 = time.perf_counter()
        load_sqlite(path, data, args.sqlite_rows, end)
        before = sqlite_file_bytes(path)
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        emit(report, f"  loaded {args.sqlite_rows:,} rows (executemany + index + ANALYZE) in "
                     f"{time.perf_counter() - t0:.0f} s; {load_average()}")  # fmt: skip

        async def append(frames: Iterator[pd.DataFrame]) -> None:
            await engine.dispose()
            insert_sqlite(path, frames)

        async def sizes() -> tuple[dict[str, int], str]:
            return sqlite_sizes(path, before)

        async def settle() -> None:
            return None

        backend = Backend("SQLite", engine, 500_000, append, sizes, settle)
        await run_dataset(backend, data, args.sqlite_rows, args.sqlite_behind_rows,
                          args.sqlite_backfill_rows, args, end, report)  # fmt: skip
        await engine.dispose()
    return report


async def run_postgres(
    args: argparse.Namespace, end: datetime, data: DataSet, *, ingest_too: bool
) -> list[str]:
    report: list[str] = []
    heading(report, "PostgreSQL 15", data, args.pg_rows)
    server = PostgresServer()
    server.start(PG_SETTINGS)
    try:
        engine = make_engine(server.url, pool_size=10)
        await upgrade(engine, partitioned=False)  # the plain table; bench_partitions compares
        t0 = time.perf_counter()
        await load_postgres(engine, data, args.pg_rows, end)
        emit(report, f"  loaded {args.pg_rows:,} rows (COPY + index + VACUUM ANALYZE) in "
                     f"{time.perf_counter() - t0:.0f} s; {load_average()}")  # fmt: skip

        async def append(frames: Iterator[pd.DataFrame]) -> None:
            await copy_postgres(engine, frames)
            await vacuum_analyze(engine, "strategy_execution_log")

        async def sizes() -> tuple[dict[str, int], str]:
            return await postgres_bytes(engine), "pg_total_relation_size"

        async def settle() -> None:
            await vacuum_analyze(engine)

        behind_rows = args.pg_rows // 10 if args.behind_rows is None else args.behind_rows
        backfill = args.pg_rows // 10 if args.backfill_rows is None else args.backfill_rows
        backend = Backend("PostgreSQL", engine, 1_000_000, append, sizes, settle)
        await run_dataset(backend, data, args.pg_rows, behind_rows, backfill, args, end, report)
        if ingest_too and args.ingest_seconds > 0:
            emit(report, *await ingest(engine, rate=args.ingest_rate, seconds=args.ingest_seconds))
        await engine.dispose()
    finally:
        server.cleanup()
    return report


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("standard", "high-cardinality", "both"),
                        default="both", help="which data set(s) to generate and measure "
                        "(default: both, standard first)")  # fmt: skip
    parser.add_argument("--pg-rows", type=int, default=10_000_000,
                        help="rows of each data set on PostgreSQL (default 10,000,000)")  # fmt: skip
    parser.add_argument("--sqlite-rows", type=int, default=1_000_000,
                        help="rows of each data set on SQLite (default 1,000,000)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (all lines)")
    parser.add_argument("--behind-rows", type=int, default=None,
                        help="PostgreSQL rows left above the watermark (default: a tenth of --pg-rows)")  # fmt: skip
    parser.add_argument("--sqlite-behind-rows", type=int, default=None,
                        help="the same on SQLite (default: a tenth of --sqlite-rows)")  # fmt: skip
    parser.add_argument("--backfill-rows", type=int, default=None,
                        help="PostgreSQL rows of the shuffled backfill whose fold is timed "
                        "(default: a tenth of --pg-rows; 0: none)")  # fmt: skip
    parser.add_argument("--sqlite-backfill-rows", type=int, default=None,
                        help="the same on SQLite (default: a tenth of --sqlite-rows)")  # fmt: skip
    parser.add_argument("--ingest-seconds", type=float, default=10.0,
                        help="seconds of the buffered-recorder test on PostgreSQL (0: skip it)")  # fmt: skip
    parser.add_argument("--ingest-rate", type=int, default=30_000,
                        help="rows/s the recorder test submits (default 30,000)")  # fmt: skip
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="one backend only")
    parser.add_argument("--explain", action="store_true",
                        help="print PostgreSQL's plan of the 30-day status panel")  # fmt: skip
    args = parser.parse_args()
    if args.sqlite_behind_rows is None:
        args.sqlite_behind_rows = args.sqlite_rows // 10
    if args.sqlite_backfill_rows is None:
        args.sqlite_backfill_rows = args.sqlite_rows // 10
    end = datetime.now(UTC).replace(microsecond=0)
    names = ("standard", "high-cardinality") if args.dataset == "both" else (args.dataset,)
    datasets = [make_dataset(name, end) for name in names]
    print(f"{os.cpu_count()} CPUs; {load_average()}", flush=True)
    report: list[str] = [f"{os.cpu_count()} CPUs; {load_average()} at the start"]
    if args.only != "postgresql":
        for data in datasets:
            report += await run_sqlite(args, end, data)
    if args.only != "sqlite":
        for i, data in enumerate(datasets):
            report += await run_postgres(args, end, data, ingest_too=i == len(datasets) - 1)
    targets = [line for line in report if line.startswith("TARGET ")]
    if targets:
        met = sum(line.endswith("-> met") for line in targets)
        report.append(f"\n{met} of {len(targets)} targets met in this run")
    print("\n" + "\n".join(report))
    target = write_results("scale.txt", report)
    print(f"\n(written to {target}; pid {os.getpid()})")


if __name__ == "__main__":
    asyncio.run(main())
