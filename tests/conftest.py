"""Shared fixtures: a real throwaway PostgreSQL, SQLite files, engines and repositories."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog import partitions
from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.model import ROLLUP_TABLES
from stratlog.repository import StrategyExecutionLogRepository
from tests.pg import PostgresServer

# Every chart spec the tests make, the dashboard's under AppTest and in Chromium (the server
# inherits this environment) included, is validated against the Vega-Lite schema; production
# skips that pass (stratlog/export.py to_spec).
os.environ["STRATLOG_VALIDATE_CHARTS"] = "1"

#: "postgres" is what `stratlog db upgrade` makes of a new database: the audit table partitioned
#: by day (migration 0008); "postgres-plain" is a table that was never converted
#: (``--no-partitions``, or one that held rows at 0008).
BACKENDS = ["sqlite", "postgres", "postgres-plain"]
PLAIN_DATABASE = "stratlog_plain"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the whole run; failing to start fails the run (no silent skip)."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of the test's own, to stop and start (outage tests)."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A file-backed SQLite database for the run (WAL needs a real file)."""
    path: Path = tmp_path_factory.mktemp("sqlite") / "stratlog-test.db"
    return f"sqlite+aiosqlite:///{path}"


def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The URL of the run's database for a backend name."""
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.url
    if backend == "postgres-plain":
        return str(request.getfixturevalue("plain_postgres_url"))
    return str(request.getfixturevalue("sqlite_url"))


@pytest.fixture(scope="session")
def plain_postgres_url(postgres_server: PostgresServer) -> str:
    """A second database on the run's server, for the unpartitioned audit table."""
    return postgres_server.create_database(PLAIN_DATABASE)


@pytest.fixture(scope="session", params=BACKENDS)
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    """An engine per backend with the schema at head (through the Alembic migration)."""
    eng = make_engine(database_url(request.param, request))
    await upgrade(eng, partitioned=request.param != "postgres-plain")
    # The tests' rows lie around T0: those days get partitions of their own (rows of other
    # days go to the default partition), so prune drops partitions here.
    await partitions.ensure(eng, (T0 - timedelta(days=45)).date(), (T0 + timedelta(days=45)).date())
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
def repo(engine: AsyncEngine) -> StrategyExecutionLogRepository:
    """The repository on the backend under test."""
    return StrategyExecutionLogRepository(make_session_factory(engine))


async def clear(engine: AsyncEngine) -> None:
    """Delete every audit row and rollup, and reset the watermark (tests start from empty)."""
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM strategy_execution_log"))
        for table in ROLLUP_TABLES:
            await conn.execute(delete(table))
        await conn.execute(
            text("UPDATE stratlog_rollup_state SET watermark = 0, updated_at = NULL")
        )
        await conn.execute(text("DELETE FROM stratlog_recorder_health"))


@pytest.fixture
async def empty_repo(
    repo: StrategyExecutionLogRepository, engine: AsyncEngine
) -> StrategyExecutionLogRepository:
    """The repository over an empty table."""
    await clear(engine)
    return repo


def make_row(**overrides: Any) -> dict[str, Any]:
    """A valid row as a camelCase dict; override any attribute."""
    row: dict[str, Any] = {
        "strategyId": "credit-limit",
        "strategyVersion": "1.0.0",
        "requestId": "req-1",
        "status": "ok",
        "errorCode": None,
        "errorMessage": None,
        "caseName": "prime_customer",
        "durationMs": 5.0,
        "nodes": 42,
        "points": 10.0,
        "inputPayload": {"applicant": {"age": 40}},
        "outputPayload": {"case": "prime_customer"},
        "createdAt": T0,
    }
    row.update(overrides)
    return row


@pytest.fixture
def scratch_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Awaitable[str]]:
    """A factory of fresh, empty databases: ``await scratch_url("postgres")`` gives a new URL."""

    async def make(backend: str) -> str:
        """(A "postgres-plain" database is new and empty too: upgrade it ``partitioned=False``.)"""
        if backend == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path / f'scratch-{uuid.uuid4().hex}.db'}"
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"scratch_{uuid.uuid4().hex}"
        admin = make_engine(server.url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await admin.dispose()
        return server.url.rsplit("/", 1)[0] + f"/{name}"

    return make
