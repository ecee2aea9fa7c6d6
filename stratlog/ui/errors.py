"""Turn a failed database call into a message an operator can act on."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from stratlog.config import load_settings, redact_url
from stratlog.dialect import is_sqlite_url
from stratlog.ui.bridge import MissingDatabaseFile, QueryTimeout
from stratlog.vocabulary import md_escape

#: Exceptions the pages show as a message instead of a traceback.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError)

_SCHEMA_PROBLEMS = ("no such table", "no such column", "does not exist", "undefined")


@dataclass(frozen=True)
class Failure:
    """What went wrong, the technical cause (shown as code) and what to do (Markdown-safe)."""

    title: str
    cause: str
    hint: str


def first_line(exc: BaseException) -> str:
    """The driver's own message, first line, without SQLAlchemy's boilerplate."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip() or type(inner).__name__
    return f"{type(inner).__name__}: {text.splitlines()[0]}"


def _unreachable(url: str, where: str, cause: str) -> Failure:
    if is_sqlite_url(url):
        check = f"Check that the SQLite file of {where} can be opened (its folder must exist)"
    elif url == load_settings().read_database_url:
        check = (
            f"Check that the read replica {where} is up and that STRATLOG_READ_DATABASE_URL "
            "points at it (writers and the rollup use the primary, STRATLOG_DATABASE_URL)"
        )
    else:
        check = f"Check that {where} is up and that STRATLOG_DATABASE_URL points at it"
    return Failure(
        "Cannot reach the database.",
        cause,
        f"{check}. This page retries by itself every few seconds and recovers when it answers.",
    )


def describe(exc: BaseException, url: str) -> Failure:
    """A Failure for a database exception (timed out, no schema, unreachable, other)."""
    where = md_escape(redact_url(url))
    cause = first_line(exc)
    if isinstance(exc, MissingDatabaseFile):
        hint = (
            "The dashboard only reads and never creates a database file. Put the file back, point "
            "STRATLOG_DATABASE_URL at it, or create it with `stratlog demo` or `stratlog db "
            "upgrade`. This page looks again every few seconds."
        )
        return Failure(f"No database file at {md_escape(str(exc.path))}.", cause, hint)
    if isinstance(exc, QueryTimeout):
        hint = f"{where} may be overloaded or unreachable. The page retries by itself; raise "
        hint += "STRATLOG_QUERY_TIMEOUT_S if big windows are slow."
        return Failure("The database did not answer in time.", cause, hint)
    if any(marker in cause.lower() for marker in _SCHEMA_PROBLEMS):
        hint = f"Bring the schema of {where} up to date with `stratlog db upgrade` (the "
        hint += "dashboard only reads a server database and never changes its tables)."
        return Failure("The audit-log schema is missing or out of date.", cause, hint)
    if isinstance(exc, DBAPIError | OSError | TimeoutError) or "connect" in cause.lower():
        return _unreachable(url, where, cause)
    hint = f"Database: {where}. The page retries by itself; see the server log for details."
    return Failure("The database call failed.", cause, hint)
