"""The ``stratlog`` command line: schema, demo data and post-mortem helpers (see docs/cli.md)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import difflib
import itertools
import json
import os
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console
from rich.highlighter import JSONHighlighter
from rich.table import Table
from rich.text import Text

from stratlog.config import load_settings, redact_url
from stratlog.timeparse import TimeArgumentError, parse_time, resolve_window
from stratlog.timewindow import Window

if TYPE_CHECKING:  # SQLAlchemy and Alembic load lazily: `--help` and bad arguments answer fast
    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

    from stratlog.model.strategy_execution_log import StrategyExecutionLog
    from stratlog.repository.strategy_execution_log_repository import (
        StrategyExecutionLogRepository as Repo,
    )
    from stratlog.service.overview import Overview

#: The repository's cap on listed rows (``LIST_LIMIT_MAX``; a test keeps the two equal).
LIST_LIMIT_MAX = 200
DATABASE_HELP = "database URL (default: $STRATLOG_DATABASE_URL)"
STRATEGY_HELP = "strategy id, as `stratlog strategies` lists it"
FAILURE_STATUSES = ("error", "timeout", "limit")
#: Terminal colours of the statuses (the dashboard's Okabe-Ito colours).
STATUS_STYLES = {"ok": "#0072B2", "error": "#D55E00", "timeout": "#E69F00", "limit": "#CC79A7"}
#: Width of tables when stdout is not a terminal (rich would assume 80 columns and wrap).
PIPE_WIDTH = 200

EXAMPLES = """\
examples:
  stratlog demo --rows 200000 --days 14
  stratlog strategies
  stratlog summary fraud-screen --since 2026-03-01T06:00Z --until 2026-03-01T07:00Z
  stratlog failures fraud-screen --status error --limit 20
  stratlog show 4711
  stratlog snapshot fraud-screen --since 6h --until 5h --out incidents/
  STRATLOG_DATABASE_URL=postgresql+asyncpg://reader@db/audit stratlog strategies --json

times: relative to now (15m, 2h, 7d, 1w) or ISO-8601 (2026-03-01T06:00Z; no offset means UTC).
exit codes: 0 ok; 1 database unreachable, missing or not upgraded, or output not writable;
            2 bad arguments (unknown strategy or id, bad time or window, bad limit).
"""
COMMAND_EXAMPLES = {
    "strategies": "  stratlog strategies\n  stratlog strategies --json | jq '.[].strategyId'",
    "summary": "  stratlog summary fraud-screen\n"
    "  stratlog summary fraud-screen --since 7d\n"
    "  stratlog summary fraud-screen --since 2026-03-01T06:00Z --until 2026-03-01T07:00Z --json",
    "failures": "  stratlog failures fraud-screen\n"
    "  stratlog failures fraud-screen --status timeout --limit 200\n"
    "  stratlog failures fraud-screen --since 2026-03-01T06:00Z --until 2026-03-01T07:00Z",
    "show": "  stratlog show 4711\n  stratlog show 4711 --json | jq .inputPayload",
    "snapshot": "  stratlog snapshot fraud-screen --since 6h --until 5h --out incidents/\n"
    "  stratlog snapshot fraud-screen --since 2026-03-01T06:00Z --until 2026-03-01T07:00Z "
    "--out . --name INC-1234",
    "demo": "  stratlog demo\n"
    "  stratlog demo --rows 5000 --days 2 --end 2026-03-01T12:00:00Z --quiet",
    "health": "  stratlog health\n  stratlog health --json",
    "rollup": "  stratlog rollup\n  stratlog rollup --watch 5",
    "prune": "  stratlog prune --older-than 90d --dry-run\n  stratlog prune --older-than 90d",
    "db": "  stratlog db upgrade\n"
    "  stratlog --database postgresql+asyncpg://admin@db/audit db upgrade",
}


TIMES = "\n\ntimes: 15m, 2h, 7d, 1w before now, or ISO-8601 (2026-03-01T06:00Z); no offset = UTC"
TIMES_NOTE = {"summary": TIMES, "failures": TIMES, "snapshot": TIMES, "demo": TIMES}


class UsageError(Exception):
    """A bad argument: exit code 2 and one line on stderr."""


class CommandError(Exception):
    """The command cannot do its job (no table, unwritable output): exit code 1, one line."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the problem and where to get help, then exit 2."""
        flat = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {flat} (see '{self.prog} --help')\n")


