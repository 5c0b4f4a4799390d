"""The profiler's own cost: the same scenario's ticks with ``socius profile``'s instruments on and off.

::

    python -m socius.bench.profiler_overhead                  # boltzmann and guess (mock), 100k agents
    python -m socius.bench.profiler_overhead --size small     # CI-sized
    python -m socius.bench.profiler_overhead --scenario boltzmann --agents 1000000 --ticks 100

One world per case, built once; after warm-up ticks, rounds of two ticks
follow on that same world, one off and one on in random order, each timed on
its own. *Off* is ``world.step(1)`` with no hook attached; *on* is
:meth:`Profiler.step` with the RSS probe and, for LLM scenarios, the
decision probe — everything ``socius profile`` does per tick. Both are
timed from outside the same way.

One JSON line per case: ``{"bench": "profiler_overhead", "scenario",
"agents", "ticks", "off_ms", "on_ms", "overhead_pct", "paired_overhead_pct",
"direct_us", "direct_pct", "ticks_probed_pct", "systems", "peak_rss_mb"}`` — ``off_ms``/``on_ms`` are median tick times,
``overhead_pct`` is ``100 (on / off - 1)`` of those medians and
``paired_overhead_pct`` the median of the on − off differences within the
rounds over the median off tick (less sensitive to drift). Small shares need
many ticks: on a shared machine two off medians can differ by 1 %.
``direct_us`` is the profiler's own work per tick, measured apart on a
world of as many no-op systems (timing hooks, plus the memory probe on the
share ``ticks_probed_pct`` of ticks the real run probed), and
``direct_pct`` that over ``off_ms``: a floor free of the machine's noise,
without cache effects on the scenario's own code. Each case
runs in a fresh process, so ``peak_rss_mb`` is its own (the profiler resets
the kernel's RSS high-water mark; the figure is the larger of getrusage's
and the profiler's own record).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from socius.bench.common import emit, median, peak_rss_mb, run_case

MODULE = "socius.bench.profiler_overhead"
WARMUP = 3
# (scenario, agents, ticks per mode); kept here rather than in configurations.py
SIZES = {
    "small": [("boltzmann", 10_000, 100), ("guess", 2_000, 20)],
    "large": [("boltzmann", 100_000, 1500), ("guess", 100_000, 60)],
}


def one(scenario_name: str, agents: int, ticks: int, seed: int = 1) -> dict:
    from socius.ecs.profiler import Profiler
    from socius.app.config import build_config
    from socius.app.profile import DecisionProbe
    from socius.app.registry import get_scenario
    from socius.app.engines import EngineChoice
    from socius.app.run import build_world

    scenario = get_scenario(scenario_name)
    cfg = build_config(scenario.config, {"agents": agents})
    world = build_world(scenario, cfg, seed, EngineChoice("mock"))
    world.step(WARMUP)  # JIT, first-touch memory, first-round prompts
    prof = Profiler(world)
    probe = DecisionProbe(world, prof)  # as socius profile: attributes LLM stage rows to systems
    off, on = [], []
    rng = np.random.default_rng(0)
    for _ in range(ticks):  # one pair per round, in random order
        for profiled in rng.permutation([False, True]):
            if profiled:
                world.schedule.hooks.append(probe.hook)
                prof.attach()
                t = time.perf_counter()
                prof.step(1)
                on.append(time.perf_counter() - t)
                prof.detach()
                world.schedule.hooks.remove(probe.hook)
            else:
                t = time.perf_counter()
                world.step(1)
                off.append(time.perf_counter() - t)
    pairs = [a - b for a, b in zip(on, off)]
    off_m, on_m = median(off), median(on)
    rss = max(peak_rss_mb(), round((prof.peak_rss_bytes or 0) / 2**20, 1))
    probed = sum(prof.tick_probed) / len(prof.tick_probed)
    prof.close()
    bare, probe = direct_cost(len(world.schedule.systems()))
    direct = bare + probed * probe
    return {"bench": "profiler_overhead", "scenario": scenario_name, "agents": agents, "ticks": ticks,
            "off_ms": round(off_m * 1e3, 4), "on_ms": round(on_m * 1e3, 4),
            "overhead_pct": round(100 * (on_m / off_m - 1), 2),
            "paired_overhead_pct": round(100 * float(np.median(pairs)) / off_m, 2),
            "direct_us": round(direct * 1e6, 2), "direct_pct": round(100 * direct / off_m, 3),
            "ticks_probed_pct": round(100 * probed, 1), "systems": len(world.schedule.systems()), "peak_rss_mb": rss}


def direct_cost(n_systems: int, ticks: int = 3000) -> tuple[float, float]:
    """The profiler's own seconds per tick over ``n_systems`` no-op systems: (timing only, a memory probe's extra)."""
    from socius.ecs import Component, Scalar, World, system
    from socius.ecs.profiler import Profiler

    class Marker(Component):
        on = Scalar(np.bool_)

    def per_tick(mode: str) -> float:
        w = World()
        w.spawn(100, {Marker: {}})
        for i in range(n_systems):
            w.add_systems(system(lambda ctx: None, reads=(Marker,), name=f"noop_{i}"))
        prof = Profiler(w, memory=mode != "bare", memory_budget=1e9)  # a huge budget probes every tick
        t = time.perf_counter()
        if mode == "off":
            w.step(ticks)
        else:
            prof.step(ticks)
        dt = (time.perf_counter() - t) / ticks
        prof.close()
        return dt

    off = min(per_tick("off") for _ in range(3))
    bare = min(per_tick("bare") for _ in range(3)) - off
    probed = min(per_tick("probed") for _ in range(3)) - off
    return bare, probed - bare


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="large", choices=sorted(SIZES))
    p.add_argument("--scenario", help="only this scenario (built-in name or user reference)")
    p.add_argument("--agents", type=int, help="agents (default: the size's)")
    p.add_argument("--ticks", type=int, help="rounds: ticks per mode, on and off each (default: the size's)")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: run one case here
    a = p.parse_args(argv)
    if a.one:
        emit(one(a.scenario, a.agents, a.ticks))
        return
    cases = SIZES[a.size]
    if a.scenario:
        cases = [c for c in cases if c[0] == a.scenario] or [(a.scenario, a.agents or 100_000, a.ticks or 50)]
    for name, agents, ticks in cases:
        args = ["--one", "--scenario", name, "--agents", str(a.agents or agents), "--ticks", str(a.ticks or ticks)]
        for rec in run_case(MODULE, args):
            emit(rec)


if __name__ == "__main__":
    main()
