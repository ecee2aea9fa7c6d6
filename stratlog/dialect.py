"""The one module that knows SQLite from PostgreSQL: types, time bucketing, collation, pragmas.

Everything else (models, repository, service) speaks dialect-neutral SQLAlchemy; the differences
are compiled here with ``@compiles`` so that no other module ever tests ``dialect.name``.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TypeDecorator

#: Primary key: BIGINT on PostgreSQL, INTEGER on SQLite (only INTEGER PRIMARY KEY is the rowid).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

#: JSON documents: JSONB on PostgreSQL, JSON text on SQLite; Python ``None`` is SQL NULL.
JSONDocument = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

SQLITE_BUSY_TIMEOUT_MS = 10_000


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always UTC: refuses naive datetimes, hands back aware ones everywhere.

    PostgreSQL stores ``timestamptz``. SQLite has no timestamp type, so the value is stored as
    ISO text in UTC (``YYYY-MM-DD HH:MM:SS.ffffff``), which also sorts and compares correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; reject naive values instead of guessing their zone."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: attach a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Hand back an aware UTC datetime whatever the backend returned."""
        if value is None:
            return None
        if isinstance(value, str):  # an aggregate over the column on SQLite (e.g. max) is raw text
            value = datetime.fromisoformat(value)
        stamp: datetime = value
        if stamp.tzinfo is None:
            return stamp.replace(tzinfo=UTC)
        return stamp.astimezone(UTC)


class epoch_bucket(FunctionElement[int]):
    """``epoch_bucket(ts, n)``: start of the n-second bucket holding ``ts``, as Unix epoch seconds.

    Buckets are aligned to multiples of ``n`` since 1970-01-01 UTC (floor, also before 1970).
    """

    type = BigInteger()
    inherit_cache = True
    name = "epoch_bucket"


@compiles(epoch_bucket, "sqlite")
def _epoch_bucket_sqlite(element: epoch_bucket, compiler: SQLCompiler, **kw: Any) -> str:
    ts, seconds = list(element.clauses)
    # Cut the stored text to whole seconds first: SQLite parses times to the millisecond and
    # rounds, so 14:14:59.9996 would otherwise land in the 14:15 bucket.
    epoch = f"CAST(strftime('%s', substr({compiler.process(ts, **kw)}, 1, 19)) AS INTEGER)"
    n = compiler.process(seconds, **kw)
    # SQLite's % truncates towards zero; ((e % n) + n) % n is the floor modulus.
    return f"({epoch} - ((({epoch} % {n}) + {n}) % {n}))"


@compiles(epoch_bucket, "postgresql")
def _epoch_bucket_postgresql(element: epoch_bucket, compiler: SQLCompiler, **kw: Any) -> str:
    ts, seconds = list(element.clauses)
    epoch = f"EXTRACT(EPOCH FROM {compiler.process(ts, **kw)})"
    n = compiler.process(seconds, **kw)
    return f"CAST(floor({epoch} / {n}) * {n} AS BIGINT)"


class binary_order(FunctionElement[str]):
    """A string column ordered by code point, the same on every backend (and as Python sorts)."""

    inherit_cache = True
    name = "binary_order"


@compiles(binary_order, "sqlite")
def _binary_order_sqlite(element: binary_order, compiler: SQLCompiler, **kw: Any) -> str:
    (col,) = list(element.clauses)
    return f"{compiler.process(col, **kw)} COLLATE BINARY"


@compiles(binary_order, "postgresql")
def _binary_order_postgresql(element: binary_order, compiler: SQLCompiler, **kw: Any) -> str:
    (col,) = list(element.clauses)
    return f'{compiler.process(col, **kw)} COLLATE "C"'


class unindexed(FunctionElement[Any]):
    """A column that the planner must not use an index for (SQLite: ``+col``).

    Reading the rows above the rollup watermark should walk the primary key from the watermark,
    not the (strategy, time) index over the whole window. SQLite picks the latter unless the
    time and strategy terms are made unusable for indexes with a unary ``+``. PostgreSQL plans
    from statistics and a two-sided id range, and gets the plain column.
    """

    inherit_cache = True
    name = "unindexed"


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (col,) = list(element.clauses)
    return f"+{compiler.process(col, **kw)}"


@compiles(unindexed, "postgresql")
def _unindexed_postgresql(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (col,) = list(element.clauses)
    return str(compiler.process(col, **kw))


def is_sqlite_url(url: str) -> bool:
    """True when the database URL points at SQLite."""
    return url.startswith("sqlite")


def configure_engine(engine: AsyncEngine) -> None:
    """Apply per-connection settings: on SQLite, WAL, a busy timeout, foreign keys, NORMAL sync."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        _ensure_math_functions(dbapi_connection)


def _ensure_math_functions(dbapi_connection: Any) -> None:
    """SQLite builds without SQLITE_ENABLE_MATH_FUNCTIONS lack ln/ceil: supply Python's."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT ln(2.0), ceil(1.5)")
    except Exception:  # the driver's OperationalError: no such function
        raw = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        create = getattr(raw, "_conn", raw).create_function
        create("ln", 1, lambda x: None if x is None or x <= 0 else math.log(x), deterministic=True)
        create("ceil", 1, lambda x: None if x is None else math.ceil(x), deterministic=True)
    finally:
        cursor.close()


async def bulk_insert(
    conn: AsyncConnection, table: Any, sql: str, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert already bind-processed rows: ``COPY`` on PostgreSQL, ``executemany`` elsewhere."""
    if conn.dialect.name == "postgresql":
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        try:
            await raw.copy_records_to_table(
                table.name, records=rows, columns=columns, schema_name=table.schema
            )
        except Exception as exc:  # the driver's own errors, as SQLAlchemy raises them elsewhere
            raise DBAPIError(f"COPY {table.name}", None, exc) from exc
        return
    await conn.exec_driver_sql(sql, rows)


async def wait_for_inflight(conn: AsyncConnection, timeout_s: float = 10.0) -> bool:
    """Wait until every write transaction running now has ended; ``False`` on timeout.

    The rollup job reads ``max(id)`` and then folds rows up to it. On PostgreSQL a transaction
    that took a smaller id from the sequence may still be uncommitted at that moment; waiting
    for the transactions in progress (``pg_current_snapshot``) closes that gap. SQLite has one
    writer at a time and hands out rowids above every committed one, so there is no gap.
    """
    if conn.dialect.name != "postgresql":
        return True
    snapshot = await conn.scalar(
        text("SELECT array_agg(CAST(x AS text)) FROM pg_snapshot_xip(pg_current_snapshot()) x")
    )
    await conn.commit()
    waiting = list(snapshot or [])
    deadline = asyncio.get_running_loop().time() + timeout_s
    while waiting:
        running = await conn.scalar(
            text(
                "SELECT count(*) FROM unnest(CAST(:xids AS text[])) AS x "
                "WHERE pg_xact_status(CAST(x AS xid8)) = 'in progress'"
            ),
            {"xids": waiting},
        )
        await conn.commit()
        if not running:
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
