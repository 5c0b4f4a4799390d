"""Boltzmann wealth model: Socius kernel vs Mesa's own ``BoltzmannWealth``.

::

    python -m socius.bench.boltzmann                      # sweep 1k, 10k, 100k, 1M
    python -m socius.bench.boltzmann --agents 100000 --steps 20 --vs-mesa
    python -m socius.bench.boltzmann --size small --vs-mesa --match
    python -m socius.bench.boltzmann --cold --agents 100000 --vs-mesa   # a user's 10-step run, compile included

One JSON line per size: ``{"bench": "boltzmann", "agents", "steps", "init_s",
"steps_per_s", "gini", "peak_rss_mb", "load_1m", "load_1m_end"}`` (the 1-minute load
average before and after) plus, with ``--vs-mesa``, ``"mesa_steps_per_s"``,
``"mesa_steps"``, ``"steps_per_s_beside_mesa"`` and ``"ratio"`` (ours / Mesa's, same
run, Mesa's steps interleaved with ours so both see the same load). Steps are
timed one by one and the median is reported (the machine is noisy); Mesa runs at
most ``mesa_max_steps`` steps per size (its steps cost seconds at 100k+). Each
size runs in a fresh process so ``peak_rss_mb`` is its own (taken before Mesa's
model is built).

``--cold`` measures what a user of ``socius run boltzmann --steps 10`` waits for instead of the
warm step: each size twice in a fresh interpreter, first with an empty numba cache
(``NUMBA_CACHE_DIR`` a new folder: every kernel compiles, as on a first run) and then with the cache
that run filled (as every later run), ``{"bench": "boltzmann_cold", "agents", "steps", "numba_cache":
"empty" | "filled", "import_s", "init_s", "first_step_s", "steps_s", "steps_per_s", "step_ms",
"threads", "run_s", "peak_rss_mb", "load_1m", "load_1m_end"}`` — ``import_s`` importing the
scenario, ``init_s`` building the world, ``steps_s`` the ``--steps`` steps (default 10) with
whatever they compile, load or probe, ``steps_per_s`` = steps / ``steps_s``, ``step_ms`` each step's
time and ``threads`` the threads each used; ``run_s`` is the whole ``socius run boltzmann --agents N
--steps S --quiet`` command in its own process on a cache in the same state (interpreter start,
imports, build, steps, report). With ``--vs-mesa``, Mesa's steps per second (measured after ours, in the
same process) and ``"ratio"``: our cold ``steps_per_s`` over Mesa's.

``--match`` adds ``{"bench": "boltzmann_gini_match", ...}``: the Gini after
each step over many seeds for both implementations, with the largest
standardised difference of per-step means and a two-sample Kolmogorov–Smirnov
p-value on the final Gini — the same rules should give the same distribution
of outcomes (RNGs differ, so single runs do not match).
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from socius.bench import configurations
from socius.bench.common import emit, median, peak_rss_mb, run_case

MODULE = "socius.bench.boltzmann"


def socius_world(agents: int, seed: int):
    """A built world (numba kernels compiled / loaded beforehand, outside the timing) and its build time."""
    from socius.ecs import World
    from socius.scenarios.boltzmann import BoltzmannConfig, build

    warm = World(seed=seed + 1)
    build(warm, BoltzmannConfig(agents=min(agents, 100)))
    warm.step(1)
    t0 = time.perf_counter()
    world = World(seed=seed)
    build(world, BoltzmannConfig(agents=agents))
    return world, time.perf_counter() - t0


def time_steps(step, k: int) -> list[float]:
    """Wall seconds of ``k`` calls of ``step()``, one by one."""
    times = []
    for _ in range(k):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return times


def mesa_model(agents: int, seed: int):
    try:
        from mesa.examples.basic.boltzmann_wealth_model.model import BoltzmannWealth
    except ImportError as e:
        raise SystemExit(f"--vs-mesa needs mesa (pip install 'socius[bench]'): {e}")
    side = math.isqrt(agents - 1) + 1
    return BoltzmannWealth(n=agents, width=side, height=side, seed=seed)


def one_case(agents: int, steps: int, seed: int, vs_mesa: bool, mesa_steps: int) -> None:
    """Ours alone (steps, peak RSS); with ``vs_mesa`` Mesa's steps interleaved with more of ours.

    Mesa's steps take seconds, ours milliseconds: timing them one after the other lets a change
    in the machine's load between the two skew the ratio. Interleaved — one Mesa step, then one
    untimed step of ours (caches warm again) and ``steps // mesa_steps`` timed ones, and so on —
    both see the same load; ``ratio`` is the ratio of those medians (``steps_per_s_beside_mesa``
    is ours in that stretch).
    """
    from socius.scenarios.boltzmann import GiniSeries

    rec = {"bench": "boltzmann", "agents": agents, "steps": steps, "seed": seed, "load_1m": os.getloadavg()[0]}
    world, init_s = socius_world(agents, seed)
    times = time_steps(world.step, steps)
    rec.update({"init_s": round(init_s, 4), "steps_per_s": round(1.0 / median(times), 2),
                "gini": round(world.resource(GiniSeries).values[-1], 5), "peak_rss_mb": peak_rss_mb()})
    if vs_mesa:
        t0 = time.perf_counter()
        model = mesa_model(agents, seed)
        rec["mesa_init_s"] = round(time.perf_counter() - t0, 4)
        ours, theirs = [], []
        for _ in range(mesa_steps):
            theirs += time_steps(model.step, 1)
            world.step()  # untimed: caches (and threads) warm again after Mesa's step
            ours += time_steps(world.step, max(1, steps // mesa_steps))
        rec.update({"mesa_steps_per_s": round(1.0 / median(theirs), 3), "mesa_steps": mesa_steps,
                    "mesa_gini": round(model.compute_gini(), 5),
                    "steps_per_s_beside_mesa": round(1.0 / median(ours), 2),
                    "ratio": round(median(theirs) / median(ours), 1)})
    rec["load_1m_end"] = os.getloadavg()[0]
    emit(rec)


def cold_case(agents: int, steps: int, seed: int, vs_mesa: bool, mesa_steps: int) -> None:
    """A fresh interpreter's first ``steps`` steps: nothing compiled or warmed beforehand."""
    rec = {"bench": "boltzmann_cold", "agents": agents, "steps": steps, "seed": seed,
           "numba_cache": os.environ.get("SOCIUS_BENCH_CACHE", ""), "load_1m": os.getloadavg()[0]}
    t0 = time.perf_counter()
    from socius.ecs import World
    from socius.scenarios.boltzmann import BoltzmannConfig, Workspace, build
    t1 = time.perf_counter()
    world = World(seed=seed)
    build(world, BoltzmannConfig(agents=agents))
    t2 = time.perf_counter()
    times, threads = [], []
    for _ in range(steps):
        t = time.perf_counter()
        world.step()
        times.append(time.perf_counter() - t)
        ws = world.get_resource(Workspace)
        threads.append(ws.last_mode if ws is not None else None)
    total = sum(times)
    rec.update({"import_s": round(t1 - t0, 3), "init_s": round(t2 - t1, 3), "first_step_s": round(times[0], 4),
                "steps_s": round(total, 4), "steps_per_s": round(steps / total, 2),
                "step_ms": [round(1e3 * t, 2) for t in times], "threads": threads, "peak_rss_mb": peak_rss_mb()})
    if vs_mesa:
        model = mesa_model(agents, seed)
        theirs = time_steps(model.step, mesa_steps)
        rec.update({"mesa_steps_per_s": round(1.0 / median(theirs), 3), "mesa_steps": mesa_steps,
                    "ratio": round(median(theirs) * steps / total, 1)})
    rec["load_1m_end"] = os.getloadavg()[0]
    emit(rec)


