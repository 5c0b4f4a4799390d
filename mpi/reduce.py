"""Exact global reductions: the same bits whatever the rank count.

A float sum taken in a different order differs in the last bits, and one
flipped bit in an environment value (the guess game's mean) changes every
later tick's state hash. So nothing here adds floats in arrival order:

* :func:`exact_sum` / :func:`exact_mean` return the *correctly rounded*
  sum / mean of all ranks' float64 values — ``math.fsum`` of their union
  (a zero sum is ``-0.0`` only when every value is ``-0.0``, IEEE's rule) —
  by exact integer accumulation: each value's 53-bit significand goes into
  an int64 bucket of its binary exponent (split into a high and a low limb
  so no bucket overflows below 2**31 values), the ``[2, 2048]`` bucket table
  is summed with one integer ``Allreduce``, and the exact total is rounded
  once at the end with Python integers. Any partition, any order, same bits.
* :func:`fixed_point_sum` reproduces a scenario's fixed-point rule
  (``round(x * scale)`` summed as integers) exactly across ranks;
  :func:`int_sum` sums integers without int64 overflow (two limbs).
* :func:`global_min` / :func:`global_max` compare floats in IEEE total order
  (so ``-0.0 < +0.0``), NaN propagating — identical on every rank.
* :func:`histogram`, :func:`bincount`, :func:`group_fixed_sum`: integer
  counts and sums, exact.
* :func:`top_k`: the ``k`` largest (or smallest) values, ties broken by the
  smaller entity ID, identical on every rank.
* :func:`gather_ordered`: every rank's rows, concatenated in global ID order.

All functions are collective (every rank calls them, in the same order)
and take this rank's values only. Shapes: ``values [n]`` unless stated.
"""
from __future__ import annotations

import numba
import numpy as np

from socius.ecs.component import Ragged, String
from socius.ecs.ragged import RaggedArray

from .context import RankContext
from .pack import Fixed, pack, unpack

__all__ = ["exact_sum", "exact_mean", "fixed_point_sum", "int_sum", "global_count", "global_min",
           "global_max", "histogram", "bincount", "group_fixed_sum", "top_k", "gather_ordered",
           "float_buckets", "buckets_to_float"]

_LIMIT = 1 << 31  # values per rank (and in total) below which the limbs cannot overflow


@numba.njit(cache=True)
def _float_buckets(bits, acc, special):
    """Accumulate float64 bit patterns ``bits [n] int64`` into ``acc [2, 2048]`` (hi, lo limbs
    of significands per biased exponent) and ``special [4]`` (NaN, +inf, -inf, sign-bit-clear)."""
    for i in range(bits.shape[0]):
        b = bits[i]
        e = (b >> 52) & 0x7FF
        m = b & 0xFFFFFFFFFFFFF
        if e == 0x7FF:
            if m != 0:
                special[0] += 1
            elif b < 0:
                special[2] += 1
            else:
                special[1] += 1
            continue
        if b >= 0:
            special[3] += 1
        if e != 0:
            m |= 0x10000000000000
        hi = m >> 32
        lo = m & 0xFFFFFFFF
        if b < 0:
            acc[0, e] -= hi
            acc[1, e] -= lo
        else:
            acc[0, e] += hi
            acc[1, e] += lo


def float_buckets(values) -> np.ndarray:
    """This rank's exact-sum state of ``values`` (float64-convertible): ``[2 * 2048 + 5] int64``.

    Layout: hi limbs ``[2048]``, lo limbs ``[2048]``, then NaN, +inf, -inf
    counts, the number of values with a clear sign bit, and the count. Sum the
    states of several ranks elementwise (integers, exact) and pass the total
    to :func:`buckets_to_float`.
    """
    x = np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))
    if x.shape[0] >= _LIMIT:
        raise ValueError(f"exact_sum: at most {_LIMIT - 1} values per rank, got {x.shape[0]}")
    acc = np.zeros((2, 2048), dtype=np.int64)
    special = np.zeros(5, dtype=np.int64)
    _float_buckets(x.view(np.int64), acc, special)
    special[4] = x.shape[0]
    return np.concatenate([acc.reshape(-1), special])


