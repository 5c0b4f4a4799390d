"""The Gini coefficient of wealth, as Mesa's Boltzmann model computes it (exactly, in integers)."""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["gini"]


@numba.njit(cache=True)
def gini(wealth):
    """Mesa's formula, ``1 + 1/n - 2 * sum(x_i (n - i)) / (n sum x)`` over sorted x, via a histogram (exact sums)."""
    n = wealth.shape[0]
    if n == 0:
        return 0.0
    total = 0
    top = 0
    for i in range(n):
        total += wealth[i]
        if wealth[i] > top:
            top = wealth[i]
    if total == 0:
        return 0.0
    hist = np.zeros(top + 1, np.int64)
    for i in range(n):
        hist[wealth[i]] += 1
    acc = 0  # sum over sorted x of x_i (n - i): at most n * total
    start = 0
    for v in range(top + 1):
        c = hist[v]
        if c:
            acc += v * (c * n - (c * start + c * (c - 1) // 2))
            start += c
    return 1.0 + 1.0 / n - 2.0 * (acc / (n * total))
