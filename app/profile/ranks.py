"""Under MPI: every rank's figures in the report, and the report of the slowest rank.

Each rank profiles its share of the world. :func:`comm_totals` reads the
seconds spent in collectives by category (``halo``, ``route``, ``reduce``:
:attr:`RankContext.comm_s <socius.mpi.RankContext>`) and the routing figures
before and after the ticks; :func:`add_ranks` (collective) gathers every
rank's report, keeps the systems of the slowest rank (most busy time per
tick: tick time less time in collectives) and lists all ranks in
``report["ranks"]``.
"""
from __future__ import annotations

import json

import numpy as np

from socius.ecs import World

from .report import finite

__all__ = ["COMM", "comm_totals", "add_ranks"]

COMM = ("halo", "route", "reduce")  # what the collectives of a tick were for (RankContext.category)


def comm_totals(world: World) -> dict[str, float] | None:
    """Seconds in collectives by category, routing wall time and bytes so far (None on one rank)."""
    from socius.mpi import Ranks
    r = world.get_resource(Ranks)
    if r is None or r.ctx.size == 1:
        return None
    return {**{k: r.ctx.comm_s.get(k, 0.0) for k in COMM}, "route_wall": r.route_s, "route_bytes": r.route_bytes}


def add_ranks(rep: dict, world: World, before: dict | None, after: dict | None) -> None:
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
    blob = np.frombuffer(json.dumps(finite(rep)).encode(), dtype=np.uint8)
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

