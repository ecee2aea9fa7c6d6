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
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from stratlog import insights_rules as rules
from stratlog.baselines import PRECEDING_WEEK, canonical_insights_baseline
from stratlog.payload import payload_text
from stratlog.repository.strategy_execution_log_repository import StrategyExecutionLogRepository
from stratlog.service import drift
from stratlog.service.compare import Baseline, Comparison, fetch_comparison, rate_change
from stratlog.service.versions import Versions, fetch_versions
from stratlog.sketch import quantiles_of_arrays, representative
from stratlog.timewindow import Window

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
DEFAULT_BASELINE = Baseline(PRECEDING_WEEK)


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
    """The ranked findings of one strategy's window against its baseline, and what was
    checked (plain sentences: the empty state says them)."""

    strategyId: str
    since: datetime
    until: datetime
    baselineSince: datetime
    baselineUntil: datetime
    findings: list[Finding]
    checks: list[str] = field(default_factory=list)
    runs: int = 0
    baselineRuns: int = 0
    baselineLabel: str = ""

    def to_json(self) -> dict[str, Any]:
        """The command line's ``--json`` object."""
        return {
            "strategyId": self.strategyId,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "baseline": {"since": self.baselineSince.isoformat(),
                         "until": self.baselineUntil.isoformat()},
            "runs": self.runs,
            "baselineRuns": self.baselineRuns,
            "findings": [f.to_json() for f in self.findings],
            "checked": self.checks,
        }  # fmt: skip


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
        g, df = drift.g_test(cases_now, cases_before)
        if distance > rules.CASE_MIX_JS and g > drift.chi2_critical(df, rules.CASE_MIX_ALPHA):
            found.append(Finding(
                "case_mix_shift", "caseName", "warning", distance,
                f"The mix of rule cases moved: Jensen-Shannon distance {distance:.2f} "
                f"(flagged above {rules.CASE_MIX_JS:.2f}).",
                {"distance": distance, "g": g, "degreesOfFreedom": df,
                 "okRuns": now.ok, "baselineOkRuns": before.ok,
                 "cases": _case_shares(cases_now, cases_before, now.ok, before.ok)},
            ))  # fmt: skip
    if versions is not None:
        found += _suspect_versions(versions, now.since - (now.until - now.since))
    return ranked(found)


#: The case-mix finding lists this many cases (those that moved most) in its evidence.
CASE_MIX_SHOWN = 8


def _case_shares(
    now: Mapping[Any, int], before: Mapping[Any, int], ok_now: int, ok_before: int
) -> list[dict[str, Any]]:
    """The cases whose share of ok runs moved most, with both shares (``None``: no rule)."""
    rows = [
        {"caseName": case, "share": _share(now.get(case, 0), ok_now),
         "baselineShare": _share(before.get(case, 0), ok_before)}
        for case in set(now) | set(before)
    ]  # fmt: skip
    rows.sort(key=lambda r: (-abs(r["share"] - r["baselineShare"]), str(r["caseName"])))
    return rows[:CASE_MIX_SHOWN]


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


# -- spiking_error_code ----------------------------------------------------------------------


def hours_with_runs(status_hours: Mapping[int, int]) -> list[int]:
    """The hours (epoch s) in which the strategy ran at all."""
    return sorted(h for h, n in status_hours.items() if n > 0)


def spike_threshold(hourly: list[int]) -> tuple[float, float, float]:
    """(threshold, mean, sigma) of a code's hourly runs in the baseline (zeros included):
    an hour spikes above the largest of mean + ``SPIKE_K`` max(sigma, sqrt(mean)),
    ``SPIKE_MIN_RATIO`` x mean, the busiest baseline hour and ``SPIKE_MIN_RUNS``."""
    return threshold_of(sum(hourly), sum(x * x for x in hourly), max(hourly, default=0),
                        len(hourly))  # fmt: skip


def threshold_of(total: int, squares: int, top: int, hours: int) -> tuple[float, float, float]:
    """:func:`spike_threshold` from the sums the database returns: the runs over ``hours``
    hours, the sum of their squares, the busiest hour's runs."""
    mean = total / hours if hours else 0.0
    variance = (squares - total * total / hours) / (hours - 1) if hours > 1 else 0.0
    sigma = math.sqrt(max(variance, 0.0))
    spread = max(sigma, math.sqrt(mean))
    threshold = max(
        mean + rules.SPIKE_K * spread, rules.SPIKE_MIN_RATIO * mean, float(top),
        float(rules.SPIKE_MIN_RUNS - 1),
    )  # fmt: skip
    return threshold, mean, sigma


