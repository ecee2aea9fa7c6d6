"""Find a run by its request id at 10 million rows on PostgreSQL: an index lookup.

Data: the high-cardinality data set of ``bench_scale`` (98 strategies over 30 days), every row
with a distinct 32-character request id, loaded by COPY into a fresh PostgreSQL 15 on this
machine; the request-id index (migration 0006) and the covering index built after the load,
then VACUUM ANALYZE. Timed: ``StrategyExecutionLogRepository.find_request`` (the sidebar's
"Find a request id" and ``stratlog find``) for ids that exist, drawn evenly over the table, and
for ids that do not, each looked up once (no warm-up of that id: the index pages a support
ticket's id needs are those any id needs). The plan of the lookup is printed with EXPLAIN
(ANALYZE, BUFFERS).

    python -m bench.bench_request [--rows 10000000] [--lookups 200]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import time
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.bench_scale import COLUMNS, dataset, make_dataset, vacuum_analyze
from bench.common import PG_SETTINGS, Timing
from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.model.strategy_execution_log import COVERING_INDEX_COLUMNS, StrategyExecutionLog
from stratlog.repository import StrategyExecutionLogRepository
from tests.pg import PostgresServer

TARGET_MS = 20.0


def request_id(n: int) -> str:
    """The request id of the ``n``-th row loaded: 32 hex characters, like a UUID."""
    return hashlib.md5(str(n).encode(), usedforsecurity=False).hexdigest()


async def load(engine: AsyncEngine, rows: int, end: datetime) -> None:
    """COPY the data set in with request ids; the indexes are built after the load."""
    async with engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_strategy_execution_log_covering"))
        await conn.execute(text("DROP INDEX ix_strategy_execution_log_request_id"))
    seen = 0
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        for df in dataset(make_dataset("high-cardinality", end), rows, end):
            df = df.assign(request_id=[request_id(seen + i) for i in range(len(df))])
            seen += len(df)
            buffer = io.BytesIO(
                df.to_csv(index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f+00").encode()
            )
            await raw.copy_to_table(
                "strategy_execution_log", source=buffer, columns=[*COLUMNS, "request_id"],
                format="csv",
            )  # fmt: skip
            print(f"  loaded {seen:,} rows", end="\r", flush=True)
        await conn.commit()
    async with engine.begin() as conn:
        cols = ", ".join(COVERING_INDEX_COLUMNS)
        await conn.execute(
            text(
                f"CREATE INDEX ix_strategy_execution_log_covering ON strategy_execution_log ({cols})"
            )
        )
        await conn.execute(
            text("CREATE INDEX ix_strategy_execution_log_request_id ON strategy_execution_log "
                 "(request_id)")
        )  # fmt: skip
    await vacuum_analyze(engine, "strategy_execution_log")


async def main(rows: int, lookups: int) -> int:
    end = datetime.now(UTC).replace(microsecond=0)
    server = PostgresServer()
    server.start(PG_SETTINGS)
    engine = make_engine(server.url, pool_size=4)
    try:
        await upgrade(engine, partitioned=False)  # the plain table; bench_partitions compares
        started = time.perf_counter()
        await load(engine, rows, end)
        print(f"loaded {rows:,} rows with request ids and indexed in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        repo = StrategyExecutionLogRepository(make_session_factory(engine))
        step = max(1, rows // lookups)
        present, absent = [], []
        for k in range(lookups):
            t = time.perf_counter()
            found = await repo.find_request(requestId=request_id(k * step))
            present.append((time.perf_counter() - t) * 1000)
            assert len(found) == 1 and found[0].requestId == request_id(k * step)
        for k in range(lookups // 4):
            t = time.perf_counter()
            assert await repo.find_request(requestId=f"no-such-request-{k}") == []
            absent.append((time.perf_counter() - t) * 1000)
        hit, miss = Timing(tuple(present)), Timing(tuple(absent))
        print(f"find_request, an id that exists ({lookups} ids): {hit.cell().strip()} ms "
              "(median, min-max)")  # fmt: skip
        print(f"find_request, an id that does not ({lookups // 4} ids): {miss.cell().strip()} ms")
        m = StrategyExecutionLog
        stmt = (
            select(m).where(m.requestId == request_id(rows // 2))
            .order_by(m.createdAt.desc(), m.id.desc()).limit(50)
        )  # fmt: skip
        sql = str(stmt.compile(engine.sync_engine, compile_kwargs={"literal_binds": True}))
        async with engine.connect() as conn:
            plan = await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql))
            print("\nThe plan of one lookup:\n" + "\n".join(f"  {r[0]}" for r in plan))
        met = hit.median < TARGET_MS
        print(f"\nTARGET PostgreSQL find_request at {rows:,} rows median < {TARGET_MS:.0f} ms: "
              f"{hit.median:.2f} ms -> {'met' if met else 'NOT MET'}")  # fmt: skip
        return 0 if met else 1
    finally:
        await engine.dispose()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.rows, args.lookups)))
