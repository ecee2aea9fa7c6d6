"""Why: findings about what is different in a window, each with its evidence (issue 16, begun).

Each finding has a ``kind``, a ``subject``, a ``severity``, a ``score`` for ranking, a one-sentence
``summary`` and the ``evidence`` (the counts behind it). The thresholds are in
:mod:`stratlog.insights_rules`. This first part finds, from a comparison with a baseline (the 7
days before the window unless told) and the Versions panel's figures:

- ``new_error_code``: a code with runs now and none in the baseline, where the baseline, at the
  code's current rate, would have expected at least ``EXPECTED_IN_BASELINE`` runs of it;
- ``dormant_case``: a case that fired at least ``MIN_DORMANT_BASELINE_RUNS`` times in the
  baseline and not once now, where its baseline share predicts as many now;
- ``fallthrough_shift``: the share of ok runs no rule matched moved by ``MIN_FALLTHROUGH_CHANGE``
  or more with |z| of at least ``Z_FINDING``;
- ``case_mix_shift``: the case mix diverged (Jensen-Shannon distance above ``CASE_MIX_JS``);
- ``suspect_version``: a version first seen in the window or the window's length before it that
  is worse than the version before it, both in the window: more failures (|z| of at least
  ``Z_FINDING``), a p95 ``SLOWER_P95`` times theirs, or new error codes of real volume.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from stratlog import insights_rules as rules
from stratlog.repository.strategy_execution_log_repository import StrategyExecutionLogRepository
from stratlog.service.compare import Baseline, Comparison, fetch_comparison, rate_change
from stratlog.service.versions import Versions, fetch_versions
from stratlog.timewindow import Window

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
DEFAULT_BASELINE = Baseline("7d")


@dataclass(frozen=True)
class Finding:
    """One thing that is different, why it was flagged, and the runs behind it."""

    kind: str
    subject: str | None
    severity: Severity
    score: float
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The finding as the command line's JSON prints it."""
        return {
            "kind": self.kind, "subject": self.subject, "severity": self.severity,
            "score": self.score, "summary": self.summary, "evidence": self.evidence,
        }  # fmt: skip


@dataclass(frozen=True)
class Insights:
    """The ranked findings of one strategy's window against its baseline."""

    strategyId: str
    since: datetime
    until: datetime
    baselineSince: datetime
    baselineUntil: datetime
    findings: list[Finding]


def ranked(findings: list[Finding]) -> list[Finding]:
    """Critical first, then warning, then info; within a severity by score, highest first."""
    return sorted(findings, key=lambda f: (SEVERITY_RANK[f.severity], -f.score, f.kind))


