"""The Boltzmann step as numba kernels, on one thread or two.

A step is a pure function of the agents' cells and wealth, the seed and the
tick:

1. **order** — a Fisher–Yates shuffle keyed by ``(seed, "order", tick)``:
   ``perm [n] int32``, ``perm[p]`` = the row of the agent whose turn is ``p``;
2. **draws** — each agent's move and recipient draw, keyed by
   ``(seed, "act", tick, agent ID)`` (draws 0 and 1): its new cell is known up
   front, since nothing moves an agent before its own turn;
3. **the sequential pass** — in turn order, each agent leaves its cell (swap
   with the cell's last member), joins the new one (appended), and if it has
   wealth and cellmates gives one unit to cellmate ``(r * m) >> 31`` of the
   ``m`` already there, ``r`` a 31-bit draw.

Each cell's member list starts the step in turn order, so the member order —
and therefore every recipient — depends only on the state, never on what
happened in earlier steps (a resumed run equals an uninterrupted one).

**Two threads.** The grid is cut into two halves by column (``x < width // 2``
and the rest); an agent belongs to the half it starts the step in. A turn
touches only two cells, the agent's old and new one, so turns on cells of
different halves commute, and each half's thread runs its own agents in turn
order. Only turns on the two columns along the cut can involve the other half
(an agent crossing the cut, or one sharing a cell with such an agent), so only
those wait: before such a turn, a thread waits until the other thread has done
its last earlier turn on the same cells (it publishes its progress after each
of its own turns on those columns). A crossing agent is run by the thread of
the half it leaves. Every cell therefore sees the same operations in the same
order as on one thread — the result is the sequential one, bit for bit,
whatever the timing and whether one thread or two run it: the split is fixed
by the grid and the seed, never by the scheduler. Waits are rare while both
threads run; a thread that the machine gives away holds the other one up,
which is why :class:`Workspace` falls back to one thread when that is faster.

Layout: the agents of half ``h`` are copied, in turn order, into the block
``[base_h, base_h + n_h)`` of the turn-indexed arrays ``qold, qnew, qpw, qslot,
qr``; cell member lists hold these turn slots. Each thread writes only its own
block and its own half's cells (an agent that crossed may later receive from
the other thread, in order), so the threads rarely share a cache line. Hot
loops avoid calls with array arguments (numba reference-counts them on every
call) and run over ``range(len)`` of slices where they should vectorise.
"""
from __future__ import annotations

import os
import time

import numba
import numpy as np

from socius.ecs.kernels import aligned_empty, draw_uniform, prefetch
from socius.ecs.rng import mix64

from .sync import LINE, new_flags, spin_until, store_release

_DX = np.array([-1, -1, -1, 0, 0, 1, 1, 1], np.int32)
_DY = np.array([-1, 0, 1, -1, 1, -1, 0, 1], np.int32)
_AHEAD = 12      # prefetch distance of the sequential pass (turns)
_CAP = 16        # member slots per cell row: 16 int32 = one 64-byte line (doubled on overflow)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # draw j of draw_uniform adds (j + 1) * golden
_GOLDEN2 = np.uint64(0x3C6EF372FE94F82A)  # 2 * golden mod 2**64
_U53 = 1.0 / 9007199254740992.0  # 2**-53
_LO = np.int64(0xFFFFFFFF)
MIN_AGENTS_2T = 20_000   # below this one thread is faster (the waits cost more than they save)

# flag slots (one cache line each)
_BAR0, _BAR1, _PROG0, _PROG1, _ABORT = 0, 1, 2, 3, 4
_NFLAGS = 5
OK, OVERFLOW, ABORTED = 0, 1, 2


@numba.njit(cache=True, nogil=True, inline="always")
def neighbour(ax, ay, width, height, u):
    """The cell picked by ``u`` in [0, 1) among the in-bounds Moore neighbours of (ax, ay), in Mesa's order."""
    if 0 < ax < width - 1 and 0 < ay < height - 1:  # interior: all 8
        d = int(u * 8)
        return ax + _DX[d], ay + _DY[d]
    valid = 0
    for d in range(8):
        if 0 <= ax + _DX[d] < width and 0 <= ay + _DY[d] < height:
            valid += 1
    if valid == 0:
        return ax, ay
    pick = int(u * valid)
    for d in range(8):
        if 0 <= ax + _DX[d] < width and 0 <= ay + _DY[d] < height:
            if pick == 0:
                return ax + _DX[d], ay + _DY[d]
            pick -= 1
    return ax, ay


