"""The Chrome trace / Perfetto JSON of a profile: the build, then each tick with its systems nested in it.

Open it in https://ui.perfetto.dev or ``chrome://tracing``. Decision stage
figures ride in the system events' ``args``; an ``rss`` counter follows
the process memory per tick.
"""
from __future__ import annotations

from typing import Any

from .measure import ProfileRun
from .report import FORMAT, OVERLAP, STAGES, finite

__all__ = ["chrome_trace"]


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
                                                                       *OVERLAP, "prompt_tokens", "output_tokens",
                                                                       "ok", "extracted", "fallback", "failed")}
            ev.append({"ph": "X", "name": name, "cat": "system", "pid": pid, "tid": tid, "ts": ts,
                       "dur": max(dur, 0.0), "args": args})
    meta = [e for e in ev if e["ph"] == "M"]
    timed = sorted((e for e in ev if e["ph"] != "M"), key=lambda e: (e["ts"], -e.get("dur", 0.0)))
    return {"traceEvents": finite(meta + timed), "displayTimeUnit": "ms",
            "otherData": {"scenario": rep["scenario"], "seed": rep["seed"], "ticks": rep["ticks"],
                          "format": FORMAT}}

