"""What a social run writes into its run directory beyond the kernel's files.

:func:`metrics` turns the :class:`~.components.SocialStats` history (one row
per tick, already reduced over all ranks) into the columns of
``metrics.parquet``; :func:`report` draws ``social.png`` — aware agents,
emotion density, the attitude distribution, posts and forwards per tick —
on the lead rank only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from socius.app.report import history_columns, is_lead, pyplot
from socius.ecs import World

from . import prompts
from .components import SocialStats


def metrics(world: World) -> dict:
    """``{column: [ticks] values}`` of the per-tick metrics rows (see the README's table)."""
    return history_columns(world.resource(SocialStats).history)


def report(world: World, out: Path) -> None:
    """``social.png``: aware agents, emotion density, attitude distribution, posts and forwards per tick."""
    if not is_lead(world):  # world-wide values only: one rank writes them
        return
    h = world.resource(SocialStats).history
    if not h:
        return
    plt = pyplot()
    if plt is None:
        return
    ticks = np.array([r["tick"] for r in h])
    fig, ax = plt.subplots(2, 2, figsize=(11, 7))
    a = ax[0, 0]
    a.plot(ticks, [r["aware"] for r in h], "o-", ms=3)
    a.set_title("Information propagation: agents aware of the event")
    a.set_xlabel("tick")
    a.set_ylabel("aware agents")
    b = ax[0, 1]
    shares = np.array([[r[f"{e}_share"] for e in prompts.EMOTIONS] for r in h], dtype=float)
    b.stackplot(ticks, np.nan_to_num(shares).T, labels=prompts.EMOTIONS, colors=["#8fbc8f", "#f0c05a", "#d9534f"])
    b.set_title("Emotion density among aware agents")
    b.set_xlabel("tick")
    b.set_ylim(0, 1)
    b.legend(loc="upper right", fontsize=8)
    c = ax[1, 0]
    bins = len([k for k in h[0] if k.startswith("attitude_bin_")])
    hist = np.array([[r[f"attitude_bin_{i}"] for i in range(bins)] for r in h], dtype=float)
    hist = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1.0)
    c.imshow(hist.T, origin="lower", aspect="auto", cmap="viridis",
             extent=(ticks[0] - 0.5, ticks[-1] + 0.5, -1.0, 1.0))
    c.plot(ticks, [r["attitude_mean"] for r in h], "w-", lw=1.5, label="mean")
    c.set_title("Attitude distribution among aware agents")
    c.set_xlabel("tick")
    c.set_ylabel("stance")
    c.legend(loc="upper right", fontsize=8)
    d = ax[1, 1]
    d.plot(ticks, [r["posts"] for r in h], "o-", ms=3, label="posts")
    d.plot(ticks, [r["forwards"] for r in h], "s-", ms=3, label="forwards")
    d.set_title("Posts and forwards per tick")
    d.set_xlabel("tick")
    d.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "social.png", dpi=110)
    plt.close(fig)
