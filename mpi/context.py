"""Rank context: which rank this process is, and the few collectives ``socius.mpi`` uses.

Without MPI the same code runs as one rank::

    ctx = rank_context()          # size 1 unless launched by mpiexec/mpirun/srun
    ctx.rank, ctx.size            # (0, 1) in a plain ``python`` process
    ctx.local_rank                # index on this node (pick a GPU with it)

``rank_context()`` imports ``mpi4py`` only when the environment says the
process was started by an MPI launcher (MPICH/Hydra sets ``PMI_RANK`` and
``PMI_SIZE``, Open MPI ``OMPI_COMM_WORLD_SIZE``, PMIx ``PMIX_RANK``, MVAPICH
``MV2_COMM_WORLD_SIZE``) or when asked with ``rank_context(mpi=True)``.
Launched with more than one rank but without mpi4py, it raises
:class:`MissingExtraError` naming the ``mpi`` extra rather than quietly
running N unrelated copies of the job.

Collectives
-----------
Every method below is collective: all ranks call it in the same order.
Buffers are numpy arrays; the MPI backend moves them with mpi4py's
uppercase (buffer) methods — ``Alltoall``, ``Alltoallv``, ``Allgather``,
``Allgatherv``, ``Allreduce`` — never pickles. Variable-size exchanges go
as raw bytes (``MPI.BYTE``) so any fixed-width dtype, including
``[n, d]`` rows, travels unchanged. Three backends share the interface:

* ``"self"``: one rank, no MPI (copies, no communication);
* ``"mpi"``: an mpi4py communicator (``COMM_WORLD`` by default);
* ``"threads"``: N ranks as threads of one process
  (:func:`socius.mpi.loopback.run_ranks`), for testing multi-rank logic
  under plain ``pytest``.

When a job has more than one rank, :func:`rank_context` installs the abort
hook of :mod:`socius.mpi.abort` (an uncaught exception on any rank prints
``rank R: <traceback>`` and aborts every rank) unless ``abort_on_error=False``.
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Mapping

import numpy as np

from socius.errors import MissingExtraError

from .abort import install_abort_hook

__all__ = ["RankContext", "MissingExtraError", "rank_context", "launched_under_mpi", "launch_size",
           "local_rank_from_env", "self_context", "OPS"]

# (rank variable, size variable) of the launchers we know; PMIx sets no size variable.
_LAUNCH_VARS = (("PMI_RANK", "PMI_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
                ("PMIX_RANK", None), ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"))
_LOCAL_RANK_VARS = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK",
                    "PALS_LOCAL_RANKID", "SLURM_LOCALID")
_LOCAL_SIZE_VARS = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")

OPS = ("sum", "min", "max", "land", "lor")


def _env_int(env: Mapping[str, str], names) -> int | None:
    for k in names:
        v = env.get(k)
        if v is not None and v.strip().lstrip("-").isdigit():
            return int(v)
    return None


def launched_under_mpi(env: Mapping[str, str] | None = None) -> bool:
    """Whether an MPI launcher (mpiexec, mpirun, srun with PMI/PMIx) started this process."""
    env = os.environ if env is None else env
    return any(r in env or (s is not None and s in env) for r, s in _LAUNCH_VARS)


def launch_size(env: Mapping[str, str] | None = None) -> int | None:
    """Number of ranks the launcher announced, or None when it did not say."""
    env = os.environ if env is None else env
    return _env_int(env, [s for _, s in _LAUNCH_VARS if s is not None])


def local_rank_from_env(env: Mapping[str, str] | None = None) -> tuple[int | None, int | None]:
    """``(local_rank, local_size)`` on this node from the launcher's variables (None where unset)."""
    env = os.environ if env is None else env
    return _env_int(env, _LOCAL_RANK_VARS), _env_int(env, _LOCAL_SIZE_VARS)


