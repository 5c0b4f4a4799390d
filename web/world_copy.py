"""A consistent in-memory copy of a world, taken at a tick boundary for the live dashboard.

The live run (:mod:`socius.web.live`) serves its agents pages from a copy of the world, so no HTTP
thread reads a column while a system writes it. Writing a snapshot and restoring it makes such a copy,
but it hashes the world twice, serialises every column and fsyncs a file: about 0.4 s at 10⁵ agents,
on the simulation's thread. :func:`copy_world` copies the arrays instead — the entity IDs, every
component table's columns (``ndarray.copy``; ragged columns' offsets and values), the inbox and the
snapshot resources (through their ``to_state``/``from_state``) — and installs them into a new world
the way a restore does (:func:`socius.ecs.snapshot._install`, without the hash check): about 12 ms at
10⁵ agents (``python -m socius.bench.dashboard --overhead``). Plain resources (engines, the response
log, ``DecisionStats``) stay behind: a copy is for reading columns, never for running ticks.

The copy's state hash equals the world's (tested), so a page built from it is the page a snapshot
of that boundary would give.
"""
from __future__ import annotations

import copy

from socius.ecs import World
from socius.ecs.message import HEADER, MessageBatch
from socius.ecs.resource import is_snapshot_resource
from socius.ecs.storage import Table

__all__ = ["copy_world"]


def _copy(value):
    return value.copy() if hasattr(value, "copy") else copy.deepcopy(value)


def copy_world(world: World) -> World:
    """A new world holding a copy of ``world``'s state (call it between ticks); see the module docstring."""
    from socius.ecs.snapshot import _install

    tables = {}
    for comp in world.component_types():
        src = world._tables[comp]
        t = Table(comp)
        t.entities = src.entities.copy()
        t.data = {k: _copy(v) for k, v in src.data.items()}
        tables[comp] = t
    inbox = {kind: MessageBatch(kind, {h: getattr(mb, h).copy() for h in HEADER},
                                {k: _copy(v) for k, v in mb.payload.items()})
             for kind, mb in world.messages.inbox.items()}
    resources = {kind: type(obj).from_state(copy.deepcopy(obj.to_state()))
                 for kind, obj in world.resources().items() if is_snapshot_resource(obj)}
    out = World(seed=world.seed)
    _install(out, world.seed, int(world.tick), int(world.next_id), world.entities.copy(), tables, inbox, resources)
    return out
