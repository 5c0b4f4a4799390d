"""Halo exchange: ghost rows equal the owner's rows after every exchange.

The same property runs on simulated ranks (threads, plain pytest) and on
real MPI ranks (``-m mpi`` under mpiexec). Every rank builds the same global
graph, partition and per-tick values from the example's seed, then checks
its ghosts against that global truth.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socius.ecs import Component, Ragged, RaggedArray, Scalar, String, Vector
from socius.mpi import (Halo, Partition, block_partition, build_halo_plan, community_partition, group_partition,
                        public_columns, run_ranks, self_context)

STR = np.dtypes.StringDType()
SETTINGS = dict(derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Opinion(Component):
    value = Scalar(np.float64)
    stance = Vector(np.int32, 2)
    active = Scalar(np.bool_)
    label = String()


def make_partition(kind: str, ids, src, dst, size: int, rng) -> Partition:
    if kind == "block":
        return block_partition(ids, size)
    if kind == "group":
        return group_partition(ids, rng.integers(0, 5, ids.shape[0]), size)
    if kind == "community":
        return community_partition(ids, src, dst, size)
    return Partition.from_owner(ids, rng.integers(0, size, ids.shape[0]), size)


def world_data(seed: int, n: int, m: int):
    """Global IDs (sparse, sorted) and a random directed edge list, the same on every rank."""
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(10 * n + 50, size=n, replace=False)).astype(np.int64)
    src = rng.choice(ids, m) if n else np.zeros(0, np.int64)
    dst = rng.choice(ids, m) if n else np.zeros(0, np.int64)
    return rng, ids, src, dst


def columns_at(tick: int, ids: np.ndarray, seed: int):
    """Global truth of the public columns at ``tick`` and the rows that changed since the last tick."""
    rng = np.random.default_rng([seed, tick])
    n = ids.shape[0]
    changed = np.ones(n, bool) if tick == 0 else rng.random(n) < 0.3
    return changed, rng


def check_halo(ctx, agree, seed: int, n: int, m: int, kind: str, ticks: int = 4) -> list[int]:
    rng, ids, src, dst = world_data(seed, n, m)
    part = make_partition(kind, ids, src, dst, ctx.size, rng)
    mine = part.owned(ctx.rank)
    rows = np.searchsorted(ids, mine)
    # each owned entity's neighbours: its out-edges, as a ragged follows list
    out = np.isin(src, mine)
    order = np.lexsort((dst[out], src[out]))
    s_own, d_own = src[out][order], dst[out][order]
    lengths = np.bincount(np.searchsorted(mine, s_own), minlength=mine.shape[0])
    follows = RaggedArray.from_lengths(lengths, d_own)
    plan = build_halo_plan(ctx, mine, follows, part)
    expect_ghosts = np.unique(d_own[part.owner_of(d_own) != ctx.rank]) if d_own.shape[0] else np.zeros(0, np.int64)
    agree(np.array_equal(plan.ghost_ids, expect_ghosts), "ghost IDs are not the remote neighbours")
    agree((part.owner_of(plan.ghost_ids) == plan.ghost_owner).all(), "ghost owners disagree with the partition")
    halo = Halo(ctx, plan, public_columns(Opinion))
    value = np.zeros(n)
    stance = np.zeros((n, 2), np.int32)
    active = np.zeros(n, bool)
    label = np.full(n, "", dtype=STR)
    sent = []
    for t in range(ticks):
        changed, r = columns_at(t, ids, seed)
        k = int(changed.sum())
        value[changed] = r.normal(size=k) * 10.0 ** r.integers(-300, 300, size=k)
        stance[changed] = r.integers(-5, 5, size=(k, 2))
        active[changed] = r.random(k) < 0.5
        label[changed] = np.array([f"t{t}-é{i}" * int(i % 3) for i in range(k)], dtype=STR)
        mask = None if t == 2 else (changed[rows] if t % 2 else {"value": changed[rows]})
        sent.append(halo.exchange({"value": value[rows], "stance": stance[rows], "active": active[rows],
                                   "label": label[rows]}, changed=mask))
        g = np.searchsorted(ids, halo.ids)
        ok = (np.array_equal(halo.column("value").view(np.int64), value[g].view(np.int64))
              and np.array_equal(halo.column("stance"), stance[g])
              and np.array_equal(halo.column("active"), active[g])
              and bool((halo.column("label") == label[g]).all()))
        agree(ok, f"tick {t}: ghost rows differ from the owners' rows")
        # gather mixes local rows and ghosts by ID (agree is collective: call it on every rank)
        agree(np.array_equal(halo.gather("stance", d_own, stance[rows]), stance[np.searchsorted(ids, d_own)]),
              f"tick {t}: gather differs")
    return sent


@settings(max_examples=40, **SETTINGS)
@given(size=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60), m=st.integers(0, 240),
       kind=st.sampled_from(["block", "random", "group", "community"]))
def test_ghosts_equal_owner_rows_on_simulated_ranks(size, seed, n, m, kind):
    def agree(ok, message=""):
        assert ok, message
    run_ranks(size, check_halo, agree, seed, n, m, kind)


@pytest.mark.mpi
@settings(max_examples=25, **SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60), m=st.integers(0, 240),
       kind=st.sampled_from(["block", "random", "group", "community"]))
def test_ghosts_equal_owner_rows_on_mpi_ranks(ctx, agree, run_example, seed, n, m, kind):
    run_example(check_halo, ctx, agree, seed=seed, n=n, m=m, kind=kind)


def test_one_rank_has_no_ghosts_and_sends_nothing():
    ctx = self_context()
    ids = np.arange(10, dtype=np.int64)
    part = block_partition(ids, 1)
    plan = build_halo_plan(ctx, ids, RaggedArray.from_lists([[(i + 1) % 10] for i in range(10)], np.int64), part)
    halo = Halo(ctx, plan, {"v": np.float32})
    assert len(halo) == 0 and plan.send_rows.shape == (0,)
    assert halo.exchange({"v": np.zeros(10, np.float32)}) == 0
    assert np.array_equal(halo.gather("v", [3, 4], np.arange(10, dtype=np.float32)), [3.0, 4.0])


def test_changed_rows_only_send_fewer_bytes():
    ids = np.arange(400, dtype=np.int64)
    dst = (ids * 7 + 3) % 400
    part = block_partition(ids, 2)

    def job(ctx):
        mine = part.owned(ctx.rank)
        plan = build_halo_plan(ctx, mine, dst[mine], part)
        halo = Halo(ctx, plan, {"x": Scalar(np.float64)})
        x = np.arange(400, dtype=np.float64)[mine]
        full = halo.exchange({"x": x})
        none = halo.exchange({"x": x}, changed=np.zeros(mine.shape[0], bool))
        some = np.zeros(mine.shape[0], bool)
        some[::10] = True
        part_bytes = halo.exchange({"x": x}, changed=some)
        return full, none, part_bytes, halo.last_rows, plan.send_counts.sum()

    for full, none, some, rows, planned in run_ranks(2, job):
        assert none == 8  # only the counts header
        assert none < some < full
        assert rows < planned


def test_plan_rejects_ids_the_partition_gives_elsewhere():
    ids = np.arange(6, dtype=np.int64)
    part = block_partition(ids, 2)

    def job(ctx):
        build_halo_plan(ctx, ids, ids, part)  # every rank claims every ID

    with pytest.raises(Exception, match="partition gives to rank"):
        run_ranks(2, job)


def test_exchange_checks_columns():
    ctx = self_context()
    ids = np.arange(4, dtype=np.int64)
    plan = build_halo_plan(ctx, ids, ids, block_partition(ids, 1))
    halo = Halo(ctx, plan, {"x": np.float64})
    with pytest.raises(KeyError, match="missing public column 'x'"):
        halo.exchange({})
    with pytest.raises(ValueError, match="has 3 rows"):
        halo.exchange({"x": np.zeros(3)})
    halo.exchange({"x": np.zeros(4)})
    with pytest.raises(ValueError, match="bool mask"):
        halo.exchange({"x": np.zeros(4)}, changed=np.zeros(4, np.int8))
    with pytest.raises(KeyError):
        halo.column("nope")


def test_ragged_public_column_round_trips():
    ids = np.arange(30, dtype=np.int64)
    part = Partition.from_owner(ids, ids % 3, 3)
    lists = [list(range(i % 4)) for i in range(30)]
    follows = RaggedArray.from_lists(lists, np.int64)

    def job(ctx):
        mine = part.owned(ctx.rank)
        plan = build_halo_plan(ctx, mine, (mine + 1) % 30, part)
        halo = Halo(ctx, plan, {"f": Ragged(np.int64)})
        halo.exchange({"f": follows.take(mine)})
        return halo.ids, halo.column("f")

    for gids, col in run_ranks(3, job):
        assert col.equals(follows.take(gids))
