"""N ranks as threads of one process: test multi-rank logic without mpiexec.

::

    def job(ctx):                       # runs once per rank, in its own thread
        return ctx.allreduce(np.array([ctx.rank]), "sum")

    run_ranks(3, job)                   # [array([3]), array([3]), array([3])]

The ``"threads"`` backend implements the same collectives as the MPI one
(same argument checks, same results), with two barriers per collective:
every rank deposits its buffer, then every rank copies out what is addressed
to it. An exception on one rank breaks the barrier, so the other ranks stop
at their next collective instead of waiting for ever; :func:`run_ranks`
re-raises the first rank's error with its rank named.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from .context import RankContext

__all__ = ["run_ranks", "RankError"]

_OPS = {"sum": lambda a: np.sum(a, axis=0, dtype=a.dtype), "min": lambda a: a.min(axis=0),
        "max": lambda a: a.max(axis=0), "land": lambda a: np.logical_and.reduce(a, axis=0).astype(a.dtype),
        "lor": lambda a: np.logical_or.reduce(a, axis=0).astype(a.dtype)}


class RankError(RuntimeError):
    """An exception raised on one of the simulated ranks."""

    def __init__(self, rank: int, exc: BaseException):
        super().__init__(f"rank {rank}: {type(exc).__name__}: {exc}")
        self.rank, self.exc = rank, exc


class _Hub:
    def __init__(self, size: int, timeout: float):
        self.size = size
        self.slots: list[Any] = [None] * size
        self.barrier = threading.Barrier(size, timeout=timeout)


class _ThreadBackend:
    name = "threads"

    def __init__(self, hub: _Hub, rank: int):
        self.hub, self.rank = hub, rank

    def _collective(self, item, take: Callable[[list], Any]):
        h = self.hub
        h.slots[self.rank] = item
        h.barrier.wait()
        try:
            out = take(h.slots)  # copy out before anyone may overwrite the slots
        finally:
            h.barrier.wait()
        return out

    def alltoall(self, send):
        r = self.rank
        return self._collective(send, lambda s: np.array([x[r] for x in s], dtype=np.int64))

    def alltoallv(self, send, counts, recv_counts):
        r = self.rank
        displ = np.zeros_like(counts)
        np.cumsum(counts[:-1], out=displ[1:])

        def take(slots):
            parts = [buf[int(d[r]):int(d[r]) + int(c[r])] for buf, c, d in slots]
            got = np.array([p.shape[0] for p in parts], dtype=np.int64)
            if not np.array_equal(got, recv_counts):
                raise ValueError(f"alltoallv: rank {r} expected {recv_counts.tolist()} bytes, got {got.tolist()}")
            return np.concatenate(parts) if parts else np.zeros(0, np.uint8)

        return self._collective((send, counts, displ), take)

    def allgather(self, send):
        return self._collective(send, lambda s: np.stack([x.copy() for x in s]))

    def allgatherv(self, send, counts):
        return self._collective(send, lambda s: np.concatenate([x.copy() for x in s]))

    def allreduce(self, arr, op):
        return self._collective(arr, lambda s: np.ascontiguousarray(_OPS[op](np.stack(s))))

    def barrier(self):
        self.hub.barrier.wait()

    def abort(self, code):
        self.hub.barrier.abort()
        raise SystemExit(code)


def run_ranks(size: int, fn: Callable[..., Any], *args, timeout: float = 60.0, **kwargs) -> list:
    """Run ``fn(ctx, *args, **kwargs)`` on ``size`` simulated ranks; their return values in rank order.

    Raises :class:`RankError` (the lowest failing rank, its exception chained)
    when any rank raises; a collective that waits longer than ``timeout``
    seconds fails instead of hanging.
    """
    if size < 1:
        raise ValueError(f"run_ranks: size must be >= 1, got {size}")
    hub = _Hub(size, timeout)
    results: list[Any] = [None] * size
    errors: list[BaseException | None] = [None] * size

    def body(r: int):
        ctx = RankContext(_ThreadBackend(hub, r), r, size)
        try:
            results[r] = fn(ctx, *args, **kwargs)
        except BaseException as e:  # noqa: BLE001 — reported to the caller below
            errors[r] = e
            hub.barrier.abort()

    threads = [threading.Thread(target=body, args=(r,), name=f"rank-{r}", daemon=True) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [r for r in range(size) if errors[r] is not None]
    if failed:
        # a rank that only saw the broken barrier is a consequence; report the cause
        cause = [r for r in failed if not isinstance(errors[r], threading.BrokenBarrierError)] or failed
        r = cause[0]
        raise RankError(r, errors[r]) from errors[r]
    return results
