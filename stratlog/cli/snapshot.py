"""``stratlog snapshot``: the incident snapshot (Markdown, chart PNGs, CSVs) as one zip."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from stratlog import report
from stratlog.baselines import INSIGHTS_BASELINES
from stratlog.cli.database import reader
from stratlog.cli.errors import CommandError, UsageError
from stratlog.cli.summary import fetch
from stratlog.export import safe_name

if TYPE_CHECKING:
    from stratlog.repository.strategy_execution_log_repository import (
        StrategyExecutionLogRepository as Repo,
    )


@reader
async def snapshot(args: argparse.Namespace, repo: Repo, console: Console) -> int:
    """Write ``OUT/NAME.zip`` for the strategy and window; say what it holds."""
    comparison = versions = None
    if args.baseline is None:
        overview = await fetch(args, repo, args.now)
    else:
        from stratlog.cli.compare import fetch as fetch_comparison
        from stratlog.service.compare import trimmed
        from stratlog.service.versions import fetch_versions

        comparison = await fetch_comparison(args, repo)
        overview = trimmed(comparison.current, args.top)
        versions = await fetch_versions(repo, args.strategy, overview.since, overview.until)
    from stratlog.cli.insights import fetch as fetch_insights

    time_baseline = args.baseline if args.baseline in INSIGHTS_BASELINES else None
    found = await fetch_insights(args, repo, time_baseline)
    _output_dir(args.out)  # fail before the slow part: rendering the charts
    bundle = report.build_snapshot(
        overview, name=args.name, comparison=comparison, versions=versions, insights=found
    )
    try:
        target = bundle.write(args.out)
    except OSError as exc:
        raise CommandError(f"cannot write the snapshot to {args.out}: {exc}") from None
    charts = sum(name.endswith(".png") for name in bundle.files)
    tables = sum(name.endswith(".csv") for name in bundle.files)
    console.print(Text(f"wrote {target} (snapshot.md, {charts} charts, {tables} tables)"))
    return 0


def _output_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot write the snapshot to {directory}: {exc}") from None


def check_name(name: str | None) -> None:
    """``--name`` must be a plain file name (checked before connecting)."""
    if name is not None and safe_name(name) != name:
        raise UsageError(f"--name must be a plain file name (letters, digits, . _ -), got {name!r}")
