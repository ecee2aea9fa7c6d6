"""Versions as deploy markers: per ``strategyVersion``, how its runs did in a window.

A version's first run (at any time, :meth:`first_seen`) is where it was deployed; the timeseries
draws a rule there. The Versions panel gives, per version with runs in the window: first and
last seen, runs and share of the window, the error / timeout / limit rates, p95 duration (from
the log histograms, within 1 %), mean points, and the error codes and rule cases that are new
compared with the version before it (the one first seen just before it).

"New" compares the version's codes in the window with those of the version before it in the
window; when that version has no run in the window (the window lies after the deploy), with its
runs in the window's length (at least an hour, at most a day) before the later version was
first seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stratlog.model.strategy_execution_log import STATUSES
from stratlog.repository.strategy_execution_log_repository import (
    StrategyExecutionLogRepository,
    bins_of,
)
from stratlog.sketch import quantiles
from stratlog.timewindow import Window

Version = str | None
"""A ``strategyVersion``; ``None`` for runs recorded without one."""

#: The lookback for a previous version that did not run in the window: the window's length,
#: within these bounds (a day of runs before a deploy says what the old version did).
MIN_LOOKBACK = timedelta(hours=1)
MAX_LOOKBACK = timedelta(days=1)
#: Versions first seen this soon after the oldest run on record get no deploy rule.
RECORD_START = timedelta(days=1)
#: At most this many versions of a window get a lookback read for their predecessor.
MAX_LOOKBACKS = 5


@dataclass(frozen=True)
class VersionStats:
    """One version's runs in a window."""

    version: Version
    firstSeen: datetime | None
    lastSeen: datetime | None
    statusCounts: dict[str, int]
    p95DurationMs: float | None
    pointsSum: float | None
    pointsN: int
    codes: dict[str, int]
    cases: dict[str | None, int]
    #: The version first seen just before this one (``None``: this is the first known).
    previous: Version = None
    hasPrevious: bool = False
    #: Codes / cases with runs now that the previous version did not have; ``None`` when the
    #: previous version has no run to compare with (or there is none).
    newCodes: tuple[str, ...] | None = None
    newCases: tuple[str | None, ...] | None = None
    #: Cases the previous version's ok runs fired that this one's never did.
    stoppedCases: tuple[str | None, ...] | None = None

    @property
    def runs(self) -> int:
        """Runs of this version in the window."""
        return sum(self.statusCounts.values())

    def rate(self, status: str) -> float | None:
        """Share of this version's runs that ended with ``status``."""
        return self.statusCounts.get(status, 0) / self.runs if self.runs else None

    @property
    def failureRate(self) -> float | None:
        """Share of this version's runs that did not end ok."""
        return 1.0 - (self.rate("ok") or 0.0) if self.runs else None

    @property
    def meanPoints(self) -> float | None:
        """Mean points of the runs that awarded points."""
        if not self.pointsN or self.pointsSum is None:
            return None
        return self.pointsSum / self.pointsN


@dataclass(frozen=True)
class Versions:
    """The versions of one strategy with runs in a window, in the order they were first seen."""

    strategyId: str
    since: datetime
    until: datetime
    rows: list[VersionStats]
    #: Every version of the strategy ever seen and when it ran first, oldest first.
    firstSeen: dict[Version, datetime] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Runs in the window, every version."""
        return sum(row.runs for row in self.rows)

    def share(self, row: VersionStats) -> float | None:
        """The version's share of the window's runs."""
        return row.runs / self.total if self.total else None

    @property
    def dataStart(self) -> datetime | None:
        """The strategy's oldest run the database still holds (any version)."""
        return min(self.firstSeen.values(), default=None)

    def marks(self, since: datetime | None = None, until: datetime | None = None) -> list[Any]:
        """(version, first seen) of the versions first seen in ``[since, until)`` (default: the
        window), oldest first: the deploy rules of a timeseries.

        A version first seen within a day of the oldest run still held is left out: retention
        removes old runs and rollups together, so the first day on record cannot tell a deploy
        from a version that was running already."""
        lo, hi = since or self.since, until or self.until
        start = self.dataStart
        if start is None:
            return []
        held = start + RECORD_START
        return [(v, at) for v, at in self.firstSeen.items() if lo <= at < hi and at >= held]

    def get(self, version: Version) -> VersionStats | None:
        """The row of one version, if it ran in the window."""
        return next((row for row in self.rows if row.version == version), None)


def _key(ver: Any, vnull: Any) -> Version:
    return None if int(vnull or 0) else str(ver)


