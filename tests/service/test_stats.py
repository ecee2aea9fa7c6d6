"""Quantile and rank helpers against numpy for every sample size, and the few-values caption."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stratlog import sketch
from stratlog.service.overview import QUANTILES, interpolate
from stratlog.service.stats import (
    FEW_VALUES,
    P95_FEW_VALUES,
    Percentiles,
    nearest_rank,
    percentiles,
    percentiles_from_bins,
    quantile,
)

SIZES = range(1, 301)
QS = (0.0, 0.5, 0.95, 0.99, 1.0)


def sample(n: int, *, ties: bool = False) -> list[float]:
    """``n`` sorted values: lognormal (all distinct), or small integers with many ties."""
    rng = np.random.default_rng(n)
    values = rng.integers(-3, 4, n) if ties else rng.lognormal(2.0, 1.0, n)
    return sorted(float(v) for v in values)


@pytest.mark.parametrize("ties", [False, True])
def test_quantile_is_numpys_linear_for_every_n(ties: bool):
    for n in SIZES:
        values = sample(n, ties=ties)
        for q in QS:
            expected = float(np.quantile(values, q))
            assert quantile(values, q) == pytest.approx(expected, rel=1e-12, abs=1e-12), (n, q)


@pytest.mark.parametrize("ties", [False, True])
def test_nearest_rank_is_numpys_inverted_cdf_for_every_n(ties: bool):
    for n in SIZES:
        values = sample(n, ties=ties)
        for q in QS:
            expected = float(np.quantile(values, q, method="inverted_cdf"))
            assert nearest_rank(values, q) == expected, (n, q)


def test_nearest_rank_by_its_definition():
    values = [float(i) for i in range(1, 101)]  # the value is its own 1-based rank
    assert nearest_rank(values, 0.07) == 7.0  # 0.07 * 100 is 7.000000000000001 in floats
    assert nearest_rank([1.0, 2.0], 0.5) == 1.0 and nearest_rank([5.0], 0.99) == 5.0
    assert [nearest_rank(values[:20], q) for q in (0.0, 0.95, 1.0)] == [1.0, 19.0, 20.0]
    with pytest.raises(ValueError, match="empty"):
        nearest_rank([], 0.5)
    with pytest.raises(ValueError, match="within"):
        nearest_rank(values, 1.5)


def test_exact_path_interpolates_numpys_ranks_for_every_n():
    """The overview's exact percentiles: the values at floor/ceil of q (n - 1), interpolated."""
    for n in SIZES:
        values = sample(n)
        for q in (*QS, *QUANTILES):
            rank = q * (n - 1)
            needed = {math.floor(rank): values[math.floor(rank)]}
            needed[math.ceil(rank)] = values[math.ceil(rank)]
            expected = float(np.quantile(values, q))
            assert interpolate(needed, rank) == pytest.approx(expected, rel=1e-12), (n, q)


def test_sketch_quantiles_are_within_alpha_of_numpy_for_every_n():
    for n in SIZES:
        values = sample(n)
        counts: dict[int, int] = {}
        for v in values:
            counts[sketch.bin_of(v)] = counts.get(sketch.bin_of(v), 0) + 1
        got = sketch.quantiles(list(counts.items()), QS)
        for q, estimate in zip(QS, got, strict=True):
            truth = float(np.quantile(values, q))
            assert estimate is not None
            assert abs(estimate - truth) <= sketch.ALPHA * truth * (1 + 1e-9), (n, q)


def test_the_few_values_thresholds_are_where_numpy_puts_the_tail():
    """p99 lies between the two largest values up to 101 values, p95 up to 21 (distinct values)."""
    for n in range(2, 160):
        values = sample(n)
        p95, p99 = np.quantile(values, [0.95, 0.99])
        assert (p99 >= values[-2]) == (n <= 101), n
        assert (p95 >= values[-2]) == (n <= P95_FEW_VALUES), n
    assert FEW_VALUES <= 101


@pytest.mark.parametrize(
    ("n", "note"),
    [
        (1, "p50, p95 and p99 are the one value"),
        (2, "p95 and p99 ≈ max of 2 (between the two largest values)"),
        (10, "p95 and p99 ≈ max of 10 (between the two largest values)"),
        (21, "p95 and p99 ≈ max of 21 (between the two largest values)"),
        (22, "p99 ≈ max of 22 (between the two largest values)"),
        (99, "p99 ≈ max of 99 (between the two largest values)"),
        (100, None),
        (5000, None),
    ],
)
def test_few_values_note(n: int, note: str | None):
    got = percentiles(sample(n))
    assert got.few_values_note() == note
    basis = f"exact, over all {n:,} runs"
    assert got.describe() == basis  # the default caption keeps its wording
    assert got.describe(few_values=True) == (f"{basis}; {note}" if note else basis)


def test_few_values_note_counts_the_values_behind_the_figures():
    sampled = percentiles([1.0, 2.0, 3.0], total=10_000)  # 3 values stand behind it, not 10,000
    assert sampled.describe(few_values=True) == (
        "estimated from a sample of the 3 most recent of 10,000 runs; "
        "p95 and p99 ≈ max of 3 (between the two largest values)"
    )
    binned = percentiles_from_bins([(sketch.bin_of(v), 1) for v in (1.0, 2.0, 4.0, 8.0)])
    assert binned.describe(few_values=True).endswith(
        "; p95 and p99 ≈ max of 4 (between the two largest values)"
    )
    assert percentiles([]).few_values_note() is None
    empty = Percentiles(None, None, None, 0, 0, True)
    assert empty.describe(few_values=True) == "no runs in this window"
