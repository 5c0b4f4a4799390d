"""What a guess run writes besides the state: the metrics columns, ``winners.parquet`` and a plot.

:func:`metrics` turns :attr:`GuessGame.history <.components.GuessGame.history>`
(one dict per round: mean, median, std, min, max, mode, target, winning
number, valid, winners and the reply outcomes) into the runner's
``metrics.parquet`` columns. :func:`report` writes the winners per (round,
model, group) and ``guess_rounds.png`` (the histogram of reported numbers per
round beside the mean, median and target); one rank writes them, as they are
world-wide values, and the plot is skipped without matplotlib.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from socius.app.report import history_columns, is_lead, pyplot, write_table
from socius.ecs import World

from .components import GuessGame
from .prompts import p_text


def metrics(world: World) -> dict:
    """One column per statistic, one row per round played."""
    return history_columns(world.resource(GuessGame).history)


def report(world: World, out: Path) -> None:
    """``winners.parquet`` and a plot of the reported numbers per round (needs matplotlib)."""
    if not is_lead(world):  # world-wide values only: one rank writes them
        return
    g = world.resource(GuessGame)
    if g.winners_by:
        write_table(pa.Table.from_pylist(g.winners_by), out / "winners.parquet")
    if not g.history:  # no round played: nothing to plot
        return
    plt = pyplot()
    if plt is None:
        return
    rounds = [r["round"] for r in g.history]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    xs = np.arange(g.max_value + 1)
    cmap = plt.get_cmap("viridis")
    for i, h in enumerate(g.histograms):
        h = np.asarray(h, dtype=float)
        ax.step(xs, h / max(h.sum(), 1.0), where="mid", color=cmap(i / max(len(g.histograms) - 1, 1)),
                label=f"round {i + 1}")
    ax.set_xlabel("reported number")
    ax.set_ylabel("share of players")
    ax.set_title(f"Guess {p_text(g.p)} of the average: reported numbers per round")
    ax.legend(fontsize=8)
    bx.plot(rounds, [r["mean"] for r in g.history], "o-", label="mean")
    bx.plot(rounds, [r["median"] for r in g.history], "s--", label="median")
    bx.plot(rounds, [r["target"] for r in g.history], "^-", label="winning number (target)")
    bx.fill_between(rounds, [r["min"] for r in g.history], [r["max"] for r in g.history], alpha=0.15,
                    label="min–max")
    bx.set_xlabel("round")
    bx.set_xticks(rounds)
    bx.set_ylim(0, g.max_value)
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "guess_rounds.png", dpi=110)
    plt.close(fig)