def _exact_total(state: np.ndarray) -> tuple[int, int, np.ndarray]:
    """``(N, w0, special)`` with the exact sum ``N * 2**w0`` of the finite values."""
    hi, lo, special = state[:2048], state[2048:4096], state[4096:]
    if int(special[4]) >= _LIMIT:
        raise ValueError(f"exact_sum: at most {_LIMIT - 1} values in total, got {int(special[4])}")
    nz = np.flatnonzero((hi != 0) | (lo != 0))
    if not nz.shape[0]:
        return 0, 0, special
    w = np.maximum(nz, 1) - 1075  # weight exponent of each bucket
    w0 = int(w.min())
    total = 0
    for e, we in zip(nz.tolist(), w.tolist()):  # at most 2047 buckets: Python ints, exact
        total += ((int(hi[e]) << 32) + int(lo[e])) << (we - w0)
    return total, w0, special


def _special(special: np.ndarray) -> float | None:
    nan, pinf, ninf = (int(v) for v in special[:3])
    if nan or (pinf and ninf):
        return float("nan")
    if pinf:
        return float("inf")
    if ninf:
        return float("-inf")
    return None


def _ratio(num: int, den: int) -> float:
    """Correctly rounded ``num / den`` (Python's int division rounds once); ±inf on overflow."""
    try:
        return num / den
    except OverflowError:
        return float("inf") if num > 0 else float("-inf")


def buckets_to_float(state: np.ndarray, divide_by: int = 1) -> float:
    """The correctly rounded ``sum / divide_by`` from a (summed) :func:`float_buckets` state."""
    total, w0, special = _exact_total(np.asarray(state, dtype=np.int64))
    s = _special(special)
    if s is not None:
        return s
    if total == 0:
        # IEEE's sign rule for an exact zero sum: -0.0 only when every value is -0.0
        return -0.0 if int(special[4]) > 0 and int(special[3]) == 0 else 0.0
    if w0 >= 0:
        return _ratio(total << w0, divide_by)
    return _ratio(total, divide_by << -w0)


def exact_sum(ctx: RankContext, values) -> float:
    """Correctly rounded sum of every rank's ``values`` (``math.fsum`` of all of them).

    NaN if any value is NaN or both infinities occur; ±inf if one infinity
    occurs or the exact sum overflows float64.
    """
    return buckets_to_float(ctx.allreduce(float_buckets(values), "sum"))


def exact_mean(ctx: RankContext, values) -> float:
    """Correctly rounded mean of every rank's ``values``; NaN when there are none."""
    state = ctx.allreduce(float_buckets(values), "sum")
    n = int(state[-1])
    if n == 0:
        return float("nan")
    return buckets_to_float(state, n)


def _int_limbs(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v)
    if v.dtype.kind == "b":
        v = v.astype(np.int64)
    if v.dtype.kind not in "iu":
        raise TypeError(f"int_sum: need integers, got {v.dtype}")
    if v.dtype == np.uint64 and v.shape[0] and int(v.max()) > np.iinfo(np.int64).max:
        raise OverflowError("int_sum: uint64 values above 2**63 - 1")
    v = v.astype(np.int64, copy=False).reshape(-1)
    if v.shape[0] >= _LIMIT:
        raise ValueError(f"int_sum: at most {_LIMIT - 1} values per rank, got {v.shape[0]}")
    return np.array([int((v >> 32).sum()), int((v & 0xFFFFFFFF).sum()), v.shape[0]], dtype=np.int64)


def int_sum(ctx: RankContext, values) -> int:
    """Exact sum (a Python int) of every rank's integer ``values``."""
    s = ctx.allreduce(_int_limbs(values), "sum")
    if int(s[2]) >= _LIMIT:
        raise ValueError(f"int_sum: at most {_LIMIT - 1} values in total, got {int(s[2])}")
    return (int(s[0]) << 32) + int(s[1])


def fixed_point_sum(ctx: RankContext, values, scale: int) -> int:
    """Exact ``Σ round(values * scale)`` over all ranks, as a Python int.

    The per-value rounding is ``np.round(values * scale)`` — the rule a
    scenario uses on one rank (e.g. the guess game's micro-units), so
    ``fixed_point_sum(ctx, x, S) / S / n`` equals the one-rank result bit for bit.
    """
    units = np.round(np.asarray(values, dtype=np.float64) * scale)
    if units.shape[0] and not np.isfinite(units).all():
        raise ValueError("fixed_point_sum: values must be finite")
    return int_sum(ctx, units.astype(np.int64))


