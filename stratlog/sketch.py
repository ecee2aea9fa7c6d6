"""Mergeable log-spaced histograms (DDSketch-style) with a stated relative accuracy.

A value ``x`` with ``|x| > MIN_MAGNITUDE`` falls in bin ``i = ceil(ln|x| / ln(gamma))`` where
``gamma = (1 + ALPHA) / (1 - ALPHA)``; every value in the bin is within ``ALPHA`` relative error of
the bin's representative ``2 gamma^i / (gamma + 1)``. Bins are plain integers (positive values
above ``OFFSET``, negative values below ``-OFFSET``, zero at 0), so they sort like the values,
add up across hours with ``SUM``, and are computed in SQL and in Python by the same formula.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
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


def bins_of(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The bins of an array of values (vectorised :func:`bin_of`)."""
    values = np.asarray(values, dtype=float)
    magnitude = np.abs(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        index = np.ceil(np.log(np.where(magnitude > MIN_MAGNITUDE, magnitude, 1.0)) / LN_GAMMA)
    index = index.astype(np.int64)
    return np.where(
        values > MIN_MAGNITUDE,
        OFFSET + index,
        np.where(values < -MIN_MAGNITUDE, -OFFSET - index, 0),
    )


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


def bin_bounds(bin_: int) -> tuple[float, float]:
    """A closed value interval holding every value of a bin (edges included, generously)."""
    if bin_ == 0:
        return (-MIN_MAGNITUDE, MIN_MAGNITUDE)
    k = abs(bin_) - OFFSET
    low, high = GAMMA ** (k - 1), GAMMA**k
    return (low, high) if bin_ > 0 else (-high, -low)


#: How far a rank's value interval reaches past its bin's edges, relatively: a value exactly on
#: an edge may be binned on either side of it by the database's ``ln`` and numpy's ``log``.
EDGE_TOLERANCE = 1e-9


def rank_ranges(
    bins: Sequence[tuple[int, int]], ranks: Iterable[int]
) -> list[tuple[tuple[float, float], int]]:
    """For each 0-based rank: a closed value interval that should hold that value, and how many
    values the histogram puts in that interval's bin (what a read of the interval returns).

    The interval is the rank's bin, widened by ``EDGE_TOLERANCE``. The caller checks the answer
    against the rows (count below the interval, values inside) and falls back to sorting when
    the histogram and the rows disagree.
    """
    ordered = sorted((b, n) for b, n in bins if n > 0)
    edges = np.cumsum([n for _, n in ordered])
    out: list[tuple[tuple[float, float], int]] = []
    for rank in ranks:
        j = min(int(np.searchsorted(edges, rank, side="right")), len(ordered) - 1)
        low, high = bin_bounds(ordered[j][0])
        widen = EDGE_TOLERANCE * max(abs(low), abs(high), MIN_MAGNITUDE)
        out.append(((low - widen, high + widen), ordered[j][1]))
    return out


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


#: Format byte of :func:`pack`: zlib-compressed, little-endian int32 bin deltas then int64 counts.
PACK_FORMAT = 1


def pack(bins: Mapping[int, int]) -> bytes:
    """One bucket's histogram as bytes: sorted bins delta-coded, counts, zlib (level 1).

    A quiet strategy's hour holds a few dozen occupied bins with counts of 1 or 2: packed, that is
    a few bytes per run instead of a table row per bin.
    """
    keys = np.fromiter(sorted(bins), dtype=np.int64, count=len(bins))
    counts = np.fromiter((bins[int(k)] for k in keys), dtype=np.int64, count=len(bins))
    return pack_arrays(keys, counts)


def pack_arrays(keys: np.ndarray[Any, Any], counts: np.ndarray[Any, Any]) -> bytes:
    """:func:`pack` of sorted, distinct bins and their counts given as arrays."""
    deltas = np.diff(keys, prepend=0).astype("<i4")
    body = len(keys).to_bytes(4, "little") + deltas.tobytes() + counts.astype("<i8").tobytes()
    return bytes([PACK_FORMAT]) + zlib.compress(body, 1)


def pack_slices(
    keys: np.ndarray[Any, Any], counts: np.ndarray[Any, Any], starts: Sequence[int]
) -> list[bytes]:
    """:func:`pack` of many histograms at once: ``keys`` sorted within each slice.

    Slice ``i`` runs from ``starts[i]`` to the next start (or the end); the deltas are taken
    over the whole array at once, the per-slice work is two byte slices and a compress.
    """
    deltas = np.diff(keys, prepend=0)
    deltas[np.asarray(starts, dtype=np.int64)] = keys[np.asarray(starts, dtype=np.int64)]
    delta_bytes = deltas.astype("<i4").tobytes()
    count_bytes = counts.astype("<i8").tobytes()
    ends = [*starts[1:], len(keys)]
    head = bytes([PACK_FORMAT])
    return [
        head
        + zlib.compress(
            (hi - lo).to_bytes(4, "little")
            + delta_bytes[4 * lo : 4 * hi]
            + count_bytes[8 * lo : 8 * hi],
            1,
        )
        for lo, hi in zip(starts, ends, strict=True)
    ]


def unpack(blob: bytes) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The (bins, counts) arrays of :func:`pack`'s bytes."""
    if not blob or blob[0] != PACK_FORMAT:
        raise ValueError(f"unknown histogram format {blob[:1]!r}")
    body = zlib.decompress(blob[1:])
    size = int.from_bytes(body[:4], "little")
    deltas = np.frombuffer(body, dtype="<i4", count=size, offset=4)
    counts = np.frombuffer(body, dtype="<i8", count=size, offset=4 + 4 * size)
    return np.cumsum(deltas, dtype=np.int64), counts.astype(np.int64)


def merge_packed(blobs: Iterable[bytes], extra: Iterable[tuple[int, int]] = ()) -> dict[int, int]:
    """Sum of packed histograms and (bin, count) pairs, as ``{bin: count}``."""
    keys, counts = merge_arrays(blobs, extra)
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def merge_arrays(
    blobs: Iterable[bytes], extra: Iterable[tuple[int, int]] = ()
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """:func:`merge_packed` as (sorted distinct bins, their counts) arrays.

    The arrays are summed at once in numpy (one ``unique`` and one ``bincount``); a
    ``Counter`` updated per histogram took most of a 30-day read's time.
    """
    parts = [unpack(blob) for blob in blobs]
    pairs = list(extra)
    if pairs:
        parts.append(
            (np.fromiter((int(b) for b, _ in pairs), np.int64, len(pairs)),
             np.fromiter((int(n) for _, n in pairs), np.int64, len(pairs)))
        )  # fmt: skip
    empty = np.zeros(0, dtype=np.int64)
    if not parts:
        return empty, empty
    keys = np.concatenate([k for k, _ in parts])
    counts = np.concatenate([c for _, c in parts])
    if not len(keys):
        return empty, empty
    unique, where = np.unique(keys, return_inverse=True)
    # float64 sums are exact below 2**53 runs per bin.
    summed = np.bincount(where, weights=counts, minlength=len(unique)).astype(np.int64)
    return unique, summed


def quantiles_of_arrays(
    keys: np.ndarray[Any, Any], counts: np.ndarray[Any, Any], qs: Sequence[float]
) -> list[float | None]:
    """:func:`quantiles` of sorted distinct bins and their counts, in numpy."""
    total = int(counts.sum()) if len(counts) else 0
    if total == 0:
        return [None for _ in qs]
    ends = np.cumsum(counts)
    answers: list[float | None] = []
    for q in qs:
        rank = q * (total - 1)
        at = np.searchsorted(ends, [math.floor(rank), math.ceil(rank)], side="right")
        low, high = (representative(int(keys[min(int(i), len(keys) - 1)])) for i in at)
        answers.append(low + (high - low) * (rank - math.floor(rank)))
    return answers
