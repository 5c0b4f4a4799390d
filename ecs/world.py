"""The world: entities, component tables, resources, messages, schedule, tick.

A ``World`` is an ordinary object — make as many as you like; nothing lives
in module globals. Set-up code changes it directly::

    world = World(seed=7)
    ids = world.spawn(100_000, {Wealth: {"value": 1}, Position: {"x": xs, "y": ys}})
    world.insert_resource(Params(width=317))
    world.add_systems(move_agents, give_money)
    world.step(10)
    print(world.state_hash())

During a tick, structural changes go through ``world.commands`` (see
:mod:`.commands`); calling ``spawn``/``despawn``/``add_component``/
``remove_component`` directly from a system raises
:class:`StructuralChangeError`. Writing column values (``world.set``) is
allowed at any time — that is how interventions work between ticks.

The one import cycle of the code base is here, on purpose. ``World`` is the
façade over the kernel's parts: it imports the query, system, command,
snapshot and digest modules to drive them, and those modules need the
``World`` type back — for type annotations only (``if TYPE_CHECKING``) in
query, system, commands and digest, and at call time in snapshot
(``restore`` builds a world). Splitting World's surface across those modules
(``save`` in snapshot, ``step`` in system, …) would break the cycle but
scatter the one object a user learns first; no import runs at module load
in both directions, so the cycle never bites at import time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .commands import Commands
from .component import Component, is_component
from .entity import EntityAllocator
from .errors import (DeadEntityError, ResourceError, SchemaError, StructuralChangeError,
                     UnknownComponentError)
from .message import MessageBus
from .query import Query, QueryView
from .resource import resource_name
from .rng import EntityRng, world_generator
from .storage import Table, find_rows
from .system import Schedule, System


class World:
    """All state of one simulation (or of one MPI rank's partition of it)."""

    def __init__(self, seed: int = 0, schedule: Schedule | None = None):
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"World: seed must be an int, got {seed!r}")
        self.seed = int(seed)
        self.tick = 0
        self.schedule = schedule if schedule is not None else Schedule()
        self.messages = MessageBus()
        self.commands = Commands(self)
        self._allocator = EntityAllocator()
        self._alive = np.zeros(0, dtype=np.int64)
        self._tables: dict[type[Component], Table] = {}
        self._names: dict[str, type[Component]] = {}
        self._resources: dict[type, Any] = {}
        self._in_tick = False
        # parts of the state hash of the whole world when this one holds a share of it (see ecs.digest)
        self.state_reducer: Callable[["World"], dict] | None = None

    # ------------------------------------------------------------------ entities
    @property
    def entities(self) -> np.ndarray:
        """``[n] int64``: live entity IDs, sorted (read-only)."""
        v = self._alive.view()
        v.flags.writeable = False
        return v

    def __len__(self) -> int:
        return self._alive.shape[0]

    @property
    def next_id(self) -> int:
        return self._allocator.next_id

    def is_alive(self, ids) -> np.ndarray:
        return find_rows(self._alive, np.asarray(ids, dtype=np.int64).reshape(-1))[1]

    def _live_ids(self, ids, what: str, pending: np.ndarray | None = None) -> np.ndarray:
        """``ids`` as int64, checked alive (or in ``pending``: sorted IDs queued for spawn) and unique."""
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{what}: entity IDs must be integers, got {ids.dtype}")
        ids = ids.astype(np.int64, copy=False).reshape(-1)
        alive = self.is_alive(ids)
        if pending is not None and pending.shape[0]:
            alive |= find_rows(pending, ids)[1]
        if not alive.all():
            raise DeadEntityError(f"{what}: entity {int(ids[~alive][0])} does not exist (never spawned or despawned)")
        if ids.shape[0] > 1 and np.unique(ids).shape[0] != ids.shape[0]:
            raise ValueError(f"{what}: entity IDs must be unique")
        return ids

    def _structural(self, what: str) -> None:
        if self._in_tick:
            raise StructuralChangeError(f"{what} during a tick: queue it with ctx.commands.{what.split('_')[0]}(...) "
                                        "so it applies at the end of the phase")

    def spawn(self, n: int, components: dict[type[Component], dict[str, Any]] | None = None,
              ids=None) -> np.ndarray:
        """Create ``n`` entities now (set-up time); returns their IDs ``[n] int64``.

        ``ids``: explicit global IDs ``[n]`` (unique, >= 0, not alive) instead of
        the next ``n`` from the allocator — e.g. one MPI rank's share of a
        population; column values are aligned with ``ids`` as given. The
        allocator then continues above the largest ID ever spawned.
        """
        self._structural("spawn")
        n = int(n)
        if n < 0:
            raise ValueError(f"spawn: n must be >= 0, got {n}")
        values = self._coerce_components(components or {}, n)
        if ids is None:
            ids = self._allocator.allocate(n)
            self._insert_entities(ids, values)
            return ids.copy()
        given = np.asarray(ids)
        if given.dtype.kind not in "iu" and given.size:
            raise TypeError(f"spawn: entity IDs must be integers, got {given.dtype}")
        given = given.astype(np.int64).reshape(-1)
        if given.shape[0] != n:
            raise ValueError(f"spawn: {n} entities but {given.shape[0]} ids")
        if n and given.min() < 0:
            raise ValueError(f"spawn: entity IDs must be >= 0, got {int(given.min())}")
        order = np.argsort(given, kind="stable")
        sorted_ids = given[order]
        if n > 1 and (sorted_ids[1:] == sorted_ids[:-1]).any():
            raise ValueError("spawn: entity IDs must be unique")
        if self.is_alive(sorted_ids).any():
            raise ValueError(f"spawn: entity {int(sorted_ids[self.is_alive(sorted_ids)][0])} already exists")
        values = {c: {k: c.column(k).take(v, order) for k, v in vals.items()} for c, vals in values.items()}
        self._insert_entities(sorted_ids, values)
        if n:
            self._allocator.next_id = max(self._allocator.next_id, int(sorted_ids[-1]) + 1)
        return given.copy()

    def despawn(self, ids) -> None:
        self._structural("despawn")
        self._remove_entities(self._live_ids(ids, "despawn"))

    def add_component(self, ids, component: type[Component], /, **columns: Any) -> None:
        """Give ``ids`` the component with column values (defaults for missing columns)."""
        self._structural("add_component")
        ids = self._live_ids(ids, "add_component")
        self._add_components(ids, self._coerce_components({component: columns}, ids.shape[0]))

    def remove_component(self, ids, component: type[Component]) -> None:
        self._structural("remove_component")
        self._table(component).remove(self._live_ids(ids, "remove_component"))

    def has(self, ids, component: type[Component]) -> np.ndarray:
        """``[n] bool``: which of ``ids`` have ``component``."""
        return self._table(component).contains(np.asarray(ids, dtype=np.int64).reshape(-1))

    # internal structural operations (also used by Commands and snapshots)
    def _coerce_components(self, components: dict, n: int) -> dict:
        out = {}
        for comp, vals in components.items():
            self._table(comp)
            if vals is not None and not isinstance(vals, dict):
                raise TypeError(f"{comp.__qualname__}: column values must be a dict {{column: value}}, "
                                f"got {type(vals).__name__}")
            out[comp] = comp.coerce_values(vals, n)
        return out

    def _insert_entities(self, ids: np.ndarray, values: dict) -> None:
        if not ids.shape[0]:  # spawn(0): nothing to insert (ids[0] below would not exist)
            return
        self._alive = np.concatenate([self._alive, ids]) if (not len(self._alive) or ids[0] > self._alive[-1]) \
            else np.union1d(self._alive, ids)
        for comp, vals in values.items():
            self._tables[comp].insert(ids, vals)

    def _remove_entities(self, ids: np.ndarray) -> None:
        rows, present = find_rows(self._alive, ids)
        keep = np.ones(self._alive.shape[0], dtype=bool)
        keep[rows[present]] = False
        self._alive = self._alive[keep]
        for t in self._tables.values():
            t.remove(ids)

    def _add_components(self, ids: np.ndarray, values: dict, allow_dead: bool = False) -> None:
        if allow_dead:  # a queued add whose entity was despawned earlier in the same queue
            live = self.is_alive(ids)
            if not live.all():
                idx = np.flatnonzero(live)
                values = {c: {k: c.column(k).take(v, idx) for k, v in vals.items()} for c, vals in values.items()}
                ids = ids[idx]
        for comp, vals in values.items():
            t = self._tables[comp]
            have = t.contains(ids)
            if have.any():  # replace values of entities that already have it
                idx = np.flatnonzero(have)
                rows = t.rows(ids[idx])
                for k, v in vals.items():
                    t.write(rows, k, comp.column(k).take(v, idx))
                new = np.flatnonzero(~have)
                t.insert(ids[new], {k: comp.column(k).take(v, new) for k, v in vals.items()})
            else:
                t.insert(ids, vals)

    # ------------------------------------------------------------------ components
    def register(self, *components: type[Component]) -> None:
        """Declare component types up front (optional; first use registers too)."""
        for c in components:
            self._table(c)

    def _table(self, component) -> Table:
        t = self._tables.get(component)
        if t is None:
            if not is_component(component):
                raise UnknownComponentError(f"{component!r} is not a Component class")
            name = component.__component_name__
            other = self._names.get(name)
            if other is not None and other is not component:
                raise SchemaError(f"two different component classes share the name {name!r}; "
                                  "set __component_name__ on one of them")
            self._names[name] = component
            t = self._tables[component] = Table(component)
        return t

    def component_types(self) -> list[type[Component]]:
        """Registered component types, sorted by their stable names."""
        return sorted(self._tables, key=lambda c: c.__component_name__)

    def component_by_name(self, name: str) -> type[Component] | None:
        return self._names.get(name)

    def count(self, component: type[Component]) -> int:
        return len(self._table(component))

    def get(self, component: type[Component], name: str, ids=None):
        """A copy of column ``name`` for ``ids`` (all holders of the component if None)."""
        t = self._table(component)
        col = component.column(name)
        if ids is None:
            d = t.data[name]
            return d.copy() if hasattr(d, "copy") else d
        rows = t.rows(np.asarray(ids, dtype=np.int64).reshape(-1))
        return col.take(t.data[name], rows)

    def set(self, component: type[Component], ids, /, **columns: Any) -> None:
        """Write column values for ``ids`` (they must have the component)."""
        t = self._table(component)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        rows = t.rows(ids)
        for name, value in columns.items():
            t.write(rows, name, component.column(name).coerce(value, ids.shape[0]))

    def ids_of(self, component: type[Component]) -> np.ndarray:
        """``[n] int64``: IDs of the entities that have ``component`` (sorted)."""
        return self._table(component).entities.copy()

    def query(self, *components: type[Component], without: Iterable = (),
              where: Callable | None = None) -> QueryView:
        """One-off query (build a :class:`Query` once instead inside hot loops)."""
        return Query(*components, without=without, where=where).fetch(self)

    # ------------------------------------------------------------------ resources
    def insert_resource(self, value: Any) -> None:
        if isinstance(value, type):
            raise TypeError(f"insert_resource: pass an instance, not the class {value.__qualname__}")
        self._resources[type(value)] = value

    def resource(self, kind: type):
        try:
            return self._resources[kind]
        except KeyError:
            raise ResourceError(f"no resource of type {getattr(kind, '__qualname__', kind)} in the world") from None

    def get_resource(self, kind: type):
        return self._resources.get(kind)

    def has_resource(self, kind: type) -> bool:
        return kind in self._resources

    def remove_resource(self, kind: type):
        return self._resources.pop(kind, None)

    def resources(self) -> dict[type, Any]:
        return dict(self._resources)

    def resource_type_by_name(self, name: str) -> type | None:
        for k in self._resources:
            if resource_name(k) == name:
                return k
        return None

    # ------------------------------------------------------------------ systems & ticks
    def add_systems(self, *systems: System | Callable, phase: str | None = None) -> "World":
        self.schedule.add(*systems, phase=phase)
        return self

    def step(self, ticks: int = 1, on_tick: Callable[["World"], None] | None = None) -> None:
        """Run ``ticks`` ticks of the schedule; ``on_tick(world)`` after each (progress, metrics)."""
        if ticks < 0:
            raise ValueError(f"step: ticks must be >= 0, got {ticks}")
        for _ in range(int(ticks)):
            self.schedule.run_tick(self)
            if on_tick is not None:
                on_tick(self)

    def rng(self, stream: str | int, tick: int | None = None) -> EntityRng:
        return EntityRng(self.seed, stream, self.tick if tick is None else tick)

    def generator(self, stream: str | int, tick: int | None = None) -> np.random.Generator:
        return world_generator(self.seed, stream, self.tick if tick is None else tick)

    # ------------------------------------------------------------------ snapshots
    @property
    def is_share(self) -> bool:
        """True when this world holds one rank's share of a world split over MPI ranks."""
        return self.state_reducer is not None

    def state_hash(self) -> str:
        """Hex digest of the whole state; equal across processes and machines for equal worlds.

        For a world split over MPI ranks (``state_reducer`` set by
        :func:`socius.mpi.attach_ranks`) this is collective — every rank calls
        it — and returns the hash of the whole world on every rank.
        """
        if self.state_reducer is None:
            from .snapshot import state_hash
            return state_hash(self)
        from .digest import finish
        return finish(self.state_reducer(self))

    def flush(self) -> None:
        """Finish the background work of resources: every resource with a ``flush()`` method has it
        called (the LLM response log writes its files on a thread). :meth:`save` flushes first;
        call it before reading files that resources write while you step a world yourself."""
        for r in list(self._resources.values()):
            f = getattr(r, "flush", None)
            if callable(f):
                f()

    def save(self, path: str | Path) -> Path:
        """Write an atomic snapshot (see :mod:`.snapshot`), after :meth:`flush`."""
        from .snapshot import save
        self.flush()
        return save(self, path)

    def restore(self, path: str | Path, types: Iterable[type] = ()) -> None:
        """Replace this world's state by a snapshot's; systems and engines stay."""
        from .snapshot import restore
        restore(self, path, types)

    @classmethod
    def load(cls, path: str | Path, types: Iterable[type] = ()) -> "World":
        """A new world (no systems) from a snapshot; types resolved by import or ``types``."""
        from .snapshot import load
        return load(path, types)

    def memory_by_component(self) -> dict[str, int]:
        """Bytes held per component table."""
        return {c.__qualname__: self._tables[c].n_bytes() for c in self.component_types()}

    def __repr__(self) -> str:
        return (f"World(seed={self.seed}, tick={self.tick}, entities={len(self)}, "
                f"components={[c.__qualname__ for c in self.component_types()]})")
