"""``stratlog summary``: the Overview of one strategy and window as aligned tables, or JSON.

The rows come from :mod:`stratlog.report`, the same tables the incident snapshot writes.
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from stratlog import report
from stratlog.cli.database import reader, require_strategy
from stratlog.cli.render import cell, clean, heading, print_json, status_cell, table
from stratlog.timeparse import resolve_window
from stratlog.timewindow import Window
from stratlog.vocabulary import count, figure, share

if TYPE_CHECKING:
    from stratlog.repository.strategy_execution_log_repository import (
        StrategyExecutionLogRepository as Repo,
    )
    from stratlog.service.overview import Overview


def closed_window(args: argparse.Namespace, now: datetime) -> Window:
    """The command's window: ``--until`` defaults to now, ``--since`` to 24 h before it."""
    return resolve_window(args.since, args.until, now)


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


async def fetch(args: argparse.Namespace, repo: Repo, now: datetime) -> Overview:
    """The Overview of the command's strategy and window (an unknown strategy is a usage error)."""
    from stratlog.service.overview import fetch_overview

    window = closed_window(args, now)
    await require_strategy(repo, args.strategy)
    version = getattr(args, "version", None)  # snapshot's --version
    return await fetch_overview(
        repo, args.strategy, window.since, window.until, top=args.top, version=version
    )


@reader
async def summary(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    """``stratlog summary``: the Overview of one strategy and window, as tables or JSON."""
    overview = await fetch(args, repo, args.now)
    if args.json:
        print_json(overview_json(overview))
    else:
        print_summary(console, overview)
    return 0


def print_summary(console: Console, overview: Overview) -> None:
    """The summary tables of an Overview (the same rows as the snapshot's tables)."""
    console.print(
        Text(f"{clean(overview.strategyId)}  {report.window_label(overview)}", style="bold")
    )
    console.print(f"{overview.total:,} runs, {overview.failures:,} not ok")
    heading(console, "Runs by status")
    rows = [
        [status_cell(r["status"]), cell(count(r["count"])), cell(share(r["share"]))]
        for r in report.status_rows(overview)
    ]
    console.print(table(["status", "runs", "share"], rows, right=(1, 2)))
    _print_errors(console, overview)
    _print_cases(console, overview)
    _print_percentiles(console, overview)


def _print_counts(
    console: Console, title: str, empty: str, headers: list[str], rows: list[tuple[Text, Any, Any]]
) -> None:
    """A section of (label, runs, share) rows under a heading, or the words for none."""
    heading(console, title)
    if not rows:
        console.print(empty)
        return
    cells = [[label, cell(count(runs)), cell(share(part))] for label, runs, part in rows]
    console.print(table(headers, cells, right=(1, 2)))


def _print_errors(console: Console, overview: Overview) -> None:
    rows = [
        (cell(r["errorCode"]), r["count"], r["shareOfFailures"])
        for r in report.error_rows(overview)
    ]
    headers = ["error code", "runs", "share of not-ok runs"]
    _print_counts(console, "Top error codes", "no error codes in this window", headers, rows)


def _print_cases(console: Console, overview: Overview) -> None:
    rows = [
        (cell(r["case"], "italic" if r["caseName"] is None else ""), r["count"], r["share"])
        for r in report.case_rows(overview)
    ]
    headers = ["rule case", "runs", "share of ok runs"]
    empty = "no run ended ok in this window" if overview.total else "no runs in this window"
    _print_counts(console, "Rule cases (runs that ended ok)", empty, headers, rows)
    note = report.failed_runs_note(overview)
    if note:
        console.print(Text(note, style="dim"))


def _print_percentiles(console: Console, overview: Overview) -> None:
    heading(console, "Duration and points")
    rows = [
        [
            cell(r["figure"]),
            *(cell(figure(r[k])) for k in ("p50", "p95", "p99")),
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
