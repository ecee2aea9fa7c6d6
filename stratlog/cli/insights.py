"""``stratlog insights``: what is different about one strategy's window, ranked, as a table or
JSON (the findings of :mod:`stratlog.service.insights`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from stratlog.cli.database import reader, require_strategy
from stratlog.cli.render import cell, clean, print_json, table
from stratlog.cli.summary import closed_window
from stratlog.timewindow import Window
from stratlog.vocabulary import count

if TYPE_CHECKING:
    from stratlog.repository.strategy_execution_log_repository import (
        StrategyExecutionLogRepository as Repo,
    )
    from stratlog.service.insights import Insights

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


async def fetch(args: argparse.Namespace, repo: Repo, baseline: str | None = None) -> Insights:
    """The insights the command's arguments ask for (an unknown strategy is a usage error)."""
    from stratlog.service.insights import fetch_insights, parse_baseline

    window = closed_window(args, args.now)
    assert window.since is not None and window.until is not None
    await require_strategy(repo, args.strategy)
    return await fetch_insights(
        repo, args.strategy, window.since, window.until, parse_baseline(baseline),
        nodeBudget=getattr(args, "node_budget", None),
    )  # fmt: skip


@reader
async def insights(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    """``stratlog insights``: the ranked findings, as a table or JSON."""
    found = await fetch(args, repo, args.baseline)
    if args.json:
        print_json(found.to_json())
    else:
        print_insights(console, found)
    return 0


def print_insights(console: Console, found: Insights) -> None:
    """The findings' table, or "nothing unusual" with what was checked."""
    window = Window.of(found.since, found.until).label()
    then = Window.of(found.baselineSince, found.baselineUntil).label()
    console.print(Text(f"{clean(found.strategyId)}  {window}", style="bold"))
    console.print(Text(
        f"against {found.baselineLabel}: {then} ({count(found.runs)} runs now, "
        f"{count(found.baselineRuns)} then)"
    ))  # fmt: skip
    if not found.findings:
        console.print(Text("nothing unusual. Checked:", style="bold"))
        for check in found.checks:
            console.print(Text(f"  - {clean(check)}"))
        return
    rows = [
        [cell(f.severity, SEVERITY_STYLE[f.severity]), cell(f.kind),
         cell("-" if f.subject is None else f.subject), cell(f"{f.score:.2f}"), cell(f.summary)]
        for f in found.findings
    ]  # fmt: skip
    console.print(table(["severity", "kind", "subject", "score", "finding"], rows, right=(3,)))
