"""The ``stratlog`` command line: schema upgrades, demo data and post-mortem helpers."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

from stratlog.config import load_settings, redact_url
from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.repository.strategy_execution_log_repository import StrategyExecutionLogRepository

EXAMPLES = """\
examples:
  stratlog db upgrade
  stratlog demo --rows 200000 --strategies 5 --days 14 --seed 42
  stratlog strategies --json
  STRATLOG_DATABASE_URL=postgresql+asyncpg://reader@db/audit stratlog strategies
"""


class UsageError(Exception):
    """A bad argument: exit code 2 and one line on stderr."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _iso_datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO-8601 time, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="stratlog",
        description="Audit log of the scoring engine: schema, demo data, post-mortem helpers.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database", metavar="URL", help="database URL (STRATLOG_DATABASE_URL)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="schema management")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", help="bring the schema to the newest revision (Alembic)")

    demo = sub.add_parser("demo", help="write deterministic demo data")
    demo.add_argument("--rows", type=_positive_int, default=200_000)
    demo.add_argument("--strategies", type=_positive_int, default=5)
    demo.add_argument("--days", type=_positive_float, default=14.0)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--end", type=_iso_datetime, help="last moment of the data (default: now)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")

    strategies = sub.add_parser("strategies", help="every strategy with row count and last seen")
    strategies.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


async def _with_repository(
    url: str, action: Callable[[StrategyExecutionLogRepository], Awaitable[int]]
) -> int:
    engine = make_engine(url)
    try:
        await upgrade(engine)
        return await action(StrategyExecutionLogRepository(make_session_factory(engine)))
    finally:
        await engine.dispose()


async def _db_upgrade(url: str) -> int:
    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print(f"schema is at the newest revision: {redact_url(url)}")
    return 0


def _demo(args: argparse.Namespace) -> Callable[[StrategyExecutionLogRepository], Awaitable[int]]:
    from tqdm import tqdm

    from stratlog.demo import write_demo
    from stratlog.timewindow import as_utc

    async def run(repo: StrategyExecutionLogRepository) -> int:
        with tqdm(total=args.rows, unit="rows", disable=args.quiet or None) as bar:
            result = await write_demo(
                repo, args.rows, args.strategies, args.days, args.seed, as_utc(args.end), bar.update
            )
        print(
            f"wrote {result.rows:,} demo rows in {result.seconds:.1f} s "
            f"({result.rows_per_second:,.0f} rows/s)"
        )
        return 0

    return run


def _strategies(
    args: argparse.Namespace,
) -> Callable[[StrategyExecutionLogRepository], Awaitable[int]]:
    async def run(repo: StrategyExecutionLogRepository) -> int:
        items = await repo.list_strategies()
        if args.json:
            print(json.dumps(items, default=_json_default, indent=2))
            return 0
        if not items:
            print("no strategies yet: the log is empty (try 'stratlog demo')")
            return 0
        _print_table(
            ["strategy", "rows", "last seen (UTC)"],
            [[i["strategyId"], f"{i['count']:,}", _utc(i["lastCreatedAt"])] for i in items],
        )
        return 0

    return run


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _utc(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    for line in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _dispatch(args: argparse.Namespace, url: str) -> int:
    if args.command == "db":
        return asyncio.run(_db_upgrade(url))
    handlers = {"demo": _demo, "strategies": _strategies}
    return asyncio.run(_with_repository(url, handlers[args.command](args)))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stratlog`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    url = args.database or load_settings().database_url
    try:
        return _dispatch(args, url)
    except (ValueError, UsageError) as exc:
        print(f"stratlog: error: {exc}", file=sys.stderr)
        return 2
    except (OperationalError, DBAPIError, OSError) as exc:
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"stratlog: cannot reach the database {redact_url(url)}: {cause}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stratlog: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
