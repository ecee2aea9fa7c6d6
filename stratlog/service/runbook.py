"""Runbook rows: the newest runs of a strategy in a window, by status, error code and case.

The repository filters and pages in SQL (``list_runs``, keyset paging with ``before``), so the
runbook reaches every run of the window however many there are. Beside the rows it fetches the
window's error codes and cases for the filter pickers and, where one statement can say it, how
many runs match. The page glue is :mod:`stratlog.ui.runs`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.payload import payload_text
from stratlog.repository.strategy_execution_log_repository import (
    LIST_LIMIT_MAX,
    StrategyExecutionLogRepository,
)
from stratlog.vocabulary import NO_RULE

#: The fields the runbook lists (payloads stay in the database until a row is opened).
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
    "errorMessage",
)
#: How many error codes / cases the filter pickers offer (the most frequent of the window).
PICKER_LIMIT = 100
#: The ``version`` filter's value for runs that carry no strategyVersion.
NO_VERSION = "__none__"


async def fetch_request(
    repository: StrategyExecutionLogRepository, requestId: str, limit: int = 50
) -> list[dict[str, Any]]:
    """Every run of one request id, in every strategy and at any time, newest first."""
    rows = await repository.find_request(requestId=requestId, limit=limit)
    return [{**slim(row), "strategyId": row.strategyId} for row in rows]


@dataclass(frozen=True)
class RunbookQuery:
    """Which runs: one strategy, a window, optional filters, a page size and a page start."""

    strategyId: str
    since: datetime
    until: datetime
    status: str | None = None
    errorCode: str | None = None
    case: str | None = None  # NO_RULE selects the runs where no rule matched
    limit: int = 50
    before: int | None = None  # list the runs older than this run (keyset paging)
    version: str | None = None  # NO_VERSION selects the runs without a strategyVersion
    payload: tuple[tuple[str, ...], str] | None = None  # (keys into inputPayload, value as text)

    @property
    def narrowed(self) -> bool:
        """True when a filter beyond status, code and case applies (no rollup counts it)."""
        return self.version is not None or self.payload is not None

    @property
    def contradictory(self) -> bool:
        """True when no run can match: "no rule matched" describes ok runs, another status asked."""
        return self.case == NO_RULE and self.status not in (None, "ok")

    def filters(self) -> dict[str, Any]:
        """Keyword arguments of ``list_runs`` / ``neighbours`` for these filters.

        "No rule matched" (``NO_RULE``) is an ok run that fell through to defaultPoints: failed
        runs carry no case either, and are not listed under it.
        """
        status = "ok" if self.case == NO_RULE and self.status is None else self.status
        more: dict[str, Any] = {}
        if self.version == NO_VERSION:
            more["versionIsNull"] = True
        elif self.version is not None:
            more["strategyVersion"] = self.version
        if self.payload is not None:
            more["payloadPath"], more["payloadValue"] = list(self.payload[0]), self.payload[1]
        return {
            "strategyId": self.strategyId,
            "sinceDt": self.since,
            "untilDt": self.until,
            "status": status,
            "errorCode": self.errorCode,
            "caseName": None if self.case in (None, NO_RULE) else self.case,
            "caseIsNull": self.case == NO_RULE,
            **more,
        }

    def matches(self, row: Mapping[str, Any]) -> bool:
        """True when a run is in the window and passes every filter."""
        if row["strategyId"] != self.strategyId:
            return False
        if not self.since <= row["createdAt"] < self.until:
            return False
        if self.status is not None and row["status"] != self.status:
            return False
        if self.errorCode is not None and row["errorCode"] != self.errorCode:
            return False
        if self.version is not None:
            wanted = None if self.version == NO_VERSION else self.version
            if row["strategyVersion"] != wanted:
                return False
        if (
            self.payload is not None
            and payload_text(row.get("inputPayload"), self.payload[0]) != (self.payload[1])
        ):
            return False
        if self.case is None:
            return True
        if self.case == NO_RULE:
            return row["status"] == "ok" and row["caseName"] is None
        return bool(row["caseName"] == self.case)


@dataclass(frozen=True)
class Runbook:
    """One page of matching runs, newest first, and what the pickers and captions need."""

    query: RunbookQuery
    rows: list[dict[str, Any]]
    more: bool
    matched: int | None
    codes: list[str]
    cases: list[str | None]
    #: When the page starts after a run (``before``): that run's time; None on the first page
    #: and when that run is gone (then the page is the first one).
    start: datetime | None = None

    @property
    def paged(self) -> bool:
        """True when this page lists the runs older than a run (not the newest ones)."""
        return self.start is not None

    @property
    def lost_start(self) -> bool:
        """True when the link asked for runs older than a run that is not in the database."""
        return self.query.before is not None and self.start is None

    @property
    def last(self) -> int | None:
        """Id of the oldest listed run (where "older runs" continues)."""
        return int(self.rows[-1]["id"]) if self.rows else None


def slim(row: StrategyExecutionLog) -> dict[str, Any]:
    """The runbook's fields of one row, as a plain dict."""
    return {name: getattr(row, name) for name in ROW_FIELDS}


