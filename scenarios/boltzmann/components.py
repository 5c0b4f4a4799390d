"""Schemas of the Boltzmann wealth model: the agents' components and the run's resources.

An agent is its :class:`Wealth` and its :class:`GridCell`; :class:`Grid`
holds the grid's size and :class:`GiniSeries` the Gini coefficient after
every step (both saved in snapshots). The step's scratch buffers are the
plain resource :class:`~.kernel.Workspace` (never saved).

The classes lived in ``socius.scenarios.boltzmann`` itself before the
package was split; each keeps that stored name (``name=``) so snapshots and
state hashes are unchanged.
"""
from __future__ import annotations

import numpy as np

from socius.ecs import Component, Resource, Scalar


class Wealth(Component, name="socius.scenarios.boltzmann.Wealth"):
    """Units of money an agent holds (``int64``)."""

    value = Scalar(np.int64, default=1)


class GridCell(Component, name="socius.scenarios.boltzmann.GridCell"):
    """An agent's cell on the grid (column ``x``, row ``y``; ``int32``)."""

    x = Scalar(np.int32)
    y = Scalar(np.int32)


class Grid(Resource, name="socius.scenarios.boltzmann.Grid"):
    """The grid's size."""

    width: int = 10
    height: int = 10


class GiniSeries(Resource, name="socius.scenarios.boltzmann.GiniSeries"):
    """Gini coefficient after each step (index = tick after the step)."""

    values: list = None

    def __post_init__(self):
        if self.values is None:
            self.values = []
