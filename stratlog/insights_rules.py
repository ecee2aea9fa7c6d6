"""Every threshold the insights use, in one place (plain data; ``docs/insights.md`` says why).

A false finding costs an operator's trust more than a missed one, so every rule asks for a
change beyond noise AND enough runs to tell, and the levels are strict.
"""

from __future__ import annotations

#: A count the baseline "should" have shown at least once: under Poisson, P(0 | λ) < 1 % once
#: λ > 4.6. A code absent from the baseline is only "new" when, at its current rate, the baseline
#: would have expected at least this many runs of it.
EXPECTED_IN_BASELINE = 4.6
#: A new code needs at least this many runs in the window (one stray run is not a finding).
MIN_NEW_CODE_RUNS = 5
#: A dormant case fired at least this many times in the baseline.
MIN_DORMANT_BASELINE_RUNS = 20
#: Jensen-Shannon distance (base 2, in [0, 1]) of the case mixes above which it is flagged.
CASE_MIX_JS = 0.10
#: ... and each side needs this many ok runs for the distance to mean anything.
MIN_CASE_MIX_RUNS = 200
#: Severity: a finding whose share of the window's failures (or of its ok runs) reaches this is
#: critical, else warning.
CRITICAL_SHARE = 0.20
#: |z| of a rate's change for a finding: two-sided 0.1 %, stricter than the Overview's 1 %
#: (a strategy's window is tested for several kinds at once; twenty steady windows of 1,500
#: runs gave one fallthrough "shift" of 4 pp at the 1 % level).
Z_FINDING = 3.29
#: ... and the fallthrough share must move by at least this much (absolute).
MIN_FALLTHROUGH_CHANGE = 0.03
#: A version's p95 duration this many times its predecessor's is worse (log-bin p95s, within
#: 1 %; both versions need ``MIN_VERSION_RUNS`` runs in the window).
SLOWER_P95 = 1.5
MIN_VERSION_RUNS = 100