def _matched(
    query: RunbookQuery,
    statuses: Mapping[str, int],
    codes: list[dict[str, Any]],
    cases: list[dict[str, Any]],
) -> int | None:
    """How many runs of the window match, when the counts say it exactly (else None)."""
    if query.contradictory:
        return 0
    if query.narrowed:
        return None  # version and payload filters are not in the counts
    if query.errorCode is None and query.case is None:
        total = sum(statuses.values())
        return total if query.status is None else statuses.get(query.status, 0)
    if query.status is not None or (query.errorCode is not None and query.case is not None):
        return None
    if query.case not in (None, NO_RULE):
        return None  # the case counts are of ok runs; a failed run may carry a case too
    wanted: str | None
    if query.errorCode is not None:
        items, key, wanted = codes, "errorCode", query.errorCode
    else:
        items, key = cases, "caseName"
        wanted = None if query.case == NO_RULE else query.case
    found = next((int(i["count"]) for i in items if i[key] == wanted), None)
    if found is None and len(items) < PICKER_LIMIT:
        return 0  # the lists hold every code / case of the window: this one has no run
    return found


async def _page(
    repository: StrategyExecutionLogRepository, query: RunbookQuery
) -> tuple[list[StrategyExecutionLog], bool, datetime | None]:
    """The page of runs, whether older ones exist, and the page start's time."""
    before: tuple[datetime, int] | None = None
    start = None
    if query.before is not None:
        anchor = await repository.get(query.before)
        if anchor is not None:
            start = anchor.createdAt
            before = (anchor.createdAt, int(anchor.id))
    if query.contradictory:
        return [], False, start
    filters = query.filters()
    limit = min(query.limit, LIST_LIMIT_MAX)
    rows = await repository.list_runs(**filters, before=before, limit=limit)
    more = False
    if len(rows) == limit:
        last = rows[-1]
        probe = await repository.list_runs(**filters, before=(last.createdAt, last.id), limit=1)
        more = bool(probe)
    return rows, more, start


async def fetch_runbook(repository: StrategyExecutionLogRepository, query: RunbookQuery) -> Runbook:
    """One page of matching runs and the window's codes, cases and counts, from one snapshot."""
    scope: dict[str, Any] = {
        "strategyId": query.strategyId,
        "sinceDt": query.since,
        "untilDt": query.until,
    }
    async with repository.consistent_view() as r:  # the counts and the page agree
        try:
            async with asyncio.TaskGroup() as tg:
                page_t = tg.create_task(_page(r, query))
                status_t = tg.create_task(r.count_by_status(**scope))
                codes_t = tg.create_task(r.count_by_error_code(**scope, limit=PICKER_LIMIT))
                cases_t = tg.create_task(
                    r.count_by_case_name(**scope, limit=PICKER_LIMIT, status="ok")
                )
        except ExceptionGroup as group:  # callers handle one plain error (e.g. database down)
            raise group.exceptions[0] from None
    rows, more, start = page_t.result()
    codes, cases = codes_t.result(), cases_t.result()
    return Runbook(
        query=query,
        rows=[slim(row) for row in rows],
        more=more,
        matched=_matched(query, status_t.result(), codes, cases),
        codes=[str(c["errorCode"]) for c in codes],
        cases=[c["caseName"] for c in cases],
        start=start,
    )


async def fetch_neighbours(
    repository: StrategyExecutionLogRepository, query: RunbookQuery, row_id: int
) -> tuple[int | None, int | None]:
    """Ids of the next newer and next older matching run around ``row_id`` (None at the ends)."""
    if query.contradictory:
        return None, None
    return await repository.neighbours(row_id, **query.filters())
