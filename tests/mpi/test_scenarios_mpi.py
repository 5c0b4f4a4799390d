"""Every distributable scenario gives the one-rank state hash on N ranks, and resumes across rank counts.

Run under ``mpiexec -n N python -m mpi4py -m pytest -m mpi tests/mpi`` (``.ci/mpi``); without
``mpiexec`` the same tests run on one rank.
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from socius.app.config import build_config
from socius.app.registry import BUILTIN, get_scenario
from socius.app.engines import EngineChoice
from socius.app.run import run_scenario

# small worlds of every scenario that can be split over ranks (the Boltzmann model is serial)
CASES = {
    "guess": {"agents": 37},
    "guess-group": {"agents": 41, "game": "group", "groups": 3},
    "social": {"agents": 300},
    "recommender": {"agents": 60},
    "discussion": {"agents": 22, "room_size": 4},
    "discussion-script": {"agents": 22, "room_size": 4, "mode": "script"},
    "jobs": {"agents": 80},
}
NAMES = [k for k in CASES if k.split("-")[0] in BUILTIN]


def _run(name, ranks, seed, ticks, out=None, resume=None, snapshot_every=0):
    sc = get_scenario(name.split("-")[0])
    cfg = build_config(sc.config, dict(CASES[name]))
    return run_scenario(sc, cfg, seed=seed, ticks=ticks, out=out, engine=EngineChoice("mock"), ranks=ranks,
                        resume=resume, snapshot_every=snapshot_every)


@pytest.fixture
def shared_dir(ctx):
    """A folder every rank sees (rank 0 names it)."""
    job = ctx.bcast_int(os.getpid())
    path = Path(tempfile.gettempdir()) / f"socius-mpi-test-{job}"
    if ctx.rank == 0:
        path.mkdir(exist_ok=True)
    ctx.barrier()
    yield path
    ctx.barrier()
    if ctx.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.mpi
@pytest.mark.parametrize("name", NAMES)
def test_same_state_hash_as_one_rank(ctx, run_example, agree, name):
    one = _run(name, None, seed=5, ticks=3).state_hash
    many = run_example(_run, name, ctx if ctx.size > 1 else None, seed=5, ticks=3).state_hash
    agree(one == many, f"{name}: {ctx.size} ranks give {many}, one rank {one}")


@pytest.mark.mpi
@pytest.mark.parametrize("name", NAMES)
def test_resume_on_another_rank_count(ctx, run_example, agree, shared_dir, name):
    straight = _run(name, None, seed=9, ticks=4).state_hash
    # N ranks run 2 ticks and stop; every rank alone (one rank) resumes from that snapshot
    run_example(_run, name, ctx if ctx.size > 1 else None, seed=9, ticks=2, out=shared_dir / name)
    ctx.barrier()
    snap = shared_dir / name / ("snapshot.ranks" if ctx.size > 1 else "snapshot.socius")
    alone = _run(name, None, seed=9, ticks=4, resume=snap).state_hash
    agree(alone == straight, f"{name}: resumed on one rank from {ctx.size} ranks: {alone} != {straight}")
    # and the other way: one rank runs 2 ticks, N ranks resume
    if ctx.rank == 0:
        _run(name, None, seed=9, ticks=2, out=shared_dir / f"{name}-one")
    ctx.barrier()
    resumed = run_example(_run, name, ctx if ctx.size > 1 else None, seed=9, ticks=4,
                          resume=shared_dir / f"{name}-one" / "snapshot.socius").state_hash
    agree(resumed == straight, f"{name}: resumed on {ctx.size} ranks from one: {resumed} != {straight}")


@pytest.mark.mpi
def test_profile_reports_every_rank(ctx, run_example, agree):
    from socius.app.profile import profile_scenario
    sc = get_scenario("guess")
    cfg = build_config(sc.config, {"agents": 90})
    run = run_example(profile_scenario, sc, cfg, seed=1, ticks=3, engine=EngineChoice("mock"),
                      ranks=ctx if ctx.size > 1 else None)
    rep = run.report
    rows = rep["ranks"]
    agree(len(rows) == ctx.size, f"{len(rows)} rank rows on {ctx.size} ranks")
    agree(sum(r["entities"] for r in rows) == 90 == rep["entities"], f"entities {rows}")
    agree(0 <= rep["slowest_rank"] < ctx.size, f"slowest rank {rep['slowest_rank']}")
    if ctx.size > 1:
        busy = [r["busy_s_per_tick"] for r in rows]
        agree(busy[rep["slowest_rank"]] == max(busy), f"slowest is not the busiest: {busy}")
        agree(all(v >= 0 for r in rows for v in r["comm_s_per_tick"].values()), "negative collective time")
        agree(rows[0]["comm_s_per_tick"]["reduce"] > 0, "guess reduces every round: no reduce time recorded")
        agree(rep["mpi"]["ranks"] == ctx.size, f"mpi block {rep['mpi']}")
    else:
        agree(rep["mpi"] is None, "one rank has no mpi block")
