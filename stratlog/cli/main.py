"""Entry point of the ``stratlog`` console script: parse, check, run, turn failures into exit codes.

Exit codes: 0 ok; 1 the database is unreachable, missing or not upgraded, or the output is not
writable; 2 bad arguments; 130 interrupted. Every expected failure is one line on stderr, with
any password in the database URL masked.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from stratlog.cli.database import Handler
from stratlog.cli.errors import CommandError, UsageError
from stratlog.cli.parser import build_parser
from stratlog.config import load_settings, redact_url
from stratlog.timeparse import resolve_window


def _validate(args: argparse.Namespace) -> None:
    """Check what needs no database (the window's order) before connecting."""
    if getattr(args, "since", None) and getattr(args, "until", None):
        resolve_window(args.since, args.until)
    if args.command == "snapshot":
        from stratlog.cli.snapshot import check_name

        check_name(args.name)


def _fail(message: str, code: int, url: str | None = None) -> int:
    """One line on stderr (with any password in ``url`` masked); returns ``code``."""
    text = " ".join(message.split())
    if url:
        text = _scrub(text, url)
    print(f"stratlog: error: {text}", file=sys.stderr)
    return code


def _scrub(text: str, url: str) -> str:
    from sqlalchemy.engine import make_url

    text = text.replace(url, redact_url(url))
    try:
        password = make_url(url).password
    except Exception:  # unparsable: nothing more to find
        return text
    return text.replace(str(password), "***") if password else text


def _closed_pipe() -> int:
    """The reader went away (`stratlog ... | head`): stop quietly, as Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


#: SQLSTATE classes of "the server is not there to answer": connection exceptions, operator
#: intervention (shut down, starting up), insufficient resources (too many connections).
CONNECTION_CLASSES = ("08", "57", "53")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stratlog`` console script; returns the exit code."""
    now = datetime.now(UTC)
    args = build_parser(now).parse_args(argv)
    args.now = now
    try:
        _validate(args)
    except (UsageError, ValueError) as exc:
        return _fail(str(exc), 2)
    settings = load_settings()
    # Read commands go to the read replica when one is configured; --database names one URL.
    default = settings.reads_url if getattr(args, "reads_only", False) else settings.database_url
    return _run(args, getattr(args, "database", None) or default)


def _run(args: argparse.Namespace, url: str) -> int:
    """Run the command; every expected failure becomes one line on stderr and an exit code."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidRequestError, OperationalError

    handler: Handler = args.run
    try:
        return asyncio.run(handler(args, url))
    except BrokenPipeError:
        return _closed_pipe()
    except (UsageError, ValueError) as exc:
        return _fail(str(exc), 2, url)
    except CommandError as exc:
        return _fail(str(exc), 1, url)
    except (ArgumentError, InvalidRequestError) as exc:
        return _fail(f"bad database URL {redact_url(url)}: {exc}", 2, url)
    except (OperationalError, DBAPIError, OSError) as exc:
        from stratlog.dialect import sqlstate

        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        where = redact_url(url)
        if "during recovery" in cause:
            return _fail(
                f"{where} is a read-only standby (a read replica): this command writes, so "
                f"point it at the primary (STRATLOG_DATABASE_URL): {cause}",
                1,
                url,
            )
        state = sqlstate(exc) if isinstance(exc, DBAPIError) else None
        if state and state[:2] not in CONNECTION_CLASSES:  # it answered, and said no
            return _fail(f"the database {where} refused the command: {cause}", 1, url)
        return _fail(f"cannot reach the database {where}: {cause}", 1, url)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
