"""Mergeable log-spaced histograms (DDSketch-style) with a stated relative accuracy.

A value ``x`` with ``|x| > MIN_MAGNITUDE`` falls in bin ``i = ceil(ln|x| / ln(gamma))`` where
``gamma = (1 + ALPHA) / (1 - ALPHA)``; every value in the bin is within ``ALPHA`` relative error of
the bin's representative ``2 gamma^i / (gamma + 1)``. Bins are plain integers (positive values
above ``OFFSET``, negative values below ``-OFFSET``, zero at 0), so they sort like the values,
add up across hours with ``SUM``, and are computed in SQL and in Python by the same formula.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, case, cast, func, literal_column

#: Relative accuracy of every quantile estimated from the bins (0.5 %, inside the promised 1 %).
ALPHA = 0.005
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LN_GAMMA = math.log(GAMMA)
MIN_MAGNITUDE = 1e-9
OFFSET = 1_000_000


def bin_of(value: float) -> int:
    """The bin of one value (Python side of :func:`bin_sql`)."""
    if value > MIN_MAGNITUDE:
        return OFFSET + math.ceil(math.log(value) / LN_GAMMA)
    if value < -MIN_MAGNITUDE:
        return -OFFSET - math.ceil(math.log(-value) / LN_GAMMA)
    return 0


def bin_sql(x: Any) -> ColumnElement[int]:
    """The bin of a column, in SQL that SQLite (math functions) and PostgreSQL both run."""
    ln_gamma: ColumnElement[float] = literal_column(repr(LN_GAMMA))
    lo: ColumnElement[float] = literal_column(repr(MIN_MAGNITUDE))
    index = cast(func.ceil(func.ln(func.abs(x)) / ln_gamma), Integer)
    return case(
        (x > lo, literal_column(str(OFFSET)) + index),
        (x < -lo, -literal_column(str(OFFSET)) - index),
        else_=literal_column("0"),
    )


def representative(bin_: int) -> float:
    """The value that stands for a bin: within ``ALPHA`` of every value in it."""
    if bin_ == 0:
        return 0.0
    magnitude = 2 * GAMMA ** (abs(bin_) - OFFSET) / (GAMMA + 1)
    return magnitude if bin_ > 0 else -magnitude


def quantiles(bins: Iterable[tuple[int, int]], qs: Sequence[float]) -> list[float | None]:
    """Quantiles from (bin, count) pairs, interpolated like numpy's default; ``None`` if empty.

    numpy takes the values at ranks ``floor(q (n - 1))`` and the next one and interpolates; here
    each of those two values is replaced by its bin's representative (within ``ALPHA``), so the
    answer is within ``ALPHA`` of numpy's whenever both values have the same sign.
    """
    ordered = sorted((b, n) for b, n in bins if n > 0)
    total = sum(n for _, n in ordered)
    if total == 0:
        return [None for _ in qs]
    answers: list[float | None] = []
    for q in qs:
        rank = q * (total - 1)
        low, high = _value_at(ordered, math.floor(rank)), _value_at(ordered, math.ceil(rank))
        answers.append(low + (high - low) * (rank - math.floor(rank)))
    return answers


def _value_at(ordered: Sequence[tuple[int, int]], index: int) -> float:
    """The representative of the value with 0-based rank ``index`` in the sorted bins."""
    seen = 0
    for b, n in ordered:
        seen += n
        if seen > index:
            return representative(b)
    return representative(ordered[-1][0])
