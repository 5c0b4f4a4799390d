"""Systems and the schedule that runs them.

A system is a plain function of one argument, the :class:`SystemContext`,
that declares what it touches::

    @system(phase="update", reads=(Position,), writes=(Wealth,), resources=(Params,))
    def give_money(ctx):
        v = ctx.query(Wealth, Position)
        ...

``reads``/``writes`` list components, ``resources`` the resource types it uses,
``sends``/``receives`` message types. The context enforces the declaration:
a query over an undeclared component, a write to a component not in
``writes``, an undeclared resource or message raises :class:`AccessError`.
The declarations are also what the profiler reports and what MPI uses to
decide which columns must be exchanged.

Schedule: phases run in the order given (default ``pre``, ``update``,
``post``); within a phase, systems run in the order they were added. That
order is the contract — every schedule is unambiguous by construction, so
there is nothing to refuse; a declared-access conflict between systems of one
phase only matters for parallel execution, which the kernel does not do
(within a rank, each system is itself one vectorised pass). At the end of
each phase the queued commands are applied (a sync point); at the end of the
tick, messages flip and the tick counter advances.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from .component import Component, is_component
from .errors import AccessError, SchemaError
from .message import Message, MessageBatch
from .query import Query, QueryView
from .rng import EntityRng, world_generator

if TYPE_CHECKING:
    from .world import World

DEFAULT_PHASES = ("pre", "update", "post")


@dataclass(frozen=True)
class System:
    """A function plus its declared access. Create with :func:`system`."""

    fn: Callable[["SystemContext"], Any]
    name: str
    phase: str = "update"
    reads: frozenset = frozenset()
    writes: frozenset = frozenset()
    resources: frozenset = frozenset()
    sends: frozenset = frozenset()
    receives: frozenset = frozenset()

    def __call__(self, ctx: "SystemContext"):
        return self.fn(ctx)


def _types(items, check, what, name) -> frozenset:
    items = tuple(items)
    for it in items:
        if not check(it):
            raise SchemaError(f"system {name}: {what} must be types, got {it!r}")
    return frozenset(items)


def system(fn=None, *, phase: str = "update", reads: Iterable = (), writes: Iterable = (),
           resources: Iterable = (), sends: Iterable = (), receives: Iterable = (), name: str | None = None):
    """Decorator (or function) turning ``fn(ctx)`` into a :class:`System`."""

    def wrap(f):
        nm = name or getattr(f, "__name__", repr(f))
        is_msg = lambda t: isinstance(t, type) and issubclass(t, Message)  # noqa: E731
        return System(
            fn=f, name=nm, phase=phase,
            reads=_types(reads, is_component, "reads", nm),
            writes=_types(writes, is_component, "writes", nm),
            resources=_types(resources, lambda t: isinstance(t, type), "resources", nm),
            sends=_types(sends, is_msg, "sends", nm),
            receives=_types(receives, is_msg, "receives", nm),
        )

    return wrap(fn) if fn is not None else wrap


class SystemContext:
    """What a running system sees: the world, the tick, commands, queries, RNG.

    One context per system, reused across ticks; queries made through it are
    built once and cached by their arguments.
    """

    def __init__(self, world: "World", sys: System):
        self.world = world
        self.system = sys
        self._queries: dict[tuple, Query] = {}

    @property
    def tick(self) -> int:
        return self.world.tick

    @property
    def seed(self) -> int:
        return self.world.seed

    @property
    def commands(self):
        return self.world.commands

    def query(self, *components: type[Component], without: Iterable = (), where=None) -> QueryView:
        key = (components, tuple(without), where)
        q = self._queries.get(key)
        if q is None:
            allowed = self.system.reads | self.system.writes
            for c in (*components, *without):
                if c not in allowed:
                    raise AccessError(
                        f"system {self.system.name} queries {getattr(c, '__qualname__', c)} but did not "
                        "declare it in reads= or writes=")
            q = self._queries[key] = Query(*components, without=without, where=where)
        return q.fetch(self.world, writable=self.system.writes)

    def resource(self, kind: type):
        """The world's ``kind`` resource; raises if the system did not declare it or the world has none."""
        self._check_resource(kind)
        return self.world.resource(kind)

    def get_resource(self, kind: type):
        """The world's ``kind`` resource, or ``None`` if it has none; the system must still declare it."""
        self._check_resource(kind)
        return self.world.get_resource(kind)

    def _check_resource(self, kind: type) -> None:
        if kind not in self.system.resources:
            raise AccessError(f"system {self.system.name} uses resource {kind.__qualname__} "
                              "but did not declare it in resources=")

    def send(self, kind: type[Message], /, sender, target=None, **payload) -> None:
        if kind not in self.system.sends:
            raise AccessError(f"system {self.system.name} sends {kind.__qualname__} but did not declare it in sends=")
        self.world.messages.send(kind, self.world.tick, sender, target, **payload)

    def read(self, kind: type[Message]) -> MessageBatch:
        if kind not in self.system.receives:
            raise AccessError(f"system {self.system.name} reads {kind.__qualname__} "
                              "but did not declare it in receives=")
        return self.world.messages.read(kind)

    def rng(self, stream: str | int) -> EntityRng:
        """Per-entity draws keyed by (seed, stream, this tick, entity)."""
        return EntityRng(self.world.seed, stream, self.world.tick)

    def generator(self, stream: str | int) -> np.random.Generator:
        """A numpy Generator for non-entity draws this tick."""
        return world_generator(self.world.seed, stream, self.world.tick)


