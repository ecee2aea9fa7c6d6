"""The dashboard's read-only PostgreSQL role: every read works through it, every write fails.

The role is created by executing the SQL block of docs/operating.md exactly as written, and the
dashboard connects with the URL documented there (host and port swapped for the test server), so
the documentation and this test cannot drift apart.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.db import alembic_config, make_engine, make_session_factory, upgrade
from stratlog.model import ROLLUP_TABLES
from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.rollups import RollupJob
from stratlog.rollups.retention import prune
from stratlog.schemas import StrategyExecutionLogCreate
from stratlog.service import Recorder, fetch_overview
from stratlog.service.buffered import BufferedRecorder
from stratlog.service.health import HealthPublisher, read_health
from stratlog.service.runbook import RunbookQuery, fetch_runbook
from stratlog.ui.bridge import Backend
from tests.conftest import T0, make_row
from tests.pg import PostgresServer

pytestmark = pytest.mark.postgres

DOC = Path(__file__).resolve().parents[1] / "docs" / "operating.md"
SQL_MARKER = "<!-- readonly-role-sql -->"
URL_MARKER = "<!-- readonly-role-url -->"
INSUFFICIENT_PRIVILEGE = "42501"
STRATEGIES = ("credit-limit", "fraud-screen")
SEEDED = 600  # rows folded into the rollups
TAIL = 40  # rows above the rollup watermark (read raw)
WINDOW = (T0 - timedelta(hours=12), T0 + timedelta(hours=12))


def doc_block(marker: str) -> str:
    """The body of the first fenced code block after ``marker`` in docs/operating.md."""
    doc = DOC.read_text(encoding="utf-8")
    assert marker in doc, f"{DOC} lost its marker {marker}"
    match = re.search(r"```[a-z]*\n(.*?)\n```", doc[doc.index(marker) :], re.DOTALL)
    assert match is not None, f"no code block after {marker} in {DOC}"
    return match.group(1)


def documented_sql() -> str:
    """The recommended SQL, verbatim."""
    return doc_block(SQL_MARKER)


def documented_url() -> URL:
    """The dashboard's STRATLOG_DATABASE_URL from the doc."""
    match = re.search(r"STRATLOG_DATABASE_URL='([^']+)'", doc_block(URL_MARKER))
    assert match is not None, "the doc's URL block has no STRATLOG_DATABASE_URL='...'"
    return make_url(match.group(1))


@dataclass
class ReadOnly:
    """The database set up as the doc says: the owner's engine and the dashboard's."""

    owner: AsyncEngine
    reader: AsyncEngine
    reader_url: str
    owner_repo: StrategyExecutionLogRepository
    reader_repo: StrategyExecutionLogRepository