def _above_rate(n: int, runs: int, base_code: int, base_runs: int) -> bool:
    """More runs of a code in an hour than its baseline share of the hour's runs explains
    (so that more traffic is no spike): above twice that expectation and above it by
    ``SPIKE_K`` Poisson spreads."""
    expected = runs * base_code / base_runs if base_runs else 0.0
    return n > max(rules.SPIKE_MIN_RATIO * expected, expected + rules.SPIKE_K * math.sqrt(expected))


def _spikes(
    now: Mapping[str, Any],
    before: Mapping[str, Any],
    totals: Mapping[str, int],
    failures: int,
    new: set[str],
) -> list[Finding]:
    """The spiking codes. ``now["codes"]`` holds the window's hours with at least
    ``SPIKE_MIN_RUNS`` runs of a code (no other hour can spike), ``before["codes"]`` each
    code's hourly sums in the baseline, ``totals`` the window's runs per code. The evidence's
    ``hours`` holds the spiking hours; :func:`fetch_insights` fills in every hour."""
    base_hours = sum(1 for n in before["hours"].values() if n > 0)
    if base_hours < rules.MIN_SPIKE_BASELINE_HOURS:
        return []
    out = []
    base_runs = sum(before["hours"].values())
    for code, hours in sorted(now["codes"].items()):
        if code in new or code not in before["codes"]:
            continue  # a code the baseline never had is new_error_code's
        base_code, squares, top = before["codes"][code]
        threshold, mean, sigma = threshold_of(base_code, squares, top, base_hours)
        spiking = sorted(
            (h, n) for h, n in hours.items()
            if n > threshold and _above_rate(n, now["hours"].get(h, n), base_code, base_runs)
        )  # fmt: skip
        if not spiking:
            continue
        peak_hour, peak = max(spiking, key=lambda hn: (hn[1], -hn[0]))
        in_spikes = sum(n for _, n in spiking)
        share = _share(in_spikes, failures)
        when = datetime.fromtimestamp(peak_hour, UTC)
        out.append(Finding(
            "spiking_error_code", code,
            "critical" if share >= rules.CRITICAL_SHARE else "warning",
            peak / max(threshold, 1.0),
            f"{code} failed {peak:,} runs in the hour from {when:%Y-%m-%d %H:%M} UTC, where the "
            f"baseline's hours predict at most {threshold:.0f} (mean {mean:.1f} an hour).",
            {"runs": totals.get(code, in_spikes), "baselineRuns": base_code, "peakRuns": peak,
             "peakHour": when.isoformat(), "threshold": threshold, "baselineMean": mean,
             "baselineSigma": sigma, "baselineHours": base_hours,
             "spikeHours": len(spiking), "runsInSpikes": in_spikes, "shareOfFailures": share,
             "peakHourRuns": now["hours"].get(peak_hour, 0),
             "baselineShareOfRuns": _share(base_code, base_runs),
             "hours": [[datetime.fromtimestamp(h, UTC).isoformat(), n] for h, n in spiking]},
        ))  # fmt: skip
    return out


def _with_hours(finding: Finding, hours: Mapping[int, int]) -> Finding:
    """A spike's finding with every hour of its code in the window (its chart)."""
    every = [[datetime.fromtimestamp(h, UTC).isoformat(), n] for h, n in sorted(hours.items())]
    return dataclasses.replace(finding, evidence={**finding.evidence, "hours": every})


# -- points_shift, duration_shift, nodes_shift ------------------------------------------------

SHIFTED = {"points": "points", "duration": "durationMs", "nodes": "nodes"}
_UNITS = {"points": "", "duration": " ms", "nodes": ""}


