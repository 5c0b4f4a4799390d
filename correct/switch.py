"""The adapter switch: agents move to a LoRA adapter at a tick boundary, as a recorded world event.

::

    schedule_switch(world, tick=12, adapter="kind", path="runs/a/adapters/kind-v2", where="Profile.age >= 30")
    install_switch(world, out=run_dir)          # once per world: the system and the switch log

A switch is a row of :class:`AdapterSchedule` (a resource, so it is saved in
snapshots and counted in the state hash): ``tick``, ``adapter`` (a name; ``""``
switches back to the base model), ``path`` (the adapter folder), the cohort
(``where``: conditions as in :func:`socius.systems.targets.find_agents`, and/or
``ids``: entity IDs; neither: every agent with a ``ModelChoice``), ``model``
(only that model's engine and agents, ``""`` for those without a ``ModelChoice``;
``None``: every engine) and ``status`` (``""`` until its tick, then ``"applied"``
or ``"failed: <why>"``).

:func:`apply_adapter_switches` (phase ``pre``, before the tick's decisions)
first makes every engine of the :class:`~socius.llm.LLM` resource hold, per
adapter name, the folder of the latest switch that took effect
(:meth:`~socius.llm.LLM.load_adapter` is idempotent, so this costs nothing
once loaded, and it reloads what a resumed run's fresh engines lack), then
sets ``ModelChoice.adapter`` of the selected agents; one without a ``ModelChoice`` gets one
(``ctx.commands``: it appears at the end of phase ``pre``, before the decisions of ``update``
and ``post``, which ask :func:`socius.systems.model_choice`). A load that fails leaves
the engines with the adapters they had, marks the switch failed and the run
goes on; under MPI the ranks agree (one reduction) so every rank switches, or
none, at the same tick — the schedule is world-wide, the same on every rank,
and each rank switches the agents it holds.

Replay and resume: :func:`install_switch` keeps the schedule in
``<run>/switches.json`` (rank 0 writes it whenever it changes) and merges the
switches recorded in a source run directory at the first tick it runs, so
``--replay`` (no engine loads: the log answers, with the adapter in each key)
and ``--resume`` reproduce a run whose switches were scheduled while it ran.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import field
from pathlib import Path
from typing import Mapping

import numpy as np

from socius.components import ModelChoice
from socius.ecs import STR, Resource, system, world_of
from socius.ecs.storage import find_rows
from socius.errors import ConfigError, EngineSetupError
from socius.llm import LLM
from socius.systems.targets import find_agents

from .switch_rows import _FIELDS, AdapterSwitch, parse_switches

__all__ = ["AdapterSchedule", "AdapterSwitch", "SWITCH_LOG", "SwitchLog", "apply_adapter_switches",
           "install_switch", "parse_switches", "queue_switch", "read_switches", "schedule_switch", "schedule_switches"]

#: the file in a run directory that records its switches (a JSON list of schedule rows)
SWITCH_LOG = "switches.json"


class AdapterSchedule(Resource):
    """Adapter switches as JSON-safe rows (``tick``, ``adapter``, ``path``, ``where``, ``ids``,
    ``model``, ``status``), in the order scheduled; saved in snapshots."""

    items: list = field(default_factory=list)

    def scheduled(self, adapter: str, path: str | None = None) -> bool:
        """Whether a switch to ``adapter`` (at ``path``, if given) is in the schedule."""
        return any(it["adapter"] == adapter and (path is None or it["path"] == str(path)) for it in self.items)


class SwitchLog:
    """Where the schedule is recorded and what a source run recorded (a plain resource: not saved).

    ``path``: ``<run>/switches.json`` or None; ``pending``: rows to merge at the next tick;
    ``written``: the JSON last written (rank 0 rewrites the file only when the schedule changed);
    ``queued``/``flush``: rows rank 0 decided for every rank, and whether every rank should flush
    its response log each tick (:mod:`.rank_switch`)."""

    def __init__(self, path: Path | None = None, pending: list | None = None, lead: bool = True):
        self.path, self.pending, self.lead, self.written = path, list(pending or []), lead, None
        self.queued: list = []
        self.flush = False


def schedule_switches(ctx, raw, where: str = "adapter_switches") -> list[AdapterSwitch]:
    """Parse ``raw`` (:func:`parse_switches`) and add the switches to the world's
    :class:`AdapterSchedule` (inserted if absent). A tick that has already run raises ``ConfigError``.
    Every rank of a world split over MPI ranks calls it with the same arguments."""
    world = world_of(ctx)
    items = parse_switches(raw, where)
    for i, it in enumerate(items):
        if it.tick < world.tick:
            raise ConfigError(f"{where}[{i}].tick: tick {it.tick} has already run (the world is at {world.tick})")
    sched = world.get_resource(AdapterSchedule)
    if sched is None:
        sched = AdapterSchedule()
        world.insert_resource(sched)
    sched.items.extend(it.row() for it in items)
    _write_log(world)
    return items


def schedule_switch(ctx, tick: int, adapter: str, path: str | os.PathLike = "", where=None, ids=None,
                    model: str | None = None) -> AdapterSwitch:
    """Schedule one switch (see the module docstring); returns it."""
    row = {"tick": tick, "adapter": adapter, "path": str(path), "where": where,
           "ids": None if ids is None else [int(i) for i in np.asarray(ids).reshape(-1)], "model": model}
    return schedule_switches(ctx, [row], "switch")[0]


def queue_switch(world, tick: int, adapter: str, path="", where=None, ids=None, model=None) -> AdapterSwitch:
    """:func:`schedule_switch` decided on one rank (rank 0's online loop): queued in the :class:`SwitchLog`
    and added to every rank's schedule at the start of ``tick`` (:mod:`.rank_switch`)."""
    row = {"tick": tick, "adapter": adapter, "path": str(path), "where": where,
           "ids": None if ids is None else [int(i) for i in np.asarray(ids).reshape(-1)], "model": model}
    (it,) = parse_switches([row], "switch")
    log = world.get_resource(SwitchLog)
    if it.tick < world.tick or log is None:
        raise ConfigError(f"switch.tick: tick {it.tick} has already run (the world is at {world.tick})"
                          if log is not None else "queue_switch: the world has no switch system (install_switch)")
    log.queued.append(it.row())
    _write_log(world)
    return it


def read_switches(run_dir: str | os.PathLike) -> list[dict]:
    """The schedule rows a run directory recorded (``[]`` when it recorded none); a damaged file
    raises ``ConfigError`` naming it."""
    path = Path(run_dir) / SWITCH_LOG
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text())
        parse_switches(rows, str(path))
    except ValueError as e:
        raise ConfigError(f"{path}: not a switch log ({e})") from None
    return [{**{k: r.get(k) for k in _FIELDS}, "status": r.get("status", "")} for r in rows]


