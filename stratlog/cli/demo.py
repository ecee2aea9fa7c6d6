"""``stratlog demo``: deterministic demo data (the one read-free command that creates a schema)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from tqdm import tqdm

from stratlog import partitions
from stratlog.cli.database import engine_for
from stratlog.db import make_session_factory, upgrade
from stratlog.demo import write_demo
from stratlog.repository.strategy_execution_log_repository import StrategyExecutionLogRepository

#: The most days ``demo`` gives partitions of their own.
DEMO_PARTITION_DAYS = 400


async def demo(args: argparse.Namespace, url: str) -> int:
    """Create or upgrade the schema, write ``--rows`` demo rows with a progress bar."""
    engine = engine_for(url)
    try:
        await upgrade(engine)  # the one command that writes: it may create the schema
        # A partitioned table (PostgreSQL) gets the demo's days as partitions first: its rows
        # go straight to them rather than to the default partition.
        last = args.end or datetime.now(UTC)
        first = last - timedelta(days=min(args.days, DEMO_PARTITION_DAYS))
        try:  # older days, if any, wait in the default partition
            await partitions.ensure(engine, first.date(), last.date())
        except partitions.PartitionsBusy as exc:
            print(f"partitions: {exc}; the rows go to the default partition meanwhile")
        repo = StrategyExecutionLogRepository(make_session_factory(engine))
        with tqdm(total=args.rows, unit="rows", disable=args.quiet or None) as bar:
            result = await write_demo(
                repo, args.rows, args.strategies, args.days, args.seed, args.end, bar.update, url
            )
    finally:
        await engine.dispose()
    print(
        f"wrote {result.rows:,} demo rows in {result.seconds:.1f} s "
        f"({result.rows_per_second:,.0f} rows/s)"
    )
    return 0
