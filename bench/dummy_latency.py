"""AgentScope's dummy-model experiment (§4.2): one round of the guess game where every LLM call takes 1 s.

AgentScope: 1M agents in 40 s on 4 machines (serial: ~12 days; Python asyncio:
8.6 h). Here: the mock engine with a latency model of 1 s per request and all
requests in flight at once, so the round's wall time is that second plus
Socius's own overhead (and the mock policy's reading of every prompt).
``--engine openai`` measures the HTTP path instead: ``OpenAIEngine`` against a
local OpenAI-compatible server that answers after 1 s (10k agents).

Two prompt cases, each in its own process (so ``peak_rss_mb`` is the case's own):

* ``occupation`` (shared): players who share an occupation share a prompt — 1M
  agents ask a few hundred distinct requests;
* ``unique``: the ``background`` profile with every player's name suffixed with
  its ID, so every prompt is distinct (``background`` alone, as in earlier figures,
  leaves ~7.5k distinct prompts at 10k agents and ~30k at 1M).

``--stream on,off`` runs each case with the pipeline streaming into the engine
(:mod:`socius.llm.stream`, ``--stream-chunk`` requests per call) and without (one call
per batch, the engines' default).
``--policy dummy`` has the mock answer as AgentScope's dummy model does — a number
per agent, without reading the prompt (as the HTTP path's dummy server) — instead of
the scenario's mock policy, which reads every prompt with regular expressions: its
cost is the mock engine's, not the platform's, and grows with every distinct prompt.

::

    python -m socius.bench.dummy_latency                  # mock, 1M agents, both cases
    python -m socius.bench.dummy_latency --engine openai  # HTTP, 10k agents, both cases
    python -m socius.bench.dummy_latency --engine openai --agents 100000 --profiles unique --stream on,off --repeat 3

One JSON line per round: ``bench``, ``agents``, ``engine``, ``profile``, ``stream``
(and ``path``: ``batched`` or ``per-request`` HTTP), ``round``, ``wall_s`` (the round,
build apart), ``requests``, the decision's stage times (``render_s``, ``dedup_s``,
``parse_s``, ``log_s``, ``engine_s``, ``wait_s``, ``overlap_s``, ``our_s``:
:mod:`socius.llm.pipeline`), ``cpu_us_per_prompt`` (this process's CPU time over
the round — rendering, HTTP client, parsing; the server is another process — per
distinct request; ``sys_s``: its kernel part — on a VM whose memory is handed out
lazily, first-touching a gigabyte of fresh memory costs seconds of it, so ``--rounds 2``
shows a second round on memory the first one warmed), ``peak_rss_mb`` and ``load_avg_1m``;
then one ``"summary"`` line per case and path with the medians of the ``--repeat`` worlds'
first rounds.
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

import numpy as np

from socius.bench import configurations
from socius.bench.common import emit, median, peak_rss_mb, run_case

PROFILES = ("occupation", "unique", "background")
FIGURES = ("render_s", "dedup_s", "parse_s", "log_s", "engine_s", "wait_s", "overlap_s", "our_s", "extract_s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_unique(world) -> None:
    """Suffix every player's name with its ID: every prompt of the round becomes distinct."""
    from socius.ecs import STR
    from socius.scenarios.guess.components import Profile
    ids = world.ids_of(Profile)
    name = np.asarray(world.get(Profile, "name", ids)).astype(STR)
    world.set(Profile, ids, name=np.strings.add(np.strings.add(name, " #"), ids.astype(STR)))


def run_round(agents: int, engine, out: Path, profile: str = "occupation", stream: bool = True,
              policy: str = "scenario", temperature: float = 1.0, chunk: int | None = None,
              rounds: int = 1) -> list[dict]:
    """Build the world (timed apart) and play ``rounds`` rounds; one record per round."""
    from dataclasses import replace

    from socius.app.run import build_world
    from socius.llm import LLM, DecisionStats, number_policy
    from socius.llm.stream import DEFAULT_CHUNK
    from socius.scenarios.guess import SCENARIO, GuessConfig

    scenario = SCENARIO if policy == "scenario" else replace(SCENARIO, mock_policy=lambda cfg: number_policy(0, 100))
    t0 = time.perf_counter()
    cfg = GuessConfig(agents=agents, profile="background" if profile == "unique" else profile, temperature=temperature)
    world = build_world(scenario, cfg, seed=1, engine=engine, out=out)
    if profile == "unique":
        make_unique(world)
    llm = world.resource(LLM)
    for eng in llm.engines.values():
        eng.stream_chunk = 0 if not stream else (chunk or eng.stream_chunk or DEFAULT_CHUNK)
    build_s = time.perf_counter() - t0
    recs = []
    for k in range(rounds):
        c1, t1 = os.times(), time.perf_counter()
        world.step(1)
        wall, c2 = time.perf_counter() - t1, os.times()
        world.flush()
        cpu, sys_s = (c2.user + c2.system) - (c1.user + c1.system), c2.system - c1.system
        row = world.resource(DecisionStats).rows[-1]
        recs.append({"round": k + 1, "wall_s": round(wall, 3), "build_s": round(build_s, 3),
                     "requests": row["requests"], "ok": row["ok"], "extracted": row["extracted"],
                     "failed": row["failed"], **{f: round(float(row.get(f, 0.0)), 3) for f in FIGURES},
                     "stream_calls": row.get("stream_calls", 0),
                     "stream_chunk": max(getattr(e, "stream_chunk", 0) for e in llm.engines.values()),
                     "cpu_s": round(cpu, 3), "sys_s": round(sys_s, 3),
                     "cpu_us_per_prompt": round(1e6 * cpu / max(1, row["requests"]), 1)})
    for eng in llm.engines.values():
        if hasattr(eng, "http_path"):                  # the openai engine: which path it took
            for rec in recs:
                rec.update(http_path=eng.http_path, http_calls=eng.stats["http_calls"])
            eng.close()
    return recs