def install_switch(world, out: str | os.PathLike | None = None, source: str | os.PathLike | None = None,
                   lead: bool = True) -> None:
    """Add :func:`apply_adapter_switches` to ``world`` (once) with its :class:`SwitchLog`: the schedule is
    recorded in ``<out>/switches.json`` (by the ``lead`` rank), and the switches recorded in run
    directory ``source`` (the run being replayed or resumed) are merged at the first tick. Inserts no
    saved resource, so a world that never switches keeps its state hash."""
    pending = read_switches(source) if source is not None else []
    world.insert_resource(SwitchLog(Path(out) / SWITCH_LOG if out is not None else None, pending, lead))
    if not any(s.name == apply_adapter_switches.name for s in world.schedule.systems()):
        world.add_systems(apply_adapter_switches)


def _key(row: Mapping) -> str:
    return json.dumps([row.get(k) for k in _FIELDS], sort_keys=True)


def _merge(world, log: SwitchLog) -> None:
    rows, log.pending = log.pending, []
    sched = world.get_resource(AdapterSchedule)
    if sched is None:
        sched = AdapterSchedule()
        world.insert_resource(sched)
    known = {_key(r) for r in sched.items}
    sched.items.extend(dict(r) for r in rows if _key(r) not in known)


def _write_log(world) -> None:
    log, sched = world.get_resource(SwitchLog), world.get_resource(AdapterSchedule)
    if log is None or log.path is None or not log.lead or (sched is None and not log.queued):
        return
    sched = sched if sched is not None else AdapterSchedule()
    text = json.dumps(sched.items + log.queued, indent=1, sort_keys=True) + "\n"
    if text == log.written:
        return
    log.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = log.path.with_name(f".{log.path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(log.path)
    log.written = text


def _selected(world, it: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """The agents this rank holds that switch ``it``, as ``([m] int64, [k] int64)`` sorted IDs: those
    with a ModelChoice and those without one. The cohort: within ``ids`` (the live ones), meeting
    ``where``, on ``model``; neither ``ids`` nor ``where``: every ModelChoice holder."""
    holders = world.ids_of(ModelChoice)
    if it["ids"] is None and it["where"] is None:
        sel = holders
    else:
        sel = None
        if it["ids"] is not None:
            sel = np.unique(np.asarray(it["ids"], dtype=np.int64))
            sel = sel[world.is_alive(sel)]
        if it["where"] is not None and (sel is None or sel.size):
            sel = find_agents(world, it["where"], sel)
    has = find_rows(holders, sel)[1]
    if it["model"] is not None and sel.size:
        model = np.full(sel.shape[0], "", dtype=STR)      # no ModelChoice: the default model, ""
        model[has] = world.get(ModelChoice, "model", sel[has])
        keep = model == it["model"]
        sel, has = sel[keep], has[keep]
    return sel[has], sel[~has]


def _add_choices(ctx, ids: list, adapters: list) -> None:
    """Queue a ``ModelChoice`` for the agents that lacked one: per agent the adapter of the last
    switch this tick that selected it (none for those switched back to ``""``)."""
    if not ids:
        return
    ids, adapters = np.concatenate(ids), np.concatenate(adapters)
    last, at = np.unique(ids[::-1], return_index=True)    # each agent's last switch
    adapter = adapters[::-1][at]
    keep = adapter != ""
    if keep.any():
        ctx.commands.add(last[keep], ModelChoice, adapter=adapter[keep])


def _load(llm, ranks, name: str, path: str, model) -> str:
    """Load on every rank's engines; ``""`` when every rank did, else why not (the same text on every rank)."""
    error = ""
    if llm is not None:
        try:
            llm.load_adapter(name, path, model)
        except EngineSetupError as e:
            error = str(e)
    if ranks.size == 1:
        return error
    failed = int(ranks.allreduce(np.array([1 if error else 0], dtype=np.int64), "sum")[0])
    if error:
        warnings.warn(f"rank {ranks.rank}: adapter switch: {error}", stacklevel=3)
    return f"adapter {name!r} from {path} did not load on {failed} of {ranks.size} ranks" if failed else ""


@system(phase="pre", writes=(ModelChoice,), resources=(AdapterSchedule, SwitchLog, LLM))
def apply_adapter_switches(ctx):
    """Load the adapters of this tick's switches into the engines and switch the selected agents
    (see the module docstring). Resources: AdapterSchedule, SwitchLog and LLM, each if present."""
    from socius.mpi import world_ranks

    world = world_of(ctx)
    log = ctx.get_resource(SwitchLog)
    llm = ctx.get_resource(LLM)
    live = llm is not None and llm.replay is None
    ranks = world_ranks(ctx)
    if log is not None and live and ranks.size > 1:  # what rank 0's online loop decided, on every rank
        from .rank_switch import share_queued
        log.pending.extend(share_queued(log, llm, ranks))
    elif log is not None and log.queued:
        log.pending.extend(log.queued)
        log.queued = []
    if log is not None and log.pending:
        _merge(world, log)
    sched = ctx.get_resource(AdapterSchedule)
    if sched is None or not sched.items:
        return
    now = ctx.tick
    # adapters that took effect earlier: a resumed run's fresh engines lack them (a no-op once loaded)
    held: dict[tuple, str] = {}
    for it in sched.items:
        if it["tick"] < now and it["adapter"] and it["status"] == "applied":
            held[(it["model"], it["adapter"])] = it["path"]
    for (model, name), path in held.items():
        if live and _load(llm, ranks, name, path, model):
            raise EngineSetupError(f"adapter {name!r} from {path}, switched to before tick {now}, does not load "
                                   "any more: this run cannot go on as it ran")
    new_ids, new_adapters = [], []   # agents without a ModelChoice, and their adapters (queued below)
    for it in sched.items:
        if it["tick"] != now or it["status"].startswith("failed"):
            continue
        if it["adapter"] and live:
            error = _load(llm, ranks, it["adapter"], it["path"], it["model"])
            if error:
                it["status"] = f"failed: {error}"
                prev = held.get((it["model"], it["adapter"]))
                if prev is not None:  # a rank that did load it goes back to the adapter the others kept
                    _load(llm, ranks, it["adapter"], prev, it["model"])
                if ranks.size == 1:
                    warnings.warn(f"adapter switch at tick {now}: {error}; the agents keep their adapters",
                                  stacklevel=2)
                continue
        sel, lacking = _selected(world, it)
        if sel.size:
            world.set(ModelChoice, sel, adapter=it["adapter"])
        new_ids.append(lacking)
        new_adapters.append(np.full(lacking.shape[0], it["adapter"], dtype=STR))
        it["status"] = "applied"
        if it["adapter"]:
            held[(it["model"], it["adapter"])] = it["path"]
    _add_choices(ctx, new_ids, new_adapters)
    _write_log(world)
