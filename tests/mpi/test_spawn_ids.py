"""A rank's world holds its partition's entities under their global IDs (``World.spawn(..., ids=)``)."""
from __future__ import annotations

import numpy as np
import pytest

from socius.ecs import Component, Scalar, World
from socius.mpi import community_partition


class Wealth(Component):
    value = Scalar(np.int64)


def test_rank_worlds_hold_the_global_rows_under_global_ids():
    rng = np.random.default_rng(0)
    n = 500
    whole = World(seed=1)
    ids = whole.spawn(n, {Wealth: {"value": rng.integers(0, 100, n)}})
    src, dst = rng.choice(ids, 2000), rng.choice(ids, 2000)
    part = community_partition(ids, src, dst, 3)
    rows = []
    for r in range(3):
        mine = rng.permutation(part.owned(r))  # any order: values follow their IDs
        w = World(seed=1)
        got = w.spawn(mine.shape[0], {Wealth: {"value": whole.get(Wealth, "value", mine)}}, ids=mine)
        assert np.array_equal(got, mine)
        assert np.array_equal(w.entities, np.sort(mine))
        assert np.array_equal(w.get(Wealth, "value"), whole.get(Wealth, "value", np.sort(mine)))
        assert w.next_id == int(mine.max()) + 1
        rows.append(w.get(Wealth, "value"))
    assert sum(r.shape[0] for r in rows) == n


def test_spawn_with_ids_checks_them():
    w = World()
    w.spawn(2, ids=[10, 3])
    assert w.entities.tolist() == [3, 10] and w.next_id == 11
    assert w.spawn(1).tolist() == [11]
    for bad, err in (([3], "already exists"), ([5, 5], "unique"), ([-1], ">= 0"), ([1, 2], "2 ids")):
        with pytest.raises(ValueError, match=err):
            w.spawn(1 if err == "2 ids" else len(bad), ids=bad)
    with pytest.raises(TypeError, match="integers"):
        w.spawn(1, ids=[1.5])
    assert w.spawn(0, ids=[]).tolist() == []
