"""Game rules and per-round statistics of "guess p of the average" (AgentScope §4).

Individual game: every player reports a number in [0, 100]; the target is
``p * mean + (1 - p) * nash`` — with ``nash = 0`` the classic game (target
``p * mean``, Nash equilibrium 0); with ``nash = 10`` the variant whose
equilibrium is 10 (§4.7: x* = p x* + (1 - p) 10 gives x* = 10 for any p).
Winners are the players closest to the target (within ``tolerance``, which
the paper uses to "reduce the randomness"). Group game (§4.6): a group's
number is its members' mean; the group closest to the target computed over
the groups' numbers wins.

All reductions are over columns in entity-ID order (deterministic); sums use
exact integer arithmetic on fixed-point values (1e-6 units) so that the mean
is the same whatever order or partition the values come in.
"""
from __future__ import annotations

import numpy as np

SCALE = 1_000_000  # fixed point: numbers are summed as integer micro-units


def exact_mean(values: np.ndarray) -> float:
    """Mean of ``values`` via exact integer sums of fixed-point units (order-independent)."""
    if values.shape[0] == 0:
        return float("nan")
    units = np.round(np.asarray(values, dtype=np.float64) * SCALE).astype(np.int64)
    return float(int(units.sum(dtype=np.int64)) / SCALE / values.shape[0])


def target_of(mean: float, p: float, nash: float) -> float:
    return p * mean + (1.0 - p) * nash


def winners(values: np.ndarray, target: float, tolerance: float = 0.0) -> np.ndarray:
    """``[n] bool``: players within ``tolerance`` of the closest distance to the target."""
    if values.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    d = np.abs(values - target)
    return d <= d.min() + tolerance + 1e-12


def round_stats(values: np.ndarray) -> dict:
    """mean, median, std, min, max and mode (of numbers rounded to integers)."""
    if values.shape[0] == 0:
        return {k: float("nan") for k in ("mean", "median", "std", "min", "max", "mode")}
    r = np.round(values).astype(np.int64)
    counts = np.bincount(np.clip(r, 0, 100), minlength=101)
    return {"mean": exact_mean(values), "median": float(np.median(values)), "std": float(values.std()),
            "min": float(values.min()), "max": float(values.max()), "mode": float(np.argmax(counts))}


def group_means(values: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """``[k]`` mean number of each group (exact fixed-point sums); NaN for an empty group."""
    units = np.round(values * SCALE).astype(np.int64)
    sums = np.zeros(k, dtype=np.int64)
    np.add.at(sums, groups, units)
    counts = np.bincount(groups, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / SCALE / np.maximum(counts, 1), np.nan)