def _shifts(now: Mapping[str, Any], before: Mapping[str, Any]) -> list[Finding]:
    out = []
    for kind, subject in SHIFTED.items():
        a, b = now["bins"][kind], before["bins"][kind]
        n, m = drift.total(a), drift.total(b)
        if min(n, m) < rules.MIN_SHIFT_RUNS:
            continue
        index = drift.psi(a, b, rules.PSI_GROUPS)
        statistic = drift.ks(a, b)
        critical = drift.ks_critical(n, m, rules.KS_ALPHA)
        if index < rules.PSI_MODERATE or statistic <= critical:
            continue
        q_now = quantiles_of_arrays(a[0], a[1], [0.5, 0.95])
        q_then = quantiles_of_arrays(b[0], b[1], [0.5, 0.95])
        unit = _UNITS[kind]
        level = "significant" if index >= rules.PSI_SIGNIFICANT else "moderate"
        out.append(Finding(
            f"{kind}_shift", subject, "warning" if level == "significant" else "info", index,
            f"The {kind} distribution moved ({level}: PSI {index:.2f}, KS {statistic:.2f}): "
            f"median {_num(q_then[0])}{unit} then, {_num(q_now[0])}{unit} now; p95 "
            f"{_num(q_then[1])}{unit} then, {_num(q_now[1])}{unit} now.",
            {"runs": n, "baselineRuns": m, "psi": index, "ks": statistic, "ksCritical": critical,
             "p50": q_now[0], "p95": q_now[1], "baselineP50": q_then[0],
             "baselineP95": q_then[1],
             "groups": [{"upTo": representative(last), "share": p, "baselineShare": q}
                        for last, p, q in drift.groups_of(a, b, rules.PSI_GROUPS)]},
        ))  # fmt: skip
    return out


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


# -- node_budget_headroom ---------------------------------------------------------------------


def node_budget(
    now: Mapping[str, Any], before: Mapping[str, Any], configured: int | None
) -> tuple[int | None, str]:
    """(the node budget, where it comes from): the configured one, else the fewest nodes of a
    ``limit`` run in the window or the baseline when there are ``MIN_BUDGET_LIMIT_RUNS`` and no
    other run took more nodes (else the limit runs do not mark one budget: unknown)."""
    if configured is not None:
        return configured, "configured"
    limits = [s["status"]["limit"] for s in (now, before) if "limit" in s["status"]]
    runs = sum(n for n, _, _ in limits)
    lows = [low for _, low, _ in limits if low is not None]
    if runs < rules.MIN_BUDGET_LIMIT_RUNS or not lows:
        return None, "unknown"
    others = [
        high for s in (now, before) for status, (_, _, high) in s["status"].items()
        if status != "limit" and high is not None
    ]  # fmt: skip
    if others and max(others) >= min(lows):
        return None, "unknown"
    return min(lows), "limit runs"


def _headroom(now: Mapping[str, Any], budget: int | None, source: str) -> list[Finding]:
    if budget is None or budget <= 0:
        return []
    keys, counts = now["bins"]["nodes"]
    limited = now["status"].get("limit", (0, None, None))[0]
    counts = counts.copy()
    remove = limited  # the limit runs hold the largest node counts: take them off the top
    for i in range(len(counts) - 1, -1, -1):
        if remove <= 0:
            break
        taken = min(int(counts[i]), remove)
        counts[i] -= taken
        remove -= taken
    runs = int(counts.sum()) if len(counts) else 0
    if runs < rules.MIN_HEADROOM_RUNS:
        return []
    (p99,) = quantiles_of_arrays(keys, counts, [rules.HEADROOM_QUANTILE])
    near_from = (1 - rules.HEADROOM) * budget
    near = int(sum(int(c) for k, c in zip(keys, counts, strict=True)
                   if representative(int(k)) >= near_from))  # fmt: skip
    if p99 is None or p99 < near_from:
        return []
    share = near / runs
    where = (
        f"at or above the node budget of {budget:,}" if p99 >= budget
        else f"within {1 - p99 / budget:.0%} of the node budget of {budget:,}"
    )  # fmt: skip
    return [Finding(
        "node_budget_headroom", "nodes",
        "critical" if share >= rules.HEADROOM_CRITICAL_SHARE else "warning", p99 / budget,
        f"The p99 of nodes is {p99:,.0f}, {where} ({source}); {share:.1%} of runs come within "
        f"{rules.HEADROOM:.0%} of it.",
        {"runs": runs, "limitRuns": limited, "budget": budget, "budgetSource": source,
         "p99": p99, "nearRuns": near, "nearShare": share, "nearFrom": near_from},
    )]  # fmt: skip


