"""Failures described for operators: what is wrong, the cause, what to do; no secrets."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError, ProgrammingError

from stratlog.ui.bridge import QueryTimeout
from stratlog.ui.errors import describe, first_line

PG = "postgresql+asyncpg://reader:hunter2@db.internal:5432/audit"


def test_unreachable_server() -> None:
    failure = describe(OperationalError("connect", {}, ConnectionRefusedError(111, "refused")), PG)
    assert failure.title == "Cannot reach the database."
    assert "STRATLOG_DATABASE_URL" in failure.hint and "hunter2" not in failure.hint
    assert failure.cause.startswith("ConnectionRefusedError")


def test_missing_or_old_schema() -> None:
    missing = ProgrammingError(
        "select", {}, Exception('relation "strategy_execution_log" does not exist')
    )
    assert "stratlog db upgrade" in describe(missing, PG).hint
    old = OperationalError("select", {}, Exception("no such column: x.grain"))
    assert describe(old, "sqlite+aiosqlite:///x.db").title.startswith("The audit-log schema")


def test_timeout_and_other() -> None:
    assert "in time" in describe(QueryTimeout("slow"), PG).title
    assert describe(ValueError("odd"), PG).title == "The database call failed."
    assert first_line(ValueError("a\nb")) == "ValueError: a"
