"""Daily partitions of the audit table on PostgreSQL (declarative ``PARTITION BY RANGE``).

A database created by ``stratlog db upgrade`` (migration 0008) holds ``strategy_execution_log``
as a partitioned table: one partition per UTC day, named ``strategy_execution_log_pYYYYMMDD``,
and a default partition, ``strategy_execution_log_default``, for rows of a day that has no
partition (a clock far in the future, a backfill into a dropped day). Nothing is lost and no
writer fails: such a row waits in the default partition until its day gets a partition, and the
rows move in with it (:func:`ensure`). The primary key is ``(id, created_at)`` (a partitioned
table's unique keys must hold the partition key); ids stay an identity ``GENERATED ALWAYS``.

New partitions are made ahead of time by the maintenance that already runs: ``stratlog db
upgrade``, ``stratlog rollup --watch`` (once an hour) and ``stratlog partitions``. Each is
created as a plain table and then attached (``ATTACH PARTITION`` holds a SHARE UPDATE EXCLUSIVE
lock on the parent, which readers and writers do not wait for; ``CREATE TABLE ... PARTITION
OF`` would hold ACCESS EXCLUSIVE). Attaching scans the default partition under an ACCESS
EXCLUSIVE lock on it; it is empty in the normal case. Every lock is taken with a timeout: a
partition that cannot be made now is made by the next run.

Retention (:mod:`stratlog.rollups.retention`) drops whole partitions older than the cutoff
instead of deleting their rows. SQLite is one file: no partitions, retention by delete.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import column, table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stratlog.dialect import LOCK_NOT_AVAILABLE, settled_max_id, sqlstate

PARENT = "strategy_execution_log"
DEFAULT_PARTITION = f"{PARENT}_default"
#: Days after today that get their partition ahead of time.
AHEAD_DAYS = 7
#: How long a partition's DDL waits for a lock before it gives up (the next run retries).
LOCK_TIMEOUT_MS = 5_000

#: The last value a sequence handed out (a fresh one, never called, has handed out none).
HANDED_OUT = "CASE WHEN is_called THEN last_value ELSE last_value - 1 END"

#: ``pg_class.relkind`` of the table named ``:t`` (also migration 0008's, on a sync connection).
RELKIND_SQL = "SELECT CAST(relkind AS text) FROM pg_class WHERE oid = to_regclass(:t)"

_BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


#: SQLSTATE of CREATE TABLE for a name that exists.
DUPLICATE_TABLE = "42P07"
#: ... or, when two runs create it at the same moment, the catalog's unique index says so.
UNIQUE_VIOLATION = "23505"


class PartitionsBusy(Exception):
    """A partition's lock was not granted within :data:`LOCK_TIMEOUT_MS` (a long transaction
    on the default partition or the parent); the partitions made before it are kept."""

    def __init__(self, created: list[str], day: date) -> None:
        super().__init__(
            f"the partition of {day} could not get its lock within {LOCK_TIMEOUT_MS // 1000} s "
            f"(a long transaction on the audit table?); {len(created)} made before it: run again"
        )
        self.created = created
        self.day = day


@dataclass(frozen=True)
class Partition:
    """One partition: its table, and the range ``[start, end)`` of ``created_at`` (UTC) it
    holds; ``start`` and ``end`` are ``None`` for the default partition."""

    name: str
    start: datetime | None
    end: datetime | None
    #: The planner's estimate of its rows (``pg_class.reltuples``, as of the last ANALYZE or
    #: VACUUM); ``None`` before the first.
    estimate: int | None = None

    @property
    def is_default(self) -> bool:
        return self.start is None


def is_partition(name: str | None) -> bool:
    """Whether a table name is one of the audit table's partitions (or a conversion's tables):
    schema comparisons (Alembic autogenerate) leave them out, as the model does."""
    return (
        bool(name)
        and str(name).startswith(f"{PARENT}_")
        and not str(name).startswith("strategy_execution_rollup")
    )


def include_name(name: str | None, kind: str, parent_names: Mapping[Any, str | None]) -> bool:
    """Alembic's ``include_name`` hook: everything but the partitions and their indexes."""
    if kind == "table":
        return not is_partition(name)
    if kind in ("index", "unique_constraint", "foreign_key_constraint"):
        return not is_partition(parent_names.get("table_name"))
    return True


