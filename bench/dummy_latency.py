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

One JSON line: ``{"bench": "dummy_latency", "agents", "engine", "wall_s",
"build_s", "requests", "peak_rss_mb"}`` (``wall_s``: the round, build apart).
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from socius.bench import configurations
from socius.bench.common import emit, peak_rss_mb


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
    t1 = time.perf_counter()
    world.step(1)
    wall = time.perf_counter() - t1
    world.flush()
    row = world.resource(DecisionStats).rows[-1]
    return {"wall_s": round(wall, 3), "build_s": round(build_s, 3), "requests": row["requests"],
            "ok": row["ok"], "failed": row["failed"], "engine_s": round(row["engine_s"], 3)}


def main(argv=None) -> None:
    from socius.app.engines import EngineChoice

    p = argparse.ArgumentParser(prog="python -m socius.bench.dummy_latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="large")
    p.add_argument("--engine", choices=("mock", "openai"), default="mock")
    p.add_argument("--agents", type=int)
    p.add_argument("--profile", default="occupation",
                   help="guess-game profile in prompts: occupation (many agents share a prompt) or background "
                        "(nearly one distinct prompt per agent)")
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
                deadline = time.time() + 30
                while time.time() < deadline:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                        break
                    except OSError:
                        time.sleep(0.1)
                conf = {"base_url": f"http://127.0.0.1:{port}/v1", "api_key": "EMPTY", "model": "dummy",
                        "concurrency": cfg["openai_concurrency"], "timeout_s": 60.0}
                rec = run_round(agents, EngineChoice("openai", conf), Path(tmp), a.profile)
            finally:
                server.terminate()
                server.wait(timeout=10)
    emit({"bench": "dummy_latency", "agents": agents, "engine": a.engine, "profile": a.profile, **rec,
          "per_request_s": delay, "peak_rss_mb": peak_rss_mb()})


if __name__ == "__main__":
    main()