def global_count(ctx: RankContext, n: int) -> int:
    """Sum of every rank's ``n``."""
    return int(ctx.allreduce(np.array([int(n)], dtype=np.int64), "sum")[0])


# ---------------------------------------------------------------- min / max
_SIGNMASK = np.int64(0x7FFFFFFFFFFFFFFF)


def _order_key(x: np.ndarray) -> np.ndarray:
    """int64 keys whose order is IEEE total order of float64 ``x`` (``-0.0 < +0.0``)."""
    b = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
    return b ^ ((b >> 63) & _SIGNMASK)


def _from_key(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, dtype=np.int64)
    return (k ^ ((k >> 63) & _SIGNMASK)).view(np.float64)


def _extreme(ctx: RankContext, values, op: str):
    v = np.asarray(values)
    if v.dtype.kind not in "iubf":
        raise TypeError(f"global_{op}: need numbers, got {v.dtype}")
    tail = v.shape[1:]
    v = v.reshape(v.shape[0], int(np.prod(tail, dtype=np.int64)))
    is_float = v.dtype.kind == "f"
    if is_float:
        nan = np.isnan(v).any(axis=0)
        key = _order_key(v.astype(np.float64, copy=False))
    else:
        if v.dtype == np.uint64 and v.shape[0] and int(v.max()) > np.iinfo(np.int64).max:
            raise OverflowError(f"global_{op}: uint64 values above 2**63 - 1")
        nan = np.zeros(v.shape[1], dtype=bool)
        key = v.astype(np.int64)
    ident = np.iinfo(np.int64).max if op == "min" else np.iinfo(np.int64).min
    local = (key.min(axis=0) if op == "min" else key.max(axis=0)) if v.shape[0] else \
        np.full(v.shape[1], ident, dtype=np.int64)
    n = global_count(ctx, v.shape[0])
    if n == 0:
        raise ValueError(f"global_{op}: no values on any rank")
    red = ctx.allreduce(np.ascontiguousarray(local, dtype=np.int64), op)
    any_nan = ctx.allreduce(nan.astype(np.int64), "max").astype(bool)
    if is_float:
        out = _from_key(red).astype(v.dtype)
        out[any_nan] = np.nan
    else:
        out = red.astype(v.dtype)
    out = out.reshape(tail)
    return out[()] if out.ndim == 0 else out


def global_min(ctx: RankContext, values):
    """Smallest of every rank's ``values [n, ...]`` along axis 0 (a scalar for ``[n]``); NaN propagates."""
    return _extreme(ctx, values, "min")


def global_max(ctx: RankContext, values):
    """Largest of every rank's ``values [n, ...]`` along axis 0 (a scalar for ``[n]``); NaN propagates."""
    return _extreme(ctx, values, "max")


# ---------------------------------------------------------------- counts
def histogram(ctx: RankContext, values, edges) -> np.ndarray:
    """``[len(edges) - 1] int64`` counts of every rank's ``values`` in the bins ``edges`` (numpy's rule:
    half-open bins, the last one closed). ``edges`` must be the same on every rank."""
    counts, _ = np.histogram(np.asarray(values), bins=np.asarray(edges))
    return ctx.allreduce(counts.astype(np.int64), "sum")


def bincount(ctx: RankContext, labels, length: int, weights=None) -> np.ndarray:
    """``[length] int64``: occurrences (or integer ``weights`` summed) of each label in ``[0, length)``."""
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] and (labels.min() < 0 or labels.max() >= length):
        raise ValueError(f"bincount: labels must lie in [0, {length})")
    if weights is None:
        local = np.bincount(labels, minlength=length).astype(np.int64)
    else:
        w = np.asarray(weights).reshape(-1)
        if w.dtype.kind not in "iub":
            raise TypeError("bincount: weights must be integers here; for floats use group_fixed_sum")
        local = np.zeros(length, dtype=np.int64)
        np.add.at(local, labels, w.astype(np.int64))
    return ctx.allreduce(local, "sum")


