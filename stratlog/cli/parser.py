"""The argument tree of ``stratlog``: every command, its arguments, help text and examples.

Handlers are named here as ``"module:function"`` of :mod:`stratlog.cli` and imported only when
their command runs, so that ``--help`` and a bad argument load no database code.
"""

from __future__ import annotations

import argparse
import importlib
import textwrap
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

from stratlog.baselines import (
    BASELINES,
    DEFAULT_BASELINE,
    INSIGHTS_BASELINES,
    PRECEDING_WEEK,
    canonical_baseline,
    canonical_insights_baseline,
)
from stratlog.cli.database import Handler
from stratlog.cli.reading import FAILURE_STATUSES
from stratlog.payload import parse_field
from stratlog.timeparse import TimeArgumentError, parse_time

#: The repository's cap on listed rows (``LIST_LIMIT_MAX``; a test keeps the two equal).
LIST_LIMIT_MAX = 200
DATABASE_HELP = "database URL (default: $STRATLOG_DATABASE_URL)"
STRATEGY_HELP = "strategy id, as `stratlog strategies` lists it"

EXAMPLES = """\
examples:
  stratlog demo --rows 200000 --days 14
  stratlog strategies
  stratlog summary fraud-screen --since 2026-03-01T06:00Z --until 2026-03-01T07:00Z
  stratlog compare pricing-tier --since 24h --baseline 7d
  stratlog insights kyc-depth --since 24h
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
    "compare": "  stratlog compare fraud-screen --since 6h\n"
    "  stratlog compare pricing-tier --since 24h --baseline 7d\n"
    "  stratlog compare fraud-screen --since 2026-03-01T06:00Z --until 2026-03-01T07:00Z --json",
    "insights": "  stratlog insights kyc-depth\n"
    "  stratlog insights pricing-tier --since 24h --baseline previous\n"
    "  stratlog insights kyc-depth --since 7d --node-budget 5000 --json",
    "failures": "  stratlog failures fraud-screen\n"
    "  stratlog failures fraud-screen --status timeout --limit 200\n"
    "  stratlog failures fraud-screen --since 2026-03-01T06:00Z --until 2026-03-01T07:00Z\n"
    "  stratlog failures pricing-tier --version 1.5.0 --field applicant.country=DE",
    "show": "  stratlog show 4711\n  stratlog show 4711 --json | jq .inputPayload",
    "find": "  stratlog find req-00000000000a3f21\n  stratlog find req-00000000000a3f21 --json",
    "snapshot": "  stratlog snapshot fraud-screen --since 6h --until 5h --out incidents/\n"
    "  stratlog snapshot pricing-tier --since 24h --baseline 7d --out incidents/\n"
    "  stratlog snapshot fraud-screen --since 2026-03-01T06:00Z --until 2026-03-01T07:00Z "
    "--out . --name INC-1234",
    "demo": "  stratlog demo\n"
    "  stratlog demo --rows 5000 --days 2 --end 2026-03-01T12:00:00Z --quiet",
    "health": "  stratlog health\n  stratlog health --json",
    "rollup": "  stratlog rollup\n  stratlog rollup --watch 5\n"
    "  stratlog rollup --verify --since 7d\n  stratlog rollup --verify --repair",
    "prune": "  stratlog prune --older-than 90d --dry-run\n  stratlog prune --older-than 90d",
    "db": "  stratlog db upgrade\n"
    "  stratlog --database postgresql+asyncpg://admin@db/audit db upgrade",
    "partitions": "  stratlog partitions list\n  stratlog partitions create --ahead 14\n"
    "  stratlog partitions create --from 2026-01-01 --to 2026-03-31\n"
    "  stratlog partitions convert --batch 200000",
    "serve": "  stratlog serve --workers 2\n"
    "  STRATLOG_DATABASE_URL=postgresql+asyncpg://reader@db/audit stratlog serve --workers 4 "
    "--port 80 --listen 0.0.0.0 --connection-budget 40\n"
    "  stratlog serve --workers 4 --write-config /etc/nginx/conf.d/stratlog.conf",
}


TIMES = "\n\ntimes: 15m, 2h, 7d, 1w before now, or ISO-8601 (2026-03-01T06:00Z); no offset = UTC"
TIMES_NOTE = {
    "summary": TIMES,
    "compare": TIMES,
    "insights": TIMES,
    "failures": TIMES,
    "snapshot": TIMES,
    "demo": TIMES,
    "rollup": TIMES,
}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the problem and where to get help, then exit 2."""
        flat = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {flat} (see '{self.prog} --help')\n")


