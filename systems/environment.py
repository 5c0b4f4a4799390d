"""The shared environment: state every agent can see, per-group state, and listeners.

Everything here works on batches of agents, so a scenario, a notebook or a
config file can steer a running world::

    set_state(world, "price", 4.5)                     # shared state (a Resource, saved in snapshots)
    watch(world, ids, "price")                         # watchers get StateChanged next tick
    set_state(world, "mood", "tense", group=[0, 2])    # per-group state (nested environments)

The schemas are in :mod:`socius.components.environment`. Interventions
(:mod:`socius.systems.interventions`), interviews and search
(:mod:`socius.systems.interview`) build on this module.

**Shared state** lives in :class:`SharedState`: JSON-safe values by key.
A group's state uses the same table under the key ``group/<g>/<key>``; an
agent's group is its :class:`Group` component.

**Listeners**: :func:`watch` records keys in the agents' :class:`Watching`
component (a global key, or with ``scope="group"`` the key in the agent's own
group). Every change is marked in ``SharedState.dirty``; the
:func:`notify_watchers` system (phase ``post``) sends one
:class:`StateChanged` message per (watcher, changed key), readable with
``ctx.read(StateChanged)`` in the next tick. Changes made between ticks are
delivered the same way (sent in the next tick's ``post``, read one tick later).

**Resources**: the calls take the system context (or, outside a tick, the
world) and fetch :class:`SharedState` through it, so a system calling them
declares ``resources=(SharedState,)``; :func:`set_state` and :func:`watch`
insert an empty one when the world has none.
"""
from __future__ import annotations

import json

import numpy as np

from socius.components.environment import Group, InterventionSchedule, SharedState, StateChanged, Watching
from socius.ecs import STR, RaggedArray, system, world_of


class InterventionError(ValueError):
    """A bad intervention target, selection or value; the message names it."""


def _state(ctx) -> SharedState:
    """The :class:`SharedState` resource (fetched through ``ctx``), inserted empty if absent."""
    s = ctx.get_resource(SharedState)
    if s is None:
        s = SharedState()
        world_of(ctx).insert_resource(s)
    return s


def group_key(key: str, group: int) -> str:
    """The shared-state key of ``key`` in group ``group``: ``"group/<g>/<key>"``."""
    return f"group/{int(group)}/{key}"


