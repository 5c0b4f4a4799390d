"""A world split over ranks: routed messages and a world-wide state hash equal to the one-rank run."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from socius.ecs import Component, Message, Resource, Scalar, World, system
from socius.mpi import attach_ranks, distribute, owned_block, run_ranks, world_ranks, exact_mean


class Coin(Component):
    value = Scalar(np.int64)
    seen = Scalar(np.int64)


class Gift(Message):
    amount = Scalar(np.int64)


class Shout(Message):
    level = Scalar(np.float64)


class Params:
    def __init__(self, n):
        self.n = n


class Pot(Resource):
    mean: float = 0.0


@system(reads=(Coin,), sends=(Gift, Shout), resources=(Params,))
def give(ctx):
    v = ctx.query(Coin)
    n = ctx.resource(Params).n
    tgt = ctx.rng("target").integers(v.ids, 0, n)
    ctx.send(Gift, sender=v.ids, target=tgt, amount=v[Coin].value % 7 + 1)
    loud = v.ids[v.ids % 5 == ctx.tick % 5]
    ctx.send(Shout, sender=loud, level=loud * 0.5)


@system(writes=(Coin,), receives=(Gift, Shout), resources=(Pot,))
def receive(ctx):
    g = ctx.read(Gift)
    s = ctx.read(Shout)
    v = ctx.query(Coin)
    with v.write(Coin) as c:
        if len(g):
            pos = np.searchsorted(v.ids, g.target)
            np.add.at(c.value, pos, g.payload["amount"])
        c.seen += len(s)
    ctx.resource(Pot).mean = exact_mean(world_ranks(ctx.world), v[Coin].value.astype(np.float64))


def make(ctx, n, seed):
    w = World(seed=seed)
    if ctx is not None:
        attach_ranks(w, ctx)
    ids = owned_block(w, n)
    w.spawn(ids.shape[0], {Coin: {"value": ids * 3, "seen": 0}}, ids=ids)
    w.insert_resource(Params(n))
    w.insert_resource(Pot())
    w.add_systems(give, receive)
    distribute(w)
    return w


def run(ctx, n, seed, ticks):
    w = make(ctx, n, seed)
    w.step(ticks)
    return w.state_hash()


@settings(max_examples=8, deadline=None)
@given(n=st.integers(3, 60), seed=st.integers(0, 2**31), ticks=st.integers(1, 4), size=st.sampled_from([2, 3, 4]))
def test_state_hash_independent_of_rank_count(n, seed, ticks, size):
    one = run(None, n, seed, ticks)
    many = run_ranks(size, run, n, seed, ticks)
    assert all(h == one for h in many), (one, many)


def test_different_seed_changes_the_world_wide_hash():
    a = run_ranks(2, run, 20, 1, 3)
    b = run_ranks(2, run, 20, 2, 3)
    assert a[0] == a[1] and b[0] == b[1] and a[0] != b[0]


def test_a_rank_local_resource_is_refused():
    def job(ctx):
        w = make(ctx, 10, 0)
        w.resource(Pot).mean = float(ctx.rank)  # a world-wide value that is not
        return w.state_hash()

    with pytest.raises(Exception, match="differs between rank"):
        run_ranks(2, job)
