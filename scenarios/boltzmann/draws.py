"""Steps 1 and 2 of the Boltzmann step: the turn order and every agent's draws (see :mod:`.kernel`).

The order is a Fisher–Yates shuffle keyed by ``(seed, "order", tick)``; each
agent's move and recipient draws are keyed by ``(seed, "act", tick, agent
ID)``. Both are pure functions of the state, so they are drawn up front, in
branch-free loops that vectorise, before the sequential pass.
"""
from __future__ import annotations

import numba
import numpy as np

from socius.ecs.kernels import draw_uniform
from socius.ecs.rng import mix64

_DX = np.array([-1, -1, -1, 0, 0, 1, 1, 1], np.int32)
_DY = np.array([-1, 0, 1, -1, 1, -1, 0, 1], np.int32)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # draw j of draw_uniform adds (j + 1) * golden
_GOLDEN2 = np.uint64(0x3C6EF372FE94F82A)  # 2 * golden mod 2**64
_U53 = 1.0 / 9007199254740992.0  # 2**-53
_LO = np.int64(0xFFFFFFFF)


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