def partition_name(day: date) -> str:
    """The table name of one UTC day's partition."""
    return f"{PARENT}_p{day:%Y%m%d}"


def _literal(at: datetime) -> str:
    """A UTC timestamptz literal (no parameter: DDL takes none)."""
    return f"'{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}+00'"


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


PARENT_INDEX_PREFIX = f"ix_{PARENT}_"
#: The audit table's indexes (besides the primary key): name, then what follows ``ON table``.
INDEXES = {
    "ix_strategy_execution_log_covering": "(strategy_id, created_at, status, error_code, "
    "case_name, duration_ms, nodes, points, id)",
    "ix_strategy_execution_log_request_id": "(request_id)",
    "ix_strategy_execution_log_failed": "(strategy_id, created_at) WHERE status <> 'ok'",
}


def create_table_statements(
    start_id: int, *, partitioned: bool = True, table: str = PARENT, suffix: str = ""
) -> list[str]:
    """DDL of the audit table at migration 0008, its indexes and (partitioned) its default
    partition; the identity starts at ``start_id`` (ids only ever grow: the rollup watermark
    is an id). ``partitioned=False`` is the plain table of migrations 0001-0007. ``table`` and
    ``suffix`` (on the names of the key and the indexes) name a table built beside the audit
    table (:func:`convert`)."""
    key = "id, created_at" if partitioned else "id"
    statements = [
        f"""CREATE TABLE {table} (
            id BIGINT GENERATED ALWAYS AS IDENTITY (START WITH {int(start_id)}),
            strategy_id VARCHAR(200) NOT NULL,
            strategy_version VARCHAR(100),
            request_id VARCHAR(200),
            status VARCHAR(16) NOT NULL,
            error_code VARCHAR(100),
            error_message TEXT,
            case_name VARCHAR(200),
            duration_ms DOUBLE PRECISION NOT NULL,
            nodes INTEGER NOT NULL,
            points DOUBLE PRECISION,
            input_payload JSONB,
            output_payload JSONB,
            created_at TIMESTAMP WITH TIME ZONE NOT NULL,
            CONSTRAINT {PARENT}_pkey{suffix} PRIMARY KEY ({key}),
            CONSTRAINT ck_sel_status CHECK (status IN ('ok', 'error', 'timeout', 'limit')),
            CONSTRAINT ck_sel_duration_nonnegative CHECK (duration_ms >= 0),
            CONSTRAINT ck_sel_nodes_nonnegative CHECK (nodes >= 0)
        ){" PARTITION BY RANGE (created_at)" if partitioned else ""}""",
        *(f"CREATE INDEX {name}{suffix} ON {table} {on}" for name, on in INDEXES.items()),
    ]
    if partitioned:
        statements.append(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {table} DEFAULT")
    return statements


def attach_statements(day: date, parent: str = PARENT) -> list[str]:
    """One transaction's DDL for ``day``'s partition: a plain table shaped like the parent, the
    day's rows moved in from the default partition, then attached."""
    name, start, end = partition_name(day), _midnight(day), _midnight(day + timedelta(days=1))
    low, high = _literal(start), _literal(end)
    return [
        f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'",
        f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        # Its range as a constraint: ATTACH then needs no scan of the table to prove it.
        f"ALTER TABLE {name} ADD CONSTRAINT {name}_range "
        f"CHECK (created_at >= {low} AND created_at < {high})",
        # Writers into the default partition wait from here (readers do not): a row of this
        # day committed after the move would fail the ATTACH below.
        f"LOCK TABLE {DEFAULT_PARTITION} IN EXCLUSIVE MODE",
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE created_at >= {low} AND "  # noqa: S608
        f"created_at < {high} RETURNING *) INSERT INTO {name} SELECT * FROM moved",
        # The parent's key and indexes, named after the partition: ATTACH adopts them.
        f"ALTER TABLE {name} ADD CONSTRAINT {name}_pkey PRIMARY KEY (id, created_at)",
        *(
            f"CREATE INDEX {name}_{index.removeprefix(PARENT_INDEX_PREFIX)} ON {name} {on}"
            for index, on in INDEXES.items()
        ),
        f"ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})",
        f"ALTER TABLE {name} DROP CONSTRAINT {name}_range",
    ]


async def table_kind(conn: AsyncConnection, table: str = PARENT) -> str | None:
    """``pg_class.relkind`` of a table: ``p`` partitioned, ``r`` plain, ``None`` missing."""
    kind = await conn.scalar(text(RELKIND_SQL), {"t": table})
    return None if kind is None else str(kind)


async def is_partitioned(conn: AsyncConnection) -> bool:
    """Whether the audit table is a partitioned table (always ``False`` on SQLite)."""
    if conn.dialect.name != "postgresql":
        return False
    return await table_kind(conn) == "p"


async def partitions(conn: AsyncConnection, parent: str = PARENT) -> list[Partition]:
    """A partitioned table's partitions, oldest first, the default partition last."""
    # The bounds print in the session's time zone: read them in UTC (for this transaction).
    await conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
    rows = (
        await conn.execute(
            text(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), "
                "CAST(c.reltuples AS bigint) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"
            ),
            {"t": parent},
        )
    ).all()
    found = []
    for name, bound, estimate in rows:
        match = _BOUND.search(bound or "")
        if match is None:
            found.append(Partition(str(name), None, None, _estimate(estimate)))
            continue
        start, end = (datetime.fromisoformat(v).astimezone(UTC) for v in match.groups())
        found.append(Partition(str(name), start, end, _estimate(estimate)))
    found.sort(key=lambda p: (p.start is None, p.start or datetime.min.replace(tzinfo=UTC)))
    return found


