"""``socius profile``: where a scenario spends its tick.

::

    socius profile SCENARIO [--agents N] [--ticks T] [--seed S] [--engine mock|local|vllm|openai]
                            [--engine-config FILE] [--config FILE] [--json] [--trace FILE] [--out DIR]

SCENARIO is a built-in name, ``pkg.module:NAME`` or ``path/to/file.py[:NAME]``
(nothing has to be installed). The world is built (timed on its own, engine
start-up and LLM calls made during the build included), then T ticks run
under :class:`socius.ecs.profiler.Profiler`. The report:

* **ticks per second**: median and spread (p10–p90, min–max) over the ticks;
  each tick is timed on its own, so a slow first tick (JIT, caches) shows in
  the spread, not in the median;
* **per system**, in schedule order: wall time per tick (median), share of
  the tick (median over ticks of system time / tick time), agents processed
  (entities holding every component the system declares in ``reads`` /
  ``writes``), µs per agent, and peak memory growth (largest rise of the
  process RSS while the system ran, over the ticks probed — all of them once
  ticks take a few ms, see :mod:`socius.ecs.profiler`); a ``(kernel)`` row holds
  the rest of the tick: phase sync points, message flip, profiler hooks;
* **LLM decision systems** (from the :class:`~socius.llm.pipeline.DecisionStats`
  rows each system's ``decide`` calls added during the profiled ticks):
  engine time against our own time, split into render / dedup / parse / log
  and *apply & other* (the system's wall time minus all of those: querying,
  preparing fields, the extraction prompts and their parse, writing results);
  requests, completions, prompt and output tokens, dedup ratio (agents per
  request) and parse outcomes (ok / extracted / fallback / failed);
* **components**: bytes per agent of every component table (string columns
  estimated from their lengths), after the build and after the run.

Output: rich tables on the terminal, or with ``--json`` the same report as
one JSON object on stdout (status lines go to stderr). A copy is always
saved: ``profile.json`` and ``profile.txt`` in the run directory, ``--out DIR``
or by default ``runs/profile-<scenario>-<YYYYmmdd-HHMMSS>``; an LLM scenario's
response log goes there too (``responses/``), as in a real run. ``--trace
FILE`` writes a Chrome trace / Perfetto JSON: one track, the build, then each
tick with its systems nested in it (decision stage figures in the events'
``args``), plus an RSS counter — open it in https://ui.perfetto.dev or
``chrome://tracing``.

MPI: ``mpiexec -n N socius profile SCENARIO ...`` profiles the world split
over N ranks. Every rank profiles its share; rank 0 prints and saves the
report: the systems table is the slowest rank's (the rank with the most
busy time per tick — tick time less time spent waiting in collectives), and
``ranks`` lists every rank with its entities, tick time, busy time and, per
tick, the wall time inside halo exchanges, message routing and other
collectives (reductions), plus bytes routed.
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import math
import os
import platform
import re
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from socius.ecs import World
from socius.ecs.profiler import Profiler, component_memory

from .config import config_dict
from .registry import Scenario
from .run import EngineChoice, SerialScenarioError, build_world

FORMAT = "socius-profile/1"
STAGES = ("render_s", "dedup_s", "parse_s", "log_s")     # our own, non-overlapping stage times of decide()
COUNTS = ("calls", "agents", "requests", "completions", "prompt_tokens", "output_tokens",
          "ok", "extracted", "fallback", "failed")
TEXT_WIDTH = 120   # columns of profile.txt and of tables printed to a pipe or file
COMM = ("halo", "route", "reduce")  # what the collectives of a tick were for (RankContext.category)


class DecisionProbe:
    """A schedule hook that attributes new ``DecisionStats`` rows to the system that just ran.

    Added to ``world.schedule.hooks`` before the profiler's hook; only active
    while ``profiler`` runs a tick.
    """

    def __init__(self, world: World, profiler: Profiler):
        from socius.llm import DecisionStats
        self._kind = DecisionStats
        self.world = world
        self.profiler = profiler
        stats = world.get_resource(DecisionStats)
        self.build_rows: list[dict] = list(stats.rows) if stats is not None else []
        self._seen = len(self.build_rows)
        self._stats_obj = stats
        self.rows: list[tuple[int, str, dict]] = []   # (profiled tick index, system, DecisionStats row)

    def hook(self, s, seconds: float) -> None:
        if not self.profiler.running:
            return
        stats = self.world.get_resource(self._kind)
        if stats is None:
            return
        if stats is not self._stats_obj:   # a new DecisionStats resource: all its rows are new
            self._stats_obj, self._seen = stats, 0
        n = len(stats.rows)
        if n > self._seen:
            i = self.profiler.tick_index
            self.rows.extend((i, s.name, r) for r in stats.rows[self._seen:n])
            self._seen = n


@dataclass
class ProfileRun:
    """What one profile produced: the report (plain data) and the raw timings behind the trace."""

    report: dict[str, Any]
    profiler: Profiler = field(repr=False)
    probe: DecisionProbe = field(repr=False)
    origin: float = 0.0          # perf_counter at the start of the build
    build_s: float = 0.0


def profile_scenario(scenario: Scenario, cfg, *, seed: int = 0, ticks: int = 10,
                     engine: EngineChoice | None = None, out: Path | None = None,
                     memory: bool = True, status=None, ranks=None) -> ProfileRun:
    """Build ``scenario`` (timed apart), run ``ticks`` profiled ticks; returns the report.

    ``status(text)`` is called with short progress lines. A Ctrl-C during
    the ticks ends them early; the report then covers the ticks that ran and
    says ``"interrupted": true``.
    """
    say = status or (lambda text: None)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    say(f"building {scenario.name} …")
    origin = time.perf_counter()
    world = build_world(scenario, cfg, seed, engine if scenario.mock_policy is not None else None, out, ranks)
    build_s = time.perf_counter() - origin
    components_built = {c["name"]: c["bytes"] for c in component_memory(world)}
    prof = Profiler(world, memory=memory, rank=0 if ranks is None else ranks.rank)
    comm0 = _comm_totals(world)
    rss_built = prof.rss.current() if prof.rss is not None else None
    probe = DecisionProbe(world, prof)
    world.schedule.hooks.insert(0, probe.hook)  # before the profiler's hook (see Profiler's docstring)
    interrupted = False
    say(f"profiling {ticks} ticks of {len(world):,} entities …")
    try:
        prof.attach()
        for _ in range(ticks):
            prof.step(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        prof.detach()
        if probe.hook in world.schedule.hooks:
            world.schedule.hooks.remove(probe.hook)
        _close_llm(world)
    rep = _report(scenario, cfg, seed, engine, world, prof, probe, build_s, components_built, rss_built, out)
    rep["interrupted"] = interrupted
    _add_ranks(rep, world, comm0, _comm_totals(world))
    prof.close()
    return ProfileRun(rep, prof, probe, origin, build_s)


def _comm_totals(world: World) -> dict[str, float] | None:
    """Seconds in collectives by category, routing wall time and bytes so far (None on one rank)."""
    from socius.mpi import Ranks
    r = world.get_resource(Ranks)
    if r is None or r.ctx.size == 1:
        return None
    return {**{k: r.ctx.comm_s.get(k, 0.0) for k in COMM}, "route_wall": r.route_s, "route_bytes": r.route_bytes}


def _add_ranks(rep: dict, world: World, before: dict | None, after: dict | None) -> None:
    """Collective under MPI: every rank's figures into ``rep["ranks"]``; the slowest rank's report wins."""
    if before is None:
        return
    from socius.mpi import Ranks
    ctx = world.resource(Ranks).ctx
    ticks = max(1, rep["ticks"])
    per_tick = {k: (after[k] - before[k]) / ticks for k in after}
    mine = rep["ranks"][0]
    comm = sum(per_tick[k] for k in COMM)
    mine.update({"comm_s_per_tick": {k: per_tick[k] for k in COMM}, "route_wall_s_per_tick": per_tick["route_wall"],
                 "route_bytes_per_tick": per_tick["route_bytes"],
                 "busy_s_per_tick": (mine["tick_s_median"] or 0.0) - comm})
    blob = np.frombuffer(json.dumps(_finite(rep)).encode(), dtype=np.uint8)
    data, counts = ctx.allgatherv(blob)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    every = [json.loads(data[bounds[i]:bounds[i + 1]].tobytes()) for i in range(ctx.size)]
    rows = [e["ranks"][0] for e in every]
    slowest = max(range(ctx.size), key=lambda i: rows[i]["busy_s_per_tick"])
    base = every[slowest]
    rep.clear()
    rep.update(base)
    rep["ranks"] = rows
    rep["slowest_rank"] = slowest
    rep["entities"] = sum(r["entities"] for r in rows)
    rep["mpi"] = {"ranks": ctx.size, "systems_from_rank": slowest,
                  "comm_s_per_tick_max": {k: max(r["comm_s_per_tick"][k] for r in rows) for k in COMM},
                  "route_bytes_per_tick": sum(r["route_bytes_per_tick"] for r in rows)}


def _close_llm(world: World) -> None:
    from socius.llm import LLM
    llm = world.get_resource(LLM)
    if llm is not None:
        llm.close()


# ---------------------------------------------------------------------------- the report
def _finite(x):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _llm_figures(sys_seconds: dict[int, float], rows: list[tuple[int, dict]]) -> dict[str, Any]:
    """Decision figures of one system from its DecisionStats rows (see the module docstring)."""
    per_tick: dict[int, dict[str, float]] = {}
    per_decision: dict[str, dict[str, Any]] = {}
    for i, r in rows:
        t = per_tick.setdefault(i, {k: 0.0 for k in ("engine_s", "extract_s", *STAGES)})
        for k in t:
            t[k] += float(r.get(k, 0.0))
        d = per_decision.setdefault(r["decision"], {k: 0 for k in COUNTS} | {"ticks": set()})
        d["calls"] += 1
        d["ticks"].add(i)
        for k in COUNTS[1:]:
            d[k] += int(r.get(k, 0))
    ticks = sorted(per_tick)
    wall = np.array([sys_seconds.get(i, float("nan")) for i in ticks])
    col = {k: np.array([per_tick[i][k] for i in ticks]) for k in ("engine_s", "extract_s", *STAGES)}
    ours = wall - col["engine_s"]
    other = ours - sum(col[k] for k in STAGES)

    def med(a):
        return float(np.nanmedian(a)) if a.size else float("nan")

    totals = {k: sum(d[k] for d in per_decision.values()) for k in COUNTS}
    return {
        "decisions": sorted(per_decision),
        "ticks": len(ticks),
        "median_s": {"wall": med(wall), "engine": med(col["engine_s"]), "ours": med(ours),
                     **{k[:-2]: med(col[k]) for k in STAGES}, "apply_other": med(other),
                     "extract_total": med(col["extract_s"])},
        "engine_share": med(col["engine_s"] / np.where(wall > 0, wall, np.nan)),
        "totals": totals,
        "dedup_ratio": (totals["agents"] / totals["requests"]) if totals["requests"] else None,
        "per_decision": {k: {c: v[c] for c in COUNTS} | {"ticks": len(v["ticks"])}
                         for k, v in per_decision.items()},
    }


def _report(scenario: Scenario, cfg, seed: int, engine: EngineChoice | None, world: World, prof: Profiler,
            probe: DecisionProbe | None, build_s: float, components_built: dict, rss_built: int | None,
            out: Path | None) -> dict[str, Any]:
    s = prof.summary()
    by_system: dict[str, list[tuple[int, dict]]] = {}
    if probe is not None:
        for i, name, r in probe.rows:
            by_system.setdefault(name, []).append((i, r))
    systems = []
    for row in s["systems"]:
        rec = prof.systems[row["name"]]
        row = dict(row)
        row["rank"] = prof.rank
        if row["name"] in by_system:
            row["llm"] = _llm_figures(dict(zip(rec.ticks, rec.seconds)), by_system[row["name"]])
        systems.append(row)
    comps = []
    for c in s["components"]:
        c = dict(c)
        c["bytes_after_build"] = components_built.get(c["name"], 0)
        comps.append(c)
    build_decisions = []
    if probe is not None and probe.build_rows:
        for r in probe.build_rows:
            build_decisions.append({k: r.get(k) for k in ("decision", "agents", "requests", "engine_s",
                                                          "prompt_tokens", "output_tokens", "ok", "fallback",
                                                          "failed")})
    eng = None
    if engine is not None and scenario.mock_policy is not None:
        eng = {"kind": engine.kind, "config": engine.config,
               "replay": str(engine.replay) if engine.replay else None}
    cfg_d = config_dict(cfg)
    rank = {"rank": prof.rank, "host": socket.gethostname(), "pid": os.getpid(), "entities": s["entities"],
            "tick_s_median": s["tick_s"]["median"], "ticks_per_s_median": s["ticks_per_s"]["median"]}
    rep = {
        "format": FORMAT,
        "scenario": scenario.name,
        "unit": scenario.unit,
        "config": cfg_d,
        "agents": cfg_d.get("agents"),
        "seed": seed,
        "engine": eng,
        "entities": s["entities"],
        "ticks": s["ticks"],
        "build_s": build_s,
        "run_s": s["run_s"],
        "tick_s": s["tick_s"],
        "ticks_per_s": s["ticks_per_s"],
        "systems": systems,
        "kernel": s["kernel"],
        "build_decisions": build_decisions,
        "components": comps,
        "memory": {**s["memory"], "rss_after_build_bytes": rss_built},
        "agents_processed": "entities holding every component the system declares in reads/writes",
        "ranks": [rank],
        "slowest_rank": prof.rank,
        "mpi": None,
        "per_tick": {
            "tick": list(prof.tick_numbers),
            "tick_s": list(prof.tick_seconds),
            "systems_s": {n: list(prof.systems[n].seconds) for n in prof.order()},
        },
        "out": str(out) if out is not None else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    return _finite(rep)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=str, allow_nan=False)


# ---------------------------------------------------------------------------- the trace
def chrome_trace(run: ProfileRun) -> dict[str, Any]:
    """Chrome trace / Perfetto JSON: build, then ticks with their systems nested, RSS counter.

    Complete events (``ph: "X"``) with ``ts``/``dur`` in µs from the start of
    the build, all on one track (``pid`` = rank + 1, ``tid`` 1), so every
    system event lies inside its tick's event.
    """
    prof, rep = run.profiler, run.report
    pid, tid = prof.rank + 1, 1
    us = lambda t: round((t - run.origin) * 1e6, 3)  # noqa: E731
    ev: list[dict] = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": tid,
         "args": {"name": f"socius profile {rep['scenario']} (rank {prof.rank})"}},
        {"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": "ticks"}},
        {"ph": "X", "name": "build", "cat": "build", "pid": pid, "tid": tid, "ts": 0.0,
         "dur": round(run.build_s * 1e6, 3), "args": {"entities": rep["entities"]}},
    ]
    llm_rows: dict[tuple[int, str], list[dict]] = {}
    if run.probe is not None:
        for i, name, r in run.probe.rows:
            llm_rows.setdefault((i, name), []).append(r)
    for i, (t0, dt) in enumerate(zip(prof.tick_starts, prof.tick_seconds)):
        ev.append({"ph": "X", "name": f"tick {prof.tick_numbers[i]}", "cat": "tick", "pid": pid, "tid": tid,
                   "ts": us(t0), "dur": round(dt * 1e6, 3), "args": {"tick": prof.tick_numbers[i]}})
        if prof.tick_rss[i] is not None:
            ev.append({"ph": "C", "name": "rss", "pid": pid, "tid": tid, "ts": us(t0),
                       "args": {"MiB": round(prof.tick_rss[i] / 2**20, 2)}})
    tick_end = [us(t0) + round(dt * 1e6, 3) for t0, dt in zip(prof.tick_starts, prof.tick_seconds)]
    for name in prof.order():
        rec = prof.systems[name]
        for i, st, dt, a, m in zip(rec.ticks, rec.starts, rec.seconds, rec.agents, rec.mem_growth):
            ts = max(us(st), us(prof.tick_starts[i]))
            dur = round(min(dt * 1e6, tick_end[i] - ts), 3)  # stay inside the tick (clock reads are ns apart)
            args: dict[str, Any] = {"phase": rec.phase, "agents": a, "peak_mem_growth_bytes": m}
            for r in llm_rows.get((i, name), []):
                args[f"llm:{r['decision']}"] = {k: r.get(k) for k in ("agents", "requests", "engine_s", *STAGES,
                                                                       "prompt_tokens", "output_tokens", "ok",
                                                                       "extracted", "fallback", "failed")}
            ev.append({"ph": "X", "name": name, "cat": "system", "pid": pid, "tid": tid, "ts": ts,
                       "dur": max(dur, 0.0), "args": args})
    meta = [e for e in ev if e["ph"] == "M"]
    timed = sorted((e for e in ev if e["ph"] != "M"), key=lambda e: (e["ts"], -e.get("dur", 0.0)))
    return {"traceEvents": _finite(meta + timed), "displayTimeUnit": "ms",
            "otherData": {"scenario": rep["scenario"], "seed": rep["seed"], "ticks": rep["ticks"],
                          "format": FORMAT}}


# ---------------------------------------------------------------------------- tables
def _ms(s) -> str:
    if s is None or (isinstance(s, float) and not math.isfinite(s)):
        return "—"
    ms = s * 1e3
    return f"{ms:,.1f}" if ms >= 100 else (f"{ms:.2f}" if ms >= 1 else f"{ms:.3f}")


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _bytes(b) -> str:
    if b is None:
        return "—"
    b = float(b)
    for unit, k in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(b) >= k:
            return f"{b / k:.1f} {unit}"
    return f"{b:.0f} B"


def _int(n) -> str:
    return "—" if n is None else f"{n:,}"


def render(report: dict[str, Any], console: Console) -> None:
    """The report as rich tables (summary, systems, LLM decisions, components)."""
    r = report
    head = Table(title=f"socius profile {r['scenario']}: {r['entities']:,} entities, {r['ticks']} ticks "
                       f"({r['unit']}), seed {r['seed']}" + (" — interrupted" if r.get("interrupted") else ""),
                 show_header=False, title_justify="left")
    head.add_column("what")
    head.add_column("value")
    tps, tick = r["ticks_per_s"], r["tick_s"]
    fmt_tps = lambda x: "—" if x is None else f"{x:,.2f}"  # noqa: E731
    head.add_row("build", f"{r['build_s']:.3f} s")
    head.add_row("ticks/s", f"median {fmt_tps(tps['median'])}  "
                            f"(p10–p90 {fmt_tps(tps['p10'])}–{fmt_tps(tps['p90'])}, "
                            f"min–max {fmt_tps(tps['min'])}–{fmt_tps(tps['max'])})")
    head.add_row("tick", f"median {_ms(tick['median'])} ms  (p10–p90 {_ms(tick['p10'])}–{_ms(tick['p90'])} ms), "
                         f"{r['run_s']:.3f} s in all")
    if r.get("engine"):
        head.add_row("engine", r["engine"]["kind"])
    mem = r["memory"]
    if mem.get("method"):
        head.add_row("memory", f"RSS after build {_bytes(mem['rss_after_build_bytes'])}, "
                               f"peak {_bytes(mem['peak_rss_bytes'])}")
    head.add_row("ranks", "1 (this process)" if not r.get("mpi") else
                 f"{r['mpi']['ranks']} (MPI); systems below are rank {r['slowest_rank']}'s, the slowest")
    console.print(head)
    if r.get("mpi"):
        rk = Table(title="ranks (per tick: median tick; halo / routing / other collectives are wall time "
                         "inside them, waiting included)", title_justify="left")
        for c in ("rank", "host", "entities", "tick ms", "busy ms", "halo ms", "route ms", "reduce ms",
                  "routed"):
            rk.add_column(c, justify="right" if c not in ("host",) else "left")
        for x in r["ranks"]:
            cs = x["comm_s_per_tick"]
            rk.add_row(str(x["rank"]) + (" (slowest)" if x["rank"] == r["slowest_rank"] else ""), x["host"],
                       _int(x["entities"]), _ms(x["tick_s_median"]), _ms(x["busy_s_per_tick"]), _ms(cs["halo"]),
                       _ms(cs["route"]), _ms(cs["reduce"]), _bytes(x["route_bytes_per_tick"]))
        console.print(rk)

    t = Table(title="systems in schedule order (per tick: median over ticks)", title_justify="left")
    for name, just in (("#", "right"), ("system", "left"), ("phase", "left"), ("ms/tick", "right"),
                       ("p10–p90 ms", "right"), ("share", "right"), ("agents", "right"), ("µs/agent", "right"),
                       ("peak mem +", "right")):
        t.add_column(name, justify=just, overflow="fold")
    for k, sr in enumerate(r["systems"], 1):
        sec = sr["seconds"]
        upa = sr["us_per_agent"]
        t.add_row(str(k), sr["name"], sr["phase"], _ms(sr["median_s"]), f"{_ms(sec['p10'])}–{_ms(sec['p90'])}",
                  _pct(sr["share"]), _int(sr["agents"]), "—" if upa is None else f"{upa:.3g}",
                  _bytes(sr["peak_mem_growth_bytes"]))
    t.add_row("", "(kernel: sync, hooks)", "", _ms(r["kernel"]["median_s"]), "", _pct(r["kernel"]["share"]),
              "", "", "")
    t.add_row("", "[bold]tick[/]", "", _ms(tick["median"]), f"{_ms(tick['p10'])}–{_ms(tick['p90'])}", "100%",
              _int(r["entities"]), "—" if not r["entities"] else f"{tick['median'] * 1e6 / r['entities']:.3g}",
              _bytes(mem.get("tick_peak_growth_bytes")))
    console.print(t)
    probed = mem.get("ticks_probed")
    console.print("agents: entities holding every component the system declares (reads/writes)\n"
                  "peak mem +: largest RSS rise while it ran"
                  + (f", over the {probed} of {r['ticks']} ticks probed (a time budget)" if probed else ""),
                  style="dim")

    llm = [sr for sr in r["systems"] if sr.get("llm")]
    if llm:
        t = Table(title="LLM decisions: time per tick (median ms)", title_justify="left")
        for name in ("system · decision", "wall", "engine", "ours", "render", "dedup", "parse", "log",
                     "apply & other", "engine share"):
            t.add_column(name, justify="left" if name.startswith("system") else "right", overflow="fold")
        for sr in llm:
            L = sr["llm"]
            m = L["median_s"]
            t.add_row(f"{sr['name']} · {', '.join(L['decisions'])}", _ms(m["wall"]), _ms(m["engine"]),
                      _ms(m["ours"]), _ms(m["render"]), _ms(m["dedup"]), _ms(m["parse"]), _ms(m["log"]),
                      _ms(m["apply_other"]), _pct(L["engine_share"]))
        console.print(t)
        t = Table(title=f"LLM decisions: requests and tokens (totals over {r['ticks']} ticks)", title_justify="left")
        for name in ("system · decision", "agents", "requests", "completions", "prompt tokens", "output tokens",
                     "agents/request"):
            t.add_column(name, justify="left" if name.startswith("system") else "right", overflow="fold")
        o = Table(title="LLM decisions: parse outcomes (agents, all ticks)", title_justify="left")
        for name in ("system · decision", "ok", "extracted", "fallback", "failed"):
            o.add_column(name, justify="left" if name.startswith("system") else "right", overflow="fold")
        for sr in llm:
            for dname, d in sr["llm"]["per_decision"].items():
                ratio = d["agents"] / d["requests"] if d["requests"] else None
                label = f"{sr['name']} · {dname}"
                t.add_row(label, _int(d["agents"]), _int(d["requests"]), _int(d["completions"]),
                          _int(d["prompt_tokens"]), _int(d["output_tokens"]),
                          "—" if ratio is None else f"{ratio:,.1f}")
                n = d["agents"] or 1
                o.add_row(label, *(f"{d[k]:,} ({100 * d[k] / n:.1f}%)"
                                   for k in ("ok", "extracted", "fallback", "failed")))
        console.print(t)
        console.print(o)
    if r.get("build_decisions"):
        n = sum(d.get("agents") or 0 for d in r["build_decisions"])
        console.print(f"LLM calls during the build (in the build time): {len(r['build_decisions'])} decisions, "
                      f"{n:,} agents", style="dim")

    t = Table(title="component memory", title_justify="left")
    for name in ("component", "entities", "bytes", "bytes/agent", "after build"):
        t.add_column(name, justify="left" if name == "component" else "right", overflow="fold")
    total = 0
    for c in r["components"]:
        total += c["bytes"]
        bpa = c["bytes_per_agent"]
        t.add_row(c["name"], _int(c["entities"]), _bytes(c["bytes"]), "—" if bpa is None else f"{bpa:,.1f}",
                  _bytes(c["bytes_after_build"]))
    t.add_row("[bold]all[/]", _int(r["entities"]), _bytes(total),
              "—" if not r["entities"] else f"{total / r['entities']:,.1f}",
              _bytes(sum(c["bytes_after_build"] for c in r["components"])))
    console.print(t)
    console.print("bytes: the table's columns and its entity IDs (8 bytes per row); strings estimated",
                  style="dim")


def render_text(report: dict[str, Any], width: int = TEXT_WIDTH) -> str:
    """The tables as plain text (what ``profile.txt`` holds)."""
    buf = io.StringIO()
    render(report, Console(file=buf, width=width, color_system=None, force_terminal=False, highlight=False))
    return buf.getvalue()


# ---------------------------------------------------------------------------- the command
def default_out(scenario: Scenario, when: int | None = None) -> Path:
    """``runs/profile-<scenario>-<time>``; ``when`` (epoch seconds, the same on every MPI rank) names it
    without probing the disk, so all ranks agree on the folder."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", scenario.name).strip("-") or "scenario"
    if when is not None:
        return Path("runs") / f"profile-{slug}-{_dt.datetime.fromtimestamp(when).strftime('%Y%m%d-%H%M%S')}-mpi"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path("runs") / f"profile-{slug}-{stamp}"
    k = 1
    while out.exists():
        k += 1
        out = Path("runs") / f"profile-{slug}-{stamp}-{k}"
    return out


