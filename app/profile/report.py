"""The profile report: plain data (JSON-safe) from the profiler's records and the decision rows.

``build_report`` gathers the summary of :class:`socius.ecs.profiler.Profiler`
(ticks/s, per system time, share, agents, memory), per LLM decision system
the figures of its :class:`~socius.llm.DecisionStats` rows (engine time
against our own stages, tokens, dedup, parse outcomes), component bytes and
the run's context. A decision that streams into its engine (:mod:`socius.llm.stream`)
overlaps the engine with our own work: ``engine`` is the time a call was out,
``wait`` the time the system waited for it, ``overlap = engine - wait`` the engine
time hidden behind our work, ``ours = wall - wait`` (rows from before streaming
have no ``wait_s``: it is their ``engine_s``). Format ``socius-profile/1``; NaN and
infinities become ``null``.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import socket
from pathlib import Path
from typing import Any

import numpy as np

from socius.ecs import World
from socius.ecs.profiler import Profiler

from ..config import config_dict

__all__ = ["FORMAT", "STAGES", "OVERLAP", "COUNTS", "finite", "build_report", "to_json"]

FORMAT = "socius-profile/1"
STAGES = ("render_s", "dedup_s", "parse_s", "log_s")     # our own, non-overlapping stage times of decide()
OVERLAP = ("wait_s", "overlap_s", "wall_s")               # decide()'s wait on the engine, the overlap, its wall
COUNTS = ("calls", "agents", "requests", "completions", "prompt_tokens", "output_tokens",
          "ok", "extracted", "fallback", "failed")


def finite(x):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
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
        t = per_tick.setdefault(i, {k: 0.0 for k in ("engine_s", "extract_s", *STAGES, *OVERLAP)})
        for k in t:
            t[k] += float(r.get(k, r.get("engine_s", 0.0) if k == "wait_s" else 0.0))
        d = per_decision.setdefault(r["decision"], {k: 0 for k in COUNTS} | {"ticks": set()})
        d["calls"] += 1
        d["ticks"].add(i)
        for k in COUNTS[1:]:
            d[k] += int(r.get(k, 0))
    ticks = sorted(per_tick)
    wall = np.array([sys_seconds.get(i, float("nan")) for i in ticks])
    col = {k: np.array([per_tick[i][k] for i in ticks]) for k in ("engine_s", "extract_s", *STAGES, *OVERLAP)}
    ours = wall - col["wait_s"]
    other = ours - sum(col[k] for k in STAGES)

    def med(a):
        return float(np.nanmedian(a)) if a.size else float("nan")

    totals = {k: sum(d[k] for d in per_decision.values()) for k in COUNTS}
    return {
        "decisions": sorted(per_decision),
        "ticks": len(ticks),
        "median_s": {"wall": med(wall), "engine": med(col["engine_s"]), "ours": med(ours),
                     "wait": med(col["wait_s"]), "overlap": med(col["overlap_s"]), "decide_wall": med(col["wall_s"]),
                     **{k[:-2]: med(col[k]) for k in STAGES}, "apply_other": med(other),
                     "extract_total": med(col["extract_s"])},
        "engine_share": med(col["engine_s"] / np.where(wall > 0, wall, np.nan)),
        "totals": totals,
        "dedup_ratio": (totals["agents"] / totals["requests"]) if totals["requests"] else None,
        "per_decision": {k: {c: v[c] for c in COUNTS} | {"ticks": len(v["ticks"])}
                         for k, v in per_decision.items()},
    }


def build_report(scenario, cfg, seed: int, engine, world: World, prof: Profiler, probe, build_s: float,
                 components_built: dict, rss_built: int | None, out: Path | None) -> dict[str, Any]:
    """The report of one profile (``probe``: the :class:`~.measure.DecisionProbe` of the run, or None)."""
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
    return finite(rep)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=str, allow_nan=False)