def _as_bytes(a: np.ndarray) -> np.ndarray:
    """A C-contiguous ``uint8`` view of ``a`` (copy only when ``a`` is not contiguous)."""
    a = np.ascontiguousarray(a)
    return a.reshape(-1).view(np.uint8)


# ---------------------------------------------------------------- backends
class _SelfBackend:
    """One rank, no communication."""

    name = "self"

    def alltoall(self, send):
        return send.copy()

    def alltoallv(self, send, counts, recv_counts):
        return send[: int(counts[0])].copy()

    def allgather(self, send):
        return send.copy()[None]

    def allgatherv(self, send, counts):
        return send.copy()

    def allreduce(self, arr, op):
        return arr.copy()

    def barrier(self):
        pass

    def abort(self, code):
        raise SystemExit(code)


class _MPIBackend:
    """mpi4py buffer collectives on a communicator."""

    name = "mpi"

    def __init__(self, comm, MPI):
        self.comm, self.MPI = comm, MPI
        self._ops = {"sum": MPI.SUM, "min": MPI.MIN, "max": MPI.MAX, "land": MPI.LAND, "lor": MPI.LOR}

    def alltoall(self, send):  # [size] int64 -> [size] int64
        recv = np.empty_like(send)
        self.comm.Alltoall([send, self.MPI.INT64_T], [recv, self.MPI.INT64_T])
        return recv

    def alltoallv(self, send, counts, recv_counts):  # uint8 buffers, byte counts
        sd = np.zeros_like(counts)
        np.cumsum(counts[:-1], out=sd[1:])
        rd = np.zeros_like(recv_counts)
        np.cumsum(recv_counts[:-1], out=rd[1:])
        recv = np.empty(int(recv_counts.sum()), dtype=np.uint8)
        self.comm.Alltoallv([send, (counts, sd), self.MPI.BYTE], [recv, (recv_counts, rd), self.MPI.BYTE])
        return recv

    def allgather(self, send):  # [k] int64 -> [size, k] int64
        recv = np.empty((self.comm.Get_size(), send.shape[0]), dtype=send.dtype)
        self.comm.Allgather([send, self.MPI.INT64_T], [recv, self.MPI.INT64_T])
        return recv

    def allgatherv(self, send, counts):  # uint8, byte counts per rank
        d = np.zeros_like(counts)
        np.cumsum(counts[:-1], out=d[1:])
        recv = np.empty(int(counts.sum()), dtype=np.uint8)
        self.comm.Allgatherv([send, self.MPI.BYTE], [recv, (counts, d), self.MPI.BYTE])
        return recv

    def allreduce(self, arr, op):
        out = np.empty_like(arr)
        self.comm.Allreduce(arr, out, op=self._ops[op])
        return out

    def barrier(self):
        self.comm.Barrier()

    def abort(self, code):
        self.comm.Abort(code)


# ---------------------------------------------------------------- the context
class _Timed:
    """A backend whose collectives add their wall time to the context's ``comm_s[category]``."""

    def __init__(self, backend, ctx: "RankContext"):
        self._b, self._ctx = backend, ctx

    def __getattr__(self, name):
        fn = getattr(self._b, name)
        if name not in ("alltoall", "alltoallv", "allgather", "allgatherv", "allreduce", "barrier"):
            return fn

        def timed(*args):
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                c = self._ctx
                k = c._category
                c.comm_s[k] = c.comm_s.get(k, 0.0) + (time.perf_counter() - t0)
                c.comm_calls[k] = c.comm_calls.get(k, 0) + 1
        return timed