@numba.njit(cache=True, nogil=True)
def _shuffle(order_key, perm, js):
    """Fisher–Yates: swap ``i`` with ``int(draw_uniform(order_key, i, 0) * (i + 1))`` for i = n-1 .. 1.

    The swap targets are drawn first in a branch-free loop (it vectorises), then swapped.
    """
    n = perm.shape[0]
    for i in range(n):  # (js[0] is not used)
        js[i] = np.int32(draw_uniform(order_key, i, 0) * (i + 1))
    for i in range(n):
        perm[i] = i
    for i in range(n - 1, 0, -1):
        j = js[i]
        perm[i], perm[j] = perm[j], perm[i]


@numba.njit(cache=True, nogil=True)
def _edge_neighbour(ax, ay, width, height, u):
    """``neighbour`` for a cell on the border of the grid (fewer than 8 neighbours), as a cell index."""
    nx_, ny_ = neighbour(ax, ay, width, height, u)
    return nx_ * height + ny_


@numba.njit(cache=True, nogil=True)
def _draw(a0, a1, ids, x, y, wealth, width, height, split, act_key, on, wr, cls, z0, z1):
    """Rows ``a0..a1``: ``on[a] = old cell | new cell << 32``, ``wr[a] = 31-bit recipient draw | wealth << 32`` and
    ``cls[a]`` = bit 0: old cell in half 1, bit 1: new cell in half 1, bit 2: old cell on the
    two columns along the cut, bit 3: new cell there. Returns how many start in half 0.

    The draws are ``draw_uniform(act_key, id, 0 and 1)`` in integer form: for the 53-bit
    ``u = (z >> 11) / 2**53``, ``int(u * 8) == z >> 61`` and ``int(u * 2**31) == z >> 33``.
    The loops run over slices (``range(len)``: a loop from ``a0`` does not vectorise) and the
    first two are branch-free; border cells, with fewer neighbours, are redone in a third.
    """
    ids, x, y, wealth = ids[a0:a1], x[a0:a1], y[a0:a1], wealth[a0:a1]
    on, wr, cls, z0, z1 = on[a0:a1], wr[a0:a1], cls[a0:a1], z0[a0:a1], z1[a0:a1]
    m = ids.shape[0]
    for a in range(m):
        h = mix64(act_key ^ np.uint64(ids[a]))
        z0[a] = mix64(h + _GOLDEN)
        z1[a] = mix64(h + _GOLDEN2)
    in0 = 0
    edge_lo, edge_hi = split - height, split + height  # cells of columns width//2 - 1 and width//2
    h32 = np.int32(height)
    for a in range(m):  # as if every cell had 8 neighbours
        ax, ay = x[a], y[a]
        old = np.int64(ax * h32 + ay)
        d = np.int32(z0[a] >> np.uint64(61))
        k = d + np.int32(d >= 4)  # 0..8 without the centre 4: (dx, dy) = (k // 3 - 1, k % 3 - 1)
        dx = np.int32(k >= 3) + np.int32(k >= 6) - np.int32(1)
        new = np.int64((ax + dx) * h32 + ay + (k - np.int32(3) * dx - np.int32(4)))
        on[a] = old | (new << 32)
        wr[a] = np.int64(z1[a] >> np.uint64(33)) | (np.int64(wealth[a]) << 32)
        s = np.int64(old >= split)
        cls[a] = (s | (np.int64(new >= split) << 1) | (np.int64((old >= edge_lo) & (old < edge_hi)) << 2)
                  | (np.int64((new >= edge_lo) & (new < edge_hi)) << 3))
        in0 += 1 - s
    for a in range(m):
        ax, ay = np.int64(x[a]), np.int64(y[a])
        if ax == 0 or ay == 0 or ax == width - 1 or ay == height - 1:
            new = _edge_neighbour(ax, ay, width, height, np.float64(z0[a] >> np.uint64(11)) * _U53)
            on[a] = (on[a] & _LO) | (new << 32)
            cls[a] = (cls[a] & 5) | (np.int64(new >= split) << 1) | (np.int64((new >= edge_lo) & (new < edge_hi)) << 3)
    return in0


