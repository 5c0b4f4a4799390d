"""One tick of every shipped LLM scenario with the instant mock engine: time per system.

::

    python -m socius.bench.scenarios                       # 10k and 100k agents, every LLM scenario
    python -m socius.bench.scenarios --size small          # CI-sized
    python -m socius.bench.scenarios --scenario social --agents 100000

The scenarios are the registry's built-ins that make LLM calls (those with a
mock policy); one that fails to import or to build is reported as skipped,
not fatal. Each (scenario, size) runs in a fresh process (so ``peak_rss_mb``
is its own): the world is built with the scenario's defaults and
``agents = N`` (plus the small overrides in :data:`OVERRIDES`, e.g. the
social scenario seeds 1% of its agents so that a tick has real work), with
the instant mock engine and the response log on (a real run writes it),
then ``warmup`` ticks run untimed (one for every scenario, so that
first-call costs — loading numba's caches, building indexes — stay out of
the figures; three for the social scenario, which needs a few ticks
before most agents act) and ``ticks`` ticks are timed with the kernel's
:class:`~socius.ecs.profiler.Profiler`.

One JSON line per case: ``{"bench": "scenarios", "scenario", "agents",
"tick_s", "us_per_agent", "systems_us_per_agent": {system: µs}, "kernel_us_per_agent",
"llm": {"acting", "engine_s", "ours_us_per_acting"}, "build_s", "peak_rss_mb"}``.
Times are medians over the timed ticks; every µs-per-agent figure divides by
the world's agents ``N`` (not by those a system touched), so the systems'
figures add up to ``us_per_agent`` with the kernel's. ``llm``: agents that
asked the LLM in the timed ticks (median per tick), the mock engine's own
time, and our decision pipeline's time per asking agent without the engine
(render, dedup, parse, log) — the ≤ 5 µs budget of the decision pipeline;
``log_writer_us_per_acting`` is the time the response log's writer thread
spent encoding and writing Parquet, per asking agent: it runs beside the
tick (so it is not in ``ours_us_per_acting``) but takes a core while it does.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from socius.bench import configurations
from socius.bench.common import emit, peak_rss_mb, run_case

MODULE = "socius.bench.scenarios"

#: per scenario: config values from the agent count (besides ``agents``)
OVERRIDES = {
    "social": lambda n: {"seeds": max(5, n // 100)},
}


def llm_scenarios() -> list[str]:
    """Names of the registry's built-in scenarios that make LLM calls (a scenario that fails to import raises)."""
    from socius.app.registry import BUILTIN, get_scenario

    return [name for name in sorted(BUILTIN) if get_scenario(name).mock_policy is not None]


def profile_ticks(name: str, values: dict, ticks: int, warmup: int):
    """Build scenario ``name`` with config ``values`` and the instant mock engine (response log on), run
    ``warmup`` untimed ticks, profile ``ticks``; returns (world, profiler summary, the timed ticks'
    DecisionStats rows, build seconds, seconds the response log's writer thread spent on the timed ticks)."""
    from socius.ecs.profiler import Profiler
    from socius.app.config import build_config
    from socius.app.registry import get_scenario
    from socius.app.engines import EngineChoice
    from socius.app.run import build_world
    from socius.llm import DecisionStats

    sc = get_scenario(name)
    cfg = build_config(sc.config, values)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        world = build_world(sc, cfg, seed=1, engine=EngineChoice("mock"), out=Path(tmp))
        build_s = time.perf_counter() - t0
        world.step(warmup)
        first = world.tick
        from socius.llm import LLM
        log = world.resource(LLM).log
        world.flush()
        written0 = log.written_s
        with Profiler(world, memory=False) as prof:
            prof.step(ticks)
        world.flush()  # the response log's last files, before the folder goes
        writer_s = log.written_s - written0
        stats = world.get_resource(DecisionStats)
        rows = [r for r in (stats.rows if stats is not None else []) if r["tick"] >= first]
    return world, prof.summary(), rows, build_s, writer_s


def one(name: str, agents: int, ticks: int, warmup: int) -> dict:
    values = {"agents": agents, **OVERRIDES.get(name, lambda n: {})(agents)}
    world, s, rows, build_s, writer_s = profile_ticks(name, values, ticks, warmup)
    n = len(world)
    tick_s = s["tick_s"]["median"]
    per_tick: dict[int, dict] = {}
    for r in rows:  # several decisions in one tick add up
        t = per_tick.setdefault(r["tick"], {"acting": 0, "engine_s": 0.0, "ours_s": 0.0})
        t["acting"] += r["agents"]
        t["engine_s"] += r["engine_s"]
        t["ours_s"] += sum(r[k] for k in ("render_s", "dedup_s", "log_s", "parse_s", "extract_s"))
    llm = None
    if per_tick:
        med = lambda k: statistics.median(t[k] for t in per_tick.values())  # noqa: E731
        acting = med("acting")
        total = sum(t["acting"] for t in per_tick.values())
        llm = {"acting": int(acting), "engine_s": round(med("engine_s"), 4),
               "ours_us_per_acting": round(med("ours_s") * 1e6 / acting, 3) if acting else None,
               "log_writer_us_per_acting": round(writer_s * 1e6 / total, 3) if total else None}
    return {"bench": "scenarios", "scenario": name, "agents": n, "ticks": ticks, "warmup": warmup,
            "tick_s": round(tick_s, 5), "us_per_agent": round(tick_s * 1e6 / n, 3),
            "systems_us_per_agent": {r["name"]: round(r["median_s"] * 1e6 / n, 3) for r in s["systems"]},
            "kernel_us_per_agent": round(s["kernel"]["median_s"] * 1e6 / n, 3),
            "llm": llm, "build_s": round(build_s, 3), "peak_rss_mb": peak_rss_mb()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m socius.bench.scenarios", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="large", help="small | large (bench/configurations.py)")
    p.add_argument("--scenario", nargs="*", help="scenario names (default: every LLM scenario in the registry)")
    p.add_argument("--agents", type=int, nargs="*")
    p.add_argument("--ticks", type=int)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    cfg = configurations.get("scenarios", a.size)
    ticks = a.ticks or cfg["ticks"]
    if a.one:
        name = a.scenario[0]
        emit(one(name, a.agents[0], ticks, cfg["warmup"].get(name, cfg["warmup"].get("*", 0))))
        return
    failed = []
    for name in a.scenario or llm_scenarios():
        for n in a.agents or cfg["agents"]:
            try:
                for rec in run_case(MODULE, ["--one", "--size", a.size, "--scenario", name, "--agents", str(n),
                                             "--ticks", str(ticks)]):
                    emit(rec)
            except SystemExit as e:  # one scenario failing must not hide the others: run them all, then fail
                print(json.dumps({"bench": "scenarios", "scenario": name, "agents": n, "failed": str(e)}),
                      flush=True)
                sys.stderr.flush()
                failed.append(f"{name} at {n} agents")
    if failed:
        sys.exit(f"bench scenarios: failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
