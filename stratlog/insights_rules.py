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
#: ... and each side needs this many ok runs for the distance to mean anything,
MIN_CASE_MIX_RUNS = 200
#: ... and the G test (log-likelihood ratio over the cases) must reject "one mix" at this
#: level: sampling alone gives a distance of about sqrt((cases - 1)(1/n + 1/m) / (8 ln 2)), which
#: passes 0.10 for 10 cases at 200 runs a side.
CASE_MIX_ALPHA = 0.001
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

# -- spiking_error_code: Sentry-style escalation, per hour ------------------------------------
#: An hour spikes when its runs of a code exceed the baseline's hourly mean + SPIKE_K sigma
#: (sigma at least sqrt(mean), the Poisson spread, so that a flat baseline does not make every
#: wobble a spike), twice the mean, the baseline's busiest hour, and SPIKE_MIN_RUNS.
SPIKE_K = 4.0
SPIKE_MIN_RATIO = 2.0
SPIKE_MIN_RUNS = 15
#: The baseline needs this many hours with runs for its hourly spread to mean anything.
MIN_SPIKE_BASELINE_HOURS = 24
#: The same rule then holds against the code's baseline share of that hour's runs (expected =
#: the hour's runs x the share; above SPIKE_MIN_RATIO x expected and expected + SPIKE_K
#: sqrt(expected)): twice the traffic brings twice the failures, and that is no spike.

# -- points_shift, duration_shift, nodes_shift ------------------------------------------------
#: Population stability index over PSI_GROUPS ranges of equal pooled mass: the usual reading.
PSI_MODERATE = 0.10
PSI_SIGNIFICANT = 0.20
PSI_GROUPS = 10
#: ... and the Kolmogorov-Smirnov statistic must exceed what two samples of one distribution
#: exceed with this probability (the small-sample guard), each side with MIN_SHIFT_RUNS values.
KS_ALPHA = 0.001
MIN_SHIFT_RUNS = 500

# -- failure_payload_lift: BubbleUp inside the payloads ---------------------------------------
#: Failing runs sampled across the window, at most LIFT_SAMPLE, in at most LIFT_SLICES slices
#: of whole hours that hold equal shares of the window's failures (every failure has the same
#: chance; all of them when there are fewer); the ok runs from the same slices, as many.
LIFT_SAMPLE = 1000
LIFT_SLICES = 40
#: The window needs this many failing runs (and ok runs) for a sample to tell anything.
MIN_LIFT_FAILED = 50
#: A field value is flagged when at least MIN_LIFT_SUPPORT of the failing sample (and
#: MIN_LIFT_RUNS runs) has it, it is MIN_LIFT times as common there as among ok runs, and the
#: two-proportion |z| reaches Z_LIFT (stricter than Z_FINDING: a sample has hundreds of fields).
MIN_LIFT_SUPPORT = 0.25
MIN_LIFT_RUNS = 10
MIN_LIFT = 2.0
Z_LIFT = 4.0
MAX_LIFT_FINDINGS = 5
#: A payload is read this deep, up to this many fields, values up to this many characters.
MAX_PAYLOAD_DEPTH = 6
MAX_PAYLOAD_FIELDS = 200
MAX_VALUE_CHARS = 100

# -- node_budget_headroom ---------------------------------------------------------------------
#: Flagged when the p99 of nodes (runs that did not hit the budget) is within HEADROOM of it.
HEADROOM = 0.10
HEADROOM_QUANTILE = 0.99
#: The budget is the fewest nodes of a ``limit`` run, given this many of them (or configured).
MIN_BUDGET_LIMIT_RUNS = 3
MIN_HEADROOM_RUNS = 200
#: Critical when at least this share of the runs comes within HEADROOM of the budget.
HEADROOM_CRITICAL_SHARE = 0.05
