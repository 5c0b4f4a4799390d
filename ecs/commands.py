"""Deferred structural changes: spawn, despawn, add and remove components.

Inside a tick, systems never change which entities exist or which
components they have directly; they queue commands::

    ids = ctx.commands.spawn(10, {Wealth: {"value": 1}})   # IDs reserved now
    ctx.commands.despawn(dead_ids)
    ctx.commands.add(ids, Employed, since=ctx.tick)
    ctx.commands.remove(ids, Seeking)

The world applies the queue at the end of the current phase (a sync point),
in the order the commands were issued. Until then queries do not see the
changes. Values are validated when queued, so an error points at the system
that queued it. Spawned IDs come from the world's allocator at queue time:
with systems running in a fixed order, the IDs are deterministic, and later
commands in the same queue may name them (as ``add`` does above).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .component import Component

if TYPE_CHECKING:
    from .world import World


class Commands:
    """A queue of structural changes applied at the next sync point."""

    def __init__(self, world: "World"):
        self._world = world
        self._ops: list[tuple] = []

    def __len__(self) -> int:
        return len(self._ops)

    def spawn(self, n: int, components: dict[type[Component], dict[str, Any]] | None = None) -> np.ndarray:
        """Reserve ``n`` new IDs now; the entities appear at the sync point."""
        n = int(n)
        if n < 0:
            raise ValueError(f"spawn: n must be >= 0, got {n}")
        values = self._world._coerce_components(components or {}, n)
        ids = self._world._allocator.allocate(n)
        self._ops.append(("spawn", ids, values))
        return ids.copy()

    def _pending(self) -> np.ndarray:
        """IDs spawned by commands still in the queue (sorted: the allocator counts up)."""
        spawned = [ids for op, ids, _ in self._ops if op == "spawn"]
        return np.concatenate(spawned) if spawned else np.zeros(0, dtype=np.int64)

    def despawn(self, ids) -> None:
        self._ops.append(("despawn", self._world._live_ids(ids, "despawn", self._pending()), None))

    def add(self, ids, component: type[Component], /, **columns: Any) -> None:
        ids = self._world._live_ids(ids, "add", self._pending())
        values = self._world._coerce_components({component: columns}, ids.shape[0])
        self._ops.append(("add", ids, values))

    def remove(self, ids, component: type[Component]) -> None:
        self._world._table(component)
        self._ops.append(("remove", self._world._live_ids(ids, "remove", self._pending()), component))

    def apply(self) -> int:
        """Apply and clear the queue; returns the number of commands applied."""
        ops, self._ops = self._ops, []
        w = self._world
        for op, ids, arg in ops:
            if op == "spawn":
                w._insert_entities(ids, arg)
            elif op == "despawn":
                w._remove_entities(ids)
            elif op == "add":
                w._add_components(ids, arg, allow_dead=True)
            else:
                w._table(arg).remove(ids)
        return len(ops)
