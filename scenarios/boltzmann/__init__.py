"""The Boltzmann wealth model (Mesa's ``BoltzmannWealth``) on the Socius kernel.

Rules, as in Mesa's example: ``n`` agents start with wealth 1 on a
``side x side`` grid (``side = ceil(sqrt(n))``, no wrap-around), placed on
uniformly random cells. Each step every agent, one after another in a fresh
random order, moves to a uniformly random cell of its Moore neighbourhood
(3, 5 or 8 cells, in Mesa's neighbour order) and then, if it has wealth and shares its cell with other
agents, gives one unit to one of them chosen uniformly. The Gini coefficient
of wealth is recorded after every step (Mesa's data collector does the same).

The one-after-another order matters (a simultaneous update ends near
Gini 0.37 instead of 0.64 at 100k agents after 10 steps), so the step is a
sequential numba kernel over the columns (:mod:`.kernel`): one system, no
per-agent Python. Randomness is the kernel's counter-based RNG: the order is
a Fisher–Yates shuffle of the rows keyed by (seed, "order", tick) and each
agent's two draws (move, recipient) are keyed by (seed, "act", tick, agent
ID) — so the run depends only on the seed and the population. This model is
inherently serial: it runs on one rank. From 20,000 agents on a machine with
two cores (and ``NUMBA_NUM_THREADS`` not 1) a step may run on two threads, one
per half of the grid, with a result identical to one thread's.

Modules: :mod:`.components` (schemas), :mod:`.config` (options),
:mod:`.systems` (the tick), :mod:`.draws` (the turn order and each agent's
draws), :mod:`.kernel` (the sequential pass on one thread or two),
:mod:`.workspace` (its buffers and the choice of threads), :mod:`.sync` (the
two threads' hand-off), :mod:`.gini` (the measure), :mod:`.scenario` (build
and registration), :mod:`.report` (the metrics columns).
"""
from .components import GiniSeries, Grid, GridCell, Wealth
from .config import BoltzmannConfig
from .gini import gini
from .workspace import Workspace
from .report import metrics
from .scenario import SCENARIO, build
from .systems import move_and_give, record_gini

__all__ = ["SCENARIO", "BoltzmannConfig", "Wealth", "GridCell", "Grid", "GiniSeries", "Workspace", "build",
           "metrics", "move_and_give", "record_gini", "gini"]
