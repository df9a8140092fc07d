"""Vectorised numpy helpers of the generator: weights, exact integer splits, CSR sampling."""

from __future__ import annotations

import numpy as np


def zipf_weights(ranks: np.ndarray, exponent: float) -> np.ndarray:
    return np.asarray(ranks, dtype=np.float64) ** -exponent


def largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weights`` summing exactly to ``total``."""
    expected = total * (weights / weights.sum())
    base = np.floor(expected).astype(np.int64)
    short = total - int(base.sum())
    if short > 0:
        base[np.argsort(base - expected, kind="stable")[:short]] += 1
    return base


def cumulative_ptr(sizes: np.ndarray) -> np.ndarray:
    ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    return ptr


def row_offset_cdf(weights: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Per-row cumulative shares of ``weights``, plus the row index (row ``c``: (c, c+1])."""
    sizes = np.diff(ptr)
    totals = np.add.reduceat(weights, ptr[:-1])
    cumulative = np.cumsum(weights)
    before = np.repeat(cumulative[ptr[:-1]] - weights[ptr[:-1]], sizes)
    rows = np.repeat(np.arange(len(sizes), dtype=np.float64), sizes)
    cdf = rows + (cumulative - before) / np.repeat(totals, sizes)
    cdf[ptr[1:] - 1] = np.arange(1, len(sizes) + 1, dtype=np.float64)
    return cdf


def sample_rows(cdf: np.ndarray, ptr: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One flat index per (row, uniform) pair, drawn from that row of a row-offset CDF."""
    index = np.searchsorted(cdf, rows + u, side="right")
    return np.minimum(index, ptr[rows + 1] - 1)  # guards rows + u rounding up to rows + 1
