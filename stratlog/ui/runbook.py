"""Runbook rows: the newest runs of a strategy in a window, by status, error code and case.

The repository lists a strategy's newest runs (at most 200, optionally of one status) but has no
window, error-code or case filter yet, so this module asks it for the newest 200 of each status
concurrently and filters those rows. When a list is full and still ends inside the window, the
result says how far back it could search (:attr:`Runbook.reach`); the page tells the operator.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stratlog.model.strategy_execution_log import STATUSES, StrategyExecutionLog
from stratlog.repository.strategy_execution_log_repository import (
    LIST_LIMIT_MAX,
    StrategyExecutionLogRepository,
)
from stratlog.ui.state import NO_RULE

#: The fields the runbook table shows (payloads stay in the database until a row is opened).
ROW_FIELDS = (
    "id",
    "createdAt",
    "status",
    "errorCode",
    "caseName",
    "durationMs",
    "nodes",
    "points",
    "strategyVersion",
    "requestId",
)


@dataclass(frozen=True)
class RunbookQuery:
    """Which runs: one strategy, a window, and optional status / error code / case filters."""

    strategyId: str
    since: datetime
    until: datetime
    status: str | None = None
    errorCode: str | None = None
    case: str | None = None  # NO_RULE selects the runs where no rule matched

    def matches(self, row: dict[str, Any]) -> bool:
        """True when a row is in the window and passes the code and case filters."""
        if not self.since <= row["createdAt"] < self.until:
            return False
        if self.errorCode is not None and row["errorCode"] != self.errorCode:
            return False
        if self.case is None:
            return True
        wanted = None if self.case == NO_RULE else self.case
        return bool(row["caseName"] == wanted)


@dataclass(frozen=True)
class Runbook:
    """Matching runs, newest first (at most 200), and how much of the window was searched."""

    query: RunbookQuery
    rows: list[dict[str, Any]]
    matched: int
    scanned: int
    reach: datetime | None
    codes: list[str]
    cases: list[str | None]

    @property
    def complete(self) -> bool:
        """True when every run of the window was searched."""
        return self.reach is None

    def shown(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` matching runs."""
        return self.rows[:limit]

    def contains(self, row_id: int) -> bool:
        """True when the run is among the listed rows."""
        return any(row["id"] == row_id for row in self.rows)

    def neighbours(self, row_id: int) -> tuple[int | None, int | None]:
        """The ids of the newer and the older matching run around ``row_id`` (None at the ends)."""
        ids = [row["id"] for row in self.rows]
        if row_id not in ids:
            return None, None
        at = ids.index(row_id)
        newer = ids[at - 1] if at > 0 else None
        older = ids[at + 1] if at + 1 < len(ids) else None
        return newer, older


def slim(row: StrategyExecutionLog) -> dict[str, Any]:
    """The runbook's fields of one row, as a plain dict."""
    return {name: getattr(row, name) for name in ROW_FIELDS}


def _reach(lists: Sequence[Sequence[dict[str, Any]]], since: datetime) -> datetime | None:
    """The newest "searched back to" moment among full lists that stop inside the window."""
    stops = [rows[-1]["createdAt"] for rows in lists if len(rows) >= LIST_LIMIT_MAX]
    inside = [stop for stop in stops if stop > since]
    return max(inside) if inside else None


def _ranked(values: Counter[Any]) -> list[Any]:
    return [value for value, _ in sorted(values.items(), key=lambda kv: (-kv[1], str(kv[0])))]


async def fetch_runbook(repository: StrategyExecutionLogRepository, query: RunbookQuery) -> Runbook:
    """Ask for the newest 200 runs per status concurrently, then filter them by the query."""
    statuses = [query.status] if query.status else list(STATUSES)
    if query.errorCode is not None and query.status is None:
        statuses.remove("ok")  # an ok run carries no error code (CONTRACT.md)
    lists = await asyncio.gather(
        *(
            repository.list_for_strategy(
                strategyId=query.strategyId, status=status, limit=LIST_LIMIT_MAX
            )
            for status in statuses
        )
    )
    slim_lists = [[slim(row) for row in rows] for rows in lists]
    merged = sorted(
        (row for rows in slim_lists for row in rows),
        key=lambda row: (row["createdAt"], row["id"]),
        reverse=True,
    )
    in_window = [row for row in merged if query.since <= row["createdAt"] < query.until]
    matches = [row for row in in_window if query.matches(row)]
    return Runbook(
        query=query,
        rows=matches[:LIST_LIMIT_MAX],
        matched=len(matches),
        scanned=len(merged),
        reach=_reach(slim_lists, query.since),
        codes=_ranked(Counter(r["errorCode"] for r in in_window if r["errorCode"] is not None)),
        cases=_ranked(Counter(r["caseName"] for r in in_window)),
    )