@numba.njit(cache=True, nogil=True)
def _barrier(flags, t, gen, two):
    if not two:
        return True
    store_release(flags, (_BAR0 + t) * LINE, gen)
    return spin_until(flags, (_BAR1 - t) * LINE, gen, _ABORT * LINE)


@numba.njit(cache=True, nogil=True)
def _write_back(x, y, on, height):
    """``x, y`` from the new cells (a float quotient, corrected: branch-free)."""
    inv = 1.0 / height
    for a in range(x.shape[0]):
        new = on[a] >> 32
        qx = np.int64(np.float64(new) * inv)
        r = new - qx * height
        qx += np.int64(r >= height) - np.int64(r < 0)
        x[a] = qx
        y[a] = new - qx * height


@numba.njit(cache=True, nogil=True)
def _fill_block(base, nloc, order, on, wr, flags, qold, qnew, qpw, qslot, qr, counts, members):
    """Phase 2b of ``step_worker``: the agents ``order[:nloc]`` (turn order) into turn slots
    ``base..base + nloc`` and their cells' member lists. OK, or OVERFLOW if a row is full."""
    cap = members.shape[1]
    for j in range(nloc):
        if j + 2 * _AHEAD < nloc:
            a3 = order[j + 2 * _AHEAD]
            prefetch(on, a3)
            prefetch(wr, a3)
        if j + _AHEAD < nloc:
            c2 = on[order[j + _AHEAD]] & _LO
            prefetch(members, c2 * cap)
            prefetch(counts, c2)
        a = order[j]
        q = base + j
        oa, wa = on[a], wr[a]
        old = oa & _LO
        qold[q] = old
        qnew[q] = oa >> 32
        qpw[q] = wa >> 32
        qr[q] = wa & _LO
        m = counts[old]
        if m == cap:
            store_release(flags, _ABORT * LINE, 1)
            return OVERFLOW
        members[old, m] = q
        qslot[q] = m
        counts[old] = m + 1
    return OK


@numba.njit(cache=True, nogil=True)
def _turns(base, j0, j1, nloc, qold, qnew, qpw, qslot, qr, counts, members):
    """Turns ``j0 .. j1 - 1`` of a block of ``nloc`` (slots ``base + j``): OK, or OVERFLOW if a row is full.

    The turn is written out (a call per turn with array arguments would cost reference counting)
    and the gift is branch-free: with ``m == 0`` the draw picks slot 0 — the agent itself, just
    appended — and the gift ``g`` is 0 (whether an agent gives is a coin flip to the predictor).
    """
    cap = members.shape[1]
    for j in range(j0, j1):
        if j + _AHEAD < nloc:
            qa = base + j + _AHEAD
            prefetch(members, qold[qa] * cap)
            prefetch(members, qnew[qa] * cap)
            prefetch(counts, qold[qa])
            prefetch(counts, qnew[qa])
        q = base + j
        c, d = qold[q], qnew[q]
        kk = qslot[q]  # swap-remove from the old cell
        lst = counts[c] - 1
        moved = members[c, lst]
        members[c, kk] = moved
        qslot[moved] = kk
        counts[c] = lst
        m = counts[d]  # append to the new cell; members 0..m-1 are the cellmates
        if m == cap:
            return OVERFLOW
        members[d, m] = q
        qslot[q] = m
        counts[d] = m + 1
        b = members[d, (np.int64(qr[q]) * m) >> 31]
        g = np.int32((qpw[q] > 0) & (m > 0))
        qpw[b] += g
        qpw[q] -= g
    return OK