def seed_rows(count: int, offset: int = 0) -> list[dict[str, Any]]:
    """A mix of statuses, codes and cases over the test window."""
    rows = []
    for i in range(offset, offset + count):
        status = ("ok", "ok", "ok", "error", "timeout", "limit")[i % 6]
        failed = status != "ok"
        rows.append(
            make_row(
                strategyId=STRATEGIES[(i // 6) % 2],
                requestId=f"req-{i}",
                status=status,
                errorCode=("E_" + status.upper()) if failed else None,
                errorMessage="boom" if failed else None,
                caseName=None if failed or i % 5 == 0 else f"case-{i % 3}",
                durationMs=1.0 + (i % 97),
                nodes=10 + i % 50,
                points=None if failed else float(i % 40),
                createdAt=T0 - timedelta(hours=11) + timedelta(seconds=60 * i),
            )
        )
    return rows


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL error code of a SQLAlchemy error (``.orig`` is the driver's error)."""
    for candidate in (exc, getattr(exc, "orig", None)):
        code = getattr(candidate, "sqlstate", None)
        if code:
            return str(code)
    return None


async def owner_count(setup: ReadOnly) -> int:
    """Rows in the audit table, as the owner sees them."""
    async with setup.owner.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM strategy_execution_log")) or 0)


@pytest.fixture(scope="module")
async def readonly(postgres_server: PostgresServer) -> AsyncIterator[ReadOnly]:
    """Database and role of the doc: schema and data by the owner, then the doc's SQL."""
    doc_url = documented_url()
    database, role = doc_url.database, doc_url.username
    assert database and role
    admin = make_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{database}"'))
    owner_url = make_url(postgres_server.url).set(database=database)
    owner = make_engine(owner_url.render_as_string(hide_password=False))
    reader_url = doc_url.set(host="127.0.0.1", port=postgres_server.port)
    reader_str = reader_url.render_as_string(hide_password=False)
    reader = make_engine(reader_str)
    try:
        await upgrade(owner)
        owner_repo = StrategyExecutionLogRepository(make_session_factory(owner))
        await owner_repo.insert_many(seed_rows(SEEDED))
        await RollupJob(owner).catch_up()
        await owner_repo.insert_many(seed_rows(TAIL, offset=SEEDED))
        async with owner.connect() as conn:  # the doc's SQL, verbatim, as the owner
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.execute(documented_sql())
        reader_repo = StrategyExecutionLogRepository(make_session_factory(reader))
        yield ReadOnly(owner, reader, reader_str, owner_repo, reader_repo)
    finally:
        await reader.dispose()
        await owner.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            await conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        await admin.dispose()


def test_doc_sql_and_url_name_the_same_role_and_database():
    url, sql = documented_url(), documented_sql()
    assert url.drivername == "postgresql+asyncpg"
    assert f"CREATE ROLE {url.username} LOGIN" in sql
    assert f"GRANT CONNECT ON DATABASE {url.database} TO {url.username};" in sql
    assert "ALTER DEFAULT PRIVILEGES" in sql
    assert not re.search(r"\b(INSERT|UPDATE|DELETE|TRUNCATE|ALL PRIVILEGES)\b", sql)


async def test_role_has_select_and_nothing_else(readonly: ReadOnly):
    async with readonly.reader.connect() as conn:
        flags = (
            await conn.execute(
                text(
                    "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, "
                    "has_database_privilege(current_database(), 'CREATE'), "
                    "has_schema_privilege('public', 'CREATE') "
                    "FROM pg_roles WHERE rolname = current_user"
                )
            )
        ).one()
        assert not any(flags), flags
        rights = (
            await conn.execute(
                text(
                    "SELECT tablename, has_table_privilege(quote_ident(tablename), 'SELECT'), "
                    "has_table_privilege(quote_ident(tablename), "
                    "'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') "
                    "FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
                )
            )
        ).all()
    tables = {name for name, _, _ in rights}
    assert {"strategy_execution_log", "stratlog_rollup_state", "stratlog_recorder_health",
            *(t.__tablename__ for t in ROLLUP_TABLES)} <= tables  # fmt: skip
    assert all(can_read and not can_write for _, can_read, can_write in rights), rights


def _overview_fields(overview: Any) -> tuple[Any, ...]:
    return (
        overview.statusCounts, overview.errorCodes, overview.caseNames, overview.summary,
        overview.durations, overview.points, overview.pointsHistogram, overview.timeseries,
    )  # fmt: skip


async def test_dashboard_read_path_works_and_matches_the_owner(readonly: ReadOnly):
    reader, owner = readonly.reader_repo, readonly.owner_repo
    strategies = await reader.list_strategies()
    assert strategies == await owner.list_strategies()
    expected = Counter(r["strategyId"] for r in seed_rows(SEEDED + TAIL))
    assert {s["strategyId"]: s["count"] for s in strategies} == expected
    for sid in STRATEGIES:
        got = await fetch_overview(reader, sid, *WINDOW)
        assert got.total == expected[sid]
        assert _overview_fields(got) == _overview_fields(await fetch_overview(owner, sid, *WINDOW))
        listed = await reader.list_for_strategy(strategyId=sid, status="error", limit=20)
        assert listed and [r.id for r in listed] == [
            r.id for r in await owner.list_for_strategy(strategyId=sid, status="error", limit=20)
        ]
        row = await reader.get(listed[0].id)
        assert row is not None and row.to_dict() == listed[0].to_dict()
        runs = await reader.list_runs(strategyId=sid, sinceDt=WINDOW[0], untilDt=WINDOW[1])
        assert runs and await reader.neighbours(runs[1].id, strategyId=sid) == (
            runs[0].id,
            runs[2].id,
        )
    assert await reader.get(10**12) is None
    assert await read_health(make_session_factory(readonly.reader)) == []


def test_dashboard_backend_starts_and_reads_as_the_role(readonly: ReadOnly):
    """The dashboard's own bridge: opening it on PostgreSQL never tries to migrate or write."""
    backend = Backend(readonly.reader_url, timeout=30)
    try:
        repo = backend.repository
        assert {s["strategyId"] for s in backend.run(repo.list_strategies())} == set(STRATEGIES)
        overview = backend.run(fetch_overview(repo, STRATEGIES[1], *WINDOW))
        assert overview.failures > 0
        runbook = backend.run(fetch_runbook(repo, RunbookQuery(STRATEGIES[1], *WINDOW)))
        assert runbook.rows
        assert backend.run(repo.get(int(runbook.rows[0]["id"]))) is not None
    finally:
        backend.close()


def _sql(statement: str) -> Callable[[ReadOnly], Awaitable[Any]]:
    async def run(setup: ReadOnly) -> None:
        async with setup.reader.begin() as conn:
            await conn.execute(text(statement))

    return run


async def _insert_row(setup: ReadOnly) -> None:
    await setup.reader_repo.insert_row(StrategyExecutionLog(**make_row()))


async def _insert_many(setup: ReadOnly) -> None:
    await setup.reader_repo.insert_many(seed_rows(5, offset=10_000))


async def _create(setup: ReadOnly) -> None:
    await setup.reader_repo.create(StrategyExecutionLogCreate(**make_row()))


async def _rollup(setup: ReadOnly) -> None:
    await RollupJob(setup.reader).run_once()


async def _prune(setup: ReadOnly) -> None:
    await prune(setup.reader, T0 + timedelta(days=2))


def _downgrade_on(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, "base")


async def _migrate(setup: ReadOnly) -> None:
    async with setup.reader.begin() as conn:  # drops every table of stratlog when allowed
        await conn.run_sync(_downgrade_on)


WRITES: dict[str, Callable[[ReadOnly], Awaitable[Any]]] = {
    "insert_row": _insert_row,
    "insert_many": _insert_many,
    "create": _create,
    "rollup job": _rollup,
    "prune": _prune,
    "alembic downgrade": _migrate,
    "INSERT": _sql(
        "INSERT INTO strategy_execution_log (strategy_id, status, duration_ms, nodes, "
        "created_at) VALUES ('x', 'ok', 1, 1, now())"
    ),
    "UPDATE": _sql("UPDATE strategy_execution_log SET status = 'error'"),
    "DELETE": _sql("DELETE FROM strategy_execution_log"),
    "TRUNCATE": _sql("TRUNCATE strategy_execution_log"),
    "UPDATE watermark": _sql("UPDATE stratlog_rollup_state SET watermark = 0"),
    "DELETE rollups": _sql("DELETE FROM strategy_execution_rollup_status"),
    "CREATE TABLE": _sql("CREATE TABLE public.intruder (id integer)"),
    "CREATE INDEX": _sql("CREATE INDEX ix_intruder ON strategy_execution_log (request_id)"),
    "ALTER TABLE": _sql("ALTER TABLE strategy_execution_log ADD COLUMN intruder integer"),
    "DROP TABLE": _sql("DROP TABLE strategy_execution_log"),
}


@pytest.mark.parametrize("write", list(WRITES))
async def test_every_write_is_refused(readonly: ReadOnly, write: str):
    before = await owner_count(readonly)
    with pytest.raises(Exception) as caught:
        await WRITES[write](readonly)
    assert sqlstate(caught.value) == INSUFFICIENT_PRIVILEGE, repr(caught.value)
    assert await owner_count(readonly) == before


async def test_best_effort_recorders_never_raise_and_count(readonly: ReadOnly):
    recorder = Recorder(readonly.reader_repo, timeout_s=10)
    for i in range(3):
        assert await recorder.record(StrategyExecutionLog(**make_row(requestId=f"r{i}"))) is False
    stats = recorder.stats
    assert (stats.attempted, stats.written, stats.failed) == (3, 0, 3)
    assert stats.lastError is not None and "permission denied" in stats.lastError

    buffered = BufferedRecorder(readonly.reader_repo, retries=0, flush_interval_s=0.01)
    buffered.start()
    assert all(buffered.submit(make_row(requestId=f"b{i}")) for i in range(4))
    final = await buffered.close(timeout_s=10)
    assert (final.submitted, final.written, final.failed, final.pending) == (4, 0, 4, 0)

    publisher = HealthPublisher(make_session_factory(readonly.reader), recorder, name="reader")
    assert await publisher.publish_now() is False
    assert await owner_count(readonly) == SEEDED + TAIL


async def test_default_privileges_cover_tables_added_later(readonly: ReadOnly):
    """A later migration (run by the owner) adds a table: the role can read it, not write it."""
    async with readonly.owner.begin() as conn:
        await conn.execute(text("CREATE TABLE later_table (id integer)"))
        await conn.execute(text("INSERT INTO later_table VALUES (1)"))
    try:
        async with readonly.reader.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM later_table")) == 1
        with pytest.raises(DBAPIError) as caught:
            await _sql("INSERT INTO later_table VALUES (2)")(readonly)
        assert sqlstate(caught.value) == INSUFFICIENT_PRIVILEGE
    finally:
        async with readonly.owner.begin() as conn:
            await conn.execute(text("DROP TABLE later_table"))
