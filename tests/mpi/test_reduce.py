"""Exact reductions: the one-rank result, bit for bit, on any number of ranks."""
from __future__ import annotations

import math
import struct
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socius.mpi import (bincount, exact_mean, exact_sum, fixed_point_sum, gather_ordered, global_count, global_max,
                        global_min, group_fixed_sum, histogram, int_sum, run_ranks, self_context, top_k)
from socius.mpi.reduce import buckets_to_float, float_buckets

STR = np.dtypes.StringDType()
SETTINGS = dict(derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


def bits(x) -> bytes:
    """Exact bytes of a result (floats by bit pattern, so -0.0 != 0.0 and NaN == NaN)."""
    if isinstance(x, tuple):
        return b"|".join(bits(v) for v in x)
    if isinstance(x, float):
        return struct.pack("<d", x)
    if isinstance(x, int):
        return str(x).encode()
    a = np.asarray(x)
    if a.dtype.kind == "T":
        return "\x1f".join(a.tolist()).encode()
    return a.dtype.str.encode() + str(a.shape).encode() + np.ascontiguousarray(a).tobytes()


# ---------------------------------------------------------------- arithmetic (no communication)
@settings(deadline=None)
@given(st.lists(finite, max_size=60))
def test_bucket_sum_is_fsum(xs):
    try:
        reference = math.fsum(xs)  # correctly rounded
    except OverflowError:  # fsum gives up where the exact sum leaves float64; we return ±inf
        total = sum(Fraction(x) for x in xs)
        try:
            reference = float(total)
        except OverflowError:
            reference = math.inf if total > 0 else -math.inf
    if reference == 0.0:  # IEEE sign rule (fsum's differs across Python versions): -0.0 iff all are -0.0
        reference = -0.0 if xs and all(math.copysign(1.0, x) < 0 and x == 0 for x in xs) else 0.0
    assert bits(buckets_to_float(float_buckets(np.array(xs, dtype=np.float64)))) == bits(reference)


@settings(deadline=None)
@given(st.lists(finite, min_size=1, max_size=60))
def test_bucket_mean_is_correctly_rounded(xs):
    exact = sum((Fraction(x) for x in xs), Fraction(0)) / len(xs)
    got = buckets_to_float(float_buckets(np.array(xs)), len(xs))
    assert got == float(exact)


@settings(deadline=None)
@given(st.lists(finite, max_size=60), st.lists(st.integers(0, 60), max_size=5))
def test_bucket_states_add_in_any_split(xs, cuts):
    x = np.array(xs, dtype=np.float64)
    pieces = np.split(x, sorted(c % (len(xs) + 1) for c in cuts))
    total = sum(float_buckets(p) for p in pieces[::-1])
    assert bits(buckets_to_float(total)) == bits(buckets_to_float(float_buckets(x)))


def test_special_values():
    f = lambda xs: buckets_to_float(float_buckets(np.array(xs, dtype=np.float64)))  # noqa: E731
    assert math.isnan(f([1.0, np.nan]))
    assert math.isnan(f([np.inf, -np.inf]))
    assert f([np.inf, 1.0]) == math.inf and f([-np.inf, 1.0]) == -math.inf
    assert bits(f([-0.0, -0.0])) == bits(-0.0) and bits(f([-0.0, 0.0])) == bits(0.0) and bits(f([])) == bits(0.0)
    assert f([1.7976931348623157e308, 1.7976931348623157e308]) == math.inf  # exact sum overflows float64
    assert f([5e-324, 5e-324, -5e-324]) == 5e-324  # subnormals are exact too
    assert f([1e308, 1.0, -1e308]) == 1.0  # catastrophic cancellation, exactly


def test_one_rank_context_reductions():
    ctx = self_context()
    x = np.array([3.0, -1.5, 2.25])
    assert exact_sum(ctx, x) == 3.75 and exact_mean(ctx, x) == 1.25
    assert math.isnan(exact_mean(ctx, np.zeros(0)))
    assert global_min(ctx, x) == -1.5 and global_max(ctx, x) == 3.0
    assert int_sum(ctx, np.array([2**62, 2**62, 2**62])) == 3 * 2**62  # beyond int64, exact
    assert global_count(ctx, 5) == 5
    with pytest.raises(ValueError, match="no values"):
        global_min(ctx, np.zeros(0))


def test_min_max_order_zeros_and_nan():
    ctx = self_context()
    assert bits(global_min(ctx, np.array([0.0, -0.0]))) == bits(-0.0)
    assert bits(global_max(ctx, np.array([-0.0, 0.0]))) == bits(0.0)
    assert math.isnan(global_max(ctx, np.array([1.0, np.nan])))
    v = global_max(ctx, np.array([[1, 5], [4, 2]], dtype=np.int32))
    assert v.tolist() == [4, 5] and v.dtype == np.int32


def test_top_k_breaks_ties_by_id():
    ctx = self_context()
    ids = np.array([9, 3, 7, 1, 5])
    vals = np.array([2.0, 5.0, 5.0, np.nan, 2.0])
    i, v = top_k(ctx, ids, vals, 3)
    assert i.tolist() == [3, 7, 5] and v.tolist() == [5.0, 5.0, 2.0]
    i, _ = top_k(ctx, ids, vals, 10, largest=False)
    assert i.tolist() == [5, 9, 3, 7]  # NaN never selected


# ---------------------------------------------------------------- the same bits on N ranks
def dataset(seed: int, n: int):
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(4 * n + 10, size=n, replace=False)).astype(np.int64)
    x = rng.normal(size=n) * 10.0 ** rng.integers(-8, 8, size=n)
    x[rng.random(n) < 0.05] = -0.0
    ints = rng.integers(-2**40, 2**40, size=n)
    groups = rng.integers(0, 6, size=n)
    scores = np.round(rng.random(n) * 20)  # many ties
    names = np.array([f"agent-{i}-" + "é" * int(i % 4) for i in ids], dtype=STR)
    vec = rng.normal(size=(n, 3)).astype(np.float32)
    return rng, ids, x, ints, groups, scores, names, vec