class RankContext:
    """This process's place in the job and the collectives over all ranks.

    Attributes: ``rank``, ``size``, ``local_rank`` / ``local_size`` (this
    node's share of the job; ``local_rank`` picks the GPU), ``comm`` (the
    mpi4py communicator, or None without MPI), ``backend`` (``"self"``,
    ``"mpi"`` or ``"threads"``).
    """

    def __init__(self, backend, rank: int, size: int, local_rank: int | None = None,
                 local_size: int | None = None, comm: Any = None):
        self._raw = backend
        self._b = _Timed(backend, self)
        # wall seconds inside collectives (waiting for the other ranks included), by what they were for:
        # "route" (message routing), "halo" (ghost exchange), "reduce" (everything else)
        self.comm_s: dict[str, float] = {}
        self.comm_calls: dict[str, int] = {}
        self._category = "reduce"
        self.rank, self.size = int(rank), int(size)
        self.local_rank = int(rank if local_rank is None else local_rank)
        self.local_size = int(size if local_size is None else local_size)
        self.comm = comm

    @property
    def backend(self) -> str:
        return self._raw.name

    @contextlib.contextmanager
    def category(self, name: str):
        """Count the collectives inside the ``with`` block under ``name`` in :attr:`comm_s`."""
        before, self._category = self._category, name
        try:
            yield self
        finally:
            self._category = before

    @property
    def distributed(self) -> bool:
        """True when there is more than one rank."""
        return self.size > 1

    def device_index(self, n_devices: int) -> int:
        """The accelerator this rank drives: ``local_rank % n_devices`` (one rank per GPU)."""
        if n_devices < 1:
            raise ValueError(f"device_index: n_devices must be >= 1, got {n_devices}")
        return self.local_rank % int(n_devices)

    def __repr__(self) -> str:
        return (f"RankContext(rank={self.rank}, size={self.size}, local_rank={self.local_rank}, "
                f"backend={self.backend!r})")

    # ----------------------------------------------------------- collectives
    def barrier(self) -> None:
        self._b.barrier()

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now with exit status ``code`` (``MPI_Abort``)."""
        self._b.abort(int(code))

    def alltoall(self, send) -> np.ndarray:
        """``send [size] int64`` (one value per destination) -> ``[size] int64`` (one per source)."""
        send = np.ascontiguousarray(send, dtype=np.int64).reshape(-1)
        if send.shape[0] != self.size:
            raise ValueError(f"alltoall: need one value per rank ({self.size}), got {send.shape[0]}")
        return self._b.alltoall(send)

    def alltoallv(self, send: np.ndarray, counts) -> tuple[np.ndarray, np.ndarray]:
        """Send ``counts[d]`` consecutive rows of ``send`` to rank ``d``, rows grouped by destination.

        ``send``: ``[m, ...]`` any fixed-width dtype with ``m = counts.sum()``;
        ``counts``: ``[size] int64``. Returns ``(recv [k, ...], recv_counts [size] int64)``:
        the rows from rank 0, then rank 1, …, each in the order sent.
        """
        send = np.ascontiguousarray(send)
        counts = np.ascontiguousarray(counts, dtype=np.int64).reshape(-1)
        if counts.shape[0] != self.size or int(counts.sum()) != send.shape[0]:
            raise ValueError(f"alltoallv: counts {counts.tolist()} do not match {send.shape[0]} rows "
                             f"for {self.size} ranks")
        recv_counts = self.alltoall(counts)
        row = send.dtype.itemsize * int(np.prod(send.shape[1:], dtype=np.int64))
        raw = self.alltoallv_bytes(_as_bytes(send), counts * row, recv_counts * row)
        return raw.view(send.dtype).reshape((-1,) + send.shape[1:]), recv_counts

    def alltoallv_bytes(self, send: np.ndarray, counts, recv_counts) -> np.ndarray:
        """Raw exchange: ``send [counts.sum()] uint8`` grouped by destination; the caller
        already knows ``recv_counts [size]`` (bytes from each source). Returns ``[recv_counts.sum()] uint8``."""
        counts = np.ascontiguousarray(counts, dtype=np.int64)
        recv_counts = np.ascontiguousarray(recv_counts, dtype=np.int64)
        return self._b.alltoallv(np.ascontiguousarray(send).view(np.uint8), counts, recv_counts)

    def allgather(self, value) -> np.ndarray:
        """``value [k] int64`` (or a scalar) from every rank -> ``[size, k]`` (``[size]`` for a scalar)."""
        a = np.asarray(value, dtype=np.int64)
        out = self._b.allgather(np.ascontiguousarray(a.reshape(-1)))
        return out[:, 0].copy() if a.ndim == 0 else out

    def allgatherv(self, send: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Concatenate every rank's ``send [m_r, ...]`` in rank order -> ``(all [Σm, ...], counts [size] int64)``.

        Every rank must pass the same dtype and trailing shape.
        """
        send = np.ascontiguousarray(send)
        counts = self.allgather(send.shape[0])
        row = send.dtype.itemsize * int(np.prod(send.shape[1:], dtype=np.int64))
        raw = self._b.allgatherv(_as_bytes(send), counts * row)
        return raw.view(send.dtype).reshape((-1,) + send.shape[1:]), counts

    def allreduce(self, arr, op: str = "sum") -> np.ndarray:
        """Elementwise reduction of equal-shaped numeric arrays over all ranks.

        ``op``: one of ``"sum"``, ``"min"``, ``"max"``, ``"land"``, ``"lor"``. Integer and bool
        reductions are exact; for floats use :mod:`socius.mpi.reduce` (order-independent).
        """
        if op not in OPS:
            raise ValueError(f"allreduce: op must be one of {OPS}, got {op!r}")
        a = np.ascontiguousarray(arr)
        return self._b.allreduce(a, op)

    def all_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every rank (one ``Allreduce``)."""
        return bool(self.allreduce(np.array([1 if flag else 0], dtype=np.int64), "min")[0])

    def bcast_int(self, value: int, root: int = 0) -> int:
        """``value`` as given on ``root``, on every rank."""
        v = self.allgather(int(value))
        return int(v[root])


def self_context() -> RankContext:
    """A one-rank context with no MPI at all."""
    return RankContext(_SelfBackend(), 0, 1)


def mpi_context(comm=None) -> RankContext:
    """A context over an mpi4py communicator (``COMM_WORLD`` by default); imports mpi4py."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise MissingExtraError("mpi", "mpi4py", "Running on several MPI ranks") from e
    except RuntimeError as e:  # mpi4py installed without an MPI library (libmpi.so missing)
        raise MissingExtraError("mpi", "mpich", f"Running on several MPI ranks ({e})") from e
    comm = MPI.COMM_WORLD if comm is None else comm
    rank, size = comm.Get_rank(), comm.Get_size()
    lr, ls = local_rank_from_env()
    if lr is None or ls is None:  # ask MPI which ranks share this node (collective on comm)
        node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
        lr, ls = node.Get_rank(), node.Get_size()
        node.Free()
    return RankContext(_MPIBackend(comm, MPI), rank, size, lr, ls, comm=comm)


def rank_context(mpi: bool | None = None, comm=None, abort_on_error: bool = True) -> RankContext:
    """The rank context of this process.

    ``mpi=None`` (default): MPI only when launched under an MPI launcher;
    ``mpi=True``: import mpi4py even in a plain process (a one-rank MPI job);
    ``mpi=False``: one rank without MPI whatever the environment.
    ``comm``: an mpi4py communicator to use instead of ``COMM_WORLD``.
    Raises :class:`MissingExtraError` (``pip install 'socius[mpi]'``) when MPI is
    needed — asked for, or launched with more than one rank — and mpi4py cannot load.
    """
    if mpi is False:
        return self_context()
    if mpi is None and comm is None and not launched_under_mpi():
        return self_context()
    try:
        ctx = mpi_context(comm)
    except MissingExtraError:
        if mpi is None and comm is None and (launch_size() or 1) <= 1:
            return self_context()  # `mpiexec -n 1` without mpi4py: one rank is one rank
        raise
    if abort_on_error and ctx.size > 1:
        install_abort_hook(ctx)
    return ctx
