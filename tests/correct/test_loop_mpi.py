"""The online loop over two ranks: rank 0 labels and decides, both ranks switch at the same tick, and the
final state hash is the one-rank run's with the same switches.

In the default run the two ranks are threads (``socius.mpi.run_ranks``); under
``mpiexec -n 2 python -m mpi4py -m pytest -m mpi tests/correct/test_loop_mpi.py`` they are processes.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import types
import zlib
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from socius.app.config import build_config
from socius.app.engines import EngineChoice
from socius.app.loop import correction_loop, with_loop
from socius.app.registry import get_scenario
from socius.app.run import run_scenario
from socius.correct import load_replies
from socius.correct.loop import PlaceholderTraining, read_rounds
from socius.correct.switch import AdapterSchedule
from socius.mpi import run_ranks

AGENTS, TICKS, EVERY = 13, 8, 2


def _fixed_trainer(folder: Path):
    """A trainer hook (as the single-rank tests use) whose adapters are all one existing folder, so two runs
    schedule identical switch rows."""
    made = []

    def trainer(run_dir, name, method, *, labels, base=None, chat=None, **hp):
        made.append(labels.num_rows)
        return PlaceholderTraining({"path": str(folder), "version": len(made), "loss": {}})
    return trainer, made


def _run(out: Path, folder: Path, ranks=None):
    sc = get_scenario("guess")
    args = types.SimpleNamespace(correct_every=EVERY, judge="rule:guess_number", method="kto", correct_sample=None,
                                 correct_cohort=None, correct_wait=False, correct_name="online", correct_base=None,
                                 correct_max_steps=None, seed=3, out=out, replay=None)
    trainer, made = _fixed_trainer(folder)
    engine = EngineChoice(kind="mock")
    loop = correction_loop(args, sc, engine, ranks=ranks, trainer=trainer)
    assert (loop is None) == (ranks is not None and ranks.rank != 0)  # the loop object lives on rank 0 only
    try:
        res = run_scenario(sc, build_config(sc.config, {"agents": AGENTS}), seed=3, ticks=TICKS, out=out,
                           snapshot_every=EVERY, progress=with_loop(None, loop), engine=engine, ranks=ranks)
    finally:
        if loop is not None:
            loop.close()
    sched = res.world.get_resource(AdapterSchedule)
    return res.state_hash, json.dumps(sched.items if sched else [], sort_keys=True), made


def _first_adapter_tick(run_dir: Path, rank: int) -> int:
    """The first tick at which this rank's logged requests carry the adapter ``online``."""
    r = load_replies(run_dir / "responses" / f"rank-{rank:05d}")
    ticks = r.filter(pc.equal(r.column("adapter"), "online")).column("tick").to_numpy()
    return int(ticks.min()) if ticks.size else -1


def _two_ranks(ctx, root: Path) -> dict:
    folder = root / "adapter-online"
    if ctx.rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "adapter_config.json").write_text("{}")
    ctx.barrier()
    digest, rows, made = _run(root / "two", folder, ranks=ctx)
    one = _run(root / f"one-{ctx.rank}", folder)[0]                  # the same switches on one rank
    ctx.barrier()  # every rank's log is on disk
    switched = [_first_adapter_tick(root / "two", r) for r in range(ctx.size)]
    return {"hash": digest, "one": one, "rows": zlib.crc32(rows.encode()), "schedule": json.loads(rows),
            "switched": switched, "made": made, "rank": ctx.rank}


def _check(out: list[dict], root: Path) -> None:
    first = out[0]
    assert all(o["hash"] == first["hash"] for o in out)               # one world-wide hash
    assert first["hash"] == first["one"]                              # ... equal to one rank's
    assert all(o["rows"] == first["rows"] for o in out)               # the same schedule on every rank
    ticks = [s["tick"] for s in first["schedule"]]
    assert ticks == [3, 5, 7] and all(s["status"] == "applied" for s in first["schedule"])
    assert first["switched"] == [3] * len(first["switched"])           # every rank's requests switch at tick 3
    rounds = read_rounds(root / "two")
    assert [r["switch_tick"] for r in rounds] == [3, 5, 7]
    assert all(len(o["made"]) == (3 if o["rank"] == 0 else 0) for o in out)  # rank 0 alone trains
    # under MPI a round reads up to the tick before its boundary: ticks 0, then 1..2, then 3..4
    assert [r["until"] for r in rounds] == [1, 3, 5]


def test_two_ranks_switch_together(tmp_path):
    out = run_ranks(2, _two_ranks, tmp_path, timeout=120)
    _check(out, tmp_path)


@pytest.fixture
def mpi_ctx():
    from socius.mpi import rank_context
    ctx = rank_context()
    if ctx.size < 2:
        pytest.skip("needs mpiexec -n 2 (or more)")
    return ctx


@pytest.mark.mpi
def test_two_mpi_ranks_switch_together(mpi_ctx):
    ctx = mpi_ctx
    root = Path(tempfile.gettempdir()) / f"socius-loop-mpi-{ctx.bcast_int(os.getpid())}"
    if ctx.rank == 0:
        root.mkdir(exist_ok=True)
    ctx.barrier()
    try:
        mine = _two_ranks(ctx, root)
        codes = ctx.allgather(np.array([zlib.crc32(mine["hash"].encode()), mine["rows"]], np.int64))
        assert (codes == codes[0]).all(), codes                        # hash and schedule agree over ranks
        _check([mine], root)
    finally:
        ctx.barrier()
        if ctx.rank == 0:
            shutil.rmtree(root, ignore_errors=True)
