"""A read replica for the dashboards: a real PostgreSQL streaming standby on localhost.

The primary is a throwaway cluster; the standby is ``pg_basebackup -R`` of it, started on its own
port, following the primary's WAL stream. With ``STRATLOG_READ_DATABASE_URL`` at the standby the
dashboard and the read commands read it while the writers and the rollup use the primary; a
standby whose replay is paused says how far behind it is on every page; one that is down is
named in the banner and the page comes back once it is up.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from stratlog.db import make_engine, make_session_factory
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.service.replica import replica_state
from tests.cli.helpers import create_schema, stratlog
from tests.conftest import make_row
from tests.pg import PostgresServer
from tests.ui.conftest import OpenApp

STRATEGY = "replicated"
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Pair:
    primary: PostgresServer
    standby: PostgresServer

    def url(self, server: PostgresServer) -> str:
        return server.url.rsplit("/", 1)[0] + "/audit"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary)

    @property
    def standby_url(self) -> str:
        return self.url(self.standby)


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _write(url: str, rows: int, start: int = 0) -> None:
    engine = make_engine(url)
    try:
        repo = StrategyExecutionLogRepository(make_session_factory(engine))
        await repo.insert_many([
            make_row(strategyId=STRATEGY, requestId=f"q{start + i}",
                     createdAt=NOW - timedelta(minutes=30) + timedelta(seconds=start + i))
            for i in range(rows)
        ])  # fmt: skip
    finally:
        await engine.dispose()


async def _scalar(url: str, sql: str) -> object:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql))
    finally:
        await engine.dispose()


def count_on(url: str) -> int:
    return int(run(_scalar(url, "SELECT count(*) FROM strategy_execution_log")) or 0)  # type: ignore[call-overload]


def wait_for(check: object, what: str, limit_s: float = 20.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    primary = PostgresServer()
    primary.start()
    standby: PostgresServer | None = None
    try:
        url = primary.create_database("audit")
        run(create_schema(url))
        standby = PostgresServer(standby_of=primary)
        standby.start()
        replicated = Pair(primary, standby)
        wait_for(lambda: _answers(replicated.standby_url), "the standby did not start")
        yield replicated
    finally:
        if standby is not None:
            standby.cleanup()
        primary.cleanup()


def _answers(url: str) -> bool:
    try:
        return run(_scalar(url, "SELECT pg_is_in_recovery()")) is True
    except Exception:
        return False


def replay(pair: Pair, *, paused: bool) -> None:
    action = "pg_wal_replay_pause()" if paused else "pg_wal_replay_resume()"
    run(_scalar(pair.standby_url, f"SELECT {action}"))


def test_reads_go_to_the_replica_and_writes_to_the_primary(pair: Pair) -> None:
    run(_write(pair.primary_url, 50))
    wait_for(lambda: count_on(pair.standby_url) == count_on(pair.primary_url), "not replicated")
    env = {
        "STRATLOG_DATABASE_URL": pair.primary_url,
        "STRATLOG_READ_DATABASE_URL": pair.standby_url,
    }
    replay(pair, paused=True)
    try:
        seen = count_on(pair.standby_url)
        run(_write(pair.primary_url, 20, start=1000))
        assert count_on(pair.primary_url) == seen + 20
        listed = stratlog("strategies", "--json", env=env)  # a read command: the replica
        assert listed.returncode == 0, listed.stderr
        assert f'"count": {seen}' in listed.stdout
        direct = stratlog("--database", pair.primary_url, "strategies", "--json", env=env)
        assert f'"count": {seen + 20}' in direct.stdout
        rolled = stratlog("rollup", "--quiet", env=env)  # a writer: the primary
        assert rolled.returncode == 0, rolled.stderr
        on_replica = stratlog("--database", pair.standby_url, "rollup", "--quiet", env=env)
        assert on_replica.returncode != 0  # a standby takes no writes
        assert "is a read-only standby (a read replica)" in on_replica.stderr
    finally:
        replay(pair, paused=False)
    wait_for(lambda: count_on(pair.standby_url) == count_on(pair.primary_url), "no catch-up")


def test_every_page_says_how_far_behind_a_lagging_replica_is(
    pair: Pair, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch, markdown_text: object
) -> None:
    monkeypatch.setenv("STRATLOG_READ_DATABASE_URL", pair.standby_url)
    window = {"strategy": STRATEGY, "window": "24h"}
    wait_for(lambda: count_on(pair.standby_url) == count_on(pair.primary_url), "not replicated")
    at = open_app(pair.primary_url, **window)
    assert not at.exception and not at.error
    assert "read replica" not in markdown_text(at)  # type: ignore[operator]
    replay(pair, paused=True)
    try:
        run(_write(pair.primary_url, 5, start=2000))
        time.sleep(3.2)  # replay stays put: the primary's newer work is 3 s ahead
        state = run(_standby_state(pair.standby_url))
        assert state is not None and state.lagging, state  # type: ignore[attr-defined]
        for page in (None, "pages/runbook.py", "pages/health.py"):
            at = open_app(pair.primary_url, page, **window)
            assert not at.exception and not at.error
            shown = markdown_text(at)  # type: ignore[operator]
            assert "read replica: data as of " in shown and " s behind" in shown, shown
    finally:
        replay(pair, paused=False)


async def _standby_state(url: str) -> object:
    engine = make_engine(url)
    try:
        return await replica_state(engine)
    finally:
        await engine.dispose()


def test_a_replica_that_is_down_is_named_and_the_page_comes_back(
    pair: Pair, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRATLOG_READ_DATABASE_URL", pair.standby_url)
    pair.standby.stop()
    try:
        at = open_app(pair.primary_url, strategy=STRATEGY, window="24h")
        assert not at.exception
        banner = " ".join(str(e.value) for e in at.error)
        assert "Cannot reach the database." in banner
        assert "read replica" in banner and "STRATLOG_READ_DATABASE_URL" in banner
        assert str(pair.standby.port) in banner
    finally:
        pair.standby.start()
    wait_for(lambda: _answers(pair.standby_url), "the standby did not come back")
    import streamlit as st

    st.cache_data.clear()  # what the page's own retry does once the database answers
    at = open_app(pair.primary_url, strategy=STRATEGY, window="24h")
    assert not at.exception and not at.error
    assert os.environ["STRATLOG_READ_DATABASE_URL"] == pair.standby_url


def test_a_standby_that_replayed_nothing_yet_says_how_much_wal_waits() -> None:
    """Right after it starts, a standby has no replayed commit to date its data by; with WAL
    received and not replayed it lags all the same (seen in Chromium with replay paused)."""
    from stratlog.service.replica import ReplicaState

    waiting = ReplicaState(None, 0.0, 368_992)
    assert waiting.lagging
    assert waiting.describe() == "368,992 bytes of WAL received and not yet replayed"
    assert not ReplicaState(None, 0.0, 0).lagging  # nothing to replay: current
    dated = ReplicaState(datetime(2026, 12, 3, 12, 3, 5, tzinfo=UTC), 4.2, 10)
    assert dated.lagging and dated.describe() == "data as of 2026-12-03 12:03:05 UTC, 4 s behind"
    assert not ReplicaState(dated.asOf, 1.0, 10).lagging  # under 2 s: not worth a word
