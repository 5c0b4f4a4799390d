"""One recommender tick at 10k and 100k users with the instant mock engine: time per stage.

::

    python -m socius.bench.recommender [--size small|large] [--recommender popularity|content|mf]

Stages are the scenario's systems in schedule order (refit the model,
recommend a page per user, browse = the batched LLM decision and its
effects, record metrics) and, inside the browse decision, the pipeline's own
stages (render, dedup, engine, parse, log). Each size runs in a fresh
process after ``warmup`` untimed ticks (the MF model has ratings to refit
on); one JSON line per (recommender, size)::

    {"bench": "recommender", "recommender": "mf", "agents": 100000, "tick_s": ...,
     "stages_s": {"refit_model": ..., ...}, "decision_s": {"render": ..., ...}, "log_writer_s": ...,
     "peak_rss_mb": ...}

``log_writer_s`` is the response log's writer thread per tick (beside the tick, not in it).
"""
from __future__ import annotations

import argparse
import statistics

from socius.bench import configurations
from socius.bench.common import emit, peak_rss_mb, run_case
from socius.bench.scenarios import profile_ticks

MODULE = "socius.bench.recommender"
STAGES = ("render_s", "dedup_s", "engine_s", "parse_s", "log_s", "extract_s")


def one(agents: int, recommender: str, ticks: int, warmup: int) -> dict:
    _, s, rows, build_s, writer_s = profile_ticks("recommender", {"agents": agents, "recommender": recommender}, ticks, warmup)
    decision = {k[:-2]: round(statistics.median([r[k] for r in rows]), 5) for k in STAGES} if rows else {}
    return {"bench": "recommender", "recommender": recommender, "agents": agents, "ticks": ticks,
            "warmup": warmup, "tick_s": round(s["tick_s"]["median"], 5),
            "us_per_agent": round(s["tick_s"]["median"] * 1e6 / agents, 3),
            "stages_s": {r["name"]: round(r["median_s"], 5) for r in s["systems"]},
            "decision_s": decision, "log_writer_s": round(writer_s / max(1, ticks), 5), "acting": int(statistics.median([r["agents"] for r in rows])) if rows else 0,
            "build_s": round(build_s, 3), "peak_rss_mb": peak_rss_mb()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="large", help="small | large (bench/configurations.py)")
    p.add_argument("--recommender", nargs="*", default=None, help="popularity, content, mf (default: all)")
    p.add_argument("--one", action="store_true", help="run one case in this process")
    p.add_argument("--agents", type=int)
    a = p.parse_args(argv)
    conf = configurations.get("recommender", a.size)
    kinds = a.recommender or ["popularity", "content", "mf"]
    if a.one:
        emit(one(a.agents, kinds[0], conf["ticks"], conf["warmup"]))
        return
    for kind in kinds:
        for n in conf["agents"]:
            for rec in run_case(MODULE, ["--one", "--size", a.size, "--recommender", kind, "--agents", str(n)]):
                emit(rec)


if __name__ == "__main__":
    main()