def json_safe(value):
    """``value`` as plain JSON data (numpy scalars and arrays converted); raises :class:`InterventionError`."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise InterventionError(f"shared state values must be JSON-safe (numbers, strings, lists, dicts), "
                                f"got {type(value).__name__}") from None


def _key_index(state: SharedState, key: str) -> int:
    try:
        return state.keys.index(key)
    except ValueError:
        state.keys.append(key)
        return len(state.keys) - 1


def set_state(ctx, key: str, value, group=None) -> None:
    """Set shared state ``key`` (or, with ``group`` an int or a list of ints, that key in each group;
    ``value`` may then be a list with one value per group). Unchanged values do not notify.

    Resources: :class:`SharedState`."""
    if not isinstance(key, str) or not key:
        raise InterventionError(f"state key must be a non-empty string, got {key!r}")
    state = _state(ctx)
    if group is None:
        full, vals = [key], [value]
    else:
        groups = np.atleast_1d(np.asarray(group, dtype=np.int64)).tolist()
        vals = list(value) if isinstance(value, (list, tuple, np.ndarray)) and len(value) == len(groups) \
            and len(groups) > 1 else [value] * len(groups)
        full = [group_key(key, g) for g in groups]
    for k, v in zip(full, vals):
        v = json_safe(v)
        _key_index(state, k)
        if k in state.values and state.values[k] == v:
            continue
        state.values[k] = v
        if k not in state.dirty:
            state.dirty.append(k)


def get_state(ctx, key: str, default=None, group=None):
    """Shared state ``key`` (in ``group`` when given), or ``default``. Resources: :class:`SharedState`."""
    state = ctx.get_resource(SharedState)
    if state is None:
        return default
    return state.values.get(key if group is None else group_key(key, group), default)


def group_values(ctx, ids, key: str, default=None) -> np.ndarray:
    """``[n] object``: each agent's value of its group's ``key`` (``default`` where unset or no group).

    Resources: :class:`SharedState`."""
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    groups = np.full(ids.shape[0], -1, dtype=np.int64)
    has = world.has(ids, Group)
    groups[has] = world.get(Group, "group", ids[has])
    state = ctx.get_resource(SharedState)
    vals = state.values if state is not None else {}
    uniq, inverse = np.unique(groups, return_inverse=True)
    per_group = np.empty(uniq.shape[0], dtype=object)
    per_group[:] = [vals.get(group_key(key, g), default) if g >= 0 else default for g in uniq.tolist()]
    return per_group[inverse]


def watch(ctx, ids, key: str, scope: str = "global") -> None:
    """Agents ``ids`` watch ``key`` (``scope="group"``: the key in each agent's own group).

    Resources: :class:`SharedState`."""
    world = world_of(ctx)
    ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
    if scope not in ("global", "group"):
        raise InterventionError(f"watch: scope must be 'global' or 'group', got {scope!r}")
    if ids.size == 0:
        return
    state = _state(ctx)
    if scope == "global":
        idx = np.full(ids.shape[0], _key_index(state, key), dtype=np.int64)
    else:
        has = world.has(ids, Group)
        if not has.all():
            raise InterventionError(f"watch(scope='group'): entity {int(ids[~has][0])} has no Group")
        uniq, inverse = np.unique(world.get(Group, "group", ids), return_inverse=True)
        idx = np.array([_key_index(state, group_key(key, g)) for g in uniq.tolist()], dtype=np.int64)[inverse]
    has = world.has(ids, Watching)
    new = ids[~has]
    if new.size:
        world.add_component(new, Watching, keys=RaggedArray.from_lengths(np.ones(new.size, np.int64),
                                                                           idx[~has]))
    old = ids[has]
    if old.size:
        cur = world.get(Watching, "keys", old)
        owner = np.repeat(np.arange(old.size), cur.lengths)
        already = np.zeros(old.size, dtype=bool)
        already[owner[cur.values == idx[has][owner]]] = True
        add = np.flatnonzero(~already)  # append the key at the end of the rows that lack it
        world.set(Watching, old, keys=cur.append(add, idx[has][add]))


@system(phase="post", reads=(Watching,), resources=(SharedState,), sends=(StateChanged,))
def notify_watchers(ctx):
    """Send :class:`StateChanged` to every watcher of a key changed since the last run."""
    state = ctx.get_resource(SharedState)
    if state is None or not state.dirty:
        return
    changed = np.array(sorted(state.keys.index(k) for k in state.dirty), dtype=np.int64)
    state.dirty = []
    v = ctx.query(Watching)
    keys = v.get(Watching, "keys")
    owner = np.repeat(v.ids, keys.lengths)
    hit = np.isin(keys.values, changed)
    if not hit.any():
        return
    target, kidx = owner[hit], keys.values[hit]
    names = np.array(state.keys, dtype=STR)[kidx]
    values = np.array([json.dumps(state.values.get(k)) for k in state.keys], dtype=STR)[kidx]
    ctx.send(StateChanged, sender=np.full(target.shape[0], -1, dtype=np.int64), target=target,
             key=names, value=values, key_index=kidx)


def ensure_environment(ctx) -> None:
    """Insert empty :class:`SharedState` and :class:`InterventionSchedule` resources if absent
    (at build time, with the world)."""
    _state(ctx)
    if ctx.get_resource(InterventionSchedule) is None:
        world_of(ctx).insert_resource(InterventionSchedule())


__all__ = ["InterventionError", "ensure_environment", "get_state", "group_key", "group_values", "json_safe",
           "notify_watchers", "set_state", "watch"]
