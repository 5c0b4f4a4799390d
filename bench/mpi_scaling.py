"""MPI scaling of a CPU-bound tick: the S3 social scenario with the instant mock engine.

::

    python -m socius.bench.mpi_scaling [--size small|large] [--ranks 1,2] [--ticks T]

Strong scaling: the same world (``strong_agents``) on 1 and 2 ranks; weak
scaling: ``weak_agents_per_rank`` agents per rank. Each case runs in a fresh
``mpiexec -n R`` job with BLAS / numba / OpenMP pinned to one thread per rank
(so one rank cannot borrow the other's core) and prints one JSON line::

    {"bench": "mpi_scaling", "mode": "strong", "ranks": 2, "agents": 200000, "tick_s": ...,
     "speedup": ..., "halo_bytes": ..., "halo_share": ..., "rank_tick_s": [...], "stage_s": {...},
     "load_avg": [...], "peak_rss_mb": ...}

``tick_s``: median over the timed ticks of the slowest rank's tick (ranks
meet in collectives every tick, so that is the job's tick). ``halo_bytes``:
bytes all ranks sent per tick to exchange state between ranks (message
routing and halo exchange). ``halo_share``: wall time inside routing and halo
exchange (waiting included) over the tick, worst rank. ``speedup``: the
one-rank tick over this tick (strong) — the target on this 2-core machine is
>= 1.7 at 2 ranks, with ``halo_share`` <= 0.10. Runs more ranks than cores
only for correctness, not timing. Strong-scaling records also give the share
of follow edges cut by the contiguous-block partition the run uses and by a
community partition of the same graph (``cut_block``, ``cut_community``) —
posts reach every rank either way, so the cut does not change the traffic.

Where a shortfall comes from: ``rank_tick_s`` is each rank's own mean tick
and ``stage_s`` each system's seconds per tick on each rank (``{system: [rank
0, rank 1, …]}``, from the schedule's timing hook), with ``"other"`` the rest of
the rank's tick (the kernel's sync points, message flip, waiting in
collectives). A stage that takes as long on each of 2 ranks as on one rank
with the whole world does not split; one that takes longer per agent on 2 ranks
than on 1 is slowed by the other rank (shared cores, caches or memory
bandwidth); a large ``other`` on one rank is waiting for a slower one.
``load_avg``: the 1-minute load average before and after the case.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .common import emit, median, peak_rss_mb
from .configurations import get

PINNED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def worker(agents: int, ticks: int, warmup: int, seed: int) -> None:
    """One case, run by every rank under mpiexec; rank 0 prints the JSON line."""
    from socius.mpi import Ranks, rank_context
    from socius.app.config import build_config
    from socius.app.registry import get_scenario
    from socius.app.engines import EngineChoice
    from socius.app.run import build_world

    ctx = rank_context()
    sc = get_scenario("social")
    cfg = build_config(sc.config, {"agents": agents})
    world = build_world(sc, cfg, seed, EngineChoice("mock"), None, ranks=ctx if ctx.size > 1 else None)
    world.step(warmup)
    r = world.get_resource(Ranks)
    route0 = (r.route_s, r.route_bytes, ctx.comm_s.get("halo", 0.0)) if r is not None else (0.0, 0, 0.0)
    stage: dict[str, float] = {}

    def timed(system, seconds: float) -> None:
        stage[system.name] = stage.get(system.name, 0.0) + seconds
    world.schedule.hooks.append(timed)
    dts = []
    for _ in range(ticks):
        ctx.barrier()
        t0 = time.perf_counter()
        world.step(1)
        dts.append(time.perf_counter() - t0)
    world.schedule.hooks.remove(timed)
    names = sorted(stage)  # every rank runs the same schedule
    per_tick = np.array([stage[k] / ticks for k in names], dtype=np.float64)
    stages = ctx.allgather(per_tick.view(np.int64)).view(np.float64).reshape(ctx.size, len(names))
    rank_ticks = ctx.allgather(np.array(dts).view(np.int64)).view(np.float64).reshape(ctx.size, ticks)
    route1 = (r.route_s, r.route_bytes, ctx.comm_s.get("halo", 0.0)) if r is not None else (0.0, 0, 0.0)
    exch_s = (route1[0] - route0[0] + route1[2] - route0[2]) / ticks
    mine = np.array([*dts, exch_s, (route1[1] - route0[1]) / ticks, peak_rss_mb()], dtype=np.float64)
    every = ctx.allgather(mine.view(np.int64)).view(np.float64)  # [ranks, ticks + 3]
    if ctx.rank == 0:
        tick = every[:, :ticks].max(axis=0)          # the job's tick: its slowest rank's
        tick_s = median(tick)
        own = rank_ticks.mean(axis=1)                # [ranks]: the mean, so that the stages add up to it
        stage_s = {k: [round(float(v), 4) for v in stages[:, j]] for j, k in enumerate(names)}
        stage_s["other"] = [round(float(v), 4) for v in own - stages.sum(axis=1)]
        emit({"bench": "mpi_scaling", "ranks": ctx.size, "agents": agents, "agents_per_rank": agents // ctx.size,
              "ticks": ticks, "tick_s": round(tick_s, 6), "halo_bytes": int(every[:, ticks + 1].sum()),
              "halo_share": round(float(every[:, ticks].max()) / tick_s, 4) if tick_s > 0 else None,
              "rank_tick_s": [round(float(v), 4) for v in own], "stage_s": stage_s,
              "peak_rss_mb": float(every[:, ticks + 2].max())})


def _mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if not found:
        raise SystemExit("mpi_scaling needs MPI: pip install 'socius[mpi]'")
    return found


def run_case(ranks: int, agents: int, ticks: int, warmup: int, seed: int) -> dict:
    env = {**os.environ, **PINNED}
    if ranks > (os.cpu_count() or 1):
        env["MPIR_CVAR_ENABLE_HEAVY_YIELD"] = "1"
    cmd = [_mpiexec(), "-n", str(ranks), sys.executable, "-m", "socius.bench.mpi_scaling", "--worker",
           "--agents", str(agents), "--ticks", str(ticks), "--warmup", str(warmup), "--seed", str(seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"mpi_scaling: {ranks} ranks x {agents} agents failed (exit {proc.returncode})")
    return [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")][-1]


def cuts(agents: int, n_ranks: int, seed: int) -> dict:
    """Share of the social graph's edges cut by a block and by a community partition over ``n_ranks``."""
    from socius.mpi import block_partition, community_partition, cut_fraction
    from socius.app.config import build_config
    from socius.app.registry import get_scenario
    from socius.scenarios.social import edges

    cfg = build_config(get_scenario("social").config, {"agents": agents})
    src, dst = edges(cfg, seed)
    ids = np.arange(agents, dtype=np.int64)
    return {"cut_block": round(cut_fraction(block_partition(ids, n_ranks), src, dst), 4),
            "cut_community": round(cut_fraction(community_partition(ids, src, dst, n_ranks), src, dst), 4)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="large")
    p.add_argument("--ranks", default=None, help="comma-separated rank counts (default from the configuration)")
    p.add_argument("--ticks", type=int, default=None)
    p.add_argument("--repeat", type=int, default=None, help="runs per case; the median tick is reported")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--agents", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--warmup", type=int, default=2, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        worker(a.agents, a.ticks, a.warmup, a.seed)
        return
    conf = get("mpi_scaling", a.size)
    ranks = [int(x) for x in a.ranks.split(",")] if a.ranks else conf["ranks"]
    ticks = a.ticks or conf["ticks"]
    repeat = a.repeat or conf["repeat"]

    def case(n_ranks, agents):
        load = [os.getloadavg()[0]]
        runs = [run_case(n_ranks, agents, ticks, conf["warmup"], a.seed) for _ in range(repeat)]
        best = sorted(runs, key=lambda r: r["tick_s"])[len(runs) // 2]  # the median run
        best["repeat"] = repeat
        best["tick_s_runs"] = [r["tick_s"] for r in runs]
        best["load_avg"] = load + [os.getloadavg()[0]]
        return best

    one = None
    for n_ranks in ranks:  # strong scaling: one world, more ranks
        rec = case(n_ranks, conf["strong_agents"])
        if n_ranks > 1:
            rec.update(cuts(conf["strong_agents"], n_ranks, a.seed))
        if n_ranks == 1:
            one = rec["tick_s"]
        rec["mode"] = "strong"
        if one:
            rec["speedup"] = round(one / rec["tick_s"], 3)
        emit(rec)
    base = None
    for n_ranks in ranks:  # weak scaling: the same share per rank
        rec = case(n_ranks, conf["weak_agents_per_rank"] * n_ranks)
        rec["mode"] = "weak"
        if n_ranks == 1:
            base = rec["tick_s"]
        if base:
            rec["efficiency"] = round(base / rec["tick_s"], 3)  # 1.0 = perfect weak scaling
        emit(rec)


if __name__ == "__main__":
    main()
