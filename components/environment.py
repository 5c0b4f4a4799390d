"""The environment's state: shared values, groups, watchers, scheduled interventions.

* :class:`SharedState` — JSON-safe values by key, shared by all agents (a
  resource, saved in snapshots). A group's state uses the same table under
  the key ``group/<g>/<key>``.
* :class:`Group` — the group (nested environment) an agent belongs to.
* :class:`Watching` — the state keys an agent listens to, as indices into
  ``SharedState.keys``; a change reaches it as a :class:`StateChanged`
  message in the next tick.
* :class:`InterventionSchedule` — interventions scheduled for later ticks (a
  resource, saved in snapshots).

The logic over them is in :mod:`socius.systems.environment` (state and
listeners) and :mod:`socius.systems.interventions`. The classes keep the
stored names they had in ``socius.systems.environment``, so snapshots and
state hashes do not depend on where they are defined.
"""
from __future__ import annotations

from dataclasses import field

import numpy as np

from socius.ecs import Component, Message, Ragged, Resource, Scalar, String


class SharedState(Resource, name="socius.systems.environment.SharedState"):
    """Shared environment state: ``values`` by key (JSON-safe), ``keys`` in the order first set
    (a key's index is its position), ``dirty``: keys changed since watchers were last notified."""

    values: dict = field(default_factory=dict)
    keys: list = field(default_factory=list)
    dirty: list = field(default_factory=list)


class Group(Component, name="socius.systems.environment.Group"):
    """The group (nested environment) an agent belongs to: ``group [n] int64`` (-1 none)."""

    group = Scalar(np.int64, default=-1)


class Watching(Component, name="socius.systems.environment.Watching"):
    """``keys``: ragged ``int64`` indices (into ``SharedState.keys``) of the state keys an agent watches."""

    keys = Ragged(np.int64)


class StateChanged(Message, name="socius.systems.environment.StateChanged"):
    """A watched key changed: ``key`` (its full name), ``value`` (JSON text), ``key_index [m] int64``."""

    key = String()
    value = String()
    key_index = Scalar(np.int64)


class InterventionSchedule(Resource, name="socius.systems.environment.InterventionSchedule"):
    """Scheduled interventions as plain dicts (``tick``, ``set``, ``value``, ``where``, ``ids``;
    saved in snapshots), applied in the order scheduled."""

    items: list = field(default_factory=list)


__all__ = ["Group", "InterventionSchedule", "SharedState", "StateChanged", "Watching"]
