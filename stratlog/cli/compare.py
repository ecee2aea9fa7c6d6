"""``stratlog compare``: one strategy's window against a baseline window, as tables or JSON.

The same comparison as the dashboard's Overview (:mod:`stratlog.service.compare`): every
headline figure beside its baseline value with the verdict on noise, p50/p95/p99 of the
durations, error codes with "new", rule cases with "stopped firing".
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from stratlog.cli.database import reader, require_strategy
from stratlog.cli.errors import UsageError
from stratlog.cli.render import cell, clean, heading, print_json, table
from stratlog.cli.summary import closed_window
from stratlog.report import COMPARED
from stratlog.timewindow import Window
from stratlog.vocabulary import case_label, count, ms, number, rate

if TYPE_CHECKING:
    from stratlog.repository.strategy_execution_log_repository import (
        StrategyExecutionLogRepository as Repo,
    )
    from stratlog.service.compare import Change, Comparison

#: The headline's figures, as the snapshot lists them: (key, label, how a value prints).
FIGURES = tuple(
    (key, label, "rate" if is_rate else "count" if key == "runs" else "number")
    for key, label, is_rate in COMPARED
)


def _shown(value: float | None, kind: str) -> str:
    if kind == "count":
        return count(None if value is None else int(value))
    if kind == "rate":
        return rate(value)
    if kind == "ms":
        return ms(value)
    return number(value, 1)


def _change_text(change: Change, kind: str) -> str:
    if change.delta is None:
        return "-"
    if kind == "rate":
        return f"{100.0 * change.delta:+.2f} pp"
    relative = f" ({change.relative:+.0%})" if change.relative is not None else ""
    if kind == "count":
        return f"{change.delta:+,.0f}{relative}"
    return f"{change.delta:+,.1f}{relative}"


def _verdict(change: Change) -> str:
    if change.z is None:
        return change.verdict
    return f"{change.verdict} (z = {change.z:+.1f})"


def change_json(change: Change) -> dict[str, Any]:
    """A :class:`~stratlog.service.compare.Change` as JSON."""
    return {
        "now": change.now,
        "baseline": change.before,
        "change": change.delta,
        "relative": change.relative,
        "verdict": change.verdict,
        "z": change.z,
    }


def comparison_json(comparison: Comparison, top: int) -> dict[str, Any]:
    """Everything ``stratlog compare`` prints, as one JSON document."""
    now, before = comparison.current, comparison.before
    return {
        "strategyId": now.strategyId,
        "since": now.since,
        "until": now.until,
        "version": now.version,
        "baseline": {
            "name": comparison.baseline.name,
            "version": before.version,
            "label": comparison.baseline.label,
            "since": before.since,
            "until": before.until,
        },
        "headline": {k: change_json(c) for k, c in comparison.headline().items()},
        "durations": {k: change_json(c) for k, c in comparison.durations().items()},
        "errorCodes": [
            {"errorCode": c.errorCode, "now": c.now, "baseline": c.before, "new": c.new}
            for c in comparison.codes(top)
        ],
        "caseNames": [
            {
                "caseName": c.caseName,
                "now": c.now,
                "baseline": c.before,
                "shareNow": c.shareNow,
                "shareBaseline": c.shareBefore,
                "stoppedFiring": c.stopped,
            }
            for c in comparison.cases(top)
        ],
    }


async def fetch(args: argparse.Namespace, repo: Repo) -> Comparison:
    """The comparison the command's arguments ask for (an unknown strategy is a usage error)."""
    from stratlog.service.compare import Baseline, fetch_comparison

    window = closed_window(args, args.now)
    assert window.since is not None and window.until is not None
    await require_strategy(repo, args.strategy)
    baseline = Baseline.parse(args.baseline)
    version = getattr(args, "version", None)
    if baseline.is_version and version == baseline.version:
        raise UsageError(f"--version {version} is the baseline's version: choose another")
    try:
        found = await fetch_comparison(
            repo, args.strategy, window.since, window.until, baseline, version=version
        )
    except LookupError as exc:
        raise UsageError(str(exc)) from None
    if baseline.is_version and not found.before.total:
        raise UsageError(f"no run of version {baseline.version} in this window to compare with")
    return found


@reader
async def compare(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    """``stratlog compare``: a window against its baseline, as tables or JSON."""
    comparison = await fetch(args, repo)
    if args.json:
        print_json(comparison_json(comparison, args.top))
    else:
        print_comparison(console, comparison, args.top)
    return 0


def print_comparison(console: Console, comparison: Comparison, top: int) -> None:
    """The comparison's tables."""
    now, before = comparison.current, comparison.before
    window = Window.of(now.since, now.until).label()
    console.print(Text(f"{clean(now.strategyId)}  {window}", style="bold"))
    then = Window.of(before.since, before.until).label()
    if now.version is not None:
        console.print(Text(f"version {clean(now.version)} only"))
    console.print(Text(f"compared with {clean(comparison.baseline.label)}: {then}"))
    heading(console, "Headline")
    changes = comparison.headline()
    rows = [
        [cell(label), cell(_shown(changes[key].now, kind)), cell(_shown(changes[key].before, kind)),
         cell(_change_text(changes[key], kind)), cell(_verdict(changes[key]))]
        for key, label, kind in FIGURES
    ]  # fmt: skip
    console.print(table(["figure", "now", "baseline", "change", "verdict"], rows, right=(1, 2, 3)))
    heading(console, "Duration (ms)")
    rows = [
        [cell(q), cell(ms(c.now)), cell(ms(c.before)), cell(_change_text(c, "ms"))]
        for q, c in comparison.durations().items()
    ]
    console.print(table(["percentile", "now", "baseline", "change"], rows, right=(1, 2, 3)))
    heading(console, "Error codes")
    codes = comparison.codes(top)
    if not codes:
        console.print("no error codes in this window")
    else:
        rows = [
            [cell(c.errorCode), cell(count(c.now)), cell(count(c.before)), cell(f"{c.delta:+,}"),
             cell("new" if c.new else "", "bold")]
            for c in codes
        ]  # fmt: skip
        headers = ["error code", "runs", "baseline", "change", ""]
        console.print(table(headers, rows, right=(1, 2, 3)))
    heading(console, "Rule cases (share of ok runs)")
    cases = comparison.cases(top)
    if not cases:
        console.print("no ok runs in either window")
        return
    rows = [
        [cell(case_label(c.caseName), "italic" if c.caseName is None else ""), cell(count(c.now)),
         cell(rate(c.shareNow)), cell(rate(c.shareBefore)),
         cell("-" if c.delta is None else f"{100.0 * c.delta:+.1f} pp"),
         cell("stopped firing" if c.stopped else "", "bold")]
        for c in cases
    ]  # fmt: skip
    headers = ["rule case", "runs", "share", "baseline share", "change", ""]
    console.print(table(headers, rows, right=(1, 2, 3, 4)))