@numba.njit(cache=True, nogil=True)
def _sequential_pass(t, two, base, nloc, nev, events, flags, qold, qnew, qpw, qslot, qr, counts, members):
    """Phase 3 of ``step_worker``: the turns of block ``t`` in order, in runs between its event
    entries (those on the cut); before an event entry it waits for the other thread's progress,
    after it publishes its own: progress[t] = 1 + entries done."""
    other = (_PROG1 - t) * LINE
    if two:
        store_release(flags, (_PROG0 + t) * LINE, 1)
    j = 0
    k = 0
    while True:
        stop = events[t, 2 * k] if k < nev else nloc
        if _turns(base, j, stop, nloc, qold, qnew, qpw, qslot, qr, counts, members) != OK:
            store_release(flags, _ABORT * LINE, 1)
            return OVERFLOW
        if k >= nev:
            return OK
        need = events[t, 2 * k + 1]
        if need > 0 and not spin_until(flags, other, need, _ABORT * LINE):
            return ABORTED
        if _turns(base, stop, stop + 1, nloc, qold, qnew, qpw, qslot, qr, counts, members) != OK:
            store_release(flags, _ABORT * LINE, 1)
            return OVERFLOW
        store_release(flags, (_PROG0 + t) * LINE, stop + 2)
        j = stop + 1
        k += 1


