"""Measures of a discussion, from histograms so they are the same on any number of ranks.

Every function takes global counts (reduced with :mod:`socius.mpi` over all
ranks), never per-agent rows, so a run on 1, 2 or 4 ranks reports the same
bits.

- :func:`gini_from_counts` — talk share inequality: the Gini coefficient of
  utterances per agent, from ``hist[v]`` = number of agents with ``v``
  utterances (0 = everyone spoke equally often, → 1 = one agent did all
  the talking).
- :func:`moments_from_levels` — mean, variance, skewness and excess kurtosis
  of stances from ``hist[l]`` = number of agents at level ``l``.
- :func:`bimodality` — Sarle's bimodality coefficient
  ``(g² + 1) / (k + 3 (n-1)² / ((n-2)(n-3)))`` with sample skewness ``g``
  and excess kurtosis ``k``; above 5/9 ≈ 0.555 the distribution is more
  bimodal than a uniform one (the polarisation signal next to variance).
"""
from __future__ import annotations

import math

import numpy as np

BIMODAL_THRESHOLD = 5 / 9


def gini_from_counts(hist: np.ndarray) -> float:
    """Gini of the values ``0..len(hist)-1`` where ``hist[v]`` agents hold value ``v``; 0.0 if all are 0."""
    hist = np.asarray(hist, dtype=np.int64)
    n = int(hist.sum())
    values = np.arange(hist.shape[0], dtype=np.float64)
    total = float((hist * values).sum())
    if n == 0 or total == 0.0:
        return 0.0
    # sorted ascending, agent i (1-based) holds x_(i): G = 2 Σ i x_(i) / (n Σ x) - (n + 1) / n
    end = np.cumsum(hist)                  # last rank (1-based) holding each value
    start = end - hist + 1                 # first rank
    rank_sum = (start + end) * hist / 2.0  # Σ of the ranks holding each value
    return float(2.0 * (rank_sum * values).sum() / (n * total) - (n + 1) / n)


def gini(values: np.ndarray) -> float:
    """Gini of non-negative integers ``values`` (a direct form, for checks)."""
    v = np.asarray(values, dtype=np.int64)
    if v.shape[0] == 0 or v.sum() == 0:
        return 0.0
    return gini_from_counts(np.bincount(v))


def moments_from_levels(hist: np.ndarray, levels: np.ndarray) -> dict:
    """``mean``, ``var`` (population), ``skew`` and ``kurt`` (excess) of values ``levels`` weighted by ``hist``."""
    hist = np.asarray(hist, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.float64)
    n = hist.sum()
    if n == 0:
        return {"mean": math.nan, "var": math.nan, "skew": math.nan, "kurt": math.nan}
    mean = float((hist * levels).sum() / n)
    d = levels - mean
    m2 = float((hist * d ** 2).sum() / n)
    m3 = float((hist * d ** 3).sum() / n)
    m4 = float((hist * d ** 4).sum() / n)
    skew = m3 / m2 ** 1.5 if m2 > 0 else 0.0
    kurt = m4 / m2 ** 2 - 3.0 if m2 > 0 else 0.0
    return {"mean": mean, "var": m2, "skew": skew, "kurt": kurt}


def bimodality(hist: np.ndarray, levels: np.ndarray) -> float:
    """Sarle's bimodality coefficient of the weighted values (sample-corrected); NaN below 4 values
    or when every value is the same."""
    hist = np.asarray(hist, dtype=np.float64)
    n = float(hist.sum())
    m = moments_from_levels(hist, levels)
    if n < 4 or not m["var"] > 0:
        return math.nan
    g = m["skew"] * math.sqrt(n * (n - 1)) / (n - 2)                               # sample skewness G1
    k = ((n + 1) * m["kurt"] + 6) * (n - 1) / ((n - 2) * (n - 3))                   # sample excess kurtosis G2
    return float((g * g + 1) / (k + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))