def _case(a, agents: int, profile: str, stream: bool, cfg: dict, tmp: Path) -> None:
    """Every round of one (profile, stream) case in this process, one line each, then the summaries."""
    from socius.app.engines import EngineChoice

    delay = cfg["per_request_s"]
    head = {"bench": "dummy_latency", "agents": agents, "engine": a.engine, "profile": profile,
            "stream": "on" if stream else "off", "temperature": a.temperature,
            **({"policy": a.policy} if a.engine == "mock" else {})}
    paths = ["mock"] if a.engine == "mock" else a.paths.split(",")
    for path in paths:
        if a.engine == "mock":
            choice = EngineChoice("mock", {"per_request_s": delay})
        else:
            choice = EngineChoice("openai", {"base_url": a.server, "api_key": "EMPTY", "model": "dummy",
                                             "concurrency": cfg["openai_concurrency"], "timeout_s": 60.0,
                                             "prompt_lists": {"batched": "on", "per-request": "off"}[path],
                                             "list_seeds": a.list_seeds})
        recs = []
        for i in range(a.repeat):
            for rec in run_round(agents, choice, tmp / f"{path}-{i}", profile, stream, a.policy, a.temperature,
                                 a.stream_chunk, a.rounds):
                recs.append(rec)
                emit({**head, **({"path": path, "list_seeds": a.list_seeds} if a.engine == "openai" else {}),
                      **rec, "per_request_s": delay, "peak_rss_mb": peak_rss_mb(),
                      "load_avg_1m": os.getloadavg()[0]})
        recs = [r for r in recs if r["round"] == 1]   # the summary: first rounds
        emit({**head, "summary": True, **({"path": path} if a.engine == "openai" else {}), "rounds": len(recs),
              **{f"median_{k}": median([r[k] for r in recs]) for k in ("wall_s", "our_s", "engine_s", "overlap_s",
                                                                        "cpu_us_per_prompt")},
              "requests": recs[-1]["requests"], "peak_rss_mb": peak_rss_mb(), "load_avg_1m": os.getloadavg()[0]})


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m socius.bench.dummy_latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="large")
    p.add_argument("--engine", choices=("mock", "openai"), default="mock")
    p.add_argument("--agents", type=int)
    p.add_argument("--profiles", "--profile", default="occupation,unique",
                   help=f"comma-separated prompt cases ({', '.join(PROFILES)}), each in its own process")
    p.add_argument("--stream", default="off", help="comma-separated: on (stream into the engine), off, or both")
    p.add_argument("--policy", default="scenario", choices=("scenario", "dummy"),
                   help="mock: the scenario's mock policy (reads every prompt) or AgentScope's dummy (does not)")
    p.add_argument("--stream-chunk", type=int, help="requests per streamed call (default: the engine's)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="the guess decision's sampling temperature (0: greedy, planned and streamed chunk by chunk)")
    p.add_argument("--paths", default="batched,per-request",
                   help="openai: comma-separated HTTP paths to run, each --repeat times (batched, per-request)")
    p.add_argument("--list-seeds", default="server", choices=("group", "server"),
                   help="openai batched path: OpenAIConfig.list_seeds (the guess game samples at temperature 1 "
                        "with one seed per agent, so 'group' sends one prompt per request)")
    p.add_argument("--repeat", type=int, default=1, help="worlds per case and path (medians of their first rounds)")
    p.add_argument("--rounds", type=int, default=1,
                   help="rounds per world: the first touches fresh memory (slow on some VMs), later ones reuse it")
    p.add_argument("--server", help=argparse.SUPPRESS)   # a running dummy server (set for the case processes)
    a = p.parse_args(argv)
    cfg = configurations.get("dummy_latency", a.size)
    profiles = a.profiles.split(",")
    streams = [s == "on" for s in a.stream.replace("both", "on,off").split(",")]
    bad = [x for x in profiles if x not in PROFILES] + [s for s in a.stream.split(",") if s not in ("on", "off", "both")]
    if bad:
        p.error(f"unknown --profiles/--stream value(s): {', '.join(bad)}")
    agents = a.agents or (cfg["agents"] if a.engine == "mock" else cfg["openai_agents"])
    if len(profiles) == 1 and len(streams) == 1 and (a.engine == "mock" or a.server):
        with tempfile.TemporaryDirectory() as tmp:
            _case(a, agents, profiles[0], streams[0], cfg, Path(tmp))
        return
    server = None
    if a.engine == "openai" and not a.server:
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "socius.bench.dummy_server", "--port", str(port),
                                   "--delay", str(cfg["per_request_s"])])
        _wait_for(port)
        argv += ["--server", f"http://127.0.0.1:{port}/v1"]
    try:
        for profile in profiles:
            for stream in streams:
                for rec in run_case("socius.bench.dummy_latency",
                                    argv + ["--agents", str(agents), "--profiles", profile,
                                            "--stream", "on" if stream else "off"]):
                    emit(rec)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)


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
