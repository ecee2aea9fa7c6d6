"""Opening the database for a command: engines, the schema check, the strategy check.

Read commands get a repository on an existing database whose schema is current; only ``demo``
and ``db upgrade`` may create or migrate a schema. SQLAlchemy and Alembic are imported inside
the functions, so that ``--help`` and bad arguments answer without loading them.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console

from stratlog.cli.errors import CommandError, UsageError
from stratlog.cli.render import make_console
from stratlog.config import redact_url

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

    from stratlog.repository.strategy_execution_log_repository import (
        StrategyExecutionLogRepository as Repo,
    )

#: Every command handler: the parsed arguments and the database URL in, the exit code out.
Handler = Callable[[argparse.Namespace, str], Coroutine[Any, Any, int]]
#: A read command: the arguments, a repository on a current schema, the console.
ReadCommand = Callable[[argparse.Namespace, "Repo", Console], Coroutine[Any, Any, int]]


def engine_for(url: str) -> AsyncEngine:
    """An engine for the URL; a URL naming a driver that is not installed is a usage error."""
    from stratlog.db import make_engine

    try:
        return make_engine(url)
    except ImportError as exc:
        raise UsageError(
            f"cannot use the database URL {redact_url(url)}: its driver {exc.name!r} is not "
            "installed (use sqlite+aiosqlite:///FILE or postgresql+asyncpg://...)"
        ) from None


def schema_problem(connection: Connection) -> str | None:
    """Why reads cannot run on this connection's schema (no table, older revision), or ``None``."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect

    from stratlog.db import alembic_config
    from stratlog.model.strategy_execution_log import StrategyExecutionLog

    if not inspect(connection).has_table(StrategyExecutionLog.__tablename__):
        return "no stratlog table in this database"
    current = set(MigrationContext.configure(connection).get_current_heads())
    expected = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    if current and current != expected:  # no alembic_version: schema managed elsewhere
        have, want = ", ".join(sorted(current)), ", ".join(sorted(expected))
        return f"the stratlog schema here is at revision {have}, this stratlog needs {want}"
    return None


@asynccontextmanager
async def open_repository(url: str) -> AsyncIterator[Repo]:
    """A repository on an existing, current stratlog database; never creates or migrates."""
    from stratlog.db import make_session_factory, sqlite_path
    from stratlog.repository.strategy_execution_log_repository import (
        StrategyExecutionLogRepository,
    )

    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise CommandError(
            f"no SQLite database at {path}: run `stratlog db upgrade` or `stratlog demo` first"
        )
    engine = engine_for(url)
    try:
        async with engine.connect() as conn:
            problem = await conn.run_sync(schema_problem)
        if problem:
            raise CommandError(f"{problem} ({redact_url(url)}): run `stratlog db upgrade`")
        yield StrategyExecutionLogRepository(make_session_factory(engine))
    finally:
        await engine.dispose()


async def current_schema_engine(url: str) -> AsyncEngine:
    """An engine on an existing database whose schema is current (never migrates it)."""
    async with open_repository(url):  # raises CommandError with what to do otherwise
        pass
    return engine_for(url)


def reader(command: ReadCommand) -> Handler:
    """The handler of a read command: it runs on a repository over a current schema."""

    async def run(args: argparse.Namespace, url: str) -> int:
        async with open_repository(url) as repo:
            return await command(args, repo, make_console())

    return run


async def require_strategy(repo: Repo, strategy: str) -> None:
    """Raise :class:`UsageError` unless the strategy has rows (with a did-you-mean hint)."""
    names = [item["strategyId"] for item in await repo.list_strategies()]
    if strategy in names:
        return
    if not names:
        raise UsageError(f"unknown strategy {strategy!r}: the log is empty")
    close = (
        difflib.get_close_matches(strategy, names, n=3)
        or [name for name in names if strategy.lower() in name.lower()][:3]
    )
    hint = f"did you mean {', '.join(map(repr, close))}?" if close else "see `stratlog strategies`"
    raise UsageError(f"unknown strategy {strategy!r}: {hint}")
