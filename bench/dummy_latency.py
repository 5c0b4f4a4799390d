"""AgentScope's dummy-model experiment (§4.2): one round of the guess game where every LLM call takes 1 s.

AgentScope: 1M agents in 40 s on 4 machines (serial: ~12 days; Python asyncio:
8.6 h). Here: the mock engine with a latency model of 1 s per request and all
requests in flight at once, so the round's wall time is that second plus
Socius's own overhead for 1M agents (target ≤ 10 s, ≤ 4 GB). ``--engine
openai`` measures the HTTP path instead: ``OpenAIEngine`` against a local
OpenAI-compatible server that answers after 1 s (10k agents).

::

    python -m socius.bench.dummy_latency                  # mock, 1M agents
    python -m socius.bench.dummy_latency --engine openai  # HTTP, 10k agents
    python -m socius.bench.dummy_latency --engine openai --agents 10000 --profile background --repeat 3

One JSON line per round: ``{"bench": "dummy_latency", "agents", "engine", "wall_s",
"build_s", "requests", "cpu_us_per_prompt", "peak_rss_mb"}`` (``wall_s``: the round,
build apart; ``cpu_us_per_prompt``: this process's CPU time over the round — rendering,
HTTP client, parsing; the server is another process — per distinct request). With
``--engine openai`` every path of ``--paths`` runs in the same invocation (``path``:
``batched``, many prompts per HTTP request, or ``per-request``), then one ``"summary"``
line per path with the medians over ``--repeat`` rounds.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from socius.bench import configurations
from socius.bench.common import emit, median, peak_rss_mb


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_round(agents: int, engine, out: Path, profile: str = "occupation") -> dict:
    from socius.scenarios.guess import SCENARIO, GuessConfig
    from socius.app.run import build_world
    from socius.llm import DecisionStats

    t0 = time.perf_counter()
    world = build_world(SCENARIO, GuessConfig(agents=agents, profile=profile), seed=1, engine=engine, out=out)
    build_s = time.perf_counter() - t0
    c1, t1 = time.process_time(), time.perf_counter()
    world.step(1)
    wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    world.flush()
    row = world.resource(DecisionStats).rows[-1]
    rec = {"wall_s": round(wall, 3), "build_s": round(build_s, 3), "requests": row["requests"],
           "ok": row["ok"], "failed": row["failed"], "engine_s": round(row["engine_s"], 3),
           "cpu_s": round(cpu, 3), "cpu_us_per_prompt": round(1e6 * cpu / max(1, row["requests"]), 1)}
    from socius.llm import LLM
    for eng in world.resource(LLM).engines.values():
        if hasattr(eng, "http_path"):                  # the openai engine: which path it took
            rec.update(http_path=eng.http_path, http_calls=eng.stats["http_calls"])
            eng.close()
    return rec


def main(argv=None) -> None:
    from socius.app.engines import EngineChoice

    p = argparse.ArgumentParser(prog="python -m socius.bench.dummy_latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="large")
    p.add_argument("--engine", choices=("mock", "openai"), default="mock")
    p.add_argument("--agents", type=int)
    p.add_argument("--profile", default="occupation",
                   help="guess-game profile in prompts: occupation (many agents share a prompt) or background "
                        "(nearly one distinct prompt per agent)")
    p.add_argument("--paths", default="batched,per-request",
                   help="openai: comma-separated HTTP paths to run, each --repeat times (batched, per-request)")
    p.add_argument("--list-seeds", default="server", choices=("group", "server"),
                   help="openai batched path: OpenAIConfig.list_seeds (the guess game samples at temperature 1 "
                        "with one seed per agent, so 'group' sends one prompt per request)")
    p.add_argument("--repeat", type=int, default=1, help="openai: rounds per path (medians reported)")
    a = p.parse_args(argv)
    cfg = configurations.get("dummy_latency", a.size)
    delay = cfg["per_request_s"]
    with tempfile.TemporaryDirectory() as tmp:
        if a.engine == "mock":
            agents = a.agents or cfg["agents"]
            rec = run_round(agents, EngineChoice("mock", {"per_request_s": delay}), Path(tmp), a.profile)
        else:
            agents = a.agents or cfg["openai_agents"]
            port = _free_port()
            server = subprocess.Popen([sys.executable, "-m", "socius.bench.dummy_server", "--port", str(port),
                                       "--delay", str(delay)])
            try:
                _wait_for(port)
                for path in a.paths.split(","):
                    conf = {"base_url": f"http://127.0.0.1:{port}/v1", "api_key": "EMPTY", "model": "dummy",
                            "concurrency": cfg["openai_concurrency"], "timeout_s": 60.0,
                            "prompt_lists": {"batched": "on", "per-request": "off"}[path],
                            "list_seeds": a.list_seeds}
                    recs = []
                    for i in range(a.repeat):
                        rec = run_round(agents, EngineChoice("openai", conf), Path(tmp) / f"{path}{i}", a.profile)
                        recs.append(rec)
                        emit({"bench": "dummy_latency", "agents": agents, "engine": "openai", "path": path,
                              "profile": a.profile, "list_seeds": a.list_seeds, **rec, "per_request_s": delay, "load_avg_1m": os.getloadavg()[0]})
                    emit({"bench": "dummy_latency", "summary": True, "engine": "openai", "path": path,
                          "agents": agents, "profile": a.profile, "rounds": len(recs),
                          "median_wall_s": median([r["wall_s"] for r in recs]),
                          "median_cpu_us_per_prompt": median([r["cpu_us_per_prompt"] for r in recs]),
                          "peak_rss_mb": peak_rss_mb()})
            finally:
                server.terminate()
                server.wait(timeout=10)
            return
    emit({"bench": "dummy_latency", "agents": agents, "engine": a.engine, "profile": a.profile, **rec,
          "per_request_s": delay, "load_avg_1m": os.getloadavg()[0], "peak_rss_mb": peak_rss_mb()})


def _wait_for(port: int) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"dummy server on port {port} did not start")


if __name__ == "__main__":
    main()
