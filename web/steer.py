"""Steering a run from outside: interventions checked, scheduled at a tick boundary, recorded, reproduced.

An intervention from the dashboard is a JSON object ``{"set": "Component.column", "value": v,
"where": "Profile.age >= 60 and Group.group == 3", "ids": [..]}`` (``where``/``ids`` optional).
:func:`check_intervention` validates it in full against a world (target, expression, value type;
any copy of the run's world will do: only the schema and the selection are read) and raises
:class:`SteerError` naming the field, so nothing is half-applied. :func:`schedule_ui_intervention`
then runs on the tick thread at a tick boundary (``world.tick == b``, ``b`` ticks done): it adds
the row ``{"tick": b, ...}`` to the world's
:class:`~socius.components.environment.InterventionSchedule` — a resource saved in snapshots and
counted in the state hash — so the scenario's ``apply_interventions`` applies it in phase ``pre``
of the very next tick, and appends ``{"boundary": b, **row}`` to ``RUN_DIR/interventions.jsonl``.

Reproduction: :class:`Reapply` is a per-tick-boundary hook for ``--replay DIR`` and ``--resume DIR``:
at boundary ``b`` it schedules the rows DIR recorded at ``b`` exactly as the live run did, so the
schedule (and the state hash) match tick for tick. Rows a resumed snapshot already holds are
skipped (same row already in the schedule).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from socius.errors import ConfigError

__all__ = ["INTERVENTIONS", "Reapply", "SteerError", "check_intervention", "read_interventions",
           "record_intervention", "schedule_ui_intervention"]

#: the file in a run directory listing the interventions made while it ran (one JSON object a line)
INTERVENTIONS = "interventions.jsonl"
_FIELDS = ("set", "value", "where", "ids")


class SteerError(ValueError):
    """A request that would change the run and is wrong (names the field); the API answers 400 with it."""


def check_intervention(world, body) -> dict:
    """The schedule row (without ``tick``) for ``body`` after checking it against ``world``;
    raises :class:`SteerError` naming the problem. Returns ``{set, value, where, ids, matched}``."""
    from socius.components.environment import InterventionSchedule
    from socius.systems import parse_interventions
    from socius.systems.environment import InterventionError, json_safe
    from socius.systems.targets import find_agents, resolve_target

    from .agents import split_where

    if not isinstance(body, dict):
        raise SteerError("body: expected a JSON object {set, value, where, ids}")
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise SteerError(f"{unknown[0]}: unknown field (use set, value, where, ids)")
    if world.get_resource(InterventionSchedule) is None:
        raise SteerError("this scenario keeps no InterventionSchedule (it does not run apply_interventions): "
                         "it cannot be steered")
    where = body.get("where") or None
    if isinstance(where, list) and all(isinstance(c, str) for c in where):
        where = " and ".join(where)
    if where is not None and not isinstance(where, str):
        raise SteerError(f"where: expected an expression like 'Profile.age >= 60 and Group.group == 3', got {where!r}")
    conds = split_where(where) if where else None
    raw = {"tick": int(world.tick), "set": body.get("set"), "value": body.get("value")}
    if "value" not in body:
        raise SteerError("value: missing")
    if conds:
        raw["where"] = conds
    if body.get("ids") is not None:
        raw["ids"] = body["ids"]
    try:
        (item,) = parse_interventions([raw], where="intervention")
        kind = resolve_target(world, item.target)
    except (ConfigError, InterventionError) as e:
        raise SteerError(str(e).removeprefix("intervention[0].")) from None
    value = item.value
    matched = 1
    if kind[0] == "component":
        _, comp, col = kind
        if isinstance(value, (list, dict)) or value is None:
            raise SteerError(f"value: one value for all selected agents, got {value!r}")
        dtype = world.get(comp, col, np.zeros(0, np.int64)).dtype
        _check_value(item.target, value, dtype)
        sel = world.ids_of(comp)
        if item.ids is not None:
            want = np.unique(np.asarray(item.ids, dtype=np.int64))
            missing = want[~np.isin(want, sel)]
            if missing.size:
                raise SteerError(f"ids: entity {int(missing[0])} has no {comp.__qualname__}")
            sel = want
        try:
            matched = int(find_agents(world, conds, sel).size) if conds else int(sel.size)
        except (InterventionError, ValueError, TypeError) as e:
            raise SteerError(f"where: {e}") from None
    elif conds or item.ids is not None:
        raise SteerError(f"set: {item.target!r} is not a component column; it takes no where/ids")
    return {"set": item.target, "value": json_safe(value), "where": conds, "ids": None if item.ids is None
            else list(item.ids), "matched": matched}


def _check_value(target: str, value, dtype) -> None:
    if dtype.kind in "TUSO":
        if not isinstance(value, str):
            raise SteerError(f"value: {target} holds text; give a string, got {value!r}")
        return
    if isinstance(value, str):
        raise SteerError(f"value: {target} holds {dtype} numbers; got the string {value!r}")
    if dtype.kind == "b" and not isinstance(value, bool):
        raise SteerError(f"value: {target} holds booleans; got {value!r}")
    if dtype.kind in "iu" and (isinstance(value, float) and not float(value).is_integer()):
        raise SteerError(f"value: {target} holds integers ({dtype}); got {value!r}")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not info.min <= int(value) <= info.max:
            raise SteerError(f"value: {value!r} is out of range for {target} ({dtype})")


def schedule_ui_intervention(world, row: dict, run_dir: Path | None) -> dict:
    """On the tick thread at a boundary: schedule ``row`` (from :func:`check_intervention`) for the
    next tick and record it; returns the stored row (``tick`` is the tick that applies it)."""
    from socius.components.environment import InterventionSchedule

    sched = world.get_resource(InterventionSchedule)
    item = {"tick": int(world.tick), "set": row["set"], "value": row["value"], "where": row["where"],
            "ids": row["ids"]}
    sched.items.append(item)
    if run_dir is not None:
        record_intervention(run_dir, {"boundary": int(world.tick), **item, "matched": row.get("matched")})
    return item


def read_interventions(run_dir) -> list[dict]:
    """The rows of ``RUN_DIR/interventions.jsonl`` ([] without one); a bad line raises ``ConfigError``."""
    p = Path(run_dir) / INTERVENTIONS
    if not p.is_file():
        return []
    rows = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                raise ConfigError(f"{p}:{i}: not JSON ({e})") from None
    return rows


def record_intervention(run_dir, row: dict) -> None:
    """Append ``row`` to ``RUN_DIR/interventions.jsonl`` atomically (the file is rewritten and renamed)."""
    p = Path(run_dir) / INTERVENTIONS
    old = p.read_text() if p.is_file() else ""
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    tmp.write_text(old + json.dumps(row, sort_keys=True) + "\n")
    tmp.replace(p)


class Reapply:
    """Tick-boundary hook reproducing the interventions ``source`` recorded (see the module docstring);
    also records them in ``out`` when that is another directory. Call ``hook(world)`` at each boundary."""

    def __init__(self, source, out=None):
        self.source = Path(source)
        self.rows = read_interventions(self.source)
        self.out = None if out is None or Path(out).resolve() == self.source.resolve() else Path(out)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def __call__(self, world) -> int:
        from socius.components.environment import InterventionSchedule

        b = int(world.tick)
        due = [r for r in self.rows if int(r["boundary"]) == b]
        if not due:
            return 0
        sched = world.get_resource(InterventionSchedule)
        if sched is None:
            raise ConfigError(f"{self.source / INTERVENTIONS}: the world keeps no InterventionSchedule")
        n = 0
        for i, r in enumerate(due):
            item = {k: r[k] for k in ("tick", "set", "value", "where", "ids")}
            same = [{k: d[k] for k in item} for d in due[:i + 1]].count(item)
            if sched.items.count(item) >= same:
                continue  # a resumed snapshot holds it already
            sched.items.append(item)
            n += 1
            if self.out is not None:
                record_intervention(self.out, r)
        return n