def world_of(ctx: "SystemContext | World") -> "World":
    """The world behind a library call's first argument.

    Library calls that run inside a system (``decide``, ``memorize``,
    ``retrieve``, ``interview``, …) take the system's context, so the
    resources they use go through :meth:`SystemContext.resource` and must be
    declared like any other; outside a tick (a build function, a test, an
    interview from the dashboard) they take the world itself, which grants
    everything. Such a call fetches its resources with ``ctx.resource(T)``
    and reaches anything else of the world through ``world_of(ctx)``.
    """
    return ctx.world if isinstance(ctx, SystemContext) else ctx


@dataclass
class SystemTiming:
    """Wall seconds per system for the last tick (filled only when timing is on)."""

    seconds: dict[str, float] = field(default_factory=dict)
    sync_seconds: float = 0.0


class Schedule:
    """Systems in named phases; see the module docstring for the ordering contract."""

    def __init__(self, phases: Iterable[str] = DEFAULT_PHASES):
        self.phases = tuple(phases)
        if len(set(self.phases)) != len(self.phases) or not self.phases:
            raise SchemaError(f"Schedule: phases must be unique and non-empty, got {self.phases}")
        self._systems: dict[str, list[System]] = {p: [] for p in self.phases}
        self._contexts: dict[int, SystemContext] = {}
        self.hooks: list[Callable[[System, float], None]] = []
        # run after each tick's message flip, before the tick counter moves on (e.g. MPI message routing)
        self.flip_hooks: list[Callable[["World"], None]] = []

    def add(self, *systems: System | Callable, phase: str | None = None) -> "Schedule":
        for s in systems:
            if not isinstance(s, System):
                s = system(s, phase=phase or "update")
            ph = phase or s.phase
            if ph not in self._systems:
                raise SchemaError(f"system {s.name}: unknown phase {ph!r} (phases: {', '.join(self.phases)})")
            if any(x.name == s.name for x in self.systems()):
                raise SchemaError(f"a system named {s.name!r} is already in the schedule")
            self._systems[ph].append(s)
        return self

    def systems(self) -> list[System]:
        """All systems in execution order."""
        return [s for p in self.phases for s in self._systems[p]]

    def in_phase(self, phase: str) -> list[System]:
        return list(self._systems[phase])

    def run_tick(self, world: "World") -> None:
        hooks = self.hooks
        world._in_tick = True
        try:
            for phase in self.phases:
                for s in self._systems[phase]:
                    ctx = self._contexts.get(id(s))
                    if ctx is None or ctx.world is not world:
                        ctx = self._contexts[id(s)] = SystemContext(world, s)
                    if hooks:
                        t0 = time.perf_counter()
                        s.fn(ctx)
                        dt = time.perf_counter() - t0
                        for h in hooks:
                            h(s, dt)
                    else:
                        s.fn(ctx)
                world._in_tick = False
                world.commands.apply()
                world._in_tick = True
        finally:
            world._in_tick = False
        world.messages.flip(world.tick)
        for f in self.flip_hooks:
            f(world)
        world.tick += 1
