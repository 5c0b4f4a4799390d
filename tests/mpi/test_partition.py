"""Partitioners: balance, groups kept whole, low cut on community graphs, cut-fraction arithmetic."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.mpi import Partition, block_partition, community_partition, cut_fraction, group_partition
from socius.mpi.partition import graph_csr


def planted(n: int, k: int, deg_in: int, deg_out: int, seed: int):
    """A planted-partition graph (k communities) over shuffled, sparse IDs; returns (ids, src, dst, community)."""
    rng = np.random.default_rng(seed)
    comm = rng.integers(0, k, n)
    order = np.argsort(comm, kind="stable")
    starts = np.searchsorted(comm[order], np.arange(k))
    ends = np.searchsorted(comm[order], np.arange(k), side="right")
    m_in, m_out = n * deg_in // 2, n * deg_out // 2
    a = rng.integers(0, n, m_in)
    c = comm[a]
    b = order[starts[c] + (rng.random(m_in) * (ends[c] - starts[c])).astype(np.int64)]
    a2, b2 = rng.integers(0, n, m_out), rng.integers(0, n, m_out)
    ids = rng.permutation(n).astype(np.int64) * 3 + 11
    return ids, ids[np.r_[a, a2]], ids[np.r_[b, b2]], comm


@settings(deadline=None)
@given(n=st.integers(0, 200), size=st.integers(1, 9))
def test_block_partition_is_contiguous_and_balanced(n, size):
    ids = np.random.default_rng(n).permutation(np.arange(n, dtype=np.int64) * 5)
    p = block_partition(ids, size)
    assert np.array_equal(p.ids, np.sort(ids))
    assert (np.diff(p.owner) >= 0).all()  # runs of sorted IDs
    c = p.counts()
    assert c.sum() == n and c.max() - c.min() <= 1


@settings(deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=60), size=st.integers(1, 6), seed=st.integers(0, 99))
def test_group_partition_keeps_groups_whole_and_balances(sizes, size, seed):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(sizes)) * 7 - 3, sizes))
    ids = rng.permutation(labels.shape[0]).astype(np.int64) + 100
    p = group_partition(ids, labels, size)
    owner = p.owner_of(ids)
    for g in np.unique(labels):  # every group on exactly one rank
        assert np.unique(owner[labels == g]).shape[0] == 1
    # balance: no rank exceeds the mean by more than the largest group
    c = p.counts()
    assert c.max() <= labels.shape[0] / size + max(sizes)


def test_group_partition_many_small_groups_is_nearly_exact():
    groups = np.repeat(np.arange(10_000), 10)
    p = group_partition(np.arange(groups.shape[0]), groups, 4)
    c = p.counts()
    assert c.max() - c.min() <= 10  # within one group
    assert np.unique(p.owner_of(np.arange(0, 100_000, 10)) == p.owner_of(np.arange(9, 100_000, 10))).tolist() == [True]


@pytest.mark.parametrize("size", [2, 4, 8])
def test_community_partition_cuts_far_fewer_edges_than_blocks(size):
    ids, src, dst, _ = planted(20_000, 200, 8, 2, seed=1)
    block = block_partition(ids, size).cut_fraction(src, dst)
    comm = community_partition(ids, src, dst, size)
    cut = comm.cut_fraction(src, dst)
    # 20% of edges are random: the best possible cut is about 0.2 * (1 - 1/size)
    assert cut < 0.2 * (1 - 1 / size) * 1.35
    assert cut < block / 3
    assert comm.imbalance() <= 1.031 and comm.counts().sum() == ids.shape[0]


def test_community_partition_is_deterministic_and_covers_odd_graphs():
    ids, src, dst, _ = planted(3000, 30, 6, 1, seed=2)
    a = community_partition(ids, src, dst, 3)
    b = community_partition(ids[::-1], src, dst, 3)
    assert np.array_equal(a.owner, b.owner)
    # no edges, isolated vertices, more ranks than entities
    iso = community_partition(np.arange(10), [], [], 4)
    assert iso.counts().sum() == 10 and iso.imbalance() <= 1.2
    tiny = community_partition(np.arange(3), [0, 1], [1, 2], 5)
    assert tiny.counts().sum() == 3 and tiny.counts().max() == 1
    assert community_partition(np.arange(0), [], [], 2).counts().tolist() == [0, 0]


def test_community_partition_with_metis_when_installed():
    pytest.importorskip("pymetis")
    ids, src, dst, _ = planted(5000, 50, 8, 2, seed=3)
    p = community_partition(ids, src, dst, 4, method="metis")
    assert p.cut_fraction(src, dst) < 0.25 and p.imbalance() < 1.1


def test_community_partition_rejects_unknown_method_and_ids():
    with pytest.raises(ValueError, match="method"):
        community_partition(np.arange(4), [0], [1], 2, method="spectral")
    with pytest.raises(KeyError, match="99"):
        community_partition(np.arange(4), [0], [99], 2)


@given(n=st.integers(1, 40), m=st.integers(0, 100), size=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_cut_fraction_counts_crossing_edges(n, m, size, seed):
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64) * 2
    owner = rng.integers(0, size, n)
    p = Partition.from_owner(ids, owner, size)
    s, d = rng.choice(ids, m), rng.choice(ids, m)
    manual = sum(owner[a // 2] != owner[b // 2] for a, b in zip(s, d)) / m if m else 0.0
    assert p.cut_fraction(s, d) == pytest.approx(manual)
    assert cut_fraction(owner, s, d, ids=ids) == pytest.approx(manual)
    assert cut_fraction(Partition(ids, np.zeros(n, np.int32), 1), s, d) == 0.0


def test_partition_lookups_and_errors():
    p = Partition.from_owner([30, 10, 20], [1, 0, 1], 2)
    assert p.ids.tolist() == [10, 20, 30] and p.owned(1).tolist() == [20, 30]
    assert p.owner_of([30, 10]).tolist() == [1, 0]
    with pytest.raises(KeyError, match="15"):
        p.owner_of([15])
    with pytest.raises(ValueError, match="sorted and unique"):
        Partition(np.array([2, 1]), np.array([0, 0]), 1)
    with pytest.raises(ValueError, match="owners"):
        Partition(np.array([1, 2]), np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="read-only"):
        p.owner[0] = 1


def test_graph_csr_is_simple_and_undirected():
    indptr, indices = graph_csr(np.array([5, 6, 7]), [5, 6, 5, 7, 7], [6, 5, 5, 5, 7])
    assert indptr.tolist() == [0, 2, 3, 4]
    assert indices.tolist() == [1, 2, 0, 0]
