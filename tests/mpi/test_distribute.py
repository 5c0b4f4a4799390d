"""A world split over ranks: routed messages and a world-wide state hash equal to the one-rank run."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from socius.ecs import Component, Message, Resource, Scalar, World, system
from socius.ecs import SnapshotError
from socius.mpi import (attach_ranks, distribute, exact_mean, owned_block, restore_distributed, run_ranks,
                        save_distributed, snapshot_info, world_ranks)


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


# derandomized: the same examples on every run and every rank (conftest.py)
SETTINGS = dict(derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=40, **SETTINGS)
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


def _save_after(ctx, n, seed, k, path):
    w = make(ctx, n, seed)
    w.step(k)
    if ctx is None:
        w.save(path)
    else:
        save_distributed(w, path)
    return w.state_hash()


def _resume(ctx, n, seed, total, path):
    w = make(ctx, n, seed)
    restore_distributed(w, path)
    w.step(total - w.tick)
    return w.state_hash()


@settings(max_examples=25, **SETTINGS)
@given(n=st.integers(4, 40), seed=st.integers(0, 2**31), k=st.integers(1, 3), a=st.sampled_from([1, 2, 3]),
       b=st.sampled_from([1, 2, 4]))
def test_restore_on_a_different_rank_count_continues_identically(tmp_path_factory, n, seed, k, a, b):
    path = tmp_path_factory.mktemp("snap") / ("snapshot.socius" if a == 1 else "snapshot.ranks")
    straight = run(None, n, seed, k + 2)
    if a == 1:
        _save_after(None, n, seed, k, path)
    else:
        run_ranks(a, _save_after, n, seed, k, path)
    resumed = run_ranks(b, _resume, n, seed, k + 2, path) if b > 1 else [_resume(None, n, seed, k + 2, path)]
    assert resumed == [straight] * b


def test_distributed_snapshot_is_replaced_whole(tmp_path):
    path = tmp_path / "snapshot.ranks"
    run_ranks(2, _save_after, 12, 3, 1, path)
    first = snapshot_info(path)
    run_ranks(2, _save_after, 12, 3, 2, path)
    second = snapshot_info(path)
    assert (first["tick"], second["tick"]) == (1, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot.ranks"]  # no temporary or old folders left
    assert len(second["parts"]) == 2
    # inside: the manifest and the one generation it names, nothing else
    assert sorted(p.name for p in path.iterdir()) == sorted({"manifest.json", second["parts"][0].parent.name})


def test_missing_part_is_refused(tmp_path):
    path = tmp_path / "snapshot.ranks"
    run_ranks(2, _save_after, 12, 3, 1, path)
    part = snapshot_info(path)["parts"][1]
    assert part.name == "part-00001-of-00002.socius"
    part.unlink()
    with pytest.raises(SnapshotError, match="missing part files.*part-00001-of-00002"):
        _resume(None, 12, 3, 3, path)
