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