# -- failure_payload_lift ----------------------------------------------------------------------

MISSING = object()


def payload_fields(payload: Any) -> dict[str, Any]:
    """A payload's scalar fields by dotted path (``MAX_PAYLOAD_DEPTH`` deep, the first
    ``MAX_PAYLOAD_FIELDS`` in key order, keys sorted so that every backend's JSON gives the
    same fields), each value as the runbook's payload filter compares it; JSON null, lists and
    values longer than ``MAX_VALUE_CHARS`` are left out."""
    return {".".join(keys): text for keys, text in _fields(payload).items()}


def _fields(payload: Any) -> dict[tuple[str, ...], str]:
    out: dict[tuple[str, ...], str] = {}
    stack: list[tuple[tuple[str, ...], Any]] = [((), payload)]
    while stack and len(out) < rules.MAX_PAYLOAD_FIELDS:
        keys, value = stack.pop()
        if isinstance(value, dict):
            if len(keys) >= rules.MAX_PAYLOAD_DEPTH:
                continue
            for key in sorted(value, key=str, reverse=True)[-rules.MAX_PAYLOAD_FIELDS :]:
                stack.append(((*keys, str(key)), value[key]))
            continue
        if not keys or value is None or isinstance(value, list):
            continue
        text = payload_text(value, ())
        if text is not None and len(text) <= rules.MAX_VALUE_CHARS:
            out[keys] = text
    return out


#: The longest payload filter a link carries (the URL parser's bound on ``field``).
MAX_FIELD_FILTER = 300


def field_filter(keys: tuple[str, ...], text: str) -> str | None:
    """``path=value`` for the runbook's payload filter, or ``None`` when the filter could not
    select exactly these runs: a key with ``.`` or ``=`` or surrounding spaces, a value with
    surrounding spaces (the filter strips them), or a filter too long for a link."""
    if any(not k or "." in k or "=" in k or k != k.strip() for k in keys) or text != text.strip():
        return None
    found = f"{'.'.join(keys)}={text}"
    return found if len(found) <= MAX_FIELD_FILTER else None


