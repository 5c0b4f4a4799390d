import numpy as np

from socius.ecs import World
from socius.mpi import Ranks, attach_ranks, owned_block, run_ranks, world_partition, world_ranks


def test_world_without_ranks_is_one_rank():
    w = World(seed=1)
    ctx = world_ranks(w)
    assert (ctx.rank, ctx.size) == (0, 1)
    assert np.array_equal(owned_block(w, 10), np.arange(10))
    assert world_partition(w).size == 1
    assert w.state_hash() == World(seed=1).state_hash()  # Ranks is not part of the state


def test_owned_block_splits_ids_over_ranks():
    def job(ctx):
        w = World(seed=1)
        attach_ranks(w, ctx)
        mine = owned_block(w, 10)
        assert w.resource(Ranks).partition.size == ctx.size
        return mine.tolist()

    parts = run_ranks(3, job)
    assert sorted(sum(parts, [])) == list(range(10))
    assert all(len(p) in (3, 4) for p in parts)
    assert parts[0][0] == 0 and parts[2][-1] == 9
