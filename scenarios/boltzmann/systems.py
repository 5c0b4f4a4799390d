"""The tick of the Boltzmann model: one sequential step, then the Gini coefficient.

``update``: :func:`move_and_give` runs the whole step — every agent, in a
fresh random order, moves and gives — as the numba kernel of :mod:`.kernel`
over the ``GridCell`` and ``Wealth`` columns (one or two threads, same
result). Its scratch buffers are the :class:`~.kernel.Workspace` resource,
made on the first step and again whenever the population or grid outgrows
it. ``post``: :func:`record_gini` appends the step's Gini coefficient.
"""
from __future__ import annotations

import numpy as np

from socius.ecs import system, world_of
from socius.ecs.rng import base_key

from .components import GiniSeries, Grid, GridCell, Wealth
from .gini import gini
from .workspace import Workspace, default_threads


@system(phase="update", writes=(Wealth, GridCell), resources=(Grid, Workspace))
def move_and_give(ctx):
    """Every agent, in a fresh random order, moves and gives (numba kernel, one or two threads)."""
    grid = ctx.resource(Grid)
    v = ctx.query(Wealth, GridCell)
    ncell = grid.width * grid.height
    threads = default_threads(len(v), grid.width)
    ws = ctx.get_resource(Workspace)
    if ws is None or not ws.fits(len(v), ncell, grid.height, threads):
        ws = Workspace(len(v), ncell, grid.height, threads)
        world_of(ctx).insert_resource(ws)
    with v.write(GridCell) as cell, v.write(Wealth) as w:
        ws.step(v.ids, cell.x, cell.y, w.value, grid.width, grid.height,
                np.uint64(base_key(ctx.seed, "order", ctx.tick)),
                np.uint64(base_key(ctx.seed, "act", ctx.tick)))


@system(phase="post", reads=(Wealth,), resources=(GiniSeries,))
def record_gini(ctx):
    """Append this step's Gini coefficient (as Mesa's data collector does each step)."""
    ctx.resource(GiniSeries).values.append(float(gini(ctx.query(Wealth)[Wealth].value)))
