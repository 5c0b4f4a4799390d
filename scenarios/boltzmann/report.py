"""What a Boltzmann run records besides the state: the Gini coefficient per step.

:func:`metrics` gives the runner's ``metrics.parquet`` columns from
:class:`~.components.GiniSeries`: ``tick`` (``int64``, 1-based: the tick
after the step) and ``gini`` (``float64``).
"""
from __future__ import annotations

import numpy as np

from socius.ecs import World

from .components import GiniSeries


def metrics(world: World) -> dict:
    """Per-step series for the run's metrics table."""
    g = world.resource(GiniSeries).values
    return {"tick": np.arange(1, len(g) + 1, dtype=np.int64), "gini": np.asarray(g, dtype=np.float64)}