def group_fixed_sum(ctx: RankContext, groups, values, k: int, scale: int) -> np.ndarray:
    """``[k] int64``: exact ``Σ round(values * scale)`` per group label in ``[0, k)`` over all ranks.

    Divide by ``scale`` and by :func:`bincount` to get group means that equal
    the one-rank fixed-point means bit for bit. Raises ``OverflowError`` if a
    total leaves int64.
    """
    groups = np.asarray(groups).reshape(-1)
    if groups.shape[0] and (groups.min() < 0 or groups.max() >= k):
        raise ValueError(f"group_fixed_sum: groups must lie in [0, {k})")
    units = np.round(np.asarray(values, dtype=np.float64).reshape(-1) * scale)
    if units.shape[0] and not np.isfinite(units).all():
        raise ValueError("group_fixed_sum: values must be finite")
    units = units.astype(np.int64)
    limbs = np.zeros((2, k), dtype=np.int64)
    np.add.at(limbs[0], groups, units >> 32)
    np.add.at(limbs[1], groups, units & 0xFFFFFFFF)
    s = ctx.allreduce(limbs, "sum")
    out = np.empty(k, dtype=np.int64)
    lim = np.iinfo(np.int64)
    for g in np.flatnonzero((s[0] != 0) | (s[1] != 0)).tolist():  # groups, not entities
        t = (int(s[0, g]) << 32) + int(s[1, g])
        if not lim.min <= t <= lim.max:
            raise OverflowError(f"group_fixed_sum: group {g} total {t} leaves int64")
        out[g] = t
    out[(s[0] == 0) & (s[1] == 0)] = 0
    return out


# ---------------------------------------------------------------- selection and ordered gather
def top_k(ctx: RankContext, ids, values, k: int, largest: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest (or smallest) ``values`` over all ranks with their entity ``ids``.

    ``ids [n] int64`` and ``values [n]`` (numbers) are this rank's. Order: by
    value (floats in IEEE total order), ties by the smaller ID first; NaN is
    never selected. Returns ``(ids [k'], values [k'])`` with ``k' = min(k,
    count)``, identical on every rank.
    """
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    v = np.asarray(values).reshape(-1)
    if ids.shape != v.shape:
        raise ValueError(f"top_k: ids {ids.shape} and values {v.shape} differ in length")
    if v.dtype.kind not in "iubf":
        raise TypeError(f"top_k: need numbers, got {v.dtype}")
    k = int(k)
    if k < 0:
        raise ValueError(f"top_k: k must be >= 0, got {k}")

    def select(ids, v):
        if v.dtype.kind == "f":
            keep = ~np.isnan(v)
            ids, v = ids[keep], v[keep]
            key = _order_key(v)
        else:
            key = v.astype(np.int64)
        order = np.lexsort((ids, ~key if largest else key))[:k]
        return ids[order], v[order]

    li, lv = select(ids, v)
    all_i, _ = ctx.allgatherv(li)
    all_v, _ = ctx.allgatherv(np.ascontiguousarray(lv))
    return select(all_i, all_v)


def _spec_of(values):
    if isinstance(values, RaggedArray):
        return Ragged(values.dtype)
    v = np.asarray(values)
    if v.dtype.kind == "T" or v.dtype.kind == "U":
        return String()
    return Fixed(v.dtype, v.shape[1:])


def gather_ordered(ctx: RankContext, ids, values) -> tuple[np.ndarray, object]:
    """Every rank's ``(ids, values)`` rows, on every rank, in ascending global ID order.

    ``ids [n] int64`` (unique across ranks); ``values``: ``[n, ...]`` numbers,
    a StringDType ``[n]`` array or a :class:`RaggedArray` of ``n`` rows.
    Returns ``(ids [N] int64 sorted, values [N, ...])`` — the column a
    one-rank run would have, for ordered reductions and output.
    """
    ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    if len(values) != ids.shape[0]:
        raise ValueError(f"gather_ordered: {ids.shape[0]} ids but {len(values)} values")
    spec = _spec_of(values)
    if isinstance(spec, String):
        values = np.asarray(values).astype(np.dtypes.StringDType(), copy=False)
    n = ids.shape[0]
    buf, nb = pack([Fixed(np.int64), spec], [ids, values], np.arange(n, dtype=np.int64),
                   np.array([n], dtype=np.int64))
    all_buf, per_rank = ctx.allgatherv(buf)
    (all_ids, all_vals), _ = unpack([Fixed(np.int64), spec], all_buf, per_rank)
    order = np.argsort(all_ids, kind="stable")
    s = all_ids[order]
    if s.shape[0] > 1 and (s[1:] == s[:-1]).any():
        raise ValueError(f"gather_ordered: entity {int(s[1:][s[1:] == s[:-1]][0])} is on more than one rank")
    if isinstance(all_vals, RaggedArray):
        return s, all_vals.take(order)
    return s, all_vals[order]
