"""Build and registration of ``socius run boltzmann``.

:func:`build` inserts the grid and the Gini series, places the agents on
uniformly random cells (drawn by entity ID, keyed by ``(seed, "place")``)
with wealth 1, and adds the systems. :data:`SCENARIO` is what the registry
finds under ``boltzmann``; the model is inherently serial, so it is not
distributed over ranks and makes no LLM calls.
"""
from __future__ import annotations

import math

import numpy as np

from socius.app.registry import Scenario
from socius.ecs import World
from socius.ecs.rng import EntityRng

from .components import GiniSeries, Grid, GridCell, Wealth
from .config import BoltzmannConfig
from .report import metrics
from .systems import move_and_give, record_gini


def build(world: World, cfg: BoltzmannConfig) -> None:
    """Insert the grid, place ``cfg.agents`` agents uniformly with wealth 1, add the systems."""
    cfg.validate()
    side = math.isqrt(cfg.agents - 1) + 1
    width, height = cfg.width or side, cfg.height or side
    world.insert_resource(Grid(width=width, height=height))
    world.insert_resource(GiniSeries())
    ids = np.arange(world.next_id, world.next_id + cfg.agents, dtype=np.int64)
    cells = EntityRng(world.seed, "place", 0).integers(ids, width * height)
    world.spawn(cfg.agents, {Wealth: {"value": 1},
                             GridCell: {"x": cells // height, "y": cells % height}})
    world.add_systems(move_and_give, record_gini)


SCENARIO = Scenario(name="boltzmann", summary="Boltzmann wealth model (Mesa's rules), sequential numba kernel",
                    config=BoltzmannConfig, build=build, metrics=metrics, unit="steps", distributed=False)
