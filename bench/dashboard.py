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
sort column's order is cached (the table's kept answers dropped before each, so the page is
computed, not looked up), ``cold_ms`` the first call (it builds that order).

``--overhead`` measures what ``socius run --ui`` costs the simulation: a mock-engine ``social`` run
of ``--agents`` (default 100k) for ``--ticks`` ticks (default 25), without and with the live
dashboard: the server on a thread, and a client in its own process (as a browser is) polling what
the overview reads — the run, its metrics, pipeline and ranks — and an agents page (each asks for a
fresh world copy; left out with ``--overview-only``) every ``--poll-s`` seconds (default 2, as the
page does). The arms are interleaved A B B A … ``--rounds`` times; both write the same kind of run
directory (response log; metrics and decisions as the run goes), and all must reach the same state
hash. One line: ``{"bench": "dashboard_tick_overhead", "agents", "ticks", "poll_s", "agents_page",
"ms_per_tick", "ms_per_tick_ui", "overhead_pct", "paired_overhead_pct_median", "cpu_ms_per_tick",
"cpu_ms_per_tick_ui", "cpu_overhead_pct", "sim_cpu_overhead_pct", "other_cpu_ms_per_tick",
"rounds_ms", "boundary_ms_per_tick", "copies", "copy_ms", "load_avg", "peak_rss_mb"}``: medians
over rounds of the wall time per tick (the overhead), of the process's CPU time per tick (the
dashboard's own work, whatever else loads the machine), of the simulation thread's CPU time, and of
the other threads' CPU time (without and with: the server's work shows there); the time spent in
``LiveRun.boundary`` per tick, and the world copies taken.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
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


def timed(client, url: str, params: dict, table, repeat: int = 5) -> tuple[float, float, dict]:
    """Cold and median warm milliseconds of one GET; the table's kept answers are dropped before each
    call, so a warm call computes the page (with the cached sort order) rather than looking it up."""
    t = time.perf_counter()
    r = client.get(url, params=params)
    cold = (time.perf_counter() - t) * 1e3
    assert r.status_code == 200, r.text
    times = []
    for _ in range(repeat):
        table._answers.clear()
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
        table = source.agents()
        ms, cold, page = timed(client, "/api/runs/run/agents", {"where": WHERE, "sort": "Profile.income",
                                                               "desc": "true", "limit": 50}, table)
        emit({"bench": "dashboard_agents_page", **base, "ms": round(ms, 1), "cold_ms": round(cold, 1),
              "matched": page["total"], "peak_rss_mb": peak_rss_mb()})
        ms, cold, page = timed(client, "/api/runs/run/agents", {"where": "Profile.age >= 60", "q": "nurse",
                                                               "sort": "Profile.age", "limit": 50}, table)
        emit({"bench": "dashboard_search", **base, "ms": round(ms, 1), "cold_ms": round(cold, 1),
              "matched": page["total"], "peak_rss_mb": peak_rss_mb()})
        ms, cold, h = timed(client, "/api/runs/run/agents/histogram", {"column": "Profile.income", "where": WHERE},
                            table)
        emit({"bench": "dashboard_histogram", **base, "ms": round(ms, 1), "cold_ms": round(cold, 1),
              "matched": h["total"], "peak_rss_mb": peak_rss_mb()})


POLLER = """
import http.client, sys, time
port, token, every = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
paths = sys.argv[4:]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
while True:
    for path in paths:
        try:
            conn.request("GET", "/api/runs/run" + path, headers={"Authorization": "Bearer " + token})
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    time.sleep(every)
"""
#: what the overview polls every 2 s (the run; on a new tick its metrics, pipeline and ranks), and an agents page
POLLED = ("", "/metrics", "/decisions", "/ranks", "/agents?where=Profile.age+%3E%3D+60&sort=Profile.age&limit=50")


def _poller(dash, every_s: float, agents_page: bool) -> subprocess.Popen:
    """A client in its own process, as a browser is: one kept-alive connection polling :data:`POLLED`
    every ``every_s`` seconds (without the agents page unless ``agents_page``)."""
    paths = POLLED if agents_page else POLLED[:-1]
    return subprocess.Popen([sys.executable, "-c", POLLER, str(dash.port), dash.token, str(every_s), *paths])