def cmd_profile(args, console: Console, parser) -> int:
    """``socius profile``: argument checks (exit 2 naming the flag), the run, the output."""
    from socius.errors import MissingExtraError

    from socius.errors import EngineSetupError

    from .cli import _fail, _ranks, engine_choice, resolve_scenario

    scenario, cfg = resolve_scenario(args, parser, "SCENARIO")
    engine = engine_choice(args, parser, scenario)
    ranks = _ranks(parser)
    lead = ranks.rank == 0
    if args.trace is not None and (args.trace.is_dir() or not args.trace.parent.is_dir()):
        parser.error(f"argument --trace: cannot write a file at {args.trace}")
    out = args.out if args.out is not None else default_out(scenario)

    if ranks.size > 1:  # every rank must write into the same folder: rank 0's name for it
        stamp = ranks.allgather(int(time.time()))[0]
        if args.out is None:
            out = default_out(scenario, stamp)
    err = Console(stderr=True, highlight=False, quiet=not lead)
    try:
        run = profile_scenario(scenario, cfg, seed=args.seed, ticks=args.ticks, engine=engine, out=out,
                               status=lambda text: err.print(text, style="dim"),
                               ranks=ranks if ranks.size > 1 else None)
    except MissingExtraError as e:
        return _fail(err, ranks, f"--engine {engine.kind if engine else ''}: {e}", 2)
    except EngineSetupError as e:
        return _fail(err, ranks, f"--engine: {e}", 2)
    except SerialScenarioError as e:
        return _fail(err, ranks, str(e), 2)
    if not lead:
        return 130 if run.report.get("interrupted") else 0
    rep = run.report
    text = to_json(rep)
    (out / "profile.json").write_text(text + "\n")
    (out / "profile.txt").write_text(render_text(rep))
    if args.trace is not None:
        args.trace.write_text(json.dumps(chrome_trace(run), allow_nan=False))
    if args.json:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:  # a terminal's width; piped or redirected, as wide as profile.txt
        render(rep, console if console.is_terminal else Console(width=TEXT_WIDTH, highlight=False))
    err.print(f"saved: {out / 'profile.json'}, {out / 'profile.txt'}"
              + (f"; trace: {args.trace}" if args.trace is not None else ""), style="dim", soft_wrap=True)
    return 130 if rep.get("interrupted") else 0
