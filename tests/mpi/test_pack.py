"""Column-wise packing per destination: what is packed unpacks unchanged, in destination order."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.ecs import Ragged, RaggedArray, Scalar, String, Vector
from socius.mpi.pack import Aligned, Fixed, pack, unpack

STR = np.dtypes.StringDType()


def sample(n: int, rng):
    ints = rng.integers(-100, 100, n).astype(np.int64)
    vec = rng.normal(size=(n, 3)).astype(np.float32)
    flags = rng.random(n) < 0.5
    text = np.array(["" if i % 4 == 0 else f"{i}:" + "ß" * int(i % 6) for i in range(n)], dtype=STR)
    rag = RaggedArray.from_lists([list(range(i % 5)) for i in range(n)], np.int32)
    specs = [Scalar(np.int64), Vector(np.float32, 3), Fixed(np.bool_), String(), Ragged(np.int32)]
    return specs, [ints, vec, flags, text, rag]


@settings(deadline=None)
@given(n=st.integers(0, 50), size=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_unpack_returns_the_packed_rows_in_destination_order(n, size, seed):
    rng = np.random.default_rng(seed)
    specs, cols = sample(n, rng)
    m = int(rng.integers(0, 2 * n + 1)) if n else 0
    rows = rng.integers(0, max(n, 1), m) if n else np.zeros(0, np.int64)
    dest = np.sort(rng.integers(0, size, m))
    counts = np.bincount(dest, minlength=size).astype(np.int64)
    buf, nbytes = pack(specs, cols, rows, counts)
    assert buf.shape[0] == nbytes.sum() and (nbytes % 8 == 0).all()
    assert ((nbytes == 0) == (counts == 0)).all()
    got, per = unpack(specs, buf, nbytes)
    assert per.tolist() == counts.tolist()
    assert np.array_equal(got[0], cols[0][rows]) and np.array_equal(got[1], cols[1][rows])
    assert np.array_equal(got[2], cols[2][rows]) and (got[3] == cols[3][rows]).all()
    assert got[4].equals(cols[4].take(rows))


def test_aligned_columns_travel_with_the_rows():
    buf, nb = pack([Fixed(np.int32), Fixed(np.float64)], [Aligned(np.array([7, 8, 9], np.int32)),
                                                        np.array([0.5, 1.5, 2.5])],
                   np.array([2, 0, 1]), np.array([1, 2]))
    (slots, vals), per = unpack([Fixed(np.int32), Fixed(np.float64)], buf, nb)
    assert slots.tolist() == [7, 8, 9] and vals.tolist() == [2.5, 0.5, 1.5] and per.tolist() == [1, 2]


def test_pack_checks_dtypes_and_headers():
    with pytest.raises(TypeError, match="spec says"):
        pack([Fixed(np.int64)], [np.zeros(3, np.int32)], np.arange(3), np.array([3]))
    buf, nb = pack([Fixed(np.int64)], [np.arange(3)], np.arange(3), np.array([3]))
    with pytest.raises(ValueError, match="header describes"):
        unpack([Fixed(np.int64), Fixed(np.int64)], buf, nb)
    with pytest.raises(TypeError):
        Fixed(STR)
