"""A world's place among the ranks: which rank it is, which entities it owns.

Scenario code never branches on "am I distributed?". It asks the world::

    from socius.mpi import world_ranks, owned_block

    ranks = world_ranks(world)              # RankContext; one rank when nothing was attached
    ids = owned_block(world, n_agents)      # the global IDs 0..n-1 this rank holds
    world.spawn(ids.shape[0], {...}, ids=ids)
    mean = exact_mean(ranks, guesses)       # same bits on 1, 2 or 4 ranks

The runner attaches a :class:`Ranks` resource (the rank context and, once
built, the partition) before the scenario's ``build`` runs, and calls
:func:`distribute` after it: from then on every tick's messages are routed
to the owners of their targets right after the flip (so systems read the
inbox a one-rank run would have), and ``world.state_hash()`` is the hash of
the whole world on every rank (collective). ``Ranks`` is a plain resource:
never saved in a snapshot, never part of the state hash — a world is the
same world whichever rank count holds it.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from socius.ecs import digest, world_of

from .context import RankContext, self_context
from .partition import Partition, block_partition
from .routing import Router

__all__ = ["Ranks", "attach_ranks", "world_ranks", "world_partition", "owned_block", "distribute",
           "global_parts", "owned_partition"]


@dataclass
class Ranks:
    """The rank context a world runs under, and the partition of its entities (``None`` until set)."""

    ctx: RankContext
    partition: Partition | None = None
    router: Router | None = None
    route_s: float = 0.0           # seconds spent routing messages (all ticks)
    route_bytes: int = 0           # bytes this rank sent while routing (all ticks)
    reduce_s: float = 0.0          # seconds in world-wide state hashes
    extra: dict = field(default_factory=dict)


def attach_ranks(world, ctx: RankContext, partition: Partition | None = None) -> Ranks:
    """Attach ``ctx`` (and optionally ``partition``) to ``world``; returns the resource."""
    r = Ranks(ctx, partition)
    world.insert_resource(r)
    return r


def world_ranks(ctx) -> RankContext:
    """The rank context of a world (or of a running system's context): the attached one, else one rank without MPI.

    Ranks is the kernel-level fact of where the world lives, like its tick, so
    a system needs no declaration to ask for it.
    """
    world = world_of(ctx)
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


def owned_partition(world) -> Partition:
    """Collective: the partition that says each rank owns exactly the entities it holds now."""
    ctx = world_ranks(world)
    mine = np.ascontiguousarray(world.entities, dtype=np.int64)
    counts = ctx.allgather(np.array([mine.shape[0]], dtype=np.int64)).reshape(-1)
    ids, _ = ctx.allgatherv(mine.view(np.uint8))
    ids = ids.view(np.int64)
    owner = np.repeat(np.arange(ctx.size, dtype=np.int32), counts)
    return Partition.from_owner(ids, owner, ctx.size)


def _message_filter(ctx: RankContext, part: Partition):
    """Count each inbox message on one rank: a targeted one at its target's owner, a broadcast at its sender's."""
    def keep(kind, mb):
        t, s = np.asarray(mb.target), np.asarray(mb.sender)
        out = np.zeros(t.shape[0], bool)
        p2p = t >= 0
        if p2p.any():
            out[p2p] = part.owner_of(t[p2p]) == ctx.rank
        if (~p2p).any():
            out[~p2p] = part.owner_of(s[~p2p]) == ctx.rank
        return out
    return keep


def global_parts(world) -> dict:
    """Collective: the state-hash parts (:mod:`socius.ecs.digest`) of the whole world, on every rank."""
    r = world.resource(Ranks)
    t0 = time.perf_counter()
    ctx, part = r.ctx, r.partition
    local = digest.parts(world, None if part is None or ctx.size == 1 else _message_filter(ctx, part))
    if ctx.size == 1:
        return local
    blob = np.frombuffer(json.dumps(local, sort_keys=True).encode(), dtype=np.uint8)
    data, counts = ctx.allgatherv(blob)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    every = [json.loads(data[bounds[i]:bounds[i + 1]].tobytes()) for i in range(ctx.size)]
    merged = digest.merge(every)
    r.reduce_s += time.perf_counter() - t0
    return merged


def distribute(world, partition: Partition | None = None) -> Ranks:
    """Collective, after the scenario's ``build``: route messages each tick and hash the whole world.

    ``partition``: who owns which entity (default: the one ``build`` recorded,
    e.g. through :func:`owned_block`, else each rank owns what it holds).
    Message types to route are the ``sends=`` of the world's systems.
    """
    r = world.get_resource(Ranks) or attach_ranks(world, self_context())
    if partition is not None:
        r.partition = partition
    if r.partition is None:
        r.partition = owned_partition(world)
    ctx = r.ctx
    if r.partition.size != ctx.size:
        raise ValueError(f"distribute: the partition is for {r.partition.size} ranks, the job has {ctx.size}")
    if ctx.size == 1:
        return r
    kinds = sorted({k for s in world.schedule.systems() for k in s.sends}, key=lambda k: k.__component_name__)
    r.router = Router(ctx, r.partition)

    def route(w) -> None:
        t0 = time.perf_counter()
        r.route_bytes += r.router.route_types(w.messages, kinds)
        r.route_s += time.perf_counter() - t0

    if kinds:
        world.schedule.flip_hooks.append(route)
    world.state_reducer = global_parts
    return r