def reductions(ctx, seed: int, n: int, owner_of_row: np.ndarray | None):
    _, ids, x, ints, groups, scores, names, vec = dataset(seed, n)
    rows = np.arange(n) if owner_of_row is None else np.flatnonzero(owner_of_row == ctx.rank)
    xs = x[rows]
    out = [exact_sum(ctx, xs), exact_mean(ctx, xs), fixed_point_sum(ctx, xs, 1_000_000), int_sum(ctx, ints[rows]),
           global_count(ctx, rows.shape[0]), histogram(ctx, xs, [-1e9, -1.0, 0.0, 1.0, 1e9]),
           bincount(ctx, groups[rows], 6), group_fixed_sum(ctx, groups[rows], xs.clip(-1e6, 1e6), 6, 1000),
           top_k(ctx, ids[rows], scores[rows], 7), top_k(ctx, ids[rows], scores[rows], 7, largest=False),
           gather_ordered(ctx, ids[rows], names[rows]), gather_ordered(ctx, ids[rows], vec[rows])]
    if n:
        out += [global_min(ctx, xs), global_max(ctx, xs), global_max(ctx, vec[rows])]
    return [bits(v) for v in out]


def check_reductions(ctx, agree, seed: int, n: int):
    rng = np.random.default_rng([seed, 1])
    owner = rng.integers(0, ctx.size, n)
    reference = reductions(self_context(), seed, n, None)
    got = reductions(ctx, seed, n, owner)
    bad = [i for i, (a, b) in enumerate(zip(got, reference)) if a != b]
    agree(not bad, f"reductions {bad} differ from the one-rank result")


@settings(max_examples=25, **SETTINGS)
@given(size=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), n=st.integers(0, 80))
def test_reductions_equal_one_rank_bits_on_simulated_ranks(size, seed, n):
    def agree(ok, message=""):
        assert ok, message
    run_ranks(size, check_reductions, agree, seed, n)


@pytest.mark.mpi
@settings(max_examples=20, **SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 80))
def test_reductions_equal_one_rank_bits_on_mpi_ranks(ctx, agree, run_example, seed, n):
    run_example(check_reductions, ctx, agree, seed=seed, n=n)


def test_fixed_point_mean_matches_the_one_rank_rule():
    # the guess game's rule: mean = sum(round(x * 1e6)) / 1e6 / n, summed as int64
    x = np.random.default_rng(0).random(1001) * 100

    def job(ctx):
        part = x[ctx.rank::ctx.size]
        return fixed_point_sum(ctx, part, 1_000_000) / 1_000_000 / global_count(ctx, part.shape[0])

    units = np.round(x * 1_000_000).astype(np.int64)
    one = float(int(units.sum(dtype=np.int64)) / 1_000_000 / x.shape[0])
    assert all(bits(v) == bits(one) for v in run_ranks(3, job))


def test_gather_ordered_rejects_an_id_on_two_ranks():
    def job(ctx):
        return gather_ordered(ctx, np.array([1, 2]), np.zeros(2))

    with pytest.raises(Exception, match="more than one rank"):
        run_ranks(2, job)


