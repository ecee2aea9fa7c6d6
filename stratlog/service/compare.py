"""What changed: the Overview of a window beside the Overview of its baseline.

A baseline is another window of the same length: the one just before (``previous``), or the
same hours 1 or 7 days earlier (``1d``, ``7d``). Both Overviews come from the rollups like any
other (two calls at once), so a comparison costs about one Overview.

Every figure gets its baseline value and the change. Rates also get a verdict on whether the
change is beyond noise (:func:`rate_change`), so that 1 failure in 10 runs against 2 in 10 is
not painted red; run volumes get the same test for counts (:func:`count_change`). The rules are
in ``docs/dashboard.md`` ("Comparing with a baseline").
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from stratlog.baselines import (
    INSIGHTS_BASELINES,
    PRECEDING_WEEK,
    VERSION_PREFIX,
    canonical_baseline,
)
from stratlog.model.strategy_execution_log import STATUSES
from stratlog.repository.strategy_execution_log_repository import (
    TOP_LIMIT_MAX,
    StrategyExecutionLogRepository,
)
from stratlog.service.overview import Overview, fetch_overview
from stratlog.service.versions import per_version
from stratlog.timewindow import Window

#: |z| at or above this is "beyond noise": a two-sided test at the 1 % level. Stricter than the
#: usual 5 %: an operator scans a dozen figures per page, and a false alarm costs trust.
Z_BEYOND_NOISE = 2.576
#: The normal approximation behind the z test needs this many expected events on each side
#: (the textbook rule n p >= 5); below it the verdict is "too few runs to tell".
MIN_EXPECTED = 5.0

Verdict = Literal["beyond noise", "within noise", "too few runs to tell", "no test"]


@dataclass(frozen=True)
class Baseline:
    """Which runs a view is compared with: another window of the same length, or another
    version of the strategy in the same window."""

    name: str  # a key of BASELINES, "week" (the insights' default), or "version"
    version: str | None = None  # with name "version": the version compared with

    @classmethod
    def parse(cls, text: str) -> Baseline:
        """``previous``, ``1d``, ``7d`` or ``version:X``; raises ``ValueError`` naming them."""
        value = canonical_baseline(text)
        if value.startswith(VERSION_PREFIX):
            return cls("version", value[len(VERSION_PREFIX) :])
        return cls(value)

    @property
    def is_version(self) -> bool:
        """True when the baseline is another version in the same window."""
        return self.name == "version"

    @property
    def text(self) -> str:
        """The value that parses back to this baseline (``compare=`` in a link)."""
        return f"{VERSION_PREFIX}{self.version}" if self.is_version else self.name

    def window(self, since: datetime, until: datetime) -> tuple[datetime, datetime]:
        """The baseline's bounds for the window ``[since, until)``; ``ValueError`` when they
        would fall before the year 1."""
        if self.name == PRECEDING_WEEK:
            try:
                return since - timedelta(days=7), since
            except OverflowError:
                raise ValueError(f"{self.label} would start before the year 1") from None
        shift = self.offset(since, until)
        try:
            return since - shift, until - shift
        except OverflowError:
            raise ValueError(f"{self.label} would start before the year 1") from None

    def offset(self, since: datetime, until: datetime) -> timedelta:
        """How far back the baseline lies: add it to a baseline time to align it with now."""
        if self.is_version:
            return timedelta(0)
        if self.name in ("previous", PRECEDING_WEEK):
            return until - since
        return timedelta(days=1 if self.name == "1d" else 7)

    @property
    def label(self) -> str:
        """Plain words: "the previous window of the same length"."""
        if self.is_version:
            return f"version {self.version} in the same window"
        return INSIGHTS_BASELINES[self.name]


@dataclass(frozen=True)
class Change:
    """One figure now and in the baseline, the change, and whether it is beyond noise."""

    now: float | None
    before: float | None
    verdict: Verdict = "no test"
    z: float | None = None

    @property
    def delta(self) -> float | None:
        """now - before (``None`` when either is missing)."""
        if self.now is None or self.before is None:
            return None
        return self.now - self.before

    @property
    def relative(self) -> float | None:
        """The change as a share of the baseline (``None`` from a zero or missing baseline)."""
        if self.delta is None or not self.before:
            return None
        return self.delta / abs(self.before)

    @property
    def significant(self) -> bool:
        """True when the test says the change is beyond noise."""
        return self.verdict == "beyond noise"


def rate_change(k_now: int, n_now: int, k_before: int, n_before: int) -> Change:
    """A rate (k of n) now against the baseline, with a two-proportion z test.

    z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)), p the pooled rate (k1 + k2) / (n1 + n2).
    Beyond noise when |z| >= 2.576 (two-sided, 1 %) and both sides expect at least 5 events
    and 5 non-events under the pooled rate; otherwise "within noise" or "too few runs to tell".
    """
    now = k_now / n_now if n_now else None
    before = k_before / n_before if n_before else None
    if now is None or before is None:
        return Change(now, before, "too few runs to tell")
    pooled = (k_now + k_before) / (n_now + n_before)
    expected = min(n * p for n in (n_now, n_before) for p in (pooled, 1.0 - pooled))
    if expected < MIN_EXPECTED:
        return Change(now, before, "too few runs to tell")
    z = (now - before) / math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_now + 1.0 / n_before))
    return Change(now, before, "beyond noise" if abs(z) >= Z_BEYOND_NOISE else "within noise", z)


def count_change(now: int, before: int) -> Change:
    """Run counts of two windows of the same length, tested as Poisson counts.

    Under "same rate", ``now`` given ``now + before`` is binomial with p = 1/2, so
    z = (now - before) / sqrt(now + before); the same 2.576 and the same floor of 5 expected
    runs a side (``now + before >= 10``).
    """
    if now + before < 2 * MIN_EXPECTED:
        return Change(now, before, "too few runs to tell")
    z = (now - before) / math.sqrt(now + before)
    return Change(now, before, "beyond noise" if abs(z) >= Z_BEYOND_NOISE else "within noise", z)


@dataclass(frozen=True)
class CodeChange:
    """One error code: runs now, runs in the baseline; ``new`` when the baseline had none."""

    errorCode: str
    now: int
    before: int
    new: bool

    @property
    def delta(self) -> int:
        """Runs now minus runs in the baseline."""
        return self.now - self.before


@dataclass(frozen=True)
class CaseChange:
    """One rule case of the ok runs: its share now and in the baseline.

    ``stopped`` when it fired in the baseline and not once now (shown with 0 now).
    """

    caseName: str | None
    now: int
    before: int
    shareNow: float | None
    shareBefore: float | None
    stopped: bool

    @property
    def delta(self) -> float | None:
        """Share now minus share in the baseline (``None`` when either window has no ok run)."""
        if self.shareNow is None or self.shareBefore is None:
            return None
        return self.shareNow - self.shareBefore


@dataclass(frozen=True)
class Comparison:
    """The Overview of a window, the Overview of its baseline, and what changed."""

    baseline: Baseline
    current: Overview
    before: Overview

    @property
    def offset(self) -> timedelta:
        """Add to a baseline time to draw it over the current window."""
        return self.current.since - self.before.since

    def headline(self) -> dict[str, Change]:
        """Runs, failure, error, timeout and limit rates, average nodes, points awarded."""
        now, before = self.current, self.before
        figures = {
            "runs": count_change(now.total, before.total),
            "failure": rate_change(now.failures, now.total, before.failures, before.total),
        }
        for status in STATUSES[1:]:  # error, timeout, limit
            figures[status] = rate_change(
                now.statusCounts.get(status, 0), now.total,
                before.statusCounts.get(status, 0), before.total,
            )  # fmt: skip
        figures["avgNodes"] = Change(now.summary.get("avgNodes"), before.summary.get("avgNodes"))
        figures["sumPoints"] = Change(now.summary.get("sumPoints"), before.summary.get("sumPoints"))
        return figures

    def durations(self) -> dict[str, Change]:
        """p50, p95 and p99 of the durations now and in the baseline (ms; no test)."""
        a, b = self.current.durations, self.before.durations
        return {q: Change(getattr(a, q), getattr(b, q)) for q in ("p50", "p95", "p99")}

    def codes(self, top: int | None = None) -> list[CodeChange]:
        """The window's codes by runs now (then code), each with its baseline runs; ``new``
        when the baseline had none. ``top`` keeps the first ``top`` of them."""
        before = _counts(self.before.errorCodes, "errorCode")
        rows = [
            CodeChange(r["errorCode"], int(r["count"]), before.get(r["errorCode"], 0),
                       r["errorCode"] not in before)
            for r in self.current.errorCodes
        ]  # fmt: skip
        return rows[:top]

    def cases(self, top: int | None = None) -> list[CaseChange]:
        """The window's cases by runs now (``top`` of them), then every case that fired in the
        baseline and not now (``stopped``), by its baseline runs."""
        now = _counts(self.current.caseNames, "caseName")
        before = _counts(self.before.caseNames, "caseName")
        ok_now, ok_before = self.current.ok, self.before.ok

        def row(name: str | None, stopped: bool) -> CaseChange:
            n, b = now.get(name, 0), before.get(name, 0)
            return CaseChange(name, n, b, _share(n, ok_now), _share(b, ok_before), stopped)

        firing = [row(r["caseName"], False) for r in self.current.caseNames][:top]
        stopped = [
            row(r["caseName"], True) for r in self.before.caseNames if r["caseName"] not in now
        ]
        return firing + stopped


def _counts(rows: list[dict[str, Any]], key: str) -> Mapping[Any, int]:
    return {r[key]: int(r["count"]) for r in rows}


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def trimmed(overview: Overview, top: int) -> Overview:
    """The Overview with its code and case lists cut to ``top`` (what the panels draw)."""
    return dataclasses.replace(
        overview, errorCodes=overview.errorCodes[:top], caseNames=overview.caseNames[:top]
    )


async def fetch_comparison(
    repository: StrategyExecutionLogRepository,
    strategyId: str,
    sinceDt: datetime,
    untilDt: datetime,
    baseline: Baseline,
    *,
    version: str | None = None,
) -> Comparison:
    """The Overview of ``[sinceDt, untilDt)`` and of its baseline, fetched at once.

    ``version`` limits both sides to that ``strategyVersion`` (with a time baseline: the same
    version then and now). With a version baseline the baseline is that version in the same
    window, and the current side is ``version`` or, without one, the version other than the
    baseline's with the newest run in the window (``LookupError`` when there is none).

    Both carry every error code and rule case (up to ``TOP_LIMIT_MAX``), so that "new" and
    "stopped firing" are decided on complete lists, not on two top-10s; :func:`trimmed` cuts an
    Overview back for the panels.
    """
    window = Window.of(sinceDt, untilDt)
    assert window.since is not None and window.until is not None
    then_since, then_until = baseline.window(window.since, window.until)
    then_version = version
    if baseline.is_version:
        then_version = baseline.version
        if version is None:
            version = await newest_version(
                repository, strategyId, window.since, window.until, other_than=then_version
            )
    current, before = await asyncio.gather(
        fetch_overview(
            repository, strategyId, window.since, window.until, top=TOP_LIMIT_MAX,
            version=version,
        ),
        fetch_overview(
            repository, strategyId, then_since, then_until, top=TOP_LIMIT_MAX,
            version=then_version,
        ),
    )  # fmt: skip
    return Comparison(baseline, current, before)


async def newest_version(
    repository: StrategyExecutionLogRepository,
    strategyId: str,
    since: datetime,
    until: datetime,
    *,
    other_than: str | None,
) -> str:
    """The version (other than ``other_than``) whose newest run in the window is the newest.

    ``LookupError`` names the problem when no other named version ran in the window.
    """
    rows = await repository.version_rows(strategyId=strategyId, sinceDt=since, untilDt=until)
    last = {
        version: e["last"]
        for version, e in per_version(rows).items()
        if version is not None and version != other_than and e["last"] is not None
    }
    if not last:
        raise LookupError(
            f"no version other than {other_than} ran in this window: nothing to compare it with"
        )
    return max(last, key=lambda v: (last[v], v))
