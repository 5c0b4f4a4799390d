"""The Boltzmann scenario: exact sequential semantics, invariants, determinism, Mesa statistics."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.ecs import World
from socius.ecs.rng import EntityRng
from socius.scenarios.boltzmann import BoltzmannConfig, GiniSeries, Grid, GridCell, Wealth, build, gini


def reference_step(world: World) -> None:
    """Plain-Python version of one step: same rules, same draws, same cell-list discipline."""
    grid = world.resource(Grid)
    ids = world.entities.copy()
    x = world.get(GridCell, "x").astype(int).tolist()
    y = world.get(GridCell, "y").astype(int).tolist()
    w = world.get(Wealth, "value").astype(int).tolist()
    n = len(ids)
    order_rng = EntityRng(world.seed, "order", world.tick)
    act = EntityRng(world.seed, "act", world.tick)
    pos = list(range(n))
    for i in range(n - 1, 0, -1):
        j = int(order_rng.random(np.array([i]))[0] * (i + 1))
        pos[i], pos[j] = pos[j], pos[i]
    turn = pos  # turn[p] = the row of the agent whose turn is p
    cells = {}
    for p in range(n):
        cells.setdefault(x[turn[p]] * grid.height + y[turn[p]], []).append(p)
    for p in range(n):
        a = turn[p]
        draws = act.random(np.array([ids[a]]), 2)[0]
        nbrs = [(x[a] + dx, y[a] + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                if (dx or dy) and 0 <= x[a] + dx < grid.width and 0 <= y[a] + dy < grid.height]
        nx, ny = nbrs[int(draws[0] * len(nbrs))] if nbrs else (x[a], y[a])  # no neighbours: stay
        old = cells[x[a] * grid.height + y[a]]
        k = old.index(p)
        old[k] = old[-1]
        old.pop()
        new = cells.setdefault(nx * grid.height + ny, [])
        mates = list(new)
        new.append(p)
        x[a], y[a] = nx, ny
        if w[a] > 0 and mates:
            b = turn[mates[(int(draws[1] * 2**31) * len(mates)) >> 31]]
            w[b] += 1
            w[a] -= 1
    world.set(GridCell, ids, x=np.array(x), y=np.array(y))
    world.set(Wealth, ids, value=np.array(w))
    world.tick += 1


@settings(max_examples=15, deadline=None)
@given(agents=st.integers(1, 120), seed=st.integers(0, 2**31), steps=st.integers(1, 4),
       width=st.one_of(st.none(), st.integers(1, 12)))
def test_kernel_matches_python_reference(agents, seed, steps, width):
    cfg = BoltzmannConfig(agents=agents, width=width, height=None if width is None else max(1, 13 - width))
    fast, slow = World(seed=seed), World(seed=seed)
    build(fast, cfg)
    build(slow, cfg)
    fast.step(steps)
    for _ in range(steps):
        reference_step(slow)
    for comp, col in ((Wealth, "value"), (GridCell, "x"), (GridCell, "y")):
        np.testing.assert_array_equal(fast.get(comp, col), slow.get(comp, col))


@pytest.mark.parametrize("agents", [1, 2, 50, 3000])
def test_invariants(agents):
    w = World(seed=3)
    build(w, BoltzmannConfig(agents=agents))
    grid = w.resource(Grid)
    w.step(8)
    wealth = w.get(Wealth, "value")
    assert wealth.sum() == agents
    assert wealth.min() >= 0
    assert (w.get(GridCell, "x") < grid.width).all() and (w.get(GridCell, "y") < grid.height).all()
    assert grid.width == grid.height == math.isqrt(agents - 1) + 1
    assert len(w.resource(GiniSeries).values) == 8


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=300))
def test_gini_matches_mesa_formula(values):
    x = np.array(values, dtype=np.int64)
    if x.sum() == 0:
        assert gini(x) == 0.0
        return
    xs = sorted(values)
    n = len(xs)
    b = sum(xi * (n - i) for i, xi in enumerate(xs)) / (n * sum(xs))
    assert gini(x) == pytest.approx(1 + 1 / n - 2 * b, abs=1e-12)


def test_same_seed_same_hash_different_seed_different():
    def run(seed):
        w = World(seed=seed)
        build(w, BoltzmannConfig(agents=2000))
        w.step(5)
        return w.state_hash()
    assert run(7) == run(7)
    assert run(7) != run(8)


def test_sequential_order_matters():
    """Inequality grows far above what a simultaneous update gives (the reason for the sequential kernel)."""
    w = World(seed=1)
    build(w, BoltzmannConfig(agents=20_000))
    w.step(10)
    assert w.resource(GiniSeries).values[-1] > 0.55


@pytest.mark.slow
def test_gini_trajectory_matches_mesa():
    pytest.importorskip("mesa")
    pytest.importorskip("networkx")
    from scipy.stats import ks_2samp

    from socius.bench.boltzmann import gini_trajectories

    ours, theirs = gini_trajectories(500, 10, list(range(12)))
    se = np.sqrt(ours.var(axis=0, ddof=1) / 12 + theirs.var(axis=0, ddof=1) / 12)
    z = np.abs(ours.mean(axis=0) - theirs.mean(axis=0)) / se
    assert z.max() < 4.0, (ours.mean(axis=0), theirs.mean(axis=0))
    assert ks_2samp(ours[:, -1], theirs[:, -1]).pvalue > 0.001


def _kernel_run(agents, width, height, seed, steps, threads):
    from socius.ecs.rng import base_key
    from socius.scenarios.boltzmann.workspace import Workspace

    world = World(seed=seed)
    build(world, BoltzmannConfig(agents=agents, width=width, height=height))
    ids = world.entities.copy()
    x, y = world.get(GridCell, "x").copy(), world.get(GridCell, "y").copy()
    w = world.get(Wealth, "value").copy()
    ws = Workspace(agents, width * height, height, threads)
    for t in range(steps):
        used = ws.step(ids, x, y, w, width, height, np.uint64(base_key(seed, "order", t)),
                       np.uint64(base_key(seed, "act", t)), threads=threads)
        assert used == threads
    return x, y, w, ws.members.shape[1]


@settings(max_examples=25, deadline=None)
@given(agents=st.integers(1, 400), width=st.integers(2, 24), height=st.integers(1, 24),
       seed=st.integers(0, 2**31), steps=st.integers(1, 4))
def test_two_threads_give_the_one_thread_result(agents, width, height, seed, steps):
    """The split over two halves of the grid is a valid sequential execution: bit-identical state."""
    one = _kernel_run(agents, width, height, seed, steps, 1)
    two = _kernel_run(agents, width, height, seed, steps, 2)
    for a, b in zip(one[:3], two[:3]):
        np.testing.assert_array_equal(a, b)
    assert one[2].sum() == agents


def test_two_threads_match_reference_and_survive_full_cells():
    """A crowded grid (rows overflow, the step is rerun with wider rows) on two threads = the Python reference."""
    seed, agents, width, height = 11, 300, 4, 3
    x, y, w, cap = _kernel_run(agents, width, height, seed, 3, 2)
    assert cap > 16  # 25 agents per cell on average: the rows had to grow
    slow = World(seed=seed)
    build(slow, BoltzmannConfig(agents=agents, width=width, height=height))
    for _ in range(3):
        reference_step(slow)
    np.testing.assert_array_equal(w, slow.get(Wealth, "value"))
    np.testing.assert_array_equal(x, slow.get(GridCell, "x"))
    np.testing.assert_array_equal(y, slow.get(GridCell, "y"))


def test_state_hash_independent_of_thread_count(tmp_path):
    """`socius run` under NUMBA_NUM_THREADS=1 and =2 (one thread vs two at 30k agents) ends with the same hash."""
    import os
    import subprocess
    import sys

    hashes = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-m", "socius.app", "run", "boltzmann", "--agents", "30000",
                              "--steps", "3", "--seed", "4", "--quiet"], env=env, capture_output=True, text=True,
                             check=True).stdout
        hashes.append(out.strip().splitlines()[-1])
    assert hashes[0].startswith("state_hash: ") and hashes[0] == hashes[1]


def test_workspace_picks_the_faster_mode_and_probes_the_other():
    from socius.scenarios.boltzmann.workspace import Workspace

    ws = Workspace(100, 100, 10, 2)
    assert ws._mode() == 2  # nothing timed yet: try two threads first
    ws.seconds, ws.steps = {1: None, 2: 0.002}, ws.PROBE_EVERY - 1
    assert ws._mode() == 2  # a short run never loads the one-thread kernel just to probe it
    ws.steps = ws.PROBE_EVERY
    assert ws._mode() == 1  # then one thread is tried
    ws.seconds = {1: 0.004, 2: 0.002}
    ws.steps = 5
    assert ws._mode() == 2
    ws.seconds = {1: 0.002, 2: 0.004}
    assert ws._mode() == 1
    ws.steps = ws.PROBE_EVERY * 3
    assert ws._mode() == 2  # the slower mode is tried again now and then
    one = Workspace(100, 100, 10, 1)
    one.seconds = {1: 0.004, 2: 0.001}
    assert one._mode() == 1  # never more threads than allowed


@pytest.mark.slow
def test_two_threads_that_cannot_run_at_once_fall_back_to_one():
    """If numba's pool runs the two halves one after the other, the wait times out (seconds) and the
    step is redone on one thread — same result, and later steps stay on one thread."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        x, y, w, _ = _kernel_run(2000, 45, 45, 5, 1, 1)
        from socius.ecs.rng import base_key
        from socius.scenarios.boltzmann.workspace import Workspace

        world = World(seed=5)
        build(world, BoltzmannConfig(agents=2000, width=45, height=45))
        x2, y2, w2 = (world.get(GridCell, "x").copy(), world.get(GridCell, "y").copy(),
                      world.get(Wealth, "value").copy())
        ws = Workspace(2000, 45 * 45, 45, 2)
        used = ws.step(world.entities.copy(), x2, y2, w2, 45, 45, np.uint64(base_key(5, "order", 0)),
                       np.uint64(base_key(5, "act", 0)), threads=2)
        assert used == 1 and ws.threads == 1
        np.testing.assert_array_equal(w, w2)
        np.testing.assert_array_equal(x, x2)
    finally:
        numba.set_num_threads(before)
