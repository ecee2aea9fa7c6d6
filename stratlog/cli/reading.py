"""Read commands: strategies, health, failures and show (summary has a module of its own)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stratlog.cli.database import reader, require_strategy
from stratlog.cli.errors import UsageError
from stratlog.cli.render import (
    cell,
    clean,
    heading,
    payload_text,
    print_json,
    status_cell,
    table,
    utc,
)
from stratlog.timewindow import Window
from stratlog.vocabulary import NO_RULE_LABEL

if TYPE_CHECKING:
    from stratlog.model.strategy_execution_log import StrategyExecutionLog
    from stratlog.repository.strategy_execution_log_repository import (
        StrategyExecutionLogRepository as Repo,
    )

#: Statuses of a failed run (``failures`` lists them, or the one ``--status`` names).
FAILURE_STATUSES = ("error", "timeout", "limit")


@reader
async def strategies(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    """``stratlog strategies``: every strategy with its row count and newest run."""
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


@reader
async def health(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    """``stratlog health``: the recorders' counters and the rollup status."""
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


# -- failures ----------------------------------------------------------------------------------


def open_window(args: argparse.Namespace) -> Window | None:
    """The optional window of ``failures``: ``None`` when neither bound is given."""
    if args.since is None and args.until is None:
        return None
    return Window(args.since, args.until)  # the order was checked before connecting


async def fetch_failures(
    repo: Repo,
    strategy: str,
    statuses: Sequence[str],
    limit: int,
    window: Window | None,
    **narrow: Any,
) -> list[StrategyExecutionLog]:
    """The newest ``limit`` runs with one of ``statuses`` (in ``window`` when given), with the
    runbook's other filters ``narrow`` (``strategyVersion``, ``payloadPath`` / ``payloadValue``).

    One runbook query per status (each reaches back through the whole window), merged.
    """
    since, until = (window.since, window.until) if window else (None, None)
    lists = await asyncio.gather(
        *(
            repo.list_runs(
                strategyId=strategy, sinceDt=since, untilDt=until, status=s, limit=limit, **narrow
            )
            for s in statuses
        )
    )
    merged = sorted(
        itertools.chain.from_iterable(lists), key=lambda r: (r.createdAt, r.id), reverse=True
    )
    return merged[:limit]


@reader
async def failures(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    """``stratlog failures``: the newest failed runs, as a runbook table or JSON."""
    window = open_window(args)
    await require_strategy(repo, args.strategy)
    statuses = [args.status] if args.status else list(FAILURE_STATUSES)
    narrow: dict[str, Any] = {}
    if args.version is not None:
        narrow["strategyVersion"] = args.version
    if args.field is not None:
        narrow["payloadPath"], narrow["payloadValue"] = list(args.field[0]), args.field[1]
    found = await fetch_failures(repo, args.strategy, statuses, args.limit, window, **narrow)
    if args.json:
        print_json([row.to_dict() for row in found])
        return 0
    console.print(Text(_failures_caption(args, window, len(found)), style="bold"))
    if found:
        console.print(failures_table(found, console.width))
    return 0


@reader
async def find(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    """``stratlog find REQUEST_ID``: every run of a request id in every strategy, newest first."""
    found = await repo.find_request(requestId=args.request, limit=args.limit)
    if args.json:
        print_json([row.to_dict() for row in found])
        return 0
    if not found:
        console.print(Text(f"no run has the request id {clean(args.request)!r}", style="bold"))
        return 0
    strategies = sorted({row.strategyId for row in found})
    console.print(
        Text(
            f"{len(found)} run(s) of request id {clean(args.request)!r} in "
            f"{', '.join(clean(s) for s in strategies)}, newest first",
            style="bold",
        )
    )
    console.print(failures_table(found, console.width))
    return 0


def _failures_caption(args: argparse.Namespace, window: Window | None, shown: int) -> str:
    which = args.status or "error, timeout or limit"
    if args.version is not None:
        which += f", version {clean(args.version)}"
    if args.field is not None:
        which += f", {clean('.'.join(args.field[0]))} = {clean(args.field[1])!r}"
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


@reader
async def show(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    """``stratlog show ID``: one run in full, payloads pretty-printed."""
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
        return [cell(name), cell(NO_RULE_LABEL, "italic")]
    if name == "errorMessage" and value is not None:
        return [cell(name), Text(clean(value, multiline=True))]
    return [cell(name), cell(value)]