def per_version(rows: Mapping[str, list[dict[str, Any]]]) -> dict[Version, dict[str, Any]]:
    """The repository's per-version rows folded into one dict per version."""
    out: dict[Version, dict[str, Any]] = {}

    def entry(row: dict[str, Any]) -> dict[str, Any]:
        return out.setdefault(
            _key(row["ver"], row["vnull"]),
            {"status": {}, "points_sum": None, "points_n": 0, "last": None, "codes": {},
             "cases": {}, "bins": []},
        )  # fmt: skip

    for row in rows["status"]:
        e = entry(row)
        e["status"][row["status"]] = e["status"].get(row["status"], 0) + int(row["n"])
        if row["points_sum"] is not None:
            e["points_sum"] = (e["points_sum"] or 0.0) + float(row["points_sum"])
        e["points_n"] += int(row["points_n"] or 0)
        if row["last"] is not None:
            e["last"] = max(e["last"] or 0, int(row["last"]))
    for tag in ("codes", "cases"):
        for row in rows[tag]:
            bucket = entry(row)[tag]
            bucket[row["key"]] = bucket.get(row["key"], 0) + int(row["n"])
    for row in rows["bins"]:
        entry(row)["bins"].append((row["blob"], row["bin"], row["n"]))
    return out


def _p95(bin_rows: Sequence[Any]) -> float | None:
    return quantiles(bins_of(bin_rows), [0.95])[0] if bin_rows else None


async def fetch_versions(
    repository: StrategyExecutionLogRepository,
    strategyId: str,
    sinceDt: datetime,
    untilDt: datetime,
) -> Versions:
    """The Versions panel's figures for ``[sinceDt, untilDt)``: one statement for the window,
    one for when each version ran first, and one more per version whose predecessor did not
    run in the window (at most ``MAX_LOOKBACKS``)."""
    window = Window.of(sinceDt, untilDt)
    assert window.since is not None and window.until is not None
    since, until = window.since, window.until
    rows, first_seen = await asyncio.gather(
        repository.version_rows(strategyId=strategyId, sinceDt=since, untilDt=until),
        repository.first_seen(strategyId=strategyId),
    )
    stats = per_version(rows)
    order = list(first_seen)
    position = {v: i for i, v in enumerate(order)}

    def before(version: Version) -> tuple[bool, Version]:
        """(whether a version came before it, which)."""
        i = position.get(version, 0)
        return (i > 0, order[i - 1] if i > 0 else None)

    # A version before one in the window with no run here itself: its runs in the window's
    # length just before the later version was first seen (what it did before the deploy).
    context: dict[Version, dict[str, Any]] = {}
    length = min(max(until - since, MIN_LOOKBACK), MAX_LOOKBACK)
    newest_first = sorted(stats, key=lambda v: _order(first_seen, v), reverse=True)
    for version in newest_first[:MAX_LOOKBACKS]:
        has_before, previous = before(version)
        deployed = first_seen.get(version)
        if not has_before or previous in stats or previous in context or deployed is None:
            continue
        found = per_version(
            await repository.version_rows(
                strategyId=strategyId, sinceDt=deployed - length, untilDt=deployed
            )
        )
        if previous in found:
            context[previous] = found[previous]
    out = []
    for version, e in sorted(stats.items(), key=lambda kv: _order(first_seen, kv[0])):
        has_before, previous = before(version)
        base = (stats.get(previous) or context.get(previous)) if has_before else None
        codes, cases = e["codes"], e["cases"]
        new_codes = new_cases = stopped = None
        if base is not None:  # most runs first
            new_codes = tuple(sorted(set(codes) - set(base["codes"]), key=lambda c: (-codes[c], c)))
            new_cases = tuple(
                sorted(set(cases) - set(base["cases"]), key=lambda c: (-cases[c], *_case_order(c)))
            )
            old = base["cases"]
            stopped = tuple(sorted(set(old) - set(cases), key=lambda c: (-old[c], *_case_order(c))))
        out.append(
            VersionStats(
                version=version,
                firstSeen=first_seen.get(version),
                lastSeen=None if e["last"] is None else datetime.fromtimestamp(e["last"], UTC),
                statusCounts={s: e["status"][s] for s in STATUSES if e["status"].get(s)},
                p95DurationMs=_p95(e["bins"]),
                pointsSum=e["points_sum"],
                pointsN=e["points_n"],
                codes=codes,
                cases=cases,
                previous=previous,
                hasPrevious=has_before,
                newCodes=new_codes,
                newCases=new_cases,
                stoppedCases=stopped,
            )
        )
    return Versions(strategyId, since, until, out, dict(first_seen))


def _case_order(case: str | None) -> tuple[bool, str]:
    return (case is None, case or "")


def _order(first_seen: Mapping[Version, datetime], version: Version) -> tuple[int, datetime, str]:
    at = first_seen.get(version)
    return (0 if at is not None else 1, at or datetime.max.replace(tzinfo=UTC), version or "")