def _arm(sc, cfg, ticks: int, out: Path, ui: bool, poll_s: float, agents_page: bool = True) -> dict:
    """One run of ``ticks`` ticks into the run directory ``out`` (both arms write the same kind: response
    log, metrics and decisions as the run goes); with ``ui``, served live and polled. Timed from the
    first boundary to the last (the build, the first tick's imports and the final writes left out):
    wall ms per tick, the process's CPU ms per tick (the simulation and the server threads, not the
    polling client) and the simulation thread's own CPU ms per tick."""
    from socius.app.engines import EngineChoice
    from socius.app.run import run_scenario
    from socius.web.live import LiveRun
    from socius.web.server import DashboardThread

    live = LiveRun(out, sc, ticks) if ui else None
    marks, spent = [], [0.0]

    def boundary(w, total):
        marks.append((time.perf_counter(), time.process_time(), time.thread_time()))
        if live is not None:  # timed from boundary to boundary: its cost is in the next tick's time
            live.boundary(w, total)
            spent[0] += time.perf_counter() - marks[-1][0]
    if live is None:
        res = run_scenario(sc, cfg, seed=1, ticks=ticks, out=out, progress=boundary, engine=EngineChoice("mock"))
    else:
        with DashboardThread({"run": live}) as dash:
            poller = _poller(dash, poll_s, agents_page)
            try:
                res = run_scenario(sc, cfg, seed=1, ticks=ticks, out=out, progress=boundary,
                                   engine=EngineChoice("mock"))
            finally:
                poller.kill()
                poller.wait()
    k = len(marks) - 1
    per = [(marks[-1][i] - marks[0][i]) / k * 1e3 for i in range(3)]
    rec = {"ms": per[0], "cpu_ms": per[1], "sim_cpu_ms": per[2], "other_cpu_ms": per[1] - per[2],
           "hash": res.state_hash}
    if live is not None:
        rec.update(copies=live.copies, copy_ms=live.copy_cost_s * 1e3, boundary_ms=spent[0] / res.ticks_run * 1e3)
    return rec


def overhead(n: int, ticks: int, rounds: int, poll_s: float = 2.0, agents_page: bool = True) -> dict:
    """Tick time with and without the live dashboard, the arms interleaved A B B A … (drift cancels)."""
    from socius.app.config import build_config
    from socius.app.registry import get_scenario

    sc = get_scenario("social")
    cfg = build_config(sc.config, {"agents": n})
    load = [os.getloadavg()[0]]
    arms: dict[bool, list[dict]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as d:
        for r in range(rounds):
            for ui in ((False, True) if r % 2 == 0 else (True, False)):
                out = Path(d) / f"{'ui' if ui else 'plain'}{r}"
                arms[ui].append(_arm(sc, cfg, ticks, out, ui, poll_s, agents_page))
                shutil.rmtree(out, ignore_errors=True)
    load.append(os.getloadavg()[0])
    assert len({x["hash"] for x in arms[False] + arms[True]}) == 1, "the dashboard changed the run"

    def med(ui, key):
        return statistics.median(x[key] for x in arms[ui])

    def pct(key):
        return round(100 * (med(True, key) - med(False, key)) / med(False, key), 2)
    paired = [100 * (u["ms"] - p["ms"]) / p["ms"] for p, u in zip(arms[False], arms[True])]
    rec = {"bench": "dashboard_tick_overhead", "agents": n, "ticks": ticks, "rounds": rounds, "poll_s": poll_s,
           "agents_page": agents_page,
           "ms_per_tick": round(med(False, "ms"), 2), "ms_per_tick_ui": round(med(True, "ms"), 2),
           "overhead_pct": pct("ms"), "paired_overhead_pct_median": round(statistics.median(paired), 2),
           "cpu_ms_per_tick": round(med(False, "cpu_ms"), 2), "cpu_ms_per_tick_ui": round(med(True, "cpu_ms"), 2),
           "cpu_overhead_pct": pct("cpu_ms"), "sim_cpu_overhead_pct": pct("sim_cpu_ms"),
           "other_cpu_ms_per_tick": [round(med(False, "other_cpu_ms"), 2), round(med(True, "other_cpu_ms"), 2)],
           "rounds_ms": [[round(p["ms"], 1), round(u["ms"], 1)] for p, u in zip(arms[False], arms[True])],
           "boundary_ms_per_tick": round(med(True, "boundary_ms"), 3), "copies": sum(x["copies"] for x in arms[True]),
           "copy_ms": round(med(True, "copy_ms"), 1), "load_avg": [round(x, 2) for x in load],
           "peak_rss_mb": peak_rss_mb()}
    emit(rec)
    return rec


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, action="append", help="sizes (default 100000 and 1000000)")
    p.add_argument("--inline", action="store_true", help="run in this process (one size)")
    p.add_argument("--overhead", action="store_true", help="tick time of a social run with and without --ui")
    p.add_argument("--ticks", type=int, default=25, help="--overhead: ticks per run (default 25)")
    p.add_argument("--rounds", type=int, default=3, help="--overhead: interleaved rounds (default 3)")
    p.add_argument("--poll-s", type=float, default=2.0, help="--overhead: the client polls every so many s "
                   "(default 2, as the page does)")
    p.add_argument("--overview-only", action="store_true",
                   help="--overhead: poll the overview's routes, no agents page")
    args = p.parse_args(argv)
    if args.overhead:
        for n in args.agents or [100_000]:
            overhead(n, args.ticks, args.rounds, args.poll_s, not args.overview_only)
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
