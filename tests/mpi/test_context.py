"""Rank context: one rank without MPI, launcher detection, the missing-extra message, collectives."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from socius.mpi import MissingExtraError, rank_context, run_ranks, self_context
from socius.mpi.context import launch_size, launched_under_mpi, local_rank_from_env
from socius.mpi.loopback import RankError


def test_plain_process_is_one_rank_without_importing_mpi4py():
    code = ("import sys; from socius.mpi import rank_context; c = rank_context(); "
            "print(c.rank, c.size, c.backend, 'mpi4py' in sys.modules)")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "1", "self", "False"]


@pytest.mark.parametrize("env,launched,size", [
    ({}, False, None),
    ({"PMI_RANK": "1", "PMI_SIZE": "4"}, True, 4),                       # MPICH / Hydra, Intel MPI
    ({"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2"}, True, 2),  # Open MPI
    ({"PMIX_RANK": "3"}, True, None),                                     # PMIx (srun --mpi=pmix)
    ({"MV2_COMM_WORLD_RANK": "0", "MV2_COMM_WORLD_SIZE": "8"}, True, 8),  # MVAPICH
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "2"}, False, None),            # a batch script is not a launch
])
def test_launcher_detection(env, launched, size):
    assert launched_under_mpi(env) is launched
    assert launch_size(env) == size


def test_local_rank_from_env():
    assert local_rank_from_env({"MPI_LOCALRANKID": "3", "MPI_LOCALNRANKS": "4"}) == (3, 4)
    assert local_rank_from_env({"OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"}) == (1, 2)
    assert local_rank_from_env({"SLURM_LOCALID": "5"}) == (5, None)
    assert local_rank_from_env({}) == (None, None)


def _no_mpi4py(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # `import mpi4py` raises ImportError
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)


def test_launched_on_several_ranks_without_mpi4py_names_the_extra(monkeypatch):
    _no_mpi4py(monkeypatch)
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(MissingExtraError, match=r"pip install 'socius\[mpi\]'"):
        rank_context()


def test_asked_for_mpi_without_mpi4py_names_the_extra(monkeypatch):
    _no_mpi4py(monkeypatch)
    with pytest.raises(MissingExtraError, match="'mpi' extra"):
        rank_context(mpi=True)


def test_one_rank_launch_without_mpi4py_falls_back(monkeypatch):
    _no_mpi4py(monkeypatch)
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "1")
    assert rank_context().backend == "self"
    assert rank_context(mpi=False).size == 1


def test_self_context_collectives_are_identities():
    ctx = self_context()
    assert (ctx.rank, ctx.size, ctx.local_rank, ctx.distributed) == (0, 1, 0, False)
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    got, counts = ctx.alltoallv(x, [3])
    assert np.array_equal(got, x) and counts.tolist() == [3]
    got, counts = ctx.allgatherv(x)
    assert np.array_equal(got, x) and counts.tolist() == [3]
    assert ctx.allreduce(np.array([2, 5]), "max").tolist() == [2, 5]
    assert ctx.allgather(7).tolist() == [7] and ctx.all_true(True)
    assert ctx.device_index(4) == 0
    with pytest.raises(ValueError, match="op"):
        ctx.allreduce(np.zeros(1), "prod")
    with pytest.raises(ValueError, match="counts"):
        ctx.alltoallv(x, [2])


def test_simulated_ranks_collectives():
    def job(ctx):
        # rank r sends r+d rows of value 10*r+d to rank d
        counts = np.array([ctx.rank + d for d in range(ctx.size)], dtype=np.int64)
        send = np.repeat(10 * ctx.rank + np.arange(ctx.size), counts).astype(np.int64)
        recv, rc = ctx.alltoallv(send, counts)
        g, gc = ctx.allgatherv(np.full(ctx.rank, ctx.rank, dtype=np.int16))
        s = ctx.allreduce(np.array([ctx.rank, 1]), "sum")
        return recv.tolist(), rc.tolist(), g.tolist(), gc.tolist(), s.tolist(), ctx.device_index(2)

    out = run_ranks(3, job)
    assert out[1][0] == [1, 11, 11, 21, 21, 21]  # 1, 2, 3 rows from ranks 0, 1, 2 to rank 1
    assert out[1][1] == [1, 2, 3]
    assert all(o[2] == [1, 2, 2] and o[3] == [0, 1, 2] and o[4] == [3, 3] for o in out)
    assert [o[5] for o in out] == [0, 1, 0]


def test_simulated_rank_error_names_the_rank_and_frees_the_others():
    def job(ctx):
        if ctx.rank == 2:
            raise ValueError("bad input")
        ctx.barrier()

    with pytest.raises(RankError, match="rank 2: ValueError: bad input"):
        run_ranks(3, job, timeout=10)
