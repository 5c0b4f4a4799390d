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

import numba
import numpy as np

from socius.ecs.kernels import prefetch

from .draws import _LO, _draw, _shuffle
from .sync import LINE, spin_until, store_release

_AHEAD = 12      # prefetch distance of the sequential pass (turns)
_CAP = 16        # member slots per cell row: 16 int32 = one 64-byte line (doubled on overflow)
MIN_AGENTS_2T = 20_000   # below this one thread is faster (the waits cost more than they save)

# flag slots (one cache line each)
_BAR0, _BAR1, _PROG0, _PROG1, _ABORT = 0, 1, 2, 3, 4
_NFLAGS = 5
OK, OVERFLOW, ABORTED = 0, 1, 2


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