# -- argument types ----------------------------------------------------------------------------


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _list_limit(text: str) -> int:
    value = _whole(text)
    if not 1 <= value <= LIST_LIMIT_MAX:
        raise argparse.ArgumentTypeError(
            f"must be between 1 and {LIST_LIMIT_MAX} (the repository's cap), got {value}"
        )
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _time_type(now: datetime) -> Callable[[str], datetime]:
    def parse(text: str) -> datetime:
        try:
            return parse_time(text, now)
        except TimeArgumentError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


# -- the parser --------------------------------------------------------------------------------


def _command(sub: Any, name: str, help_text: str, description: str) -> Parser:
    parser: Parser = sub.add_parser(
        name,
        help=help_text,
        description=textwrap.fill(description, 90),
        epilog="examples:\n" + COMMAND_EXAMPLES[name] + TIMES_NOTE.get(name, ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=DATABASE_HELP,
    )
    return parser


def _reader(sub: Any, name: str, help_text: str, description: str) -> Parser:
    parser = _command(sub, name, help_text, description)
    parser.add_argument("--json", action="store_true", help="machine-readable output (JSON)")
    return parser


def _window_args(parser: Parser, now: datetime, since_help: str, required: bool = False) -> None:
    as_time = _time_type(now)
    parser.add_argument("--since", type=as_time, required=required, metavar="TIME", help=since_help)
    parser.add_argument(
        "--until", type=as_time, metavar="TIME", help="end of the window, exclusive (default: now)"
    )


def _add_strategies(sub: Any) -> None:
    p = _reader(
        sub,
        "strategies",
        "every strategy with row count and last seen",
        "Every strategy in the log with its row count and its newest run (UTC).",
    )
    p.set_defaults(run=_cmd_strategies)


def _add_health(sub: Any) -> None:
    p = _reader(
        sub,
        "health",
        "what each recorder wrote, dropped and failed",
        "The counters every recorder process last published (submitted = written + dropped + "
        "failed + pending), and how far the rollups have got.",
    )
    p.set_defaults(run=_cmd_health)


def _top_arg(parser: Parser) -> None:
    parser.add_argument(
        "--top",
        type=_positive_int,
        default=10,
        metavar="N",
        help="how many error codes and rule cases to list (default: 10)",
    )


def _add_summary(sub: Any, now: datetime) -> None:
    p = _reader(
        sub,
        "summary",
        "status counts, top errors, cases, percentiles, points",
        "The Overview of one strategy in a window, as aligned tables.",
    )
    p.add_argument("strategy", metavar="STRATEGY", help=STRATEGY_HELP)
    _window_args(p, now, "start of the window, inclusive (default: 24h before --until)")
    _top_arg(p)
    p.set_defaults(run=_cmd_summary)


def _add_failures(sub: Any, now: datetime) -> None:
    p = _reader(
        sub,
        "failures",
        "the newest failed runs (the runbook in a terminal)",
        "The newest runs of a strategy that did not end ok (statuses error, timeout and "
        "limit, or the one --status names), newest first.",
    )
    p.add_argument("strategy", metavar="STRATEGY", help=STRATEGY_HELP)
    p.add_argument("--status", choices=FAILURE_STATUSES, help="only this status (default: all 3)")
    p.add_argument(
        "--limit",
        type=_list_limit,
        default=50,
        metavar="N",
        help=f"how many runs, 1-{LIST_LIMIT_MAX} (default: 50)",
    )
    _window_args(p, now, "only runs at or after this time (default: no lower bound)")
    p.set_defaults(run=_cmd_failures)


def _add_show(sub: Any) -> None:
    p = _reader(
        sub,
        "show",
        "one run in full, payloads pretty-printed",
        "One row of the log by id: every field, the error message in full and both "
        "payloads as indented JSON.",
    )
    p.add_argument("id", type=_positive_int, metavar="ID", help="the row id (see 'failures')")
    p.set_defaults(run=_cmd_show)


def _add_snapshot(sub: Any, now: datetime) -> None:
    p = _command(
        sub,
        "snapshot",
        "incident snapshot: Markdown, chart PNGs and CSVs in one zip",
        "Write DIR/NAME.zip holding snapshot.md (figures and tables), the Overview's "
        "charts as PNGs and every table as CSV, for one strategy and window.",
    )
    p.add_argument("strategy", metavar="STRATEGY", help=STRATEGY_HELP)
    _window_args(p, now, "start of the window, inclusive (required)", required=True)
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory of the zip")
    p.add_argument("--name", help="zip name without .zip (default: from strategy and window)")
    _top_arg(p)
    p.set_defaults(run=_cmd_snapshot)


def _add_demo(sub: Any, now: datetime) -> None:
    p = _command(
        sub,
        "demo",
        "write deterministic demo data (creates the schema)",
        "Write realistic demo rows for five strategies, each with a story (fraud-screen: "
        "an UPSTREAM_UNAVAILABLE spike during the hour starting 6 h before --end).",
    )
    p.add_argument("--rows", type=_positive_int, default=200_000)
    p.add_argument("--strategies", type=_positive_int, default=5)
    p.add_argument("--days", type=_positive_float, default=14.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--end",
        type=_time_type(now),
        metavar="TIME",
        help="last moment of the data (default: the start of the current hour)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_rollup(sub: Any) -> None:
    p = _command(
        sub,
        "rollup",
        "fold new rows into the hourly/daily rollups (speeds up long windows)",
        "Fold audit rows above the rollup watermark into the rollup tables. Answers are exact "
        "with or without it; the rollups make 7- and 30-day windows fast. Safe to run while "
        "rows are being written, and next to another rollup run.",
    )
    p.add_argument(
        "--watch",
        type=_positive_float,
        metavar="SECONDS",
        help="keep running, catching up every SECONDS (stop with Ctrl-C)",
    )
    p.add_argument("--batch", type=_positive_int, default=250_000, help="rows per transaction")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_prune(sub: Any, now: datetime) -> None:
    p = _command(
        sub,
        "prune",
        "delete runs older than a cutoff, in small batches (retention)",
        "Delete audit rows created before --older-than (moved back to a UTC midnight), in "
        "batches of --batch rows, each its own short transaction; the rollups are kept "
        "consistent. Safe to interrupt: run it again to finish.",
    )
    p.add_argument(
        "--older-than",
        dest="older_than",
        type=_time_type(now),
        required=True,
        metavar="TIME",
        help="cutoff: an age like 90d (before now) or an ISO-8601 time",
    )
    p.add_argument("--batch", type=_positive_int, default=10_000, help="rows per transaction")
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_db(sub: Any) -> None:
    db = _command(sub, "db", "schema management", "Schema management (Alembic migrations).")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_sub.add_parser(
        "upgrade",
        help="bring the schema to the newest revision",
        description="Create the schema or migrate it to the newest revision (Alembic).",
        epilog="examples:\n" + COMMAND_EXAMPLES["db"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    upgrade.add_argument("--database", metavar="URL", default=argparse.SUPPRESS, help=DATABASE_HELP)


def build_parser(now: datetime | None = None) -> Parser:
    """The argument parser with every subcommand; relative times count back from ``now``."""
    now = now or datetime.now(UTC)
    parser = Parser(
        prog="stratlog",
        description="Audit log of the scoring engine: schema, demo data, post-mortem helpers.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database", metavar="URL", help=DATABASE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_strategies(sub)
    _add_health(sub)
    _add_summary(sub, now)
    _add_failures(sub, now)
    _add_show(sub)
    _add_snapshot(sub, now)
    _add_demo(sub, now)
    _add_rollup(sub)
    _add_prune(sub, now)
    _add_db(sub)
    return parser


# -- output ------------------------------------------------------------------------------------


def make_console() -> Console:
    """Colours only on a terminal (rich honours NO_COLOR); log text is never read as markup."""
    console = Console(highlight=False, markup=False, emoji=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPE_WIDTH
    return console


def clean(text: str, *, multiline: bool = False) -> str:
    """Operator text safe for a terminal: control characters shown as escapes, never sent raw."""
    keep = "\n\t" if multiline else ""
    return "".join(
        ch if ch.isprintable() or ch in keep else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def cell(value: Any, style: str = "") -> Text:
    """A table cell: ``None`` as a dash, everything else as literal text."""
    return Text("–" if value is None else clean(str(value)), style=style)


def status_cell(status: str) -> Text:
    """A status in its fixed colour."""
    return cell(status, STATUS_STYLES.get(status, ""))


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Text]], right: Collection[int] = ()
) -> Table:
    """An aligned, borderless table; the columns at the indices in ``right`` are right-aligned."""
    grid = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for i, header in enumerate(headers):
        grid.add_column(header, justify="right" if i in right else "left")
    for row in rows:
        grid.add_row(*row)
    return grid


def heading(console: Console, text: str) -> None:
    """A section heading above a table."""
    console.print()
    console.print(Text(clean(text), style="bold"))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(value: Any) -> None:
    """JSON on stdout: datetimes as ISO-8601 strings, non-ASCII kept."""
    sys.stdout.write(json.dumps(value, default=_json_default, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()  # a closed pipe (`| head`) surfaces here, inside the error handling


def utc(value: datetime | None) -> str:
    """``2026-03-01 06:00:00`` in UTC, or a dash."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "–"


# -- database ----------------------------------------------------------------------------------


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


def closed_window(args: argparse.Namespace, now: datetime) -> Window:
    """The command's window: ``--until`` defaults to now, ``--since`` to 24 h before it."""
    return resolve_window(args.since, args.until, now)


def open_window(args: argparse.Namespace) -> Window | None:
    """The optional window of ``failures``: ``None`` when neither bound is given."""
    if args.since is None and args.until is None:
        return None
    return Window(args.since, args.until)  # the order was checked before connecting


# -- strategies --------------------------------------------------------------------------------


async def _cmd_strategies(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    items = await repo.list_strategies()
    if args.json:
        print_json(items)
        return 0
    if not items:
        console.print("no strategies yet: the log is empty (try `stratlog demo`)")
        return 0
    rows = [
        [cell(i["strategyId"]), cell(f"{i['count']:,}"), cell(utc(i["lastCreatedAt"]))]
        for i in items
    ]
    console.print(table(["strategy", "rows", "last seen (UTC)"], rows, right=(1,)))
    return 0


async def _cmd_health(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    from stratlog.service.health import fetch_health

    health = await fetch_health(repo.session_factory)
    rows, rollup = health.recorders, health.rollup
    if args.json:
        print_json(
            {
                "recorders": [dataclasses.asdict(r) for r in rows],
                "rollup": {**dataclasses.asdict(rollup), "behind": rollup.behind},
            }
        )
        return 0
    if not rows:
        console.print("no recorder has reported yet (recorders publish with HealthPublisher)")
    else:
        headers = ["recorder", "kind", "submitted", "written", "dropped", "failed", "pending",
                   "updated (UTC)", "last error"]  # fmt: skip
        cells = [
            [cell(r.name), cell(r.kind), *(cell(f"{n:,}") for n in
             (r.submitted, r.written, r.dropped, r.failed, r.pending)),
             cell(utc(r.updatedAt)), cell(r.lastError or "-")]
            for r in rows
        ]  # fmt: skip
        console.print(table(headers, cells, right=(2, 3, 4, 5, 6)))
    if not rollup.ran:
        console.print(
            "rollups: never run on this database (answers are exact without them; "
            "`stratlog rollup` makes long windows fast)"
        )
    else:
        moved = f", last moved {utc(rollup.updatedAt)} UTC" if rollup.updatedAt else ""
        console.print(
            f"rollups: watermark at id {rollup.watermark:,}, newest id {rollup.newestId:,}, "
            f"{rollup.behind:,} ids behind{moved}"
        )
    return 0


# -- summary -----------------------------------------------------------------------------------


def percentiles_json(p: Any) -> dict[str, Any]:
    """A :class:`~stratlog.service.stats.Percentiles` as JSON, with its wording."""
    return {**dataclasses.asdict(p), "basis": p.describe()}


def overview_json(overview: Overview) -> dict[str, Any]:
    """The Overview as the repository answered it (plus the percentiles computed from samples)."""
    return {
        "strategyId": overview.strategyId,
        "since": overview.since,
        "until": overview.until,
        "statusCounts": overview.statusCounts,
        "errorCodes": overview.errorCodes,
        "caseNames": overview.caseNames,
        "summary": overview.summary,
        "durations": percentiles_json(overview.durations),
        "points": percentiles_json(overview.points),
        "bucketSeconds": overview.bucketSeconds,
        "timeseries": overview.timeseries,
    }


async def _fetch(args: argparse.Namespace, repo: Repo, now: datetime) -> Overview:
    from stratlog.service.overview import fetch_overview

    window = closed_window(args, now)
    await require_strategy(repo, args.strategy)
    return await fetch_overview(repo, args.strategy, window.since, window.until, top=args.top)


async def _cmd_summary(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    overview = await _fetch(args, repo, args.now)
    if args.json:
        print_json(overview_json(overview))
    else:
        print_summary(console, overview)
    return 0


def print_summary(console: Console, overview: Overview) -> None:
    """The summary tables of an Overview (the same rows as the snapshot's tables)."""
    from stratlog import report

    console.print(
        Text(f"{clean(overview.strategyId)}  {report.window_label(overview)}", style="bold")
    )
    console.print(f"{overview.total:,} runs, {overview.failures:,} not ok")
    heading(console, "Runs by status")
    rows = [
        [status_cell(r["status"]), cell(report.count(r["count"])), cell(report.share(r["share"]))]
        for r in report.status_rows(overview)
    ]
    console.print(table(["status", "runs", "share"], rows, right=(1, 2)))
    _print_errors(console, overview)
    _print_cases(console, overview)
    _print_percentiles(console, overview)


def _print_errors(console: Console, overview: Overview) -> None:
    from stratlog import report

    heading(console, "Top error codes")
    rows = report.error_rows(overview)
    if not rows:
        console.print("no error codes in this window")
        return
    cells = [
        [
            cell(r["errorCode"]),
            cell(report.count(r["count"])),
            cell(report.share(r["shareOfFailures"])),
        ]
        for r in rows
    ]
    console.print(table(["error code", "runs", "share of not-ok runs"], cells, right=(1, 2)))


def _print_cases(console: Console, overview: Overview) -> None:
    from stratlog import report

    heading(console, "Rule cases")
    rows = report.case_rows(overview)
    if not rows:
        console.print("no runs in this window")
        return
    cells = [
        [
            cell(r["case"], "italic" if r["caseName"] is None else ""),
            cell(report.count(r["count"])),
            cell(report.share(r["share"])),
        ]
        for r in rows
    ]
    console.print(table(["rule case", "runs", "share of runs"], cells, right=(1, 2)))
    note = report.no_rule_note(overview)
    if note:
        console.print(Text(note, style="dim"))


def _print_percentiles(console: Console, overview: Overview) -> None:
    from stratlog import report

    heading(console, "Duration and points")
    rows = [
        [
            cell(r["figure"]),
            *(cell(report.number(r[k])) for k in ("p50", "p95", "p99")),
            cell(r["basis"]),
        ]
        for r in report.percentile_rows(overview)
    ]
    console.print(table(["figure", "p50", "p95", "p99", "basis"], rows, right=(1, 2, 3)))
    console.print()
    figures = [
        [cell(r["figure"]), cell(report.format_figure(r["figure"], r["value"]))]
        for r in report.figure_rows(overview)
    ]
    console.print(table(["figure", "value"], figures, right=(1,)))


# -- failures ----------------------------------------------------------------------------------


async def fetch_failures(
    repo: Repo, strategy: str, statuses: Sequence[str], limit: int, window: Window | None
) -> list[StrategyExecutionLog]:
    """The newest ``limit`` runs with one of ``statuses`` (in ``window`` when given).

    One runbook query per status (each reaches back through the whole window), merged.
    """
    since, until = (window.since, window.until) if window else (None, None)
    lists = await asyncio.gather(
        *(
            repo.list_runs(strategyId=strategy, sinceDt=since, untilDt=until, status=s, limit=limit)
            for s in statuses
        )
    )
    merged = sorted(
        itertools.chain.from_iterable(lists), key=lambda r: (r.createdAt, r.id), reverse=True
    )
    return merged[:limit]


async def _cmd_failures(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    window = open_window(args)
    await require_strategy(repo, args.strategy)
    statuses = [args.status] if args.status else list(FAILURE_STATUSES)
    found = await fetch_failures(repo, args.strategy, statuses, args.limit, window)
    if args.json:
        print_json([row.to_dict() for row in found])
        return 0
    console.print(Text(_failures_caption(args, window, len(found)), style="bold"))
    if found:
        console.print(failures_table(found, console.width))
    return 0


def _failures_caption(args: argparse.Namespace, window: Window | None, shown: int) -> str:
    which = args.status or "error, timeout or limit"
    where = f" in {window.label()}" if window else ""
    if not shown:
        return f"{clean(args.strategy)}: no runs with status {which}{where}"
    return (
        f"{clean(args.strategy)}: the {shown} newest runs with status {which}{where} "
        f"(at most {args.limit}), newest first"
    )


#: Runbook columns; the optional ones go, in this order, when the terminal is too narrow.
RUNBOOK = ("id", "created (UTC)", "status", "error code", "case", "ms", "nodes", "version",
           "request", "message")  # fmt: skip
RUNBOOK_OPTIONAL = ("request", "version", "nodes", "case", "status")
RUNBOOK_RIGHT = ("id", "ms", "nodes")
MESSAGE_MIN = 16


def failures_table(rows: Sequence[StrategyExecutionLog], width: int) -> Table:
    """The runbook: one line per run, fitted to ``width``; the message is clipped to fit."""
    cells = [dict(zip(RUNBOOK, _failure_cells(r), strict=True)) for r in rows]
    shown, fixed = _fit_columns(cells, width)
    right = [i for i, name in enumerate(shown) if name in RUNBOOK_RIGHT]
    grid = table(shown, [[c[name] for name in shown] for c in cells], right=right)
    for column, name in zip(grid.columns, shown, strict=True):
        column.no_wrap = True
        column.min_width = _natural(cells, name)
    message = grid.columns[-1]
    message.min_width, message.max_width = None, max(width - fixed, MESSAGE_MIN)
    message.overflow = "ellipsis"
    return grid


def _natural(cells: Sequence[dict[str, Text]], name: str) -> int:
    return max([len(name), *(c[name].cell_len for c in cells)])


def _fit_columns(cells: Sequence[dict[str, Text]], width: int) -> tuple[list[str], int]:
    """Runbook columns leaving the message ``MESSAGE_MIN`` characters, and their total width."""
    shown = list(RUNBOOK)
    for name in (None, *RUNBOOK_OPTIONAL):
        if name is not None:
            shown.remove(name)
        fixed = sum(_natural(cells, n) + 2 for n in shown if n != "message")
        if fixed + MESSAGE_MIN <= width:
            break
    return shown, fixed


def _failure_cells(row: StrategyExecutionLog) -> list[Text]:
    message = row.errorMessage or ""
    return [
        cell(row.id),
        cell(utc(row.createdAt)),
        status_cell(row.status),
        cell(row.errorCode),
        cell(row.caseName),
        cell(f"{row.durationMs:,.1f}"),
        cell(f"{row.nodes:,}"),
        cell(row.strategyVersion),
        cell(row.requestId),
        cell(message[:120] if message else None),
    ]


# -- show --------------------------------------------------------------------------------------

SHOW_FIELDS = (
    "id",
    "strategyId",
    "strategyVersion",
    "requestId",
    "status",
    "errorCode",
    "errorMessage",
    "caseName",
    "durationMs",
    "nodes",
    "points",
    "createdAt",
)


async def _cmd_show(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    row = await repo.get(args.id)
    if row is None:
        raise UsageError(f"no row with id {args.id} (ids are listed by `stratlog failures`)")
    if args.json:
        print_json(row.to_dict())
        return 0
    console.print(table(["field", "value"], [_show_cells(row, name) for name in SHOW_FIELDS]))
    for label, payload in (
        ("input payload", row.inputPayload),
        ("output payload", row.outputPayload),
    ):
        heading(console, label)
        console.print(payload_text(payload))
    return 0


def _show_cells(row: StrategyExecutionLog, name: str) -> list[Text]:
    value = getattr(row, name)
    if name == "status":
        return [cell(name), status_cell(value)]
    if name == "createdAt":
        return [cell(name), cell(f"{utc(value)} UTC ({value.isoformat()})")]
    if name == "caseName" and value is None and row.status == "ok":
        from stratlog.report import NO_RULE_LABEL

        return [cell(name), cell(NO_RULE_LABEL, "italic")]
    if name == "errorMessage" and value is not None:
        return [cell(name), Text(clean(value, multiline=True))]
    return [cell(name), cell(value)]


def payload_text(payload: Any) -> Text:
    """A payload as indented JSON, highlighted on a terminal, never read as markup."""
    if payload is None:
        return Text("null (no payload stored)", style="dim")
    dumped = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
    return JSONHighlighter()(Text(clean(dumped, multiline=True)))


# -- snapshot ----------------------------------------------------------------------------------


async def _cmd_snapshot(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    from stratlog import report

    overview = await _fetch(args, repo, args.now)
    _output_dir(args.out)  # fail before the slow part: rendering the charts
    snapshot = report.build_snapshot(overview, name=args.name)
    try:
        target = snapshot.write(args.out)
    except OSError as exc:
        raise CommandError(f"cannot write the snapshot to {args.out}: {exc}") from None
    charts = sum(name.endswith(".png") for name in snapshot.files)
    tables = sum(name.endswith(".csv") for name in snapshot.files)
    console.print(Text(f"wrote {target} (snapshot.md, {charts} charts, {tables} tables)"))
    return 0


def _output_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot write the snapshot to {directory}: {exc}") from None


def _check_name(name: str | None) -> None:
    from stratlog.export import safe_name

    if name is not None and safe_name(name) != name:
        raise UsageError(f"--name must be a plain file name (letters, digits, . _ -), got {name!r}")


# -- schema and demo ---------------------------------------------------------------------------


async def _db_upgrade(url: str) -> int:
    from stratlog.db import upgrade

    engine = engine_for(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print(f"schema is at the newest revision: {redact_url(url)}")
    return 0


async def _demo(url: str, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from stratlog.db import make_session_factory, upgrade
    from stratlog.demo import write_demo
    from stratlog.repository.strategy_execution_log_repository import (
        StrategyExecutionLogRepository,
    )

    engine = engine_for(url)
    try:
        await upgrade(engine)  # the one command that writes: it may create the schema
        repo = StrategyExecutionLogRepository(make_session_factory(engine))
        with tqdm(total=args.rows, unit="rows", disable=args.quiet or None) as bar:
            result = await write_demo(
                repo, args.rows, args.strategies, args.days, args.seed, args.end, bar.update, url
            )
    finally:
        await engine.dispose()
    print(
        f"wrote {result.rows:,} demo rows in {result.seconds:.1f} s "
        f"({result.rows_per_second:,.0f} rows/s)"
    )
    return 0


async def _rollup(url: str, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from stratlog.rollup import RollupJob, RollupRun

    engine = await _current_schema_engine(url)
    try:
        job = RollupJob(engine, args.batch)
        with tqdm(unit="rows", disable=args.quiet or None) as bar:
            last: list[RollupRun] = []

            def progress(run: RollupRun) -> None:
                last.append(run)
                bar.total = bar.n + run.rows + max(run.behind, 0)
                bar.update(run.rows)

            total = await job.catch_up(progress)
        mark = last[-1].watermark if last else 0
        print(f"rolled up {total:,} rows; watermark at id {max(mark, 0):,}")
        if args.watch:
            print(f"watching: catching up every {args.watch:g} s (Ctrl-C to stop)", flush=True)
            await job.run_forever(args.watch)
    finally:
        await engine.dispose()
    return 0


async def _prune(url: str, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from stratlog.retention import count_older, day_cutoff, prune

    engine = await _current_schema_engine(url)
    cutoff = day_cutoff(args.older_than)
    try:
        pending = await count_older(engine, cutoff)
        if args.dry_run:
            print(f"would delete {pending:,} runs created before {utc(cutoff)} UTC")
            return 0
        with tqdm(total=pending, unit="rows", disable=args.quiet or None) as bar:
            result = await prune(engine, cutoff, batch_rows=args.batch, progress=bar.update)
    finally:
        await engine.dispose()
    print(
        f"deleted {result.rows:,} runs created before {utc(result.cutoff)} UTC and "
        f"{result.rollupRows:,} rollup rows in {result.seconds:.1f} s"
    )
    return 0


async def _current_schema_engine(url: str) -> AsyncEngine:
    """An engine on an existing database whose schema is current (never migrates it)."""
    async with open_repository(url):  # raises CommandError with what to do otherwise
        pass
    return engine_for(url)


# -- entry point -------------------------------------------------------------------------------

ReadCommand = Callable[[argparse.Namespace, "Repo", Console], Awaitable[int]]


async def _read(url: str, args: argparse.Namespace) -> int:
    command: ReadCommand = args.run
    async with open_repository(url) as repo:
        return await command(args, repo, make_console())


def _dispatch(args: argparse.Namespace, url: str) -> int:
    if args.command == "db":
        return asyncio.run(_db_upgrade(url))
    if args.command == "demo":
        return asyncio.run(_demo(url, args))
    if args.command == "rollup":
        return asyncio.run(_rollup(url, args))
    if args.command == "prune":
        return asyncio.run(_prune(url, args))
    return asyncio.run(_read(url, args))


def _validate(args: argparse.Namespace) -> None:
    """Check what needs no database (the window's order) before connecting."""
    if getattr(args, "since", None) and getattr(args, "until", None):
        resolve_window(args.since, args.until)
    if args.command == "snapshot":
        _check_name(args.name)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stratlog`` console script; returns the exit code."""
    now = datetime.now(UTC)
    args = build_parser(now).parse_args(argv)
    args.now = now
    try:
        _validate(args)
    except (UsageError, ValueError) as exc:
        return _fail(str(exc), 2)
    return _run(args, getattr(args, "database", None) or load_settings().database_url)


def _run(args: argparse.Namespace, url: str) -> int:
    """Run the command; every expected failure becomes one line on stderr and an exit code."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidRequestError, OperationalError

    try:
        return _dispatch(args, url)
    except BrokenPipeError:
        return _closed_pipe()
    except (UsageError, ValueError) as exc:
        return _fail(str(exc), 2, url)
    except CommandError as exc:
        return _fail(str(exc), 1, url)
    except (ArgumentError, InvalidRequestError) as exc:
        return _fail(f"bad database URL {redact_url(url)}: {exc}", 2, url)
    except (OperationalError, DBAPIError, OSError) as exc:
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return _fail(f"cannot reach the database {redact_url(url)}: {cause}", 1, url)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
