"""Interventions by ID list on a world split over ranks: each rank changes the entities it holds."""
import numpy as np

from socius.components.profile import Profile
from socius.ecs import STR, World
from socius.mpi import attach_ranks, distribute, owned_block, run_ranks
from socius.systems import intervene


def job(ctx, n, chosen, ages):
    w = World(seed=1)
    if ctx is not None:
        attach_ranks(w, ctx)
    ids = owned_block(w, n)
    w.spawn(ids.shape[0], {Profile: {"age": (ids * 3).astype(np.int32),
                                     "name": np.array([f"A{i}" for i in ids], dtype=STR)}}, ids=ids)
    distribute(w)
    changed = intervene(w, "Profile.age", ages, ids=chosen)
    assert changed == int(np.isin(chosen, ids).sum())
    intervene(w, "Profile.name", "Zed", ids=chosen[:1])
    return w.state_hash()


def test_intervention_by_ids_gives_the_one_rank_world():
    n = 11
    chosen = np.array([0, 3, 7, 10], dtype=np.int64)
    ages = np.array([90, 91, 92, 93], dtype=np.int32)
    one = job(None, n, chosen, ages)
    assert run_ranks(3, job, n, chosen, ages) == [one] * 3
    assert one != job(None, n, chosen, ages + 1)