# ---------------------------------------------------------------- at scale, against independent oracles
def exact_rational(xs) -> tuple[int, int]:
    """``(num, den)`` with ``num / den`` the exact sum of the finite floats ``xs`` (plain Python ints)."""
    den = 1 << 1074  # every float64 is an integer multiple of 2**-1074
    num = 0
    for x in xs:
        a, b = float(x).as_integer_ratio()
        num += a * (den // b)
    return num, den


def wide_values(seed: int, n: int) -> np.ndarray:
    """Mixed signs and magnitudes (1e-300 .. 1e300, subnormals), exact cancellations, and a block in
    [64, 100) — where a sum of significands in one int64 per exponent overflows after ~1000 values."""
    rng = np.random.default_rng(seed)
    k = n // 4
    in_range = 64.0 + 36.0 * rng.random(k)
    wide = rng.normal(size=k) * 10.0 ** rng.integers(-300, 300, size=k)
    small = rng.normal(size=k) * 5e-324 * rng.integers(1, 1000, size=k)  # subnormals
    pairs = rng.normal(size=n - 3 * k) * 1e200
    x = np.concatenate([in_range, wide, small, pairs, -pairs])[: n]
    return x[rng.permutation(x.shape[0])]


BIG = 100_000


@pytest.mark.parametrize("kind", ["in [64, 100)", "wide"])
def test_exact_sum_and_mean_of_a_hundred_thousand_values(kind):
    rng = np.random.default_rng(7)
    x = 64.0 + 36.0 * rng.random(BIG) if kind != "wide" else wide_values(7, BIG)
    assert x.shape[0] >= BIG
    num, den = exact_rational(x.tolist())
    want_sum, want_mean = math.fsum(x.tolist()), num / (den * x.shape[0])  # Python rounds int / int once
    assert float(num / den) == want_sum
    if kind != "wide":
        assert abs(want_mean - 81.98) < 0.1  # the figure a one-accumulator bug got as 0.72

    def job(ctx):
        part = x[np.random.default_rng([7, ctx.size]).integers(0, ctx.size, x.shape[0]) == ctx.rank]
        return exact_sum(ctx, part), exact_mean(ctx, part)

    for size in (1, 2, 3):
        for s, m in run_ranks(size, job):
            assert bits(s) == bits(want_sum), (size, s, want_sum)
            assert bits(m) == bits(want_mean), (size, m, want_mean)


def oracle_histogram(xs, edges) -> list[int]:
    """numpy's documented rule, by hand: [e_i, e_i+1) bins, the last one closed, outside values dropped."""
    import bisect
    out = [0] * (len(edges) - 1)
    for v in xs:
        if v == edges[-1]:
            out[-1] += 1
        elif edges[0] <= v < edges[-1]:
            out[bisect.bisect_right(edges, v) - 1] += 1
    return out


def scattered(seed: int, n: int):
    """Rows of one world: unique IDs in shuffled order, values that hit bin edges and rounding ties."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(rng.choice(10 * n, size=n, replace=False)).astype(np.int64)
    edges = [-50.0, -7.5, -1.0, 0.0, 0.125, 3.0, 40.0, 41.0]
    x = np.concatenate([rng.choice(edges, n // 4), rng.uniform(-60, 60, n - n // 4)])[rng.permutation(n)]
    labels = rng.integers(0, 13, n)
    labels[: n // 3] = 12  # one heavy group, some groups empty below
    labels[labels == 5] = 4
    ties = rng.integers(-40, 40, n) * 0.125  # value * 4 hits .5 ties, both signs
    big = rng.integers(-10**11, 10**11, n) * 1.0  # units near 2**46: the limbs carry
    vals = np.where(rng.random(n) < 0.5, ties, big)
    weights = rng.integers(-2**40, 2**40, n)
    return ids, x, edges, labels, weights, vals


def reduce_with_oracles(ctx, seed: int, n: int):
    ids, x, edges, labels, weights, vals = scattered(seed, n)
    mine = np.random.default_rng([seed, ctx.size]).integers(0, ctx.size, n) == ctx.rank
    got = {"histogram": histogram(ctx, x[mine], edges).tolist(),
           "bincount": bincount(ctx, labels[mine], 13).tolist(),
           "weighted": bincount(ctx, labels[mine], 13, weights[mine]).tolist(),
           "groups": group_fixed_sum(ctx, labels[mine], vals[mine], 13, 4).tolist()}
    gi, gx = gather_ordered(ctx, ids[mine], np.stack([x[mine], vals[mine]], axis=1))
    got["gather"] = list(zip(gi.tolist(), map(tuple, gx.tolist())))
    names = np.array([f"n{i}·" + "é" * int(i % 3) for i in ids[mine]], dtype=STR)
    gi, gn = gather_ordered(ctx, ids[mine], names)
    got["gather_names"] = list(zip(gi.tolist(), gn.tolist()))
    return got


@pytest.mark.parametrize("size", [1, 2, 3])
def test_counts_sums_and_gathers_equal_plain_python_oracles(size):
    n, seed = 20_000, 5
    ids, x, edges, labels, weights, vals = scattered(seed, n)
    xs, ls = x.tolist(), labels.tolist()
    hist = oracle_histogram(xs, edges)
    assert n // 2 < sum(hist) < n and hist[-1] > 0  # some values fall outside; the closed last edge is hit
    counts, wsum, units = [0] * 13, [0] * 13, [0] * 13
    for g, w, v in zip(ls, weights.tolist(), vals.tolist()):
        counts[g] += 1
        wsum[g] += w
        units[g] += round(v * 4)  # Python's round: half to even, like the documented rule
    assert counts[5] == 0 and counts[12] > n // 3 - 1
    rows = sorted(zip(ids.tolist(), zip(xs, vals.tolist())))
    names = sorted((i, f"n{i}·" + "é" * (i % 3)) for i in ids.tolist())
    want = {"histogram": hist, "bincount": counts, "weighted": wsum, "groups": units,
            "gather": rows, "gather_names": names}
    for r, got in enumerate(run_ranks(size, reduce_with_oracles, seed, n)):
        for key in want:
            assert got[key] == want[key], f"rank {r} of {size}: {key} differs from the oracle"
