"""A rank that raises, or is killed, ends the whole ``socius run`` job within 5 s; the last
checkpoint is intact and a resume reaches the uninterrupted run's final hash.

The job is ``mpiexec -n 2 python -m mpi4py -m socius.app run FILE.py …`` where FILE.py is the guess
scenario with one more system that, on rank 1 at tick ``$FAULT_TICK``, notes the time and then raises
(or SIGKILLs its own process). Launched from rank 0 only (see ``tests/mpi/test_abort.py``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from socius.app.run import find_snapshot, snapshot_tick

SCENARIO = """
    import dataclasses, os, signal, time
    from socius import system, world_ranks
    from socius.scenarios.guess import SCENARIO as GUESS

    @system()
    def fault(ctx):
        tick = int(os.environ.get("FAULT_TICK", "-1"))
        if ctx.tick == tick and world_ranks(ctx).rank == 1:
            with open(os.environ["FAULT_STAMP"], "w") as f:
                f.write(repr(time.time()))
            if os.environ["FAULT_HOW"] == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("injected failure on rank 1")

    def build(world, cfg):
        GUESS.build(world, cfg)
        world.add_systems(fault)

    SCENARIO = dataclasses.replace(GUESS, name="guess_with_fault", build=build)
"""
ARGS = ["--agents", "200", "--rounds", "6", "--seed", "2", "--engine", "mock", "--quiet"]


def _mpiexec() -> str | None:
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "MPI_LOCAL", "HYDRA_", "OMPI_", "MPIR_", "MV2_"))}
    return {**env, **extra}


def _job(tmp: Path, out: Path, how: str, tick: int, resume: bool = False) -> tuple[int, float, str, str]:
    """(exit code, seconds from the fault to the job's end, stdout, stderr)."""
    script = tmp / "guess_with_fault.py"
    script.write_text(textwrap.dedent(SCENARIO))
    stamp = tmp / f"stamp-{how}"
    stamp.unlink(missing_ok=True)
    cmd = [_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py", "-m", "socius.app", "run", str(script), *ARGS,
           "--snapshot-every", "1", "--out", str(out), *(["--resume", str(out)] if resume else [])]
    env = _env(FAULT_TICK=str(-1 if resume else tick), FAULT_STAMP=str(stamp), FAULT_HOW=how)
    try:
        p = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=120)
        rc, so, se = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, so, se = -999, "", str(e.stderr)
    end = time.time()
    lag = end - float(stamp.read_text()) if stamp.exists() else -1.0
    return rc, lag, so, se


def _reference(tmp: Path) -> str:
    p = subprocess.run([sys.executable, "-m", "socius.app", "run", "guess", *ARGS], env=_env(), cwd=tmp,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().splitlines()[-1]


def _scenario(tmp: Path, how: str) -> dict:
    out = tmp / f"run-{how}"
    rc, lag, _, err = _job(tmp, out, how, tick=3)
    snap = find_snapshot(out)
    tick = snapshot_tick(snap) if snap is not None else -1
    rc2, _, so2, err2 = _job(tmp, out, how, tick=3, resume=True)
    resumed = so2.strip().splitlines()[-1] if so2.strip() else ""
    return {"rc": rc, "lag": lag, "err": err, "tick": tick, "rc2": rc2, "resumed": resumed, "err2": err2,
            "reference": _reference(tmp)}


@pytest.mark.mpi
@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_ends_the_job_quickly_and_the_checkpoint_resumes(ctx, tmp_path, how):
    pytest.importorskip("mpi4py.MPI")
    if _mpiexec() is None:
        pytest.skip("no mpiexec next to this Python or on PATH")
    res = _scenario(tmp_path, how) if ctx.rank == 0 else None
    flags = np.array([0, 0, 0, 0, 0], dtype=np.int64)
    if ctx.rank == 0:
        flags[:] = [res["rc"] != 0, 0 <= res["lag"] <= 5.0, res["tick"] >= 2, res["rc2"] == 0,
                    res["resumed"] == res["reference"] and res["resumed"].startswith("state_hash: ")]
    shared = ctx.allgather(flags)[0]
    if ctx.rank == 0:
        assert shared[0], f"the job should fail:\n{res['err'][-2000:]}"
        assert shared[1], f"the job took {res['lag']:.1f} s after the fault to end (limit 5 s)"
        assert shared[2], f"the last checkpoint is at tick {res['tick']}, expected >= 2 (fault at tick 3)"
        assert shared[3], f"the resume failed:\n{res['err2'][-2000:]}"
        assert shared[4], f"resume gave {res['resumed']!r}, uninterrupted {res['reference']!r}"
        if how == "raise":
            assert "injected failure on rank 1" in res["err"], res["err"][-2000:]
    else:
        assert shared.all()
