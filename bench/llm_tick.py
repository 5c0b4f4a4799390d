"""One LLM decision tick of the guess game with an instant mock: our own overhead per stage.

::

    python -m socius.bench.llm_tick                 # 10k, 100k, 1M agents
    python -m socius.bench.llm_tick --agents 100000

One JSON line per size: ``{"bench": "llm_tick", "agents", "us_per_agent",
"stages_s": {"render", "dedup", "engine", "log", "parse", "extract", "apply"},
"requests", "dedup_ratio", "peak_rss_mb"}``. ``us_per_agent`` counts
everything but the engine (target: ≤ 5 µs per agent). Personalised prompts
(every agent's profile — name, age, gender, occupation, education — is in its prompt), sampled at temperature 0.7, so
deduplication only merges agents with identical profiles. The response log
is on (the run would write it), in a temporary folder. Medians over ticks.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from socius.bench import configurations
from socius.bench.common import emit, peak_rss_mb, run_case

MODULE = "socius.bench.llm_tick"


def one(agents: int, ticks: int) -> dict:
    from socius.scenarios.guess import SCENARIO, GuessConfig
    from socius.app.engines import EngineChoice
    from socius.app.run import build_world
    from socius.llm import DecisionStats

    with tempfile.TemporaryDirectory() as tmp:
        cfg = GuessConfig(agents=agents, profile="background")
        t0 = time.perf_counter()
        world = build_world(SCENARIO, cfg, seed=1, engine=EngineChoice("mock"), out=Path(tmp))
        build_s = time.perf_counter() - t0
        sys_s = []
        world.schedule.hooks.append(lambda s, dt: sys_s.append((s.name, dt)))
        for _ in range(ticks):
            world.step(1)
        world.flush()  # the response log's last files, before the folder goes
        rows = world.resource(DecisionStats).rows
        decide_total = [sum(r[k] for k in ("render_s", "dedup_s", "engine_s", "log_s", "parse_s", "extract_s"))
                        for r in rows]
        report_s = [dt for name, dt in sys_s if name == "report_numbers"]
        score_s = [dt for name, dt in sys_s if name == "score_round"]
        apply_s = [max(r - d, 0.0) + s for r, d, s in zip(report_s, decide_total, score_s)]
        med = lambda xs: statistics.median(xs)  # noqa: E731
        stages = {k[:-2]: round(med([r[k] for r in rows]), 4)
                  for k in ("render_s", "dedup_s", "engine_s", "log_s", "parse_s", "extract_s")}
        stages["apply"] = round(med(apply_s), 4)
        ours = sum(v for k, v in stages.items() if k != "engine")
        return {"bench": "llm_tick", "agents": agents, "us_per_agent": round(ours / agents * 1e6, 3),
                "stages_s": stages, "requests": int(med([r["requests"] for r in rows])),
                "dedup_ratio": round(med([r["dedup_ratio"] for r in rows]), 3), "build_s": round(build_s, 3),
                "peak_rss_mb": peak_rss_mb()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m socius.bench.llm_tick", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="large")
    p.add_argument("--agents", type=int, nargs="*")
    p.add_argument("--ticks", type=int)
    p.add_argument("--one", action="store_true", help=__import__("argparse").SUPPRESS)
    a = p.parse_args(argv)
    cfg = configurations.get("llm_tick", a.size)
    ticks = a.ticks or cfg["ticks"]
    if a.one:
        emit(one(a.agents[0], ticks))
        return
    for n in a.agents or cfg["agents"]:
        for rec in run_case(MODULE, ["--one", "--agents", str(n), "--ticks", str(ticks)]):
            emit(rec)


if __name__ == "__main__":
    main()
