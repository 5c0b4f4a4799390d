"""An error on one rank ends the whole job, non-zero, within seconds, naming the rank."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from socius.mpi import abort_on_error, install_abort_hook, self_context
from socius.mpi.abort import format_rank_error

# a job that fails on rank 1 while rank 0 waits for it in a collective
RAISES = """
    from socius.mpi import rank_context
    ctx = rank_context()
    if ctx.rank == 1:
        raise ValueError("bad input on this rank")
    ctx.barrier()
"""
EXITS = """
    import sys
    from socius.mpi import abort_on_error, rank_context
    ctx = rank_context()
    with abort_on_error(ctx):
        if ctx.rank == 1:
            sys.exit(3)
        ctx.barrier()
"""


def test_format_prefixes_every_line_with_the_rank():
    try:
        raise KeyError("x")
    except KeyError as e:
        text = format_rank_error(3, type(e), e, e.__traceback__)
    lines = text.splitlines()
    assert lines[0] == "rank 3: Traceback (most recent call last):"
    assert lines[-1] == "rank 3: KeyError: 'x'"
    assert all(line.startswith("rank 3: ") for line in lines)


def test_one_rank_errors_propagate_unchanged():
    ctx = self_context()
    with pytest.raises(ValueError):
        with abort_on_error(ctx):
            raise ValueError("plain")
    with pytest.raises(SystemExit):
        with abort_on_error(ctx):
            sys.exit(2)


def test_install_hook_is_idempotent(monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    ctx = self_context()
    install_abort_hook(ctx)
    first = sys.excepthook
    install_abort_hook(ctx)
    assert sys.excepthook is first and first.__wrapped__ is sys.__excepthook__


def _mpiexec() -> str | None:
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def _launch(tmp_path, body: str) -> tuple[int, float, str]:
    """Run ``body`` as ``mpiexec -n 2 python job.py`` (no ``-m mpi4py``): exit code, seconds, stderr."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(body))
    # a clean launch: drop the variables of the MPI job this test may itself run in
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "MPI_LOCAL", "HYDRA_", "OMPI_", "MPIR_", "MV2_"))}
    t0 = time.monotonic()
    try:
        out = subprocess.run([_mpiexec(), "-n", "2", sys.executable, str(script)], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=30)
        rc, err = out.returncode, out.stderr
    except subprocess.TimeoutExpired as e:
        rc, err = -999, (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else str(e.stderr)
    return rc, time.monotonic() - t0, err


def _on_rank0(ctx, fn):
    """Run ``fn()`` on rank 0 only (a nested job per rank would be wasteful); share ``(rc, ms)``."""
    rc, ms, err = fn() if ctx.rank == 0 else (0, 0, "")
    shared = ctx.allgather(np.array([rc, int(ms * 1000)], dtype=np.int64))[0]
    return int(shared[0]), shared[1] / 1000.0, err


@pytest.mark.mpi
@pytest.mark.parametrize("body,expect", [(RAISES, "rank 1: ValueError: bad input on this rank"),
                                         (EXITS, "rank 1: exit with status 3")])
def test_error_on_one_rank_aborts_the_job_quickly(ctx, tmp_path, body, expect):
    pytest.importorskip("mpi4py.MPI")
    if _mpiexec() is None:
        pytest.skip("no mpiexec next to this Python or on PATH")
    rc, seconds, err = _on_rank0(ctx, lambda: _launch(tmp_path, body))
    assert rc != 0, "the job should fail"
    assert rc != -999 and seconds < 10, f"the job took {seconds:.1f} s to end (hang?)"
    if ctx.rank == 0:
        assert expect in err, err
