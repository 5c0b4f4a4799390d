"""VectorIndex over faiss against a brute-force numpy top-k; ties by ID; add/remove; approximate kinds."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from socius.text.vector_index import VectorIndex, brute_force_top_k, normalize_rows


@given(n=st.integers(0, 60), d=st.integers(1, 8), nq=st.integers(0, 10), k=st.integers(0, 70),
       seed=st.integers(0, 2**31))
@settings(max_examples=80, deadline=None)
def test_flat_matches_brute_force_with_ties_by_id(n, d, nq, k, seed):
    rng = np.random.default_rng(seed)
    # small integer vectors: exact float scores and many ties
    vecs = rng.integers(-2, 3, size=(n, d)).astype(np.float32)
    ids = rng.permutation(10 * n + 1)[:n].astype(np.int64)
    queries = rng.integers(-2, 3, size=(nq, d)).astype(np.float32)
    index = VectorIndex.build(ids, vecs, normalize=False)
    got_ids, got_s = index.search(queries, k)
    ref_ids, ref_s = brute_force_top_k(ids, vecs, queries, k)
    assert got_ids.shape == (nq, k) and got_ids.dtype == np.int64 and got_s.dtype == np.float32
    assert np.array_equal(got_ids, ref_ids)
    assert np.array_equal(got_s, ref_s)


@given(seed=st.integers(0, 2**31), k=st.integers(1, 20))
@settings(max_examples=30, deadline=None)
def test_insertion_order_and_removal_do_not_change_results(seed, k):
    rng = np.random.default_rng(seed)
    n, d = 50, 4
    vecs = rng.integers(-1, 2, size=(n, d)).astype(np.float32)
    ids = np.arange(n, dtype=np.int64) * 3
    q = rng.integers(-1, 2, size=(5, d)).astype(np.float32)
    perm = rng.permutation(n)
    a = VectorIndex.build(ids, vecs, normalize=False)
    b = VectorIndex(d, normalize=False)
    for part in np.array_split(perm, 3):
        b.add(ids[part], vecs[part])
    assert np.array_equal(a.search(q, k)[0], b.search(q, k)[0])
    gone = ids[perm[:10]]
    b.remove(gone)
    keep = ~np.isin(ids, gone)
    assert len(b) == n - 10 and gone[0] not in b and ids[keep][0] in b
    ref = brute_force_top_k(ids[keep], vecs[keep], q, k)
    assert np.array_equal(b.search(q, k)[0], ref[0])


def test_normalised_scores_are_cosines():
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(100, 16))
    index = VectorIndex.build(np.arange(100), vecs)
    ids, s = index.search(vecs[:3] * 5.0, 1)
    assert np.array_equal(ids[:, 0], [0, 1, 2])
    assert np.allclose(s[:, 0], 1.0, atol=1e-5)
    assert np.allclose(index.vectors([7]), normalize_rows(vecs[7:8]), atol=1e-6)


def test_bad_input_is_named():
    index = VectorIndex.build([1, 2], np.eye(2))
    with pytest.raises(ValueError, match="already present"):
        index.add([2], np.ones((1, 2)))
    with pytest.raises(ValueError, match="duplicate"):
        index.add([5, 5], np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        index.search(np.ones((1, 3)), 1)
    with pytest.raises(KeyError, match="not in the index"):
        index.remove([9])
    with pytest.raises(ValueError, match="NaN"):
        index.add([3], np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="unknown kind"):
        VectorIndex(4, kind="lsh")
    with pytest.raises(ValueError, match="nlist"):
        VectorIndex.build(np.arange(10), np.ones((10, 4)), kind="ivf", nlist=64)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_kinds_find_most_true_neighbours(kind):
    rng = np.random.default_rng(7)
    n, d, k = 4000, 32, 10
    vecs = rng.normal(size=(n, d)).astype(np.float32)
    ids = np.arange(n, dtype=np.int64) + 100
    q = rng.normal(size=(50, d)).astype(np.float32)
    index = VectorIndex.build(ids, vecs, kind=kind, nlist=32, nprobe=16)
    got, _ = index.search(q, k)
    ref, _ = brute_force_top_k(ids, normalize_rows(vecs), normalize_rows(q), k)
    recall = np.mean([len(set(g) & set(r)) / k for g, r in zip(got, ref)])
    assert recall > 0.8, recall
    index.remove(ids[:100])
    got2, _ = index.search(q, k)
    assert len(index) == n - 100 and not np.isin(got2, ids[:100]).any()
    assert np.allclose(index.vectors(ids[[300, 200]]), normalize_rows(vecs[[300, 200]]), atol=1e-6)
