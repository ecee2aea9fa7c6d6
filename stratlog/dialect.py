"""The one module that knows SQLite from PostgreSQL: types, time bucketing, collation, pragmas.

Everything else (models, repository, service) speaks dialect-neutral SQLAlchemy; the differences
are compiled here with ``@compiles`` so that no other module ever tests ``dialect.name``.
"""

from __future__ import annotations

import asyncio
import math
import re
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
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
    # date_part() is double precision; EXTRACT() is numeric, and its per-row arithmetic was
    # two thirds of a grouped 7,000-row window read. The double is exact enough: it is the
    # timestamp's microseconds / 1e6, correctly rounded, so a time 1 us before a bucket edge
    # stays below the edge after the division as long as |t| < 8e9 s (years 1717-2223).
    epoch = f"date_part('epoch', {compiler.process(ts, **kw)})"
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


class json_text(FunctionElement[str]):
    """``json_text(document, path)``: the value at a path of a JSON document as text, the same
    on both backends (``null`` when the path is missing or holds JSON null).

    ``path`` is a bound list of keys (a JSON array as text: ``["applicant", "country"]``).
    Strings come back without quotes, ``true`` / ``false`` as those words, numbers as
    PostgreSQL's JSONB writes them (``1.50`` stays ``1.50``; SQLite prints ``1.5``), objects and
    arrays as JSON text.
    """

    type = String()
    inherit_cache = True
    name = "json_text"