def cold(agents: int, steps: int, seed: int, size: str, vs_mesa: bool) -> None:
    """:func:`cold_case` with an empty numba cache, then with the one it filled; and the CLI run's wall time."""
    args = ["--one", "--cold", "--size", size, "--agents", str(agents), "--steps", str(steps),
            "--seed", str(seed)] + (["--vs-mesa"] if vs_mesa else [])
    run = [sys.executable, "-m", "socius.app", "run", "boltzmann", "--agents", str(agents), "--steps", str(steps),
           "--seed", str(seed), "--quiet"]
    with tempfile.TemporaryDirectory(prefix="socius-bench-numba-") as cache, \
            tempfile.TemporaryDirectory(prefix="socius-bench-numba-cli-") as cli_cache:
        for state in ("empty", "filled"):
            env = {**os.environ, "NUMBA_CACHE_DIR": cache, "SOCIUS_BENCH_CACHE": state}
            for rec in run_case(MODULE, args, env=env):
                with tempfile.TemporaryDirectory(prefix="socius-bench-run-") as out:  # the CLI, on a cache as cold
                    t = time.perf_counter()
                    subprocess.run([*run, "--out", out], env={**env, "NUMBA_CACHE_DIR": cli_cache}, check=True,
                                   capture_output=True)
                    rec["run_s"] = round(time.perf_counter() - t, 3)
                emit(rec)


