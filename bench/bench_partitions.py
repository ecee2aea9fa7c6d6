"""Daily partitions against the plain table (issue 18), on one PostgreSQL 15, in the same run.

    .venv/bin/python -m bench.bench_partitions [--rows 10000000] [--days 60] [--runs 5]
        [--prune-days 30] [--ingest-seconds 10]

One throwaway server (tests/pg.py, the settings of bench/common.py), two databases: ``plain``
(``stratlog db upgrade --no-partitions``) and ``partitioned`` (``stratlog db upgrade``, then
``stratlog partitions create`` for the data's days). Each gets the same rows: the
``high-cardinality`` data set of bench/bench_scale.py (98 strategies, half the rows for
``busy``, 20 error codes, 30 cases, versions), ``--rows`` over the ``--days`` ending now, in time
order, COPYed in, covering index built after the load, VACUUM ANALYZE. Then, layout by layout:

- the COPY load rate, and the rollup job's fold of every row (``RollupJob.catch_up``, rows/s);
- the Overview (``fetch_overview``) of ``busy`` for 1 h, 24 h, 7 d and 30 d ending now:
  median and min-max of ``--runs`` runs after one warm-up; beside it the floor of
  bench/bench_scale.py (one plain ``GROUP BY`` statement per panel, ``percentile_cont``, the
  seven run at once on seven connections), the same windows and runs, on the same table;
- insert rate: ``insert_many`` batches of 2,000 rows (now-timestamped, with payloads) for
  ``--ingest-seconds``;
- bytes: the audit table with its indexes and TOAST (summed over the partitions), per row;
- ``stratlog prune`` of the oldest ``--prune-days`` days (after the ingested rows are folded,
  so its own catch-up has nothing to do): by DROP of the day partitions, and by the batched
  DELETE on the plain table (10,000 rows per transaction, the command's default).

The machine has 2 cores and the server runs beside the client: read the figures as relative.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_scale import (
    BUSY,
    WINDOWS,
    chunks,
    copy_postgres,
    fold,
    make_dataset,
    params_of,
    plain_overview,
    vacuum_analyze,
)
from bench.common import PG_SETTINGS, load_average, timed, write_results
from stratlog import partitions
from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.demo import floor_hour
from stratlog.model.strategy_execution_log import COVERING_INDEX_COLUMNS
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import retention
from stratlog.service import fetch_overview
from tests.pg import PostgresServer

LAYOUTS = ("plain", "partitioned")


def say(lines: list[str], line: str) -> None:
    print(line, flush=True)
    lines.append(line)


async def table_bytes(engine: AsyncEngine) -> int:
    """The audit table with indexes and TOAST; a partitioned one summed over its partitions."""
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                text(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "WHERE c.oid = to_regclass('strategy_execution_log') OR c.oid IN (SELECT "
                    "inhrelid FROM pg_inherits WHERE inhparent = "
                    "to_regclass('strategy_execution_log'))"
                )
            )
            or 0
        )


async def load(engine: AsyncEngine, data: Any, rows: int, days: int, end: datetime) -> float:
    """COPY the rows (index built after), VACUUM ANALYZE; seconds."""
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_strategy_execution_log_covering"))
    await copy_postgres(engine, chunks(data, rows, end - timedelta(days=days), end, days, seed=1))
    cols = ", ".join(COVERING_INDEX_COLUMNS)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE INDEX ix_strategy_execution_log_covering ON strategy_execution_log ({cols})"
            )
        )
    await vacuum_analyze(engine, "strategy_execution_log")
    return time.perf_counter() - started


async def ingest(engine: AsyncEngine, seconds: float) -> float:
    """``insert_many`` of 2,000-row batches for ``seconds``; rows per second."""
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    written = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        now = datetime.now(UTC)
        await repo.insert_many([
            {"strategyId": "ingest", "status": "ok", "durationMs": 3.2, "nodes": 40,
             "points": 10.0, "caseName": "prime", "inputPayload": {"amount": i, "country": "DE"},
             "outputPayload": {"score": 0.5}, "createdAt": now}
            for i in range(2_000)
        ])  # fmt: skip
        written += 2_000
    return written / (time.perf_counter() - started)


async def one_layout(
    layout: str, server: PostgresServer, args: argparse.Namespace, end: datetime
) -> dict[str, Any]:
    url = server.create_database(layout)
    engine = make_engine(url, pool_size=8)  # the floor runs its seven statements at once
    out: dict[str, Any] = {}
    try:
        await upgrade(engine, partitioned=layout == "partitioned")
        first = (end - timedelta(days=args.days)).date()
        await partitions.ensure(engine, first, end.date() + timedelta(days=partitions.AHEAD_DAYS))
        data = make_dataset("high-cardinality", end)
        seconds = await load(engine, data, args.rows, args.days, end)
        out["load"] = args.rows / seconds
        out["bytes"] = await table_bytes(engine)
        out["fold"] = await fold(engine, 250_000)
        repo = StrategyExecutionLogRepository(make_session_factory(engine))
        out["overview"] = {
            name: await timed(lambda s=end - span: fetch_overview(repo, BUSY, s, end), args.runs)
            for name, span in WINDOWS.items()
        }
        out["floor"] = {
            name: await timed(
                lambda s=end - span: plain_overview(engine, params_of(s, end)), args.runs
            )
            for name, span in WINDOWS.items()
        }
        out["ingest"] = await ingest(engine, args.ingest_seconds)
        await fold(engine, 250_000)  # the ingested rows: prune's own catch-up is not timed then
        cutoff = retention.day_cutoff(end - timedelta(days=args.days - args.prune_days))
        pending = await retention.count_older(engine, cutoff)
        started = time.perf_counter()
        pruned = await retention.prune(engine, cutoff)
        out["prune"] = (pending, pruned, time.perf_counter() - started)
    finally:
        await engine.dispose()
    return out


async def run(args: argparse.Namespace) -> int:
    end = floor_hour(datetime.now(UTC))
    lines: list[str] = []
    say(lines, f"PostgreSQL 15 (throwaway, one server), {args.rows:,} rows over {args.days} days "
               f"ending {end:%Y-%m-%d %H:%M} UTC per layout (high-cardinality data set); "
               f"{args.runs} runs per window after one warm-up; {load_average()}")  # fmt: skip
    server = PostgresServer()
    server.start(PG_SETTINGS)
    found: dict[str, dict[str, Any]] = {}
    try:
        for layout in LAYOUTS:
            print(f"  {layout}: loading...", flush=True)
            found[layout] = await one_layout(layout, server, args, end)
    finally:
        server.cleanup()
    say(lines, f"\n{'':34}{'plain table':>24}{'partitioned by day':>26}")

    def row(label: str, cells: list[str]) -> None:
        say(lines, f"{label:<34}{cells[0]:>24}{cells[1]:>26}")

    p, q = found["plain"], found["partitioned"]
    row("COPY load (rows/s)", [f"{d['load']:,.0f}" for d in (p, q)])
    row("rollup fold (rows/s)", [f"{d['fold'].rate:,.0f}" for d in (p, q)])
    for name in WINDOWS:
        row(
            f"Overview {name} (ms, median (min-max))",
            [d["overview"][name].cell(22).strip() for d in (p, q)],
        )
        row(f"  plain SQL floor {name} (ms)", [d["floor"][name].cell(22).strip() for d in (p, q)])
    row("insert_many, 2,000-row batches (rows/s)", [f"{d['ingest']:,.0f}" for d in (p, q)])
    row("audit table + indexes (bytes/row)", [f"{d['bytes'] / args.rows:,.0f}" for d in (p, q)])
    for d, layout in ((p, "plain"), (q, "partitioned")):
        pending, pruned, seconds = d["prune"]
        how = f"{pruned.partitions} partitions dropped" if pruned.partitions else "batched DELETE"
        say(lines, f"prune of {args.prune_days} days, {layout}: {pruned.rows:,} of {pending:,} "
                   f"rows in {seconds:.1f} s ({how})")  # fmt: skip
    say(lines, f"{load_average()}")
    write_results("bench_partitions", lines)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--prune-days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ingest-seconds", type=float, default=10.0)
    args = parser.parse_args()
    if not 0 < args.prune_days < args.days or args.rows < 1 or args.runs < 1:
        parser.error("need 0 < --prune-days < --days, and positive --rows and --runs")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