def _two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> float:
    pooled = (k1 + k2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return (k1 / n1 - k2 / n2) / spread if spread else 0.0


def lift_findings(
    failed: list[Any], ok: list[Any], failing_runs: int, ok_runs: int
) -> list[Finding]:
    """Field values (and missing fields) over-represented among the failing sample against the
    ok sample: support, lift and |z| at the rules' levels; the strongest ``MAX_LIFT_FINDINGS``."""
    if len(failed) < rules.MIN_LIFT_FAILED or len(ok) < rules.MIN_LIFT_FAILED:
        return []
    features: dict[tuple[tuple[str, ...], Any], list[int]] = {}
    present: dict[tuple[str, ...], list[int]] = {}
    for side, sample in enumerate((failed, ok)):
        for payload in sample:
            for keys, text in _fields(payload).items():
                features.setdefault((keys, text), [0, 0])[side] += 1
                present.setdefault(keys, [0, 0])[side] += 1
    nf, no = len(failed), len(ok)
    for keys, (pf, po) in present.items():
        features[(keys, MISSING)] = [nf - pf, no - po]
    out = []
    for (keys, text), (kf, ko) in features.items():
        path = ".".join(keys)
        support = kf / nf
        if kf < rules.MIN_LIFT_RUNS or support < rules.MIN_LIFT_SUPPORT:
            continue
        ok_share = ko / no
        lift = support / max(ok_share, 0.5 / no)
        z = _two_proportion_z(kf, nf, ko, no)
        if lift < rules.MIN_LIFT or z < rules.Z_LIFT:
            continue
        missing = text is MISSING
        subject = f"inputPayload.{path} missing" if missing else f"inputPayload.{path}={text}"
        what = f"{path} is missing (or null)" if missing else f"{path} is {text}"
        drill = None if missing else field_filter(keys, text)
        out.append(Finding(
            "failure_payload_lift", subject,
            "critical" if support >= 0.5 and lift >= 3 else "warning",
            support * math.log2(lift),
            f"In {support:.0%} of the failing runs sampled {what}, against "
            + (f"{ok_share:.1%} of the ok runs: {lift:.1f} times as common." if ko
               else f"none of the {no:,} ok runs sampled."),
            {"failedWith": kf, "failedSample": nf, "okWith": ko, "okSample": no,
             "support": support, "okShare": ok_share, "lift": lift, "z": z,
             "failingRuns": failing_runs, "okRuns": ok_runs, "sampleSlices": rules.LIFT_SLICES,
             "field": drill},
        ))  # fmt: skip
    out.sort(key=lambda f: -f.score)
    return out[: rules.MAX_LIFT_FINDINGS]


def sample_slices(
    failing_hours: Mapping[int, int], since: datetime, until: datetime, size: int, slices: int
) -> list[tuple[datetime, datetime, int]]:
    """Where to sample the failing runs: at most ``slices`` ranges of whole hours (clipped to
    the window) that hold equal shares of the window's failures, each with its share of
    ``size``; every failing run of the window when there are at most ``size``. Hours without
    a failure are never read."""
    hours = sorted((h, n) for h, n in failing_hours.items() if n > 0)
    total = sum(n for _, n in hours)
    if not total:
        return []
    groups: list[list[tuple[int, int]]] = [[]]
    per_group = total / slices
    held = 0
    for hour, n in hours:
        if groups[-1] and held + n > per_group * len(groups) and len(groups) < slices:
            groups.append([])
        groups[-1].append((hour, n))
        held += n
    out = []
    for group in groups:
        failures = sum(n for _, n in group)
        quota = failures if total <= size else max(1, round(size * failures / total))
        lo = max(datetime.fromtimestamp(group[0][0], UTC), since)
        hi = min(datetime.fromtimestamp(group[-1][0] + 3600, UTC), until)
        if lo < hi:
            out.append((lo, hi, quota))
    return out


# -- everything at once -------------------------------------------------------------------------


def parse_baseline(text: str | None) -> Baseline:
    """The insights' baseline from ``week`` (the default), ``previous``, ``1d`` or ``7d``."""
    return Baseline(canonical_insights_baseline(text or PRECEDING_WEEK))


async def fetch_insights(
    repository: StrategyExecutionLogRepository,
    strategyId: str,
    sinceDt: datetime,
    untilDt: datetime,
    baseline: Baseline = DEFAULT_BASELINE,
    *,
    nodeBudget: int | None = None,
) -> Insights:
    """The findings of ``[sinceDt, untilDt)`` against ``baseline`` (default: the 7 days before
    the window). From the rollups: the comparison's two Overviews, the Versions panel, per
    window the histograms, the hourly runs per code and per status; then, when the window has
    enough failing runs, two samples of payloads (failing, ok) drawn evenly across it.
    ``nodeBudget`` is the interpreter's node budget when known (else the ``limit`` runs')."""
    if baseline.is_version:
        raise ValueError(
            "insights compare with an earlier window (week, previous, 1d, 7d); a version is "
            "compared with the one before it by suspect_version"
        )
    if nodeBudget is not None and nodeBudget <= 0:
        raise ValueError(f"the node budget must be positive, got {nodeBudget}")
    window = Window.of(sinceDt, untilDt)
    assert window.since is not None and window.until is not None
    since, until = window.since, window.until
    then_since, then_until = baseline.window(since, until)
    comparison, versions, now_rows, then_rows = await asyncio.gather(
        fetch_comparison(repository, strategyId, since, until, baseline),
        fetch_versions(repository, strategyId, since, until),
        repository.insight_rows(
            strategyId=strategyId, sinceDt=since, untilDt=until, codeFloor=rules.SPIKE_MIN_RUNS
        ),
        repository.insight_rows(
            strategyId=strategyId, sinceDt=then_since, untilDt=then_until, codeStats=True
        ),
    )
    current = comparison.current
    found = findings_of(comparison, versions)
    new = {c.errorCode for c in comparison.codes() if c.new}  # every new_error_code among them
    spikes_checked = (
        sum(1 for n in then_rows["hours"].values() if n > 0) >= rules.MIN_SPIKE_BASELINE_HOURS
    )
    totals = {c["errorCode"]: int(c["count"]) for c in current.errorCodes}
    spikes = _spikes(now_rows, then_rows, totals, current.failures, new)
    if spikes:  # every hour of those codes, for their charts
        hours = await repository.code_hours(
            strategyId=strategyId, sinceDt=since, untilDt=until,
            codes=[str(f.subject) for f in spikes][:100],
        )  # fmt: skip
        spikes = [_with_hours(f, hours.get(str(f.subject), {})) for f in spikes]
    found += spikes
    found += _shifts(now_rows, then_rows)
    budget, source = node_budget(now_rows, then_rows, nodeBudget)
    found += _headroom(now_rows, budget, source)
    sampled = (0, 0)
    if min(current.failures, current.ok) >= rules.MIN_LIFT_FAILED:
        # Where the failures are (the hourly status counts above) says where to sample; both
        # samples together cost a few milliseconds (measured beside the other reads, slower).
        plan = sample_slices(
            now_rows["failing"], since, until, rules.LIFT_SAMPLE, rules.LIFT_SLICES
        )
        failed, ok = await asyncio.gather(*(
            repository.payload_sample(strategyId=strategyId, slices=plan, failing=failing)
            for failing in (True, False)
        ))  # fmt: skip
        sampled = (len(failed), len(ok))
        found += lift_findings(
            [p for _, p in failed], [p for _, p in ok], current.failures, current.ok
        )
    checks = _checks(comparison, versions, now_rows, budget, source, sampled, spikes_checked)
    return Insights(
        strategyId, since, until, then_since, then_until, ranked(found), checks,
        current.total, comparison.before.total, baseline.label,
    )  # fmt: skip


def _many(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _checks(
    comparison: Comparison,
    versions: Versions,
    now_rows: Mapping[str, Any],
    budget: int | None,
    source: str,
    sampled: tuple[int, int],
    spikes_checked: bool,
) -> list[str]:
    """What was looked at, in plain words (the empty state says it)."""
    now, then = comparison.current, comparison.before
    values = {k: drift.total(now_rows["bins"][k]) for k in SHIFTED}
    checks = [
        f"{_many(len(now.errorCodes), 'error code')} against {len(then.errorCodes):,} in the "
        "baseline: new codes"
        + (
            " and hourly spikes"
            if spikes_checked
            else " (no hourly spikes: the baseline has under "
            f"{rules.MIN_SPIKE_BASELINE_HOURS} hours with runs)"
        ),
        f"{_many(len(now.caseNames), 'rule case')} (no rule matched included) against "
        f"{len(then.caseNames):,}: dormant cases, the fallthrough share, the case mix",
        f"the points, duration and nodes distributions ({values['points']:,}, "
        f"{values['duration']:,} and {values['nodes']:,} values)",
        f"{_many(len(versions.rows), 'version')} in the window, each against the version before it",
    ]
    if budget is None:
        checks.append(
            "the node budget: unknown (none configured, and no limit runs above every other "
            "run's nodes)"
        )
    else:
        checks.append(f"headroom to the node budget of {budget:,} ({source})")
    if sampled == (0, 0):
        checks.append(
            f"failing runs' payloads: not sampled (fewer than {rules.MIN_LIFT_FAILED} failing "
            "or ok runs)"
        )
    elif min(sampled) < rules.MIN_LIFT_FAILED:
        checks.append(
            f"failing runs' payloads: {sampled[0]:,} failing and {sampled[1]:,} ok runs sampled, "
            f"too few to compare (at least {rules.MIN_LIFT_FAILED} each)"
        )
    else:
        checks.append(
            f"failing runs' payloads: {sampled[0]:,} failing runs sampled across the window's "
            f"failures and {sampled[1]:,} ok runs from the same hours"
        )
    return checks


# -- for the page and the snapshot: why each kind is flagged, where its runs are ------------------

WHY: dict[str, str] = {
    "new_error_code": (
        f"Flagged: at least {rules.MIN_NEW_CODE_RUNS} runs now, none in the baseline, where "
        f"today's rate would have given {rules.EXPECTED_IN_BASELINE} or more (P < 1 % by "
        "chance)."
    ),
    "spiking_error_code": (
        f"Flagged: an hour above the baseline's hourly mean + {rules.SPIKE_K:g} σ, twice the "
        f"mean, its busiest hour and {rules.SPIKE_MIN_RUNS} runs."
    ),
    "dormant_case": (
        f"Flagged: at least {rules.MIN_DORMANT_BASELINE_RUNS} runs in the baseline, none now, "
        f"where its share predicts {rules.EXPECTED_IN_BASELINE} or more."
    ),
    "fallthrough_shift": (
        f"Flagged: the share moved by {rules.MIN_FALLTHROUGH_CHANGE:.0%} or more, |z| ≥ "
        f"{rules.Z_FINDING} (two-sided 0.1 %)."
    ),
    "case_mix_shift": (
        f"Flagged: Jensen-Shannon distance above {rules.CASE_MIX_JS:.2f} and a G test beyond "
        f"chance at {rules.CASE_MIX_ALPHA:.1%}, with at least {rules.MIN_CASE_MIX_RUNS} ok runs "
        "on each side."
    ),
    "points_shift": "",
    "duration_shift": "",
    "nodes_shift": "",
    "failure_payload_lift": (
        f"Flagged: in at least {rules.MIN_LIFT_SUPPORT:.0%} of the failing runs sampled, "
        f"{rules.MIN_LIFT:g} times as common as among ok runs, |z| ≥ {rules.Z_LIFT:g}."
    ),
    "node_budget_headroom": (
        f"Flagged: the p{rules.HEADROOM_QUANTILE * 100:g} of nodes (runs that did not hit the "
        f"budget) within {rules.HEADROOM:.0%} of it."
    ),
    "suspect_version": (
        f"Flagged: first seen in or just before the window and worse than the version before "
        f"it in the same window (failures at |z| ≥ {rules.Z_FINDING}, p95 {rules.SLOWER_P95:g}×, "
        "or new error codes)."
    ),
}
_SHIFT_WHY = (
    f"Flagged: PSI ≥ {rules.PSI_MODERATE} ({rules.PSI_SIGNIFICANT} and more: significant) and "
    f"the KS statistic beyond chance at {rules.KS_ALPHA:.1%}, with at least "
    f"{rules.MIN_SHIFT_RUNS} values on each side."
)
for _kind in SHIFTED:
    WHY[f"{_kind}_shift"] = _SHIFT_WHY


def why(finding: Finding) -> str:
    """The rule behind a finding, in one sentence with its thresholds."""
    return WHY.get(finding.kind, "")


def runs_behind(finding: Finding) -> str:
    """How many runs stand behind a finding, in plain words."""
    e = finding.evidence
    if finding.kind == "failure_payload_lift":
        return (
            f"{e['failedWith']:,} of {e['failedSample']:,} failing and {e['okWith']:,} of "
            f"{e['okSample']:,} ok runs sampled ({e['failingRuns']:,} failing runs in the window)"
        )
    if finding.kind == "suspect_version":
        return f"{e['runs']:,} runs of it, {e['previousRuns']:,} of the version before"
    if "okRuns" in e and "baselineOkRuns" in e:
        return f"{e['okRuns']:,} ok runs now, {e['baselineOkRuns']:,} in the baseline"
    if "baselineRuns" in e and "runs" in e:
        return f"{e['runs']:,} runs now, {e['baselineRuns']:,} in the baseline"
    return f"{e.get('runs', 0):,} runs"


def runs_filter(finding: Finding) -> dict[str, Any] | None:
    """The runbook filters that list a finding's runs: ``code``, ``case`` (``None``: no rule
    matched), ``status``, ``version``, ``field`` (payload ``path=value``), and ``window``:
    ``"baseline"`` for runs that only the baseline has, or ``(since, until)``; ``None`` when no
    runbook filter selects them (a distribution: the Overview shows it)."""
    e = finding.evidence
    kind = finding.kind
    if kind == "new_error_code":
        return {"code": finding.subject}
    if kind == "spiking_error_code":
        start = datetime.fromisoformat(e["peakHour"])
        return {"code": finding.subject, "window": (start, start + timedelta(hours=1))}
    if kind == "dormant_case":
        return {"case": finding.subject, "window": "baseline"}
    if kind == "fallthrough_shift":
        return {"case": None}
    if kind == "failure_payload_lift":
        return {"field": e["field"]} if e.get("field") else None
    if kind == "node_budget_headroom":
        return {"status": "limit"} if e.get("limitRuns") else None
    if kind == "suspect_version":
        return {"version": finding.subject}
    return None
