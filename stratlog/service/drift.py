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
from collections.abc import Mapping
from statistics import NormalDist
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

    Bins are taken in value order into a range until it holds ``1 / groups`` of the two
    distributions pooled; a bin that holds that much alone is a range of its own (the range
    before it closes first), so a few discrete values (points) each keep their own range.
    """
    keys, x, y = _aligned(a, b)
    nx, ny = x.sum(), y.sum()
    if not len(keys) or not nx or not ny:
        return []
    px, py = x / nx, y / ny
    pooled = (px + py) / 2
    step = 1.0 / groups
    out: list[tuple[int, float, float]] = []
    last, sx, sy, held = -1, 0.0, 0.0, 0.0

    def close() -> None:
        nonlocal sx, sy, held
        if held > 0:
            out.append((int(keys[last]), float(sx), float(sy)))
        sx = sy = held = 0.0

    for i in range(len(keys)):
        if pooled[i] >= step:
            close()
            last = i
            sx, sy, held = px[i], py[i], pooled[i]
            close()
            continue
        last = i
        sx, sy, held = sx + px[i], sy + py[i], held + pooled[i]
        if held >= step - 1e-12:
            close()
    close()
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


def g_test(p: Mapping[Any, int], q: Mapping[Any, int]) -> tuple[float, int]:
    """The G statistic (log-likelihood ratio) of two count distributions over the same
    categories being one distribution, and its degrees of freedom (categories - 1); ``(0, 0)``
    when either side is empty. Large when the mixes differ beyond what sampling gives."""
    a, b = sum(p.values()), sum(q.values())
    keys = [k for k in set(p) | set(q) if p.get(k, 0) or q.get(k, 0)]
    if not a or not b or len(keys) < 2:
        return 0.0, 0
    total = a + b
    g = 0.0
    for key in keys:
        column = p.get(key, 0) + q.get(key, 0)
        for observed, side in ((p.get(key, 0), a), (q.get(key, 0), b)):
            if observed:
                g += observed * math.log(observed * total / (side * column))
    return 2.0 * g, len(keys) - 1


def chi2_critical(df: int, alpha: float) -> float:
    """The chi-square value exceeded with probability ``alpha`` at ``df`` degrees of freedom
    (Wilson-Hilferty's approximation, within a few percent from df = 1 on); inf for df < 1."""
    if df < 1:
        return math.inf
    z = NormalDist().inv_cdf(1.0 - alpha)
    h = 2.0 / (9.0 * df)
    return float(df * (1.0 - h + z * math.sqrt(h)) ** 3)