def js_distance(p: Mapping[Any, int], q: Mapping[Any, int]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two count distributions; 0 when either
    is empty. Symmetric, 0 for proportional inputs."""
    a, b = sum(p.values()), sum(q.values())
    if not a or not b:
        return 0.0
    divergence = 0.0
    for key in set(p) | set(q):
        x, y = p.get(key, 0) / a, q.get(key, 0) / b
        m = (x + y) / 2
        if x:
            divergence += 0.5 * x * math.log2(x / m)
        if y:
            divergence += 0.5 * y * math.log2(y / m)
    return math.sqrt(max(divergence, 0.0))


def _beyond(z: float | None) -> bool:
    """|z| at the findings' level (``Z_FINDING``); ``None`` (too few runs) is not."""
    return z is not None and abs(z) >= rules.Z_FINDING


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def findings_of(comparison: Comparison, versions: Versions | None = None) -> list[Finding]:
    """Every finding of a comparison (and of the window's versions), ranked."""
    now, before = comparison.current, comparison.before
    found: list[Finding] = []
    # -- new_error_code ------------------------------------------------------------------
    for code in comparison.codes():
        expected = _share(code.now, now.total) * before.total
        if not code.new or code.now < rules.MIN_NEW_CODE_RUNS:
            continue
        if expected < rules.EXPECTED_IN_BASELINE:
            continue
        share = _share(code.now, now.failures)
        found.append(Finding(
            "new_error_code", code.errorCode,
            "critical" if share >= rules.CRITICAL_SHARE else "warning",
            expected,
            f"{code.errorCode} failed {code.now:,} runs now and none in the baseline, where its "
            f"rate would have meant about {expected:.0f}.",
            {"runs": code.now, "baselineRuns": 0, "expectedInBaseline": expected,
             "shareOfFailures": share, "windowRuns": now.total, "baselineWindowRuns": before.total},
        ))  # fmt: skip
    # -- dormant_case ----------------------------------------------------------------------
    for case in comparison.cases():
        if not case.stopped or case.caseName is None:
            continue  # the fallthrough's share is fallthrough_shift's
        expected = (case.shareBefore or 0.0) * now.ok
        if case.before < rules.MIN_DORMANT_BASELINE_RUNS or expected < rules.EXPECTED_IN_BASELINE:
            continue
        share = case.shareBefore or 0.0
        found.append(Finding(
            "dormant_case", case.caseName,
            "critical" if share >= rules.CRITICAL_SHARE else "warning",
            expected,
            f"{case.caseName} fired {case.before:,} times in the baseline and not once in "
            f"{now.ok:,} ok runs now, where about {expected:.0f} were expected.",
            {"baselineRuns": case.before, "runs": 0, "okRuns": now.ok,
             "baselineOkRuns": before.ok, "baselineShare": share, "expected": expected},
        ))  # fmt: skip
    # -- fallthrough_shift ----------------------------------------------------------------
    cases_now = {c["caseName"]: int(c["count"]) for c in now.caseNames}
    cases_before = {c["caseName"]: int(c["count"]) for c in before.caseNames}
    change = rate_change(cases_now.get(None, 0), now.ok, cases_before.get(None, 0), before.ok)
    if (
        _beyond(change.z)
        and change.now is not None
        and change.before is not None
        and abs(change.now - change.before) >= rules.MIN_FALLTHROUGH_CHANGE
    ):
        found.append(Finding(
            "fallthrough_shift", None, "warning", abs(change.z or 0.0),
            f"No rule matched {change.now:.1%} of ok runs now against {change.before:.1%} in the "
            "baseline.",
            {"runs": cases_now.get(None, 0), "okRuns": now.ok,
             "baselineRuns": cases_before.get(None, 0), "baselineOkRuns": before.ok,
             "share": change.now, "baselineShare": change.before, "z": change.z},
        ))  # fmt: skip
    # -- case_mix_shift --------------------------------------------------------------------
    if now.ok >= rules.MIN_CASE_MIX_RUNS and before.ok >= rules.MIN_CASE_MIX_RUNS:
        distance = js_distance(cases_now, cases_before)
        if distance > rules.CASE_MIX_JS:
            found.append(Finding(
                "case_mix_shift", "caseName", "warning", distance,
                f"The mix of rule cases moved: Jensen-Shannon distance {distance:.2f} "
                f"(flagged above {rules.CASE_MIX_JS:.2f}).",
                {"distance": distance, "okRuns": now.ok, "baselineOkRuns": before.ok},
            ))  # fmt: skip
    if versions is not None:
        found += _suspect_versions(versions, now.since - (now.until - now.since))
    return ranked(found)


def _suspect_versions(versions: Versions, earliest: datetime) -> list[Finding]:
    """Versions first seen since ``earliest`` that are worse than the version before them, in
    the same window: more failures (|z| >= ``Z_FINDING``), a p95 ``SLOWER_P95`` times theirs,
    or error codes the version before never had that its runs would have shown."""
    out = []
    for row in versions.rows:
        if row.firstSeen is None or row.firstSeen < earliest or not row.hasPrevious:
            continue
        before = versions.get(row.previous)
        if before is None:
            continue  # the version before it did not run in the window: nothing to test against
        failed = row.runs - row.statusCounts.get("ok", 0)
        failed_before = before.runs - before.statusCounts.get("ok", 0)
        change = rate_change(failed, row.runs, failed_before, before.runs)
        reasons = []
        if _beyond(change.z) and (change.delta or 0.0) > 0:
            reasons.append(f"fails {change.now:.1%} of its runs against {change.before:.1%}")
        slower = None
        if (
            min(row.runs, before.runs) >= rules.MIN_VERSION_RUNS
            and row.p95DurationMs and before.p95DurationMs
        ):  # fmt: skip
            slower = row.p95DurationMs / before.p95DurationMs
            if slower >= rules.SLOWER_P95:
                reasons.append(
                    f"p95 {row.p95DurationMs:,.1f} ms against {before.p95DurationMs:,.1f} ms"
                )
        new_codes = [
            code for code in row.newCodes or ()
            if row.codes[code] >= rules.MIN_NEW_CODE_RUNS
            and row.codes[code] / row.runs * before.runs >= rules.EXPECTED_IN_BASELINE
        ]  # fmt: skip
        if new_codes:
            reasons.append("new error codes " + ", ".join(new_codes))
        if not reasons:
            continue
        name = "(no version)" if row.version is None else row.version
        previous = "(no version)" if before.version is None else before.version
        out.append(Finding(
            "suspect_version", row.version, "critical" if len(reasons) > 1 else "warning",
            len(reasons) + abs(change.z or 0.0) / 10,
            f"Version {name} is worse than {previous} in the same window: {'; '.join(reasons)}.",
            {"runs": row.runs, "failed": failed, "previousVersion": before.version,
             "previousRuns": before.runs, "previousFailed": failed_before,
             "firstSeen": row.firstSeen.isoformat(), "z": change.z,
             "p95DurationMs": row.p95DurationMs, "previousP95DurationMs": before.p95DurationMs,
             "p95Ratio": slower, "newErrorCodes": new_codes},
        ))  # fmt: skip
    return out


async def fetch_insights(
    repository: StrategyExecutionLogRepository,
    strategyId: str,
    sinceDt: datetime,
    untilDt: datetime,
    baseline: Baseline = DEFAULT_BASELINE,
) -> Insights:
    """The findings of ``[sinceDt, untilDt)`` against ``baseline`` (default: 7 days earlier),
    from the rollups: one comparison and the Versions panel's reads."""
    window = Window.of(sinceDt, untilDt)
    assert window.since is not None and window.until is not None
    comparison, versions = await asyncio.gather(
        fetch_comparison(repository, strategyId, window.since, window.until, baseline),
        fetch_versions(repository, strategyId, window.since, window.until),
    )
    then = comparison.before
    return Insights(
        strategyId, window.since, window.until, then.since, then.until,
        findings_of(comparison, versions),
    )  # fmt: skip