@compiles(json_text, "postgresql")
def _json_text_postgresql(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    doc, path = (compiler.process(c, **kw) for c in element.clauses)
    keys = f"ARRAY(SELECT jsonb_array_elements_text(CAST({path} AS jsonb)))"
    return f"(CAST({doc} AS jsonb) #>> {keys})"


@compiles(json_text, "sqlite")
def _json_text_sqlite(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    doc, path = (compiler.process(c, **kw) for c in element.clauses)
    # '$."a"."b"' from the key list: every key quoted, so dots and spaces inside keys are keys
    # (SQLite's JSON paths cannot quote a '"' inside a key: such a key matches nothing here).
    # ``path`` is the compiled placeholder of a bound parameter, not a value.
    where = f"'$' || (SELECT group_concat('.\"' || value || '\"', '') FROM json_each({path}))"  # noqa: S608
    kind = f"json_type({doc}, {where})"
    return (
        f"(CASE {kind} WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL "
        f"WHEN 'object' THEN json_extract({doc}, {where}) WHEN 'array' THEN "
        f"json_extract({doc}, {where}) ELSE CAST(json_extract({doc}, {where}) AS TEXT) END)"
    )


class least(FunctionElement[Any]):
    """The smaller of two values (``LEAST`` on PostgreSQL, the two-argument ``min`` on SQLite)."""

    inherit_cache = True
    name = "least"


class greatest(FunctionElement[Any]):
    """The larger of two values (``GREATEST`` / two-argument ``max``)."""

    inherit_cache = True
    name = "greatest"


def _two_args(function: str) -> Callable[..., str]:
    def compile_(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
        return f"{function}({compiler.process(element.clauses, **kw)})"

    return compile_


for _element, _functions in ((least, ("min", "LEAST")), (greatest, ("max", "GREATEST"))):
    compiles(_element, "sqlite")(_two_args(_functions[0]))
    compiles(_element, "postgresql")(_two_args(_functions[1]))


def upsert_from_select(
    conn: AsyncConnection,
    table: Any,
    columns: Sequence[str],
    rows: Any,
    merge: Callable[[Any, Any], dict[str, Any]],
) -> Any:
    """``INSERT INTO table (columns) <rows> ON CONFLICT (primary key) DO UPDATE SET merge``.

    ``merge(existing, excluded)`` gives the new value of each non-key column from the row's
    columns and the incoming one's. ``rows`` must hold each key once (a GROUP BY over the key)
    and carry a WHERE clause (SQLite's parser needs one before ``ON CONFLICT``).
    """
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(table).from_select(list(columns), rows)
    keys = [c.name for c in table.__table__.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=keys, set_=merge(table.__table__.c, stmt.excluded)
    )


def upsert_values(conn: AsyncConnection, table: Any, replace: Sequence[str]) -> Any:
    """``INSERT ... VALUES ... ON CONFLICT (primary key) DO UPDATE`` setting ``replace`` columns.

    Executed with a list of parameter dicts (executemany): each row inserted, or its existing
    row's ``replace`` columns overwritten with the incoming values.
    """
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(table)
    keys = [c.name for c in table.__table__.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={name: stmt.excluded[name] for name in replace}
    )


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


def has_array_agg(dialect: Dialect) -> bool:
    """Whether ``array_agg`` exists (PostgreSQL): a window's values can come back as arrays,
    which the driver decodes in C, rather than as one row per run."""
    return dialect.name == "postgresql"


@dataclass(frozen=True)
class DriverStatement:
    """A SELECT compiled once for one dialect, run on the driver's connection itself.

    For a statement that returns thousands of plain rows (numbers and text, nothing to convert)
    SQLAlchemy's result layer costs more than the query: on a 7,000-row window read it doubled
    the time (measured ~17 ms against ~10 ms with asyncpg's own ``fetch``). Bind values still
    go through their types' processors (UTC timestamps), in the compiled order.
    """

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    #: The values of the binds built into the statement (literals), by name.
    defaults: Mapping[str, Any]

    @classmethod
    def compile(cls, statement: Any, dialect: Dialect) -> DriverStatement:
        """Compile ``statement`` (named bind parameters only, no expanding IN lists)."""
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        processors = tuple(compiled.binds[name].type.bind_processor(dialect) for name in names)
        return cls(compiled.string, names, processors, compiled.construct_params())

    async def rows(self, conn: AsyncConnection, values: Mapping[str, Any]) -> list[Any]:
        """Every row (sequences: asyncpg records, sqlite3 tuples) for these parameter values."""
        args = [
            value if process is None else process(value)
            for value, process in zip(
                (values[n] if n in values else self.defaults[n] for n in self.names),
                self.processors,
                strict=True,
            )
        ]
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        try:
            if conn.dialect.name == "postgresql":
                return list(await raw.fetch(self.sql, *args))
            async with raw.execute(self.sql, args) as cursor:
                return list(await cursor.fetchall())
        except Exception as exc:  # the driver's own errors, as SQLAlchemy raises them elsewhere
            raise DBAPIError(self.sql[:200], None, exc) from exc


#: SQLSTATE of "lock not available" (``lock_timeout`` ran out).
LOCK_NOT_AVAILABLE = "55P03"


async def settled_max_id(conn: AsyncConnection, table: Any, timeout_s: float = 0.5) -> int | None:
    """The largest id of ``table`` with no smaller id still to come; ``None`` if it cannot wait.

    PostgreSQL: ids are ``GENERATED ALWAYS`` (migration 0004), so a transaction holds an id only
    while it holds the table's ROW EXCLUSIVE lock (INSERT and COPY take it before they draw ids).
    A SHARE lock waits for every such transaction to end and holds new ones back for the moment
    ``max(id)`` is read; after ``timeout_s`` it gives up instead (``None``), so new inserts wait
    behind it at most that long. Only what locks this table can delay it (its writers, and a
    VACUUM, ANALYZE or CREATE INDEX CONCURRENTLY on it); other tables and databases do not.
    SQLite has one writer at a time and assigns rowids inside the write transaction, so every
    committed ``max(id)`` is settled.
    """
    newest = select(func.coalesce(func.max(table.c.id), 0))
    if conn.dialect.name != "postgresql":
        value = await conn.scalar(newest)
        await conn.commit()
        return int(value or 0)
    name = conn.dialect.identifier_preparer.format_table(table)
    wait_ms = max(int(timeout_s * 1000), 1)
    try:
        async with conn.begin():
            await conn.execute(text(f"SET LOCAL lock_timeout = '{wait_ms}ms'"))
            await conn.execute(text(f"LOCK TABLE {name} IN SHARE MODE"))
            return int(await conn.scalar(newest) or 0)
    except DBAPIError as exc:
        if sqlstate(exc) == LOCK_NOT_AVAILABLE:
            return None
        raise


def sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE of a driver error, if it has one."""
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):
        state = getattr(error, "sqlstate", None)
        if state:
            return str(state)
    return None


async def insert_missing(conn: AsyncConnection, table: Any, values: dict[str, Any]) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING``: create a row unless its key exists (no race)."""
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    await conn.execute(module.insert(table).values(**values).on_conflict_do_nothing())


#: A session factory as the repositories take it: each call gives a session in a context manager.
SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]
_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f-]+$")


@asynccontextmanager
async def consistent_sessions(engine: AsyncEngine) -> AsyncIterator[SessionFactory]:
    """Sessions that all read one snapshot of the database, for the figures of one page.

    PostgreSQL: a REPEATABLE READ, READ ONLY transaction exports its snapshot
    (``pg_export_snapshot``) and every session opens its own connection in a transaction that
    imports it (``SET TRANSACTION SNAPSHOT``), so the page's statements still run concurrently
    and see exactly the same rows. SQLite (and a pool too small to share): one read transaction
    on one connection, its statements one after the other.
    """
    size = _pool_size(engine)
    if engine.dialect.name == "postgresql" and size >= 3:
        # Each view holds a leader connection while its statements take others: bound the
        # views at once, or five pages starting together would hold the whole pool and wait.
        async with _views(engine, size), _exported_snapshot(engine) as sessions:
            yield sessions
        return
    async with _one_read_transaction(engine) as sessions:
        yield sessions


_VIEWS: weakref.WeakKeyDictionary[Any, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _pool_size(engine: AsyncEngine) -> int:
    size = getattr(engine.pool, "size", None)
    return int(size()) if callable(size) else 1  # NullPool and friends: no fixed size


def _views(engine: AsyncEngine, size: int) -> asyncio.Semaphore:
    """At most (size - 1) // 2 snapshot views at once per engine: leaders leave room to work."""
    views = _VIEWS.get(engine.sync_engine)
    if views is None:
        views = _VIEWS[engine.sync_engine] = asyncio.Semaphore(max(1, (size - 1) // 2))
    return views


def _read_only(conn: AsyncConnection) -> Any:
    return conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)


@asynccontextmanager
async def _exported_snapshot(engine: AsyncEngine) -> AsyncIterator[SessionFactory]:
    async with engine.connect() as leader:
        await _read_only(leader)
        await leader.begin()
        snapshot = str(await leader.scalar(text("SELECT pg_export_snapshot()")))
        if not _SNAPSHOT_ID.match(snapshot):
            raise ValueError(f"unexpected snapshot id {snapshot!r}")

        @asynccontextmanager
        async def session() -> AsyncIterator[AsyncSession]:
            async with engine.connect() as conn:
                await _read_only(conn)
                await conn.begin()
                await conn.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
                async with AsyncSession(bind=conn, expire_on_commit=False) as view:
                    yield view
                await conn.rollback()

        yield session
        await leader.rollback()


def one_read_transaction(engine: AsyncEngine) -> AbstractAsyncContextManager[SessionFactory]:
    """Sessions on ONE connection in one read transaction (REPEATABLE READ on PostgreSQL): a
    few statements one after the other, all reading the same snapshot, at no extra cost."""
    return _one_read_transaction(engine)


@asynccontextmanager
async def _one_read_transaction(engine: AsyncEngine) -> AsyncIterator[SessionFactory]:
    lock = asyncio.Lock()
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            await _read_only(conn)
            await conn.begin()
        else:
            # pysqlite starts no transaction for a SELECT: each would read its own snapshot.
            await conn.exec_driver_sql("BEGIN")

        @asynccontextmanager
        async def session() -> AsyncIterator[AsyncSession]:
            async with lock, AsyncSession(bind=conn, expire_on_commit=False) as view:
                yield view

        try:
            yield session
        finally:
            await conn.rollback()
