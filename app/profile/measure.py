"""Measuring: build a scenario (timed apart), run profiled ticks, attribute LLM decision rows to systems.

The ticks run under :class:`socius.ecs.profiler.Profiler`; a
:class:`DecisionProbe` hook notes which system added which
:class:`~socius.llm.DecisionStats` rows. :func:`profile_scenario` returns a
:class:`ProfileRun`: the report (:mod:`.report`) and the raw timings the
trace (:mod:`.trace`) is drawn from.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socius.ecs import World
from socius.ecs.profiler import Profiler, component_memory

from ..engines import EngineChoice
from ..registry import Scenario
from ..run import build_world
from .ranks import add_ranks, comm_totals
from .report import build_report

__all__ = ["DecisionProbe", "ProfileRun", "profile_scenario"]


class DecisionProbe:
    """A schedule hook that attributes new ``DecisionStats`` rows to the system that just ran.

    Added to ``world.schedule.hooks`` before the profiler's hook; only active
    while ``profiler`` runs a tick.
    """

    def __init__(self, world: World, profiler: Profiler):
        from socius.llm import DecisionStats
        self._kind = DecisionStats
        self.world = world
        self.profiler = profiler
        stats = world.get_resource(DecisionStats)
        self.build_rows: list[dict] = list(stats.rows) if stats is not None else []
        self._seen = len(self.build_rows)
        self._stats_obj = stats
        self.rows: list[tuple[int, str, dict]] = []   # (profiled tick index, system, DecisionStats row)

    def hook(self, s, seconds: float) -> None:
        if not self.profiler.running:
            return
        stats = self.world.get_resource(self._kind)
        if stats is None:
            return
        if stats is not self._stats_obj:   # a new DecisionStats resource: all its rows are new
            self._stats_obj, self._seen = stats, 0
        n = len(stats.rows)
        if n > self._seen:
            i = self.profiler.tick_index
            self.rows.extend((i, s.name, r) for r in stats.rows[self._seen:n])
            self._seen = n


@dataclass
class ProfileRun:
    """What one profile produced: the report (plain data) and the raw timings behind the trace."""

    report: dict[str, Any]
    profiler: Profiler = field(repr=False)
    probe: DecisionProbe = field(repr=False)
    origin: float = 0.0          # perf_counter at the start of the build
    build_s: float = 0.0


def profile_scenario(scenario: Scenario, cfg, *, seed: int = 0, ticks: int = 10,
                     engine: EngineChoice | None = None, out: Path | None = None,
                     memory: bool = True, status=None, ranks=None) -> ProfileRun:
    """Build ``scenario`` (timed apart), run ``ticks`` profiled ticks; returns the report.

    ``status(text)`` is called with short progress lines. A Ctrl-C during
    the ticks ends them early; the report then covers the ticks that ran and
    says ``"interrupted": true``.
    """
    say = status or (lambda text: None)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    say(f"building {scenario.name} …")
    origin = time.perf_counter()
    world = build_world(scenario, cfg, seed, engine if scenario.mock_policy is not None else None, out, ranks)
    build_s = time.perf_counter() - origin
    components_built = {c["name"]: c["bytes"] for c in component_memory(world)}
    prof = Profiler(world, memory=memory, rank=0 if ranks is None else ranks.rank)
    comm0 = comm_totals(world)
    rss_built = prof.rss.current() if prof.rss is not None else None
    probe = DecisionProbe(world, prof)
    world.schedule.hooks.insert(0, probe.hook)  # before the profiler's hook (see Profiler's docstring)
    interrupted = False
    say(f"profiling {ticks} ticks of {len(world):,} entities …")
    try:
        prof.attach()
        for _ in range(ticks):
            prof.step(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        prof.detach()
        if probe.hook in world.schedule.hooks:
            world.schedule.hooks.remove(probe.hook)
        _close_llm(world)
    rep = build_report(scenario, cfg, seed, engine, world, prof, probe, build_s, components_built, rss_built, out)
    rep["interrupted"] = interrupted
    add_ranks(rep, world, comm0, comm_totals(world))
    prof.close()
    return ProfileRun(rep, prof, probe, origin, build_s)



def _close_llm(world: World) -> None:
    from socius.llm import LLM
    llm = world.get_resource(LLM)
    if llm is not None:
        llm.close()

