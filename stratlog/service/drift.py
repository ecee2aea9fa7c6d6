"""Why: how far apart two distributions are, from the rollups' log-bin histograms.

Each distribution is a pair of numpy arrays: sorted distinct bins (:mod:`stratlog.sketch`) and
their counts, as :func:`stratlog.sketch.merge_arrays` returns them. The bins are 1 % wide, finer
than any drift measure wants, so:

- :func:`psi` (population stability index) groups them into ``groups`` ranges of equal mass
  under the two distributions pooled, so that the measure is symmetric and a distribution with
  a few discrete values (points) keeps each value in a range of its own;
- :func:`ks` (the Kolmogorov-Smirnov statistic) is the largest gap between the two cumulative
  shares at a bin edge: the bins' 1 % width is its only approximation;
- :func:`ks_critical` is the statistic two samples of these sizes from one distribution exceed
  with probability ``alpha`` (the asymptotic two-sample bound), the small-sample guard.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
Bins = tuple[Array, Array]

#: A group's share below this counts as this in the PSI's logarithm (the usual guard: an empty
#: range would otherwise make the index infinite).
PSI_FLOOR = 1e-4


def _aligned(a: Bins, b: Bins) -> tuple[Array, Array, Array]:
    """Both count arrays over the union of their bins (sorted), and that union."""
    keys = np.union1d(a[0], b[0])
    x = np.zeros(len(keys), dtype=np.float64)
    y = np.zeros(len(keys), dtype=np.float64)
    if len(a[0]):
        x[np.searchsorted(keys, a[0])] = a[1]
    if len(b[0]):
        y[np.searchsorted(keys, b[0])] = b[1]
    return keys, x, y


def total(bins: Bins) -> int:
    """How many values a histogram holds."""
    return int(bins[1].sum()) if len(bins[1]) else 0


def groups_of(a: Bins, b: Bins, groups: int = 10) -> list[tuple[int, float, float]]:
    """The PSI's ranges: ``(last bin of the range, share of a, share of b)``, in value order.

    A bin starts a new range when the pooled share below it crosses the next multiple of
    ``1 / groups``; a bin that holds more than that alone is one range.
    """
    keys, x, y = _aligned(a, b)
    nx, ny = x.sum(), y.sum()
    if not len(keys) or not nx or not ny:
        return []
    pooled = x / nx + y / ny
    below = np.concatenate(([0.0], np.cumsum(pooled)[:-1])) / 2  # pooled share before each bin
    index = np.minimum((below * groups + 1e-12).astype(np.int64), groups - 1)
    out = []
    for g in np.unique(index):
        at = index == g
        out.append((int(keys[at][-1]), float(x[at].sum() / nx), float(y[at].sum() / ny)))
    return out


def psi(a: Bins, b: Bins, groups: int = 10) -> float:
    """Population stability index of two histograms: sum of (p - q) ln(p / q) over the ranges
    of :func:`groups_of`. 0 for proportional inputs, symmetric, 0.1 "moderate" and 0.2
    "significant" by the usual reading; 0 when either side is empty."""
    value = 0.0
    for _, p, q in groups_of(a, b, groups):
        p, q = max(p, PSI_FLOOR), max(q, PSI_FLOOR)
        value += (p - q) * math.log(p / q)
    return value


def ks(a: Bins, b: Bins) -> float:
    """The two-sample Kolmogorov-Smirnov statistic at the bins' resolution, in [0, 1]; 0 when
    either side is empty."""
    _, x, y = _aligned(a, b)
    nx, ny = x.sum(), y.sum()
    if not nx or not ny:
        return 0.0
    return float(np.max(np.abs(np.cumsum(x) / nx - np.cumsum(y) / ny)))


def ks_critical(n: int, m: int, alpha: float) -> float:
    """The KS statistic that samples of ``n`` and ``m`` values from one distribution exceed
    with probability about ``alpha``: sqrt(-ln(alpha / 2) / 2) * sqrt((n + m) / (n m))."""
    if n <= 0 or m <= 0:
        return math.inf
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))
