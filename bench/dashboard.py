"""The dashboard's agents table at scale: a filtered, sorted page through the HTTP API.

::

    python -m socius.bench.dashboard                     # 100k and 1M agents
    python -m socius.bench.dashboard --agents 10000      # one size (CI smoke)

Each size runs in a fresh interpreter (its peak RSS is its own): build a world
of ``Profile`` (name, age, occupation, income, …) and ``Group`` columns, save
it as a run directory's ``snapshot.socius``, restore it through
:class:`~socius.web.runs.RunFiles` as ``socius serve`` does, and time
``GET /api/runs/RUN/agents`` (in-process ASGI client, JSON included) with
``where = Profile.age >= 60 and Group.group == 3``, sorted by
``Profile.income`` descending, 50 rows. One JSON line per case:

``{"bench": "dashboard_agents_page" | "dashboard_search" | "dashboard_histogram", "agents", "ms",
"cold_ms", "matched", "restore_s", "peak_rss_mb"}`` — ``ms`` is the median of 5 calls once the
sort column's order is cached, ``cold_ms`` the first call (it builds that order).

``--overhead`` measures what ``socius run --ui`` costs the simulation: a mock-engine ``social`` run of
``--agents`` (default 100k) for ``--ticks`` ticks, without and with the live dashboard (server thread +
a client thread polling the overview, metrics, pipeline and an agents page every 0.5 s), interleaved
``--rounds`` times. One line: ``{"bench": "dashboard_tick_overhead", "agents", "ticks", "ms_per_tick",
"ms_per_tick_ui", "overhead_pct", "copies", "peak_rss_mb"}`` (medians over rounds of the mean tick time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from socius.bench.common import emit, peak_rss_mb, run_case

SIZES = (100_000, 1_000_000)
WHERE = "Profile.age >= 60 and Group.group == 3"
NAMES = np.array(["Ada", "Bo", "Chen", "Dana", "Emeka", "Fatima", "Goran", "Hana", "Ivan", "Jun"])
JOBS = np.array(["nurse", "driver", "teacher", "engineer", "farmer", "lawyer", "student", "retiree"])


def build(n: int, out: Path) -> None:
    from socius.components.environment import Group
    from socius.components.profile import Profile
    from socius.ecs import STR, World

    rng = np.random.default_rng(1)
    w = World(seed=1)
    w.spawn(n, {Profile: {"name": NAMES[rng.integers(0, NAMES.size, n)].astype(STR),
                          "age": rng.integers(16, 90, n).astype(np.int32),
                          "occupation": JOBS[rng.integers(0, JOBS.size, n)].astype(STR),
                          "income": rng.lognormal(10, 0.5, n).astype(np.float32)},
                Group: {"group": rng.integers(0, 10, n)}})
    out.mkdir(parents=True, exist_ok=True)
    w.save(out / "snapshot.socius")


def timed(client, url: str, params: dict, repeat: int = 5) -> tuple[float, float, dict]:
    t = time.perf_counter()
    r = client.get(url, params=params)
    cold = (time.perf_counter() - t) * 1e3
    assert r.status_code == 200, r.text
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(url, params=params)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), cold, r.json()


def case(n: int) -> None:
    from fastapi.testclient import TestClient

    from socius.web.api import create_app
    from socius.web.runs import RunFiles

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        build(n, run)
        source = RunFiles(run)
        t = time.perf_counter()
        source.agents()
        restore_s = time.perf_counter() - t
        client = TestClient(create_app({"run": source}, "t" * 20), headers={"Authorization": "Bearer " + "t" * 20})
        base = {"agents": n, "restore_s": round(restore_s, 3)}
        ms, cold, page = timed(client, "/api/runs/run/agents", {"where": WHERE, "sort": "Profile.income",
                                                               "desc": "true", "limit": 50})
        emit({"bench": "dashboard_agents_page", **base, "ms": round(ms, 1), "cold_ms": round(cold, 1),
              "matched": page["total"], "peak_rss_mb": peak_rss_mb()})
        ms, cold, page = timed(client, "/api/runs/run/agents", {"where": "Profile.age >= 60", "q": "nurse",
                                                               "sort": "Profile.age", "limit": 50})
        emit({"bench": "dashboard_search", **base, "ms": round(ms, 1), "cold_ms": round(cold, 1),
              "matched": page["total"], "peak_rss_mb": peak_rss_mb()})
        ms, cold, h = timed(client, "/api/runs/run/agents/histogram", {"column": "Profile.income", "where": WHERE})
        emit({"bench": "dashboard_histogram", **base, "ms": round(ms, 1), "cold_ms": round(cold, 1),
              "matched": h["total"], "peak_rss_mb": peak_rss_mb()})


def overhead(n: int, ticks: int, rounds: int) -> dict:
    import json as _json
    import resource
    import threading
    import urllib.request

    from socius.app.config import build_config
    from socius.app.engines import EngineChoice
    from socius.app.registry import get_scenario
    from socius.app.run import run_scenario
    from socius.web.live import LiveRun
    from socius.web.server import DashboardThread

    sc = get_scenario("social")
    cfg = build_config(sc.config, {"agents": n})
    plain, ui, copies = [], [], 0
    with tempfile.TemporaryDirectory() as d:
        for r in range(rounds):
            res = run_scenario(sc, cfg, seed=1, ticks=ticks, out=None, engine=EngineChoice("mock"))
            plain.append(res.run_s / res.ticks_run * 1e3)
            live = LiveRun(Path(d) / f"ui{r}", sc, ticks)
            stop = threading.Event()
            with DashboardThread({"run": live}) as dash:
                def poll():
                    hdr = {"Authorization": f"Bearer {dash.token}"}
                    base = f"http://127.0.0.1:{dash.port}/api/runs/run"
                    while not stop.is_set():
                        for path in ("", "/metrics", "/decisions", "/agents?where=Profile.age+%3E%3D+60&limit=50"):
                            try:
                                urllib.request.urlopen(urllib.request.Request(base + path, headers=hdr), timeout=30).read()
                            except OSError:
                                pass
                        stop.wait(0.5)
                t = threading.Thread(target=poll, daemon=True)
                t.start()
                res = run_scenario(sc, cfg, seed=1, ticks=ticks, out=Path(d) / f"ui{r}", progress=live.boundary,
                                   engine=EngineChoice("mock"))
                stop.set()
                t.join(30)
            ui.append(res.run_s / res.ticks_run * 1e3)
            copies += int(live._copy_at > 0)
    a, b = statistics.median(plain), statistics.median(ui)
    rec = {"bench": "dashboard_tick_overhead", "agents": n, "ticks": ticks, "rounds": rounds,
           "ms_per_tick": round(a, 2), "ms_per_tick_ui": round(b, 2), "overhead_pct": round(100 * (b - a) / a, 2),
           "copies": copies, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    print(_json.dumps(rec), flush=True)
    return rec


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, action="append", help="sizes (default 100000 and 1000000)")
    p.add_argument("--inline", action="store_true", help="run in this process (one size)")
    p.add_argument("--overhead", action="store_true", help="tick time of a social run with and without --ui")
    p.add_argument("--ticks", type=int, default=10, help="--overhead: ticks per run (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="--overhead: interleaved rounds (default 3)")
    args = p.parse_args(argv)
    if args.overhead:
        for n in args.agents or [100_000]:
            overhead(n, args.ticks, args.rounds)
        return
    sizes = args.agents or list(SIZES)
    if args.inline:
        for n in sizes:
            case(n)
        return
    for n in sizes:
        for rec in run_case("socius.bench.dashboard", ["--inline", "--agents", str(n)]):
            emit(rec)


if __name__ == "__main__":
    main(sys.argv[1:])