def gini_trajectories(agents: int, steps: int, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    from socius.ecs import World
    from socius.scenarios.boltzmann import BoltzmannConfig, GiniSeries, build

    ours, theirs = [], []
    for s in seeds:
        w = World(seed=s)
        build(w, BoltzmannConfig(agents=agents))
        w.step(steps)
        ours.append(w.resource(GiniSeries).values)
        m = mesa_model(agents, s)
        g = []
        for _ in range(steps):
            m.step()
            g.append(m.compute_gini())
        theirs.append(g)
    return np.asarray(ours), np.asarray(theirs)


def match(agents: int, steps: int, n_seeds: int) -> dict:
    from scipy.stats import ks_2samp

    ours, theirs = gini_trajectories(agents, steps, list(range(1000, 1000 + n_seeds)))
    se = np.sqrt(ours.var(axis=0, ddof=1) / n_seeds + theirs.var(axis=0, ddof=1) / n_seeds)
    z = np.abs(ours.mean(axis=0) - theirs.mean(axis=0)) / np.maximum(se, 1e-12)
    return {"bench": "boltzmann_gini_match", "agents": agents, "steps": steps, "seeds": n_seeds,
            "gini_mean": [round(x, 4) for x in ours.mean(axis=0)],
            "mesa_gini_mean": [round(x, 4) for x in theirs.mean(axis=0)],
            "max_z": round(float(z.max()), 2), "ks_p_final": round(float(ks_2samp(ours[:, -1], theirs[:, -1]).pvalue), 4),
            "peak_rss_mb": peak_rss_mb()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m socius.bench.boltzmann", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="large", help="configuration in bench/configurations.py (small|large)")
    p.add_argument("--agents", type=int, nargs="*", help="sizes to run (default: the configuration's sweep)")
    p.add_argument("--steps", type=int, help="steps per size")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--vs-mesa", action="store_true", help="also time Mesa's model at the same sizes")
    p.add_argument("--match", action="store_true", help="compare Gini trajectories with Mesa over many seeds")
    p.add_argument("--cold", action="store_true",
                   help="a fresh process's first steps (default 10), numba cache empty then filled")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: run one case here
    a = p.parse_args(argv)
    cfg = configurations.get("boltzmann", a.size)
    steps = a.steps or (10 if a.cold else cfg["steps"])
    seed = cfg["seeds"][0] if a.seed is None else a.seed
    mesa_steps = min(steps, cfg["mesa_max_steps"])
    if a.one:
        (cold_case if a.cold else one_case)(a.agents[0], steps, seed, a.vs_mesa, mesa_steps)
        return
    if a.cold:
        for n in a.agents or cfg["agents"]:
            cold(n, steps, seed, a.size, a.vs_mesa)
        return
    for n in a.agents or cfg["agents"]:
        if n < 1:
            raise SystemExit("--agents: sizes must be >= 1")
        args = ["--one", "--size", a.size, "--agents", str(n), "--steps", str(steps), "--seed", str(seed)]
        for rec in run_case(MODULE, args + (["--vs-mesa"] if a.vs_mesa else [])):
            emit(rec)
    if a.match:
        emit(match(cfg["match_agents"], cfg["match_steps"], cfg["match_seeds"]))


if __name__ == "__main__":
    main()
