"""Percentiles and histograms from samples, always saying how many rows stand behind them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from stratlog import sketch

#: What the dashboard promises for percentiles read from the histograms.
PROMISED_ERROR = 0.01
#: Below this many values a p99 says little more than "the largest value": see
#: :meth:`Percentiles.few_values_note`.
FEW_VALUES = 100
#: Up to this many values p95 too lies between the two largest (``0.95 (n - 1) >= n - 2``).
P95_FEW_VALUES = 21


@dataclass(frozen=True)
class Percentiles:
    """p50 / p95 / p99 of a sample, with its size, the window's row count and exactness."""

    p50: float | None
    p95: float | None
    p99: float | None
    n: int
    total: int
    exact: bool
    #: Bound on the relative error of each figure: 0 when exact.
    relativeError: float = 0.0

    def describe(self, *, few_values: bool = False) -> str:
        """Where the figures come from, for a caption: exact, histogram (±1 %) or a sample.

        With ``few_values``, the :meth:`few_values_note` follows when there is one, e.g.
        ``"exact, over all 10 runs; p95 and p99 ≈ max of 10 (between the two largest values)"``.
        """
        basis = self._basis()
        note = self.few_values_note() if few_values else None
        return f"{basis}; {note}" if note else basis

    def _basis(self) -> str:
        if self.total == 0:
            return "no runs in this window"
        if self.exact:
            return f"exact, over all {self.total:,} runs"
        if self.n >= self.total:
            return f"±{PROMISED_ERROR:.0%} (log histogram), over all {self.total:,} runs"
        return f"estimated from a sample of the {self.n:,} most recent of {self.total:,} runs"

    def few_values_note(self) -> str | None:
        """What the tail figures amount to when fewer than ``FEW_VALUES`` values stand behind them.

        With ``n`` sorted values, linear interpolation puts p99 at rank ``0.99 (n - 1)``, which
        is at least ``n - 2`` for every ``n <= 101``: the p99 of fewer than 100 values lies
        between the two largest of them (a 0.99 (n - 1) - (n - 2) share of the way from the
        second largest to the max), so it says "about the max" and nothing about a 1 % tail. The
        same holds for p95 up to 21 values. ``None`` from 100 values on, and without values.
        """
        n = self.n
        if n == 0 or n >= FEW_VALUES:
            return None
        if n == 1:
            return "p50, p95 and p99 are the one value"
        tails = "p95 and p99" if n <= P95_FEW_VALUES else "p99"
        return f"{tails} ≈ max of {n:,} (between the two largest values)"


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default method) of an already sorted sequence."""
    if not sorted_values:
        raise ValueError("quantile of an empty sample")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within [0, 1], got {q}")
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def nearest_rank(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of an already sorted sequence (numpy's ``inverted_cdf``).

    The smallest value with at least a ``q`` share of the values at or below it: the value of
    1-based rank ``ceil(q n)`` (the first for ``q = 0``). ``q n`` is rounded to 9 decimals
    first, so that binary floating point cannot push an exact rank up by one
    (``0.07 * 100 == 7.000000000000001``).
    """
    if not sorted_values:
        raise ValueError("quantile of an empty sample")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within [0, 1], got {q}")
    rank = max(1, math.ceil(round(q * len(sorted_values), 9)))
    return sorted_values[rank - 1]


def percentiles(sample: Sequence[float], total: int | None = None) -> Percentiles:
    """p50/p95/p99 of ``sample``; exact when the sample holds all ``total`` rows of the window."""
    total = len(sample) if total is None else total
    if not sample:
        return Percentiles(None, None, None, 0, total, total == 0)
    ordered = sorted(sample)
    return Percentiles(
        p50=quantile(ordered, 0.50),
        p95=quantile(ordered, 0.95),
        p99=quantile(ordered, 0.99),
        n=len(ordered),
        total=total,
        exact=len(ordered) >= total,
    )


def percentiles_from_bins(bins: Sequence[tuple[int, int]]) -> Percentiles:
    """p50/p95/p99 over every row of the window from its log-spaced bins (within ±1 %)."""
    total = sum(n for _, n in bins)
    p50, p95, p99 = sketch.quantiles(bins, (0.50, 0.95, 0.99))
    return Percentiles(p50, p95, p99, total, total, total == 0, sketch.ALPHA)


@dataclass(frozen=True)
class HistogramBin:
    """One bin ``[start, end)`` (the last one includes ``end``) and how many values fell in it."""

    start: float
    end: float
    count: int


def histogram_from_bins(log_bins: Sequence[tuple[int, int]], bins: int = 20) -> list[HistogramBin]:
    """Equal-width histogram of the values behind log-spaced bins (each at its representative)."""
    return weighted_histogram([(sketch.representative(b), n) for b, n in log_bins], bins)


def weighted_histogram(values: Sequence[tuple[float, int]], bins: int = 20) -> list[HistogramBin]:
    """Equal-width bins over (value, weight) pairs; one bin when all values are equal."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    values = [(v, w) for v, w in values if w > 0]
    if not values:
        return []
    low, high = min(v for v, _ in values), max(v for v, _ in values)
    if low == high:
        return [HistogramBin(low, high, sum(w for _, w in values))]
    width = (high - low) / bins
    counts = [0] * bins
    for value, weight in values:
        counts[min(int((value - low) / width), bins - 1)] += weight
    return [
        HistogramBin(low + i * width, high if i == bins - 1 else low + (i + 1) * width, c)
        for i, c in enumerate(counts)
    ]
