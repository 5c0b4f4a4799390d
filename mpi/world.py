"""A world's place among the ranks: which rank it is, which entities it owns.

Scenario code never branches on "am I distributed?". It asks the world::

    from socius.mpi import world_ranks, owned_block

    ranks = world_ranks(world)              # RankContext; one rank when nothing was attached
    ids = owned_block(world, n_agents)      # the global IDs 0..n-1 this rank holds
    world.spawn(ids.shape[0], {...}, ids=ids)
    mean = exact_mean(ranks, guesses)       # same bits on 1, 2 or 4 ranks

The runner attaches a :class:`Ranks` resource (the rank context and, once
built, the partition) before the scenario's ``build`` runs. ``Ranks`` is a
plain resource: never saved in a snapshot, never part of the state hash — a
world is the same world whichever rank count holds it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .context import RankContext, self_context
from .partition import Partition, block_partition

__all__ = ["Ranks", "attach_ranks", "world_ranks", "world_partition", "owned_block"]


@dataclass
class Ranks:
    """The rank context a world runs under, and the partition of its entities (``None`` until set)."""

    ctx: RankContext
    partition: Partition | None = None


def attach_ranks(world, ctx: RankContext, partition: Partition | None = None) -> Ranks:
    """Attach ``ctx`` (and optionally ``partition``) to ``world``; returns the resource."""
    r = Ranks(ctx, partition)
    world.insert_resource(r)
    return r


def world_ranks(world) -> RankContext:
    """The world's rank context: the attached one, else a one-rank context without MPI."""
    r = world.get_resource(Ranks)
    if r is None:
        r = attach_ranks(world, self_context())
    return r.ctx


def world_partition(world) -> Partition | None:
    """The partition attached to ``world`` (``None`` on a world that never set one)."""
    r = world.get_resource(Ranks)
    return None if r is None else r.partition


def owned_block(world, n: int, first: int = 0) -> np.ndarray:
    """``[m] int64``: the IDs in ``first .. first+n-1`` this rank owns under a contiguous-block partition.

    Records the partition on the world (so routing and snapshots know who owns
    what) unless one is already attached. On one rank: all ``n`` IDs.
    """
    if n < 0:
        raise ValueError(f"owned_block: n must be >= 0, got {n}")
    ctx = world_ranks(world)
    r = world.resource(Ranks)
    ids = np.arange(first, first + n, dtype=np.int64)
    if r.partition is None:
        r.partition = block_partition(ids, ctx.size)
        return r.partition.owned(ctx.rank)
    mine = r.partition.owner_of(ids) == ctx.rank
    return ids[mine]