@numba.njit(cache=True, nogil=True)
def step_worker(t, nthreads, split_row, ids, x, y, wealth, width, height, order_key, act_key,
                perm, on, wr, cls, qold, qnew, qpw, qslot, qr, counts, members, events, last, flags, part, z0, z1, js, qagent):
    """Thread ``t`` (0 or 1) of a step on ``nthreads`` (1: ``t`` must be 1 and does everything).

    ``split_row``: agents ``[0, split_row)`` get their draws on thread 1, the
    rest on thread 0 after it shuffled. ``part [2] int64``: per-thread counts
    exchanged at the first barrier. Returns OK, OVERFLOW (a cell row is full:
    grow ``members`` and run the step again — x, y, wealth are untouched) or
    ABORTED (the other thread overflowed, or one waited seconds for the other).
    """
    n = ids.shape[0]
    two = nthreads == 2
    split = (width // 2) * height if two else 0  # first cell of half 1
    ncell = counts.shape[0]
    cap = members.shape[1]
    # phase 1: order and draws
    if t == 0 or not two:
        _shuffle(order_key, perm, js)
    lo, hi = (0, split_row) if t == 1 else (split_row, n)
    if not two:
        lo, hi = 0, n
    part[t] = _draw(lo, hi, ids, x, y, wealth, width, height, split, act_key, on, wr, cls, z0, z1)
    if not _barrier(flags, t, 1, two):
        return ABORTED
    n0 = part[0] + part[1] if two else 0
    base = 0 if t == 0 else n0
    nloc = n0 if t == 0 else n - n0
    # phase 2: this half's agents into its block, in turn order; its cells' member lists; and the
    # points where this thread must wait for the other one (see the module docstring)
    c_lo, c_hi = (0, split) if t == 0 else (split, ncell)
    counts[c_lo:c_hi] = 0
    edge_lo = split - height
    if two:
        last[t, :] = 0
    # 2a: this half's agents in turn order (a branch-free compaction: the side of each agent is
    # a coin flip to the branch predictor); entries on the cut get their waiting points
    j = 0   # entries of my block so far
    qo = 0  # entries of the other block so far
    nev = 0
    mine_in_order = qagent[t]  # on one thread: the turn order itself
    for p in range(n if two else 0):
        a = perm[p]
        c = cls[a]
        mine = (c ^ (t ^ 1)) & 1  # 1 if the agent starts in half t (always, on one thread: split 0)
        qagent[t, j] = a
        if two and (c & 12) != 0:
            if mine:  # wait for the other's earlier entries on my cells
                need = 0
                if c & 4:
                    need = max(need, last[t, (on[a] & _LO) - edge_lo])
                if c & 8:
                    need = max(need, last[t, (on[a] >> 32) - edge_lo])
                if (c & 1) != (c >> 1 & 1):
                    need = max(need, 1)  # crossing: the other half's member lists must be built
                events[t, 2 * nev] = j
                events[t, 2 * nev + 1] = need
                nev += 1
            else:
                if c & 4:
                    last[t, (on[a] & _LO) - edge_lo] = qo + 2  # progress value once that entry is done
                if c & 8:
                    last[t, (on[a] >> 32) - edge_lo] = qo + 2
        j += mine
        qo += 1 - mine
    if not two:
        mine_in_order = perm
    # 2b: their columns into my block, and my cells' member lists (in turn order)
    status = _fill_block(base, nloc, mine_in_order, on, wr, flags, qold, qnew, qpw, qslot, qr, counts, members)
    if status != OK:
        return status
    # phase 3: the sequential pass over this block
    status = _sequential_pass(t, two, base, nloc, nev, events, flags, qold, qnew, qpw, qslot, qr, counts, members)
    if status != OK:
        return status
    if not _barrier(flags, t, 2, two):
        return ABORTED
    # phase 4: back to the columns, each thread half of the rows (over slices: see _draw)
    lo, hi = (0, n // 2) if t == 0 else (n // 2, n)
    if not two:
        lo, hi = 0, n
    _write_back(x[lo:hi], y[lo:hi], on[lo:hi], height)
    for j in range(nloc):  # wealth from my block's turn slots
        wealth[mine_in_order[j]] = qpw[base + j]
    return OK


@numba.njit(cache=True, nogil=True, parallel=True)
def _two_threads(status, split_row, ids, x, y, wealth, width, height, order_key, act_key, perm, on, wr, cls,
                 qold, qnew, qpw, qslot, qr, counts, members, events, last, flags, part, z0, z1, js, qagent):
    """``step_worker`` 0 and 1 at once on numba's thread pool (its threads spin a little between
    parallel regions, so back-to-back steps start without waking a sleeping thread)."""
    for t in numba.prange(2):
        status[t] = step_worker(t, 2, split_row, ids, x, y, wealth, width, height, order_key, act_key, perm,
                                on, wr, cls, qold, qnew, qpw, qslot, qr, counts, members, events, last, flags,
                                part, z0, z1, js, qagent)


class Workspace:
    """Scratch buffers of the step, kept between ticks (a plain resource: not saved).

    Shapes: ``perm, js, qold, qnew, qpw, qslot, qr [n] int32``; ``on, wr, z0, z1 [n] 64-bit``;
    ``cls [n] uint8``; ``qagent [2, n + 1]`` and ``events [2, 2n] int32``; ``last [2, 2 * height] int32``;
    ``counts [cells] int32``; ``members [cells, cap] int32`` on 64-byte lines.

    With ``threads=2`` each step runs on two threads or one, whichever has been faster lately
    (a step on two threads is held up whenever the machine gives one of them away; the result
    is the same either way): the mode with the lower median of its last ``RECENT`` step times is
    used, and the other one is tried again every ``PROBE_EVERY`` steps.
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
        self.status = np.zeros(2, np.int64)

    def fits(self, n: int, ncell: int, height: int, threads: int) -> bool:
        return self.n == n and self.ncell == ncell and self.height == height and self.requested == threads

    def _mode(self) -> int:
        if self.threads == 1:
            return 1
        one, two = self.seconds[1], self.seconds[2]
        if two is None:
            return 2
        if one is None:
            return 1 if self.steps >= 2 else 2
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


@numba.njit(cache=True)
def gini(wealth):
    """Mesa's formula, ``1 + 1/n - 2 * sum(x_i (n - i)) / (n sum x)`` over sorted x, via a histogram (exact sums)."""
    n = wealth.shape[0]
    if n == 0:
        return 0.0
    total = 0
    top = 0
    for i in range(n):
        total += wealth[i]
        if wealth[i] > top:
            top = wealth[i]
    if total == 0:
        return 0.0
    hist = np.zeros(top + 1, np.int64)
    for i in range(n):
        hist[wealth[i]] += 1
    acc = 0  # sum over sorted x of x_i (n - i): at most n * total
    start = 0
    for v in range(top + 1):
        c = hist[v]
        if c:
            acc += v * (c * n - (c * start + c * (c - 1) // 2))
            start += c
    return 1.0 + 1.0 / n - 2.0 * (acc / (n * total))
