"""The step's scratch buffers and the choice between one thread and two.

:class:`Workspace` holds what :mod:`.kernel`'s step writes into (kept between
ticks, never saved: it is rebuilt from the state) and decides each step
whether to run on one thread or two by the median of recent step times —
the result is bit-identical either way, so the choice only moves time.
"""
from __future__ import annotations

import os
import time

import numba
import numpy as np

from socius.ecs.kernels import aligned_empty

from .kernel import _CAP, _NFLAGS, MIN_AGENTS_2T, OK, OVERFLOW, _two_threads, step_worker
from .sync import new_flags

__all__ = ["Workspace", "default_threads"]


class Workspace:
    """Scratch buffers of the step, kept between ticks (a plain resource: not saved).

    Shapes: ``perm, js, qold, qnew, qpw, qslot, qr [n] int32``; ``on, wr, z0, z1 [n] 64-bit``;
    ``cls [n] uint8``; ``qagent [2, n + 1]`` and ``events [2, 2n] int32``; ``last [2, 2 * height] int32``;
    ``counts [cells] int32``; ``members [cells, cap] int32`` on 64-byte lines.

    With ``threads=2`` each step runs on two threads or one, whichever has been faster lately
    (a step on two threads is held up whenever the machine gives one of them away; the result
    is the same either way): the mode with the lower median of its last ``RECENT`` step times is
    used, and the other one is tried again every ``PROBE_EVERY`` steps. One thread is first
    tried at step ``PROBE_EVERY``, not at once: loading its kernel from numba's cache costs
    about four steps' time (compiling it, on a first run, a second), so a short run such as
    ``socius run boltzmann --steps 10`` stays on two threads unless one of them cannot run.
    """

    PROBE_EVERY = 16
    RECENT = 5

    def __init__(self, n: int, ncell: int, height: int, threads: int):
        self.n, self.ncell, self.height, self.threads = n, ncell, height, threads
        self.requested = threads
        self.perm = np.empty(n, np.int32)
        self.on = np.empty(n, np.int64)
        self.wr = np.empty(n, np.int64)
        self.cls = np.empty(n, np.uint8)
        self.z0 = np.empty(n, np.uint64)
        self.z1 = np.empty(n, np.uint64)
        self.js = np.empty(n, np.int32)
        self.qagent = np.empty((2, n + 1), np.int32)
        self.qold = np.empty(n, np.int32)
        self.qnew = np.empty(n, np.int32)
        self.qpw = np.empty(n, np.int32)  # total wealth == agents, so int32 suffices
        self.qslot = np.empty(n, np.int32)
        self.qr = np.empty(n, np.int32)
        self.events = np.empty((2, 2 * n), np.int32)
        self.last = np.zeros((2, 2 * height), np.int32)
        self.counts = np.zeros(ncell, np.int32)
        self.members = aligned_empty((ncell, _CAP), np.int32)
        self.flags = new_flags(_NFLAGS)
        self.part = np.zeros(2, np.int64)
        self.split_row = int(n * 0.6)  # thread 0 also shuffles: it draws for fewer rows
        self.seconds = {1: None, 2: None}  # median of the last RECENT step times per mode
        self.recent = {1: [], 2: []}
        self.steps = 0
        self.last_mode = 0  # threads the last step ran on (0: none yet)
        self.status = np.zeros(2, np.int64)

    def fits(self, n: int, ncell: int, height: int, threads: int) -> bool:
        return self.n == n and self.ncell == ncell and self.height == height and self.requested == threads

    def _mode(self) -> int:
        if self.threads == 1:
            return 1
        one, two = self.seconds[1], self.seconds[2]
        if two is None:
            return 2
        if one is None:  # one thread is first tried at step PROBE_EVERY: a short run never pays the
            return 1 if self.steps >= self.PROBE_EVERY else 2  # one-thread kernel's load (or compile)
        best = 1 if one < two else 2
        return 3 - best if self.steps % self.PROBE_EVERY == 0 else best

    def step(self, ids, x, y, wealth, width: int, height: int, order_key: np.uint64, act_key: np.uint64,
             threads: int | None = None) -> int:
        """One step in place on ``x, y [n] int32`` and ``wealth [n]`` (row-aligned with ``ids [n] int64``).

        ``threads`` forces one or two threads (at most ``self.threads``); returns the number used.
        """
        mode = self._mode() if threads is None else min(threads, self.threads)
        t0 = time.perf_counter()
        while True:
            self.flags[:] = 0
            args = (self.split_row, ids, x, y, wealth, width, height, order_key, act_key,
                    self.perm, self.on, self.wr, self.cls, self.qold, self.qnew, self.qpw, self.qslot, self.qr,
                    self.counts, self.members, self.events, self.last, self.flags, self.part, self.z0, self.z1,
                    self.js, self.qagent)
            if mode == 2:
                _two_threads(self.status, *args)
                status = OVERFLOW if OVERFLOW in self.status else int(self.status.max())
            else:
                status = step_worker(1, 1, *args)
            if status == OK:
                break
            if status == OVERFLOW:  # a cell row filled up: double every row and run the step again
                cap = self.members.shape[1]
                self.members = aligned_empty((self.ncell, 2 * cap), np.int32)
            else:  # a thread waited seconds for the other one (the pool does not run both at
                mode = 1  # once): this step and the following ones on one thread
                self.threads = 1
        dt = time.perf_counter() - t0
        last = self.recent[mode]
        last.append(dt)
        del last[:-self.RECENT]
        self.seconds[mode] = float(np.median(last))  # one step held up (a core lent away) does not decide
        self.steps += 1
        self.last_mode = mode
        return mode


def default_threads(n: int, width: int) -> int:
    """2 for large grids when two cores and ``numba.get_num_threads() >= 2``; otherwise 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    if n >= MIN_AGENTS_2T and width >= 2 and cores >= 2 and numba.get_num_threads() >= 2:
        return 2
    return 1