def _estimate(reltuples: Any) -> int | None:
    return None if reltuples is None or reltuples < 0 else int(reltuples)


async def list_partitions(engine: AsyncEngine) -> list[Partition]:
    """:func:`partitions` on a connection of its own."""
    async with engine.begin() as conn:
        return await partitions(conn)


def days(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


async def ensure(
    engine: AsyncEngine,
    first: date,
    last: date,
    *,
    parent: str = PARENT,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Create the partition of every UTC day from ``first`` to ``last`` that has none (rows of
    those days waiting in the default partition move in); the names created. A day overlapping
    any existing partition (one made by hand for a month, say) is left alone. Nothing on a
    table that is not partitioned (or on SQLite)."""
    async with engine.begin() as conn:
        if conn.dialect.name != "postgresql" or await table_kind(conn, parent) != "p":
            return []
        existing = [p for p in await partitions(conn, parent) if not p.is_default]
    created: list[str] = []
    for day in days(first, last):
        start, end = _midnight(day), _midnight(day + timedelta(days=1))
        if any(p.start < end and start < p.end for p in existing if p.start and p.end):
            continue
        try:
            async with engine.begin() as conn:
                for statement in attach_statements(day, parent):
                    await conn.execute(text(statement))
        except DBAPIError as exc:
            if sqlstate(exc) in (DUPLICATE_TABLE, UNIQUE_VIOLATION):
                continue  # made meanwhile by another run (the rollup loop, a second command)
            if sqlstate(exc) == LOCK_NOT_AVAILABLE:
                raise PartitionsBusy(created, day) from exc
            raise
        created.append(partition_name(day))
        if progress is not None:
            progress(partition_name(day))
    return created


async def ensure_ahead(
    engine: AsyncEngine, now: datetime | None = None, ahead: int = AHEAD_DAYS
) -> list[str]:
    """Partitions for today and the ``ahead`` days after it (UTC)."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return await ensure(engine, today, today + timedelta(days=ahead))


async def drop_before(
    engine: AsyncEngine, cutoff: datetime, *, lock_timeout_ms: int = LOCK_TIMEOUT_MS
) -> tuple[int, int]:
    """Drop every day partition that ends at or before ``cutoff``; (partitions, rows) removed.

    Each in a short transaction of its own: its rows counted, then ``DROP TABLE`` (an ACCESS
    EXCLUSIVE lock on the parent for the moment of the drop, taken with a timeout). When a
    lock is not granted in time, that partition and the later ones are left; the prune's
    batched delete removes their rows."""
    dropped = rows = 0
    async with engine.begin() as conn:
        if not await is_partitioned(conn):
            return 0, 0
        old = [p for p in await partitions(conn) if p.end is not None and p.end <= cutoff]
    for part in old:
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms'"))
                # Its rows first, under a lock that holds writers out until the drop.
                await conn.execute(text(f"LOCK TABLE {part.name} IN SHARE MODE"))
                count = int(await conn.scalar(text(f"SELECT count(*) FROM {part.name}")) or 0)  # noqa: S608
                await conn.execute(text(f"DROP TABLE {part.name}"))
        except DBAPIError as exc:
            if sqlstate(exc) != LOCK_NOT_AVAILABLE:
                raise
            # A long reader holds it (or the parent): every later drop would wait as long
            # again, holding writers up behind its lock each time. The rest go by delete.
            break
        rows += count
        dropped += 1
    return dropped, rows


# -- converting a table that holds rows ------------------------------------------------------

#: The partitioned table a conversion fills beside the audit table, and the old table's name
#: once the conversion has swapped them (kept until its owner drops it).
CONVERTING = f"{PARENT}_converting"
UNPARTITIONED = f"{PARENT}_unpartitioned"
_NEW = "_converting"
_OLD = "_unpartitioned"
#: Partitions a conversion makes for the past (older rows wait in the default partition, and
#: ``stratlog partitions create --from --to`` gives them days of their own).
CONVERT_DAYS_BACK = 400
#: How often a conversion asks again for the settled id boundary before it gives up.
SETTLE_TRIES = 120


@dataclass(frozen=True)
class Conversion:
    """What :func:`convert` did: rows copied by this run, and whether the tables were swapped."""

    copied: int
    swapped: bool
    partitions: int
    seconds: float
    #: The audit table was partitioned before this run: nothing was done.
    already: bool = False


async def _copy(conn: AsyncConnection, columns: str, low: int, high: int) -> int:
    result = await conn.execute(
        text(
            f"INSERT INTO {CONVERTING} ({columns}) OVERRIDING SYSTEM VALUE "  # noqa: S608
            f"SELECT {columns} FROM {PARENT} WHERE id > :low AND id <= :high"
        ),
        {"low": low, "high": high},
    )
    return int(result.rowcount or 0)


async def _columns(conn: AsyncConnection) -> str:
    names = await conn.scalars(
        text(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:t) AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum"
        ),
        {"t": PARENT},
    )
    return ", ".join(f'"{n}"' for n in names)


async def _copied_up_to(conn: AsyncConnection) -> int:
    return int(await conn.scalar(text(f"SELECT coalesce(max(id), 0) FROM {CONVERTING}")) or 0)  # noqa: S608


async def convert(
    engine: AsyncEngine,
    *,
    batch_rows: int = 100_000,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    swap_lock_timeout_s: float = 5.0,
) -> Conversion:
    """Convert a plain audit table that holds rows into a partitioned one, while writers go on.

    1. ``strategy_execution_log_converting`` is created (partitioned, indexes and key under
       temporary names), with day partitions from the oldest row (at most
       :data:`CONVERT_DAYS_BACK` days back) to :data:`AHEAD_DAYS` ahead and a default one.
    2. Rows are copied in id order, ``batch_rows`` per transaction, up to the newest id no
       transaction can still commit below (the rollup's settled boundary). Interrupted, it
       resumes from the highest id copied: run it again.
    3. One short transaction with an ACCESS EXCLUSIVE lock on the old table (waited for at most
       ``swap_lock_timeout_s``; when not granted, nothing changes and a rerun tries again):
       the last rows copied, the identity set past every id, the grants copied, the old table
       renamed ``strategy_execution_log_unpartitioned`` and the new one put in its place.

    Ids and timestamps are kept, so the rollups and their watermark stay valid. Run no
    ``stratlog prune`` meanwhile: a row it deleted from the old table after it was copied
    would come back. ``progress(copied, total)`` after each batch."""
    started = time.perf_counter()
    async with engine.begin() as conn:
        if conn.dialect.name != "postgresql":
            raise ValueError("only a PostgreSQL audit table can be partitioned")
        if await table_kind(conn) == "p":
            return Conversion(0, False, 0, time.perf_counter() - started, already=True)
        if await table_kind(conn, CONVERTING) is None:
            for statement in create_table_statements(1, table=CONVERTING, suffix=_NEW):
                await conn.execute(text(statement))
        oldest = await conn.scalar(text(f"SELECT min(created_at) FROM {PARENT}"))  # noqa: S608
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    first = today - timedelta(days=CONVERT_DAYS_BACK)
    if oldest is not None:
        first = max(first, oldest.astimezone(UTC).date())
    made = await ensure(engine, first, today + timedelta(days=AHEAD_DAYS), parent=CONVERTING)
    copied = 0
    audit = table(PARENT, column("id"))
    async with engine.connect() as conn:
        low = await _copied_up_to(conn)  # resumed: from the highest id copied
        columns = await _columns(conn)
    refused = 0
    while True:
        async with engine.connect() as conn:
            settled = await settled_max_id(conn, audit)
        if settled is None:  # a writer held the table longer than the lock wait: again
            refused += 1
            if refused > SETTLE_TRIES:
                raise PartitionsBusy([], today)
            await asyncio.sleep(0.5)
            continue
        refused = 0
        if low >= settled:
            break
        high = min(low + batch_rows, settled)
        async with engine.begin() as conn:
            total = int(await conn.scalar(text(f"SELECT coalesce(max(id), 0) FROM {PARENT}")) or 0)  # noqa: S608
            done = await _copy(conn, columns, low, high)
            if done == 0:  # a gap in the ids (pruned rows): on to the next id there is
                following = await conn.scalar(
                    text(f"SELECT min(id) FROM {PARENT} WHERE id > :high"),  # noqa: S608
                    {"high": high},
                )
                high = settled if following is None else max(high, min(int(following) - 1, settled))
        copied += done
        low = high
        if progress is not None:
            progress(copied, total)
    swapped = await _swap(engine, swap_lock_timeout_s, columns, low, max(batch_rows, 10_000))
    return Conversion(copied, swapped, len(made), time.perf_counter() - started)


async def _swap(
    engine: AsyncEngine, lock_timeout_s: float, columns: str, low: int, most: int
) -> bool:
    """The swap (see :func:`convert`); ``False`` when its lock is not granted in time or more
    than ``most`` rows above ``low`` are still to copy (the next run copies them first)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(f"SET LOCAL lock_timeout = '{max(int(lock_timeout_s * 1000), 1)}ms'")
        )
        try:
            await conn.execute(text(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE"))
        except DBAPIError as exc:
            if sqlstate(exc) == LOCK_NOT_AVAILABLE:
                await conn.rollback()
                return False
            raise
        left = await conn.scalar(
            text(f"SELECT count(*) FROM {PARENT} WHERE id > :low"),  # noqa: S608
            {"low": low},
        )
        if int(left or 0) > most:  # not a short transaction any more: copy in batches first
            await conn.rollback()
            return False
        await _copy(conn, columns, low, 2**62)
        sequence = await conn.scalar(text(f"SELECT pg_get_serial_sequence('{PARENT}', 'id')"))
        used = 0
        if sequence is not None:
            used = await conn.scalar(text(f"SELECT {HANDED_OUT} FROM {sequence}"))  # noqa: S608
        top = max(int(used or 0), await _copied_up_to(conn))
        await conn.execute(text(f"ALTER TABLE {CONVERTING} ALTER COLUMN id RESTART WITH {top + 1}"))
        grants = (
            await conn.execute(
                text(
                    "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
                    "WHERE table_name = :t AND table_schema = current_schema() "
                    "AND grantee <> current_user"
                ),
                {"t": PARENT},
            )
        ).all()
        for grantee, privilege in grants:
            who = "PUBLIC" if grantee == "PUBLIC" else f'"{grantee}"'
            await conn.execute(text(f"GRANT {privilege} ON {CONVERTING} TO {who}"))
        # The old table's owner owns the new one and its partitions (prune drops them, the
        # rollup loop attaches new ones: both need it), whoever ran the conversion.
        owner = await conn.scalar(
            text("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(:t)"),
            {"t": PARENT},
        )
        if owner is not None and owner != await conn.scalar(text("SELECT current_user")):
            for part in [CONVERTING, *(p.name for p in await partitions(conn, CONVERTING))]:
                await conn.execute(text(f'ALTER TABLE {part} OWNER TO "{owner}"'))
        await conn.execute(text(f"ALTER TABLE {PARENT} RENAME TO {UNPARTITIONED}"))
        for name in (f"{PARENT}_pkey", *INDEXES):
            await conn.execute(text(f"ALTER INDEX IF EXISTS {name} RENAME TO {name}{_OLD}"))
            await conn.execute(text(f"ALTER INDEX {name}{_NEW} RENAME TO {name}"))
        await conn.execute(text(f"ALTER TABLE {CONVERTING} RENAME TO {PARENT}"))
    return True
