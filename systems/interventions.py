"""Interventions: steer a running world by setting columns, resource fields or shared state.

::

    intervene(world, "Profile.occupation", "nurse", where="Profile.age >= 30")   # between ticks
    schedule_interventions(world, [{"tick": 5, "set": "state.price", "value": 9.0}])

An intervention sets a target (:mod:`socius.systems.targets`: a component
column, a resource field or a shared-state key) for all holders or those
selected by ``ids`` and/or ``where`` conditions. Scheduled interventions
(``[[interventions]]`` tables in a scenario config: ``tick``, ``set``,
``value``, optional ``where``/``ids``) are kept in the
:class:`~socius.components.environment.InterventionSchedule` resource and
applied by :func:`apply_interventions` in phase ``pre`` of exactly that tick,
so every system of that tick sees the new value; add it before the scenario's
own ``pre`` systems (:func:`environment_systems` returns both environment
systems in order).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from socius.components.environment import InterventionSchedule
from socius.ecs import system, world_of
from socius.errors import ConfigError

from .environment import InterventionError, json_safe, notify_watchers, set_state
from .targets import find_agents, is_condition, resolve_target, split_target


def intervene(ctx, target: str, value, where=None, ids=None) -> int:
    """Set ``target`` to ``value`` now (between ticks, or from a system). Returns how many entities
    (or 1 for a resource / state key) changed. ``value`` is one value for all, or one per selected
    entity in ID order (``[m]``; ``[m, d]`` for vector columns). On a world split over MPI ranks
    every rank calls it with the same arguments; each changes the listed ``ids`` it holds (an ID held
    by no rank is then not reported).

    Resources: :class:`~socius.components.environment.SharedState` for a state target, the
    targeted resource for a resource target (a component target uses none)."""
    world = world_of(ctx)
    kind = resolve_target(world, target)
    if kind[0] == "state":
        if where is not None or ids is not None:
            raise InterventionError(f"target {target!r}: shared state takes no where/ids (use state.group/<g>/key)")
        set_state(ctx, kind[1], value)
        return 1
    if kind[0] == "resource":
        if where is not None or ids is not None:
            raise InterventionError(f"target {target!r}: a resource field takes no where/ids")
        res = ctx.resource(kind[1])
        old = getattr(res, kind[2])
        new = type(old)(value) if isinstance(old, (bool, int, float, str)) and not isinstance(value, type(old)) \
            and not (isinstance(old, bool) != isinstance(value, bool)) else value
        setattr(res, kind[2], new)
        post = getattr(res, "__post_init__", None)
        if post is not None:
            try:
                post()
            except ValueError as exc:
                setattr(res, kind[2], old)
                raise InterventionError(f"target {target!r}: {exc}") from None
        return 1
    _, comp, col = kind
    sel = world.ids_of(comp)
    if ids is not None:
        want = np.unique(np.asarray(ids, dtype=np.int64))
        missing = ~np.isin(want, sel)
        if missing.any() and not world.is_share:
            raise InterventionError(f"target {target!r}: entity {int(want[missing][0])} has no {comp.__qualname__}")
        if missing.any():  # this rank's share of the listed entities (and of per-entity values)
            arr = np.asarray(value) if not isinstance(value, (str, bytes)) else None
            if arr is not None and arr.ndim >= 1 and arr.shape[0] == want.shape[0] and want.shape[0] > 1:
                value = arr[~missing]
            want = want[~missing]
        sel = want
    if where is not None:
        sel = find_agents(world, where, sel)
    if sel.size:
        try:
            world.set(comp, sel, **{col: value})
        except (TypeError, ValueError) as exc:
            raise InterventionError(f"target {target!r}: {exc}") from None
    return int(sel.size)


@dataclass(frozen=True)
class Intervention:
    """One scheduled change: at ``tick``, set ``target`` to ``value`` where/for ids."""

    tick: int
    target: str
    value: Any
    where: Any = None
    ids: tuple | None = None


def parse_interventions(raw, where: str = "interventions") -> list[Intervention]:
    """Interventions from config tables (``[[interventions]]``: ``tick``, ``set``, ``value``,
    optional ``where`` and ``ids``). Errors raise ``ConfigError`` naming the field."""
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        raise ConfigError(f"{where}: expected a list of tables, got {type(raw).__name__}")
    out = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if isinstance(item, Intervention):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(f"{at}: expected a table with tick, set, value")
        unknown = set(item) - {"tick", "set", "value", "where", "ids"}
        if unknown:
            raise ConfigError(f"{at}.{sorted(unknown)[0]}: unknown field (use tick, set, value, where, ids)")
        for req in ("tick", "set", "value"):
            if req not in item:
                raise ConfigError(f"{at}.{req}: missing")
        tick = item["tick"]
        if isinstance(tick, bool) or not isinstance(tick, int) or tick < 0:
            raise ConfigError(f"{at}.tick: must be an int >= 0, got {tick!r}")
        target = item["set"]
        try:
            split_target(target)
        except InterventionError as exc:
            raise ConfigError(f"{at}.set: {exc}") from None
        w = item.get("where")
        if w is not None:
            conds = [w] if isinstance(w, str) else w
            if not isinstance(conds, (list, tuple)) or not all(is_condition(c) for c in conds):
                raise ConfigError(f"{at}.where: expected '<Component>.<column> <op> <literal>' or a list of them, "
                                  f"got {w!r}")
        ids = item.get("ids")
        if ids is not None and (not isinstance(ids, (list, tuple)) or
                                not all(isinstance(x, int) and not isinstance(x, bool) for x in ids)):
            raise ConfigError(f"{at}.ids: expected a list of entity IDs, got {ids!r}")
        out.append(Intervention(tick, target, item["value"], w, None if ids is None else tuple(ids)))
    return out


def schedule_interventions(ctx, raw, where: str = "interventions") -> list[Intervention]:
    """Parse ``raw`` (see :func:`parse_interventions`), check each target against ``world`` (raising
    ``ConfigError`` naming ``interventions[i].set``), and add them to the world's schedule
    (inserting the :class:`~socius.components.environment.InterventionSchedule` resource if absent).

    Resources: :class:`~socius.components.environment.InterventionSchedule`."""
    world = world_of(ctx)
    items = parse_interventions(raw, where)
    for i, it in enumerate(items):
        try:
            resolve_target(world, it.target)
        except InterventionError as exc:
            raise ConfigError(f"{where}[{i}].set: {exc}") from None
        if it.tick < world.tick:
            raise ConfigError(f"{where}[{i}].tick: tick {it.tick} has already run (the world is at {world.tick})")
    sched = ctx.get_resource(InterventionSchedule)
    if sched is None:
        sched = InterventionSchedule()
        world.insert_resource(sched)
    for it in items:
        sched.items.append({"tick": it.tick, "set": it.target, "value": json_safe(it.value),
                            "where": it.where if it.where is None or isinstance(it.where, str) else list(it.where),
                            "ids": None if it.ids is None else list(it.ids)})
    return items


@system(phase="pre", resources=(InterventionSchedule,))
def apply_interventions(ctx):
    """Apply the scheduled interventions whose tick is this tick, in the order they were scheduled.

    Their targets come from the config and may be any column, resource or state key, which no
    declaration can list in advance: like an intervention made between ticks, they are applied to
    the world itself (which grants everything), not through this system's context."""
    sched = ctx.get_resource(InterventionSchedule)
    for it in (sched.items if sched is not None else ()):
        if it["tick"] == ctx.tick:
            intervene(world_of(ctx), it["set"], it["value"], where=it["where"], ids=it["ids"])


def environment_systems() -> tuple:
    """``(apply_interventions, notify_watchers)``: add them with ``world.add_systems(*...)`` before the
    scenario's own systems (needs the :class:`~socius.components.environment.InterventionSchedule` and
    :class:`~socius.components.environment.SharedState` resources, which
    :func:`~socius.systems.environment.ensure_environment` inserts)."""
    return (apply_interventions, notify_watchers)


__all__ = ["Intervention", "apply_interventions", "environment_systems", "intervene", "parse_interventions",
           "schedule_interventions"]
