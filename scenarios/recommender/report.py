"""What a recommender run leaves in its directory: the metrics columns and ``recommender.png``.

:func:`metrics` turns the per-tick rows :func:`~.systems.record_tick` appends
to :class:`~.components.RecState` into ``metrics.parquet`` columns (one
``[ticks]`` array per name; the scenario README lists them). :func:`report`
draws three panels — the rating distribution (all ticks and the last),
catalogue coverage and mean genre entropy over ticks — on the lead rank
only, as the values are world-wide (needs matplotlib; skipped without it).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from socius.app.report import history_columns, is_lead, pyplot
from socius.ecs import World

from .components import RecSetup, RecState


def metrics(world: World) -> dict:
    """``{column: [ticks] array}`` of the run's per-tick metrics."""
    return history_columns(world.resource(RecState).history)


def report(world: World, out: Path) -> None:
    """``recommender.png``: rating distribution, coverage and genre entropy over ticks (needs matplotlib)."""
    h = world.resource(RecState).history
    plt = pyplot() if h and is_lead(world) else None  # world-wide values only: one rank draws them
    if plt is None:
        return
    cfg = world.resource(RecSetup).cfg
    ticks = [r["tick"] for r in h]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4))
    steps = np.arange(1, 11) / 2
    total = np.array([sum(r[f"r{k * 5:02d}"] for r in h) for k in range(1, 11)], float)
    last = np.array([h[-1][f"r{k * 5:02d}"] for k in range(1, 11)], float)
    a.bar(steps - 0.11, total / max(total.sum(), 1), width=0.22, label="all ticks")
    a.bar(steps + 0.11, last / max(last.sum(), 1), width=0.22, label=f"tick {ticks[-1]}")
    a.set_xlabel("rating")
    a.set_ylabel("share of ratings")
    a.set_xticks(steps)
    a.set_title("Rating distribution")
    a.legend(fontsize=8)
    b.plot(ticks, [r["coverage_recommended"] for r in h], "o-", label="recommended so far")
    b.plot(ticks, [r["coverage_watched"] for r in h], "s--", label="watched so far")
    b.set_ylim(0, 1.02)
    b.set_xlabel("tick")
    b.set_title("Catalogue coverage")
    b.legend(fontsize=8)
    c.plot(ticks, [r["genre_entropy"] for r in h], "o-", color="C2")
    c.set_xlabel("tick")
    c.set_ylabel("bits")
    c.set_title("Mean per-user genre entropy")
    fig.suptitle(f"recommender = {cfg.recommender}, {cfg.agents} users")
    fig.tight_layout()
    fig.savefig(out / "recommender.png", dpi=110)
    plt.close(fig)