def lazy(target: str) -> Handler:
    """The handler ``"module:function"`` of :mod:`stratlog.cli`, imported when it runs."""
    module, _, name = target.partition(":")

    async def run(args: argparse.Namespace, url: str) -> int:
        handler: Handler = getattr(importlib.import_module(f"stratlog.cli.{module}"), name)
        return await handler(args, url)

    return run


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


def _payload_field(text: str) -> tuple[tuple[str, ...], str]:
    try:
        return parse_field(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected PATH=VALUE: {exc}") from None


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
    parser.set_defaults(reads_only=True)  # STRATLOG_READ_DATABASE_URL serves it
    return parser


def _window_args(parser: Parser, now: datetime, since_help: str, required: bool = False) -> None:
    as_time = _time_type(now)
    parser.add_argument("--since", type=as_time, required=required, metavar="TIME", help=since_help)
    parser.add_argument(
        "--until", type=as_time, metavar="TIME", help="end of the window, exclusive (default: now)"
    )


def _limit_arg(parser: Parser) -> None:
    parser.add_argument(
        "--limit",
        type=_list_limit,
        default=50,
        metavar="N",
        help=f"how many runs, 1-{LIST_LIMIT_MAX} (default: 50)",
    )


def _add_strategies(sub: Any) -> None:
    p = _reader(
        sub,
        "strategies",
        "every strategy with row count and last seen",
        "Every strategy in the log with its row count and its newest run (UTC).",
    )
    p.set_defaults(run=lazy("reading:strategies"))


def _add_health(sub: Any) -> None:
    p = _reader(
        sub,
        "health",
        "what each recorder wrote, dropped and failed",
        "The counters every recorder process last published (submitted = written + dropped + "
        "failed + pending), and how far the rollups have got.",
    )
    p.set_defaults(run=lazy("reading:health"))


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
    p.set_defaults(run=lazy("summary:summary"))


def _checked(canonical: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse type from a parser that raises ``ValueError`` (argparse reports it)."""

    def parse(text: str) -> str:
        try:
            return canonical(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


#: ``--baseline`` of ``compare`` / ``snapshot``: a key of BASELINES or ``version:X``.
baseline_text = _checked(canonical_baseline)
#: ``--baseline`` of ``insights``: ``week`` or a key of BASELINES.
insights_baseline_text = _checked(canonical_insights_baseline)


def _baseline_arg(parser: Parser, default: str | None) -> None:
    choices = ", ".join(f"{k} ({v})" for k, v in BASELINES.items())
    told = f"default: {default}" if default else "default: no comparison"
    parser.add_argument(
        "--baseline",
        type=baseline_text,
        default=default,
        metavar="WHICH",
        help=f"what to compare with: {choices}, or version:X (that version's runs in the same "
        f"window); {told}",
    )
    parser.add_argument(
        "--version",
        metavar="VERSION",
        help="only the runs of this strategyVersion (with --baseline version:X, the version "
        "compared; default: the other version with the newest run)",
    )


def _add_compare(sub: Any, now: datetime) -> None:
    p = _reader(
        sub,
        "compare",
        "a window against a baseline: what changed, beyond noise or not",
        "One strategy's window beside a baseline window of the same length: every headline "
        "figure with its change and whether a rate's change is beyond noise (two-proportion z "
        "test at 1 %), duration percentiles, error codes that are new, rule cases that stopped "
        "firing.",
    )
    p.add_argument("strategy", metavar="STRATEGY", help=STRATEGY_HELP)
    _window_args(p, now, "start of the window, inclusive (default: 24h before --until)")
    _baseline_arg(p, DEFAULT_BASELINE)
    _top_arg(p)
    p.set_defaults(run=lazy("compare:compare"))


def _add_insights(sub: Any, now: datetime) -> None:
    p = _reader(
        sub,
        "insights",
        "what is different about a window, and why: ranked findings with their evidence",
        "The findings of one strategy's window against a baseline: new and spiking error "
        "codes, rule cases that stopped firing, the fallthrough share and the case mix, shifts "
        "of the points, duration and nodes distributions, payload fields over-represented "
        "among failing runs, headroom to the node budget, and versions worse than the one "
        "before them. Each with its severity, its score and the counts behind it; nothing "
        "when nothing changed. The rules: docs/insights.md.",
    )
    p.add_argument("strategy", metavar="STRATEGY", help=STRATEGY_HELP)
    _window_args(p, now, "start of the window, inclusive (default: 24h before --until)")
    choices = ", ".join(f"{k} ({v})" for k, v in INSIGHTS_BASELINES.items())
    p.add_argument(
        "--baseline",
        type=insights_baseline_text,
        default=PRECEDING_WEEK,
        metavar="WHICH",
        help=f"what to compare with: {choices}; default: {PRECEDING_WEEK}",
    )
    p.add_argument(
        "--node-budget",
        type=_positive_int,
        metavar="N",
        help="the interpreter's node budget (default: the fewest nodes of a limit run)",
    )
    p.set_defaults(run=lazy("insights:insights"))


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
    _limit_arg(p)
    _window_args(p, now, "only runs at or after this time (default: no lower bound)")
    p.add_argument("--version", metavar="VERSION", help="only runs of this strategyVersion")
    p.add_argument(
        "--field",
        type=_payload_field,
        metavar="PATH=VALUE",
        help="only runs whose input payload holds VALUE at PATH (keys joined by dots), e.g. "
        "applicant.country=DE",
    )
    p.set_defaults(run=lazy("reading:failures"))


def _add_find(sub: Any) -> None:
    p = _reader(
        sub,
        "find",
        "every run of one request id, in every strategy",
        "The runs of a request id (as a support ticket names it), in every strategy and at "
        "any time, newest first: an index lookup.",
    )
    p.add_argument("request", metavar="REQUEST_ID", help="the request id, exact")
    _limit_arg(p)
    p.set_defaults(run=lazy("reading:find"))


def _add_show(sub: Any) -> None:
    p = _reader(
        sub,
        "show",
        "one run in full, payloads pretty-printed",
        "One row of the log by id: every field, the error message in full and both "
        "payloads as indented JSON.",
    )
    p.add_argument("id", type=_positive_int, metavar="ID", help="the row id (see 'failures')")
    p.set_defaults(run=lazy("reading:show"))


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
    _baseline_arg(p, None)
    p.set_defaults(run=lazy("snapshot:snapshot"), reads_only=True)


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
    p.set_defaults(run=lazy("demo:demo"))


def _add_rollup(sub: Any, now: datetime) -> None:
    p = _command(
        sub,
        "rollup",
        "fold new rows into the rollups (speeds up long windows); --verify checks them",
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
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare the rollups with the raw rows per strategy and day (exit 1 on a difference)",
    )
    p.add_argument(
        "--repair", action="store_true", help="with --verify: rebuild the days that differ"
    )
    p.add_argument(
        "--since",
        type=_time_type(now),
        metavar="TIME",
        help="with --verify: only days from this time on (default: every day)",
    )
    p.set_defaults(run=lazy("maintenance:rollup"))


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
    p.set_defaults(run=lazy("maintenance:prune"))


def _add_db(sub: Any) -> None:
    db = _command(sub, "db", "schema management", "Schema management (Alembic migrations).")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_sub.add_parser(
        "upgrade",
        help="bring the schema to the newest revision, then catch the rollups up",
        description="Create the schema or migrate it to the newest revision (Alembic), then "
        "fold every row above the rollup watermark into the rollups, with a progress bar. A "
        "revision that rebuilds the rollups starts them over from the first row; interrupted, "
        "the rebuild resumes where it stopped when this command runs again.",
        epilog="examples:\n" + COMMAND_EXAMPLES["db"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    upgrade.add_argument("--database", metavar="URL", default=argparse.SUPPRESS, help=DATABASE_HELP)
    upgrade.add_argument("--quiet", action="store_true", help="no progress bar")
    upgrade.add_argument(
        "--no-partitions",
        dest="partitioned",
        action="store_false",
        help="PostgreSQL: keep a new audit table plain (default: partitioned by day)",
    )
    upgrade.set_defaults(run=lazy("maintenance:db_upgrade"))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _add_partitions(sub: Any) -> None:
    p = _command(
        sub,
        "partitions",
        "PostgreSQL: list, create or convert to the audit table's day partitions",
        "The audit table on PostgreSQL is partitioned by UTC day (a new database is; an "
        "existing table with rows is converted by `convert`). `list` shows the partitions, "
        "`create` makes the coming days' (the rollup's --watch loop does it every hour) or a "
        "range's; rows of a day without a partition wait in the default partition and move "
        "into the day's partition when it is made.",
    )
    p.add_argument("action", choices=["list", "create", "convert"])
    p.add_argument("--ahead", type=_whole, default=7, help="create: days after today (UTC)")
    p.add_argument(
        "--from", dest="first_day", type=_day, metavar="DAY", help="create: a range's first day"
    )
    p.add_argument(
        "--to", dest="last_day", type=_day, metavar="DAY", help="create: a range's last day"
    )
    p.add_argument("--batch", type=_positive_int, default=100_000, help="convert: rows per copy")
    p.add_argument("--json", action="store_true", help="list: JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=lazy("maintenance:partitions"))


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port between 1 and 65535, got {text!r}")
    return value


def _add_serve(sub: Any) -> None:
    p = _command(
        sub,
        "serve",
        "run several dashboard processes behind nginx (production)",
        "Start --workers dashboard processes (streamlit run dashboard.py on ports from "
        "--worker-port up) and nginx in front of them on --listen:--port, with sticky "
        "sessions by cookie and websocket upgrades; restart a process that dies; stop "
        "everything on Ctrl-C. Each process gets --connection-budget // --workers database "
        "connections. --write-config only writes the nginx configuration, for your own nginx.",
    )
    p.add_argument("--workers", type=_positive_int, default=2, metavar="N",
                   help="dashboard processes (default: 2)")  # fmt: skip
    p.add_argument("--port", type=_port, default=8080, help="nginx's port (default: 8080)")
    p.add_argument("--listen", default="127.0.0.1", metavar="ADDRESS",
                   help="nginx's address (default: 127.0.0.1)")  # fmt: skip
    p.add_argument("--worker-port", type=_port, default=8601, metavar="PORT",
                   help="the first process's port, the others follow (default: 8601)")  # fmt: skip
    p.add_argument("--connection-budget", type=_positive_int, default=20, metavar="N",
                   help="database connections of all processes together (default: 20)")  # fmt: skip
    p.add_argument("--nginx", metavar="PATH", help="the nginx binary (default: found on PATH)")
    p.add_argument("--run-dir", type=Path, metavar="DIR",
                   help="nginx's configuration, logs and the processes' logs (default: a new "
                   "temporary directory)")  # fmt: skip
    p.add_argument("--write-config", type=Path, metavar="FILE",
                   help="write the http-level nginx configuration to FILE (- for stdout), "
                   "start nothing")  # fmt: skip
    p.set_defaults(run=lazy("serve:serve"))


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
    _add_compare(sub, now)
    _add_insights(sub, now)
    _add_failures(sub, now)
    _add_find(sub)
    _add_show(sub)
    _add_snapshot(sub, now)
    _add_demo(sub, now)
    _add_rollup(sub, now)
    _add_prune(sub, now)
    _add_db(sub)
    _add_partitions(sub)
    _add_serve(sub)
    return parser
