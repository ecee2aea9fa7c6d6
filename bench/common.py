"""Shared by the benchmarks: repeated timings, the machine's load, table sizes, server settings."""

from __future__ import annotations

import os
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.model import ROLLUP_TABLES, StrategyExecutionLog

#: The throwaway PostgreSQL 15 server of the scale and rollup benchmarks.
PG_SETTINGS = {"shared_buffers": "2GB", "work_mem": "64MB", "effective_cache_size": "8GB",
               "jit": "off", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}  # fmt: skip
#: The audit table and the rollup tables (status, error code, rule case, packed histograms).
RAW: str = StrategyExecutionLog.__tablename__
ROLLUPS: tuple[str, ...] = tuple(str(t.__tablename__) for t in ROLLUP_TABLES)
TABLES = (RAW, *ROLLUPS)


def short_name(table: str) -> str:
    """``strategy_execution_rollup_status`` -> ``status``."""
    return table.removeprefix("strategy_execution_rollup_")


@dataclass(frozen=True)
class Timing:
    """Wall-clock milliseconds of ``runs`` calls after one untimed warm-up call."""

    times_ms: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median call."""
        return statistics.median(self.times_ms)

    @property
    def low(self) -> float:
        """The fastest call."""
        return min(self.times_ms)

    @property
    def high(self) -> float:
        """The slowest call."""
        return max(self.times_ms)

    def cell(self, width: int = 22) -> str:
        """``median (min-max)``, right-aligned in ``width`` characters."""
        text = f"{_ms(self.median)} ({_ms(self.low)}-{_ms(self.high)})"
        return f"{text:>{width}}"


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> Timing:
    """Time ``runs`` awaited calls of ``call`` after one warm-up call."""
    await call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return Timing(tuple(times))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


async def row_counts(engine: AsyncEngine, tables: Sequence[str] = TABLES) -> dict[str, int]:
    """``count(*)`` of each table."""
    async with engine.connect() as conn:
        return {t: int(await conn.scalar(text(f"SELECT count(*) FROM {t}")) or 0) for t in tables}


async def postgres_bytes(engine: AsyncEngine, tables: Sequence[str] = TABLES) -> dict[str, int]:
    """Bytes of each table with its indexes and TOAST (``pg_total_relation_size``)."""
    async with engine.connect() as conn:
        sql = text("SELECT pg_total_relation_size(:t)")
        return {t: int(await conn.scalar(sql, {"t": t}) or 0) for t in tables}


def sqlite_bytes(path: Path, tables: Sequence[str] = TABLES) -> dict[str, int] | None:
    """Bytes of each table with its indexes (the ``dbstat`` virtual table); ``None`` without it."""
    con = sqlite3.connect(path)
    try:
        rows = con.execute(
            "SELECT m.tbl_name, sum(s.pgsize) FROM dbstat AS s "
            "JOIN sqlite_master AS m ON m.name = s.name GROUP BY m.tbl_name"
        ).fetchall()
    except sqlite3.OperationalError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
        return None
    finally:
        con.close()
    sizes = {name: int(size) for name, size in rows}
    return {t: sizes.get(t, 0) for t in tables}


def sqlite_file_bytes(path: Path) -> int:
    """Bytes of the database's pages in use (page count minus free pages, times page size)."""
    con = sqlite3.connect(path)
    try:
        page = int(con.execute("PRAGMA page_size").fetchone()[0])
        pages = int(con.execute("PRAGMA page_count").fetchone()[0])
        free = int(con.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * page
    finally:
        con.close()


def sqlite_sizes(path: Path, before: int) -> tuple[dict[str, int], str]:
    """Bytes per table (dbstat), else from page counts: the audit table as the pages in use
    ``before`` the rollup job ran, and all four rollup tables together (under the first of
    ``ROLLUPS``, the others 0) as what the job added."""
    sizes = sqlite_bytes(path)
    if sizes is not None:
        return sizes, "dbstat"
    rollups = dict.fromkeys(ROLLUPS, 0)
    rollups[ROLLUPS[0]] = sqlite_file_bytes(path) - before
    return {RAW: before, **rollups}, "page counts (the rollup tables together under status)"


def rollup_bytes(sizes: dict[str, int]) -> int:
    """Bytes of the four rollup tables together."""
    return sum(sizes[t] for t in ROLLUPS)


def size_line(counts: dict[str, int], sizes: dict[str, int], how: str) -> str:
    """Rows and MB of the audit table and each rollup table, and the rollups' share of both."""
    rollup_rows = sum(counts[t] for t in ROLLUPS)
    rollups = "; ".join(
        f"{short_name(t)} {counts[t]:,} rows, {sizes[t] / 1e6:,.1f} MB" for t in ROLLUPS
    )
    return (
        f"sizes ({how}, indexes included): audit table {counts[RAW]:,} rows, "
        f"{sizes[RAW] / 1e6:,.1f} MB; rollup tables: {rollups}; rollups = "
        f"{rollup_rows / max(counts[RAW], 1):.1%} of the rows, "
        f"{rollup_bytes(sizes) / max(sizes[RAW], 1):.1%} of the bytes "
        f"({rollup_bytes(sizes) / 1e6:,.1f} MB of {sizes[RAW] / 1e6:,.1f} MB)"
    )


def write_results(name: str, lines: Sequence[str]) -> Path:
    """Write the printed figures to ``bench/results/<name>`` (the README quotes from there)."""
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    target = results / name
    target.write_text("\n".join(lines) + "\n")
    return target
