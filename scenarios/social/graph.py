"""Follow graphs of the social-network scenario: generated per agent, or read from an edge list.

A follow graph is a :class:`~socius.ecs.RaggedArray`: row ``i`` holds the
IDs agent ``ids[i]`` follows (its out-edges; posts flow the other way, from
the followed to the follower). Population IDs are ``0 .. n-1``.

Generators draw each agent's out-edges from ``EntityRng(seed, stream, 0)``
keyed by that agent's own ID, so an agent's follows are the same whether it
is generated alone, in any subset, or on any MPI rank — :func:`follow_graph`
for one rank's IDs gives exactly those rows of the whole graph. No agent
follows itself and no edge appears twice.

* **scale-free** (preferential attachment in its static form): every agent
  follows ``d`` others (``d`` uniform in ``degree/2 .. 3·degree/2``), each
  drawn from a Zipf popularity over a fixed shuffle of the IDs — rank ``r``
  (0-based) is chosen with probability ∝ ``(r + 1)^-alpha``, ``alpha = 1 /
  (gamma - 1)`` — so in-degrees follow a power law ``P(k) ~ k^-gamma``: a few
  hubs with many followers, most agents with few.
* **small-world** (Watts–Strogatz, directed): every agent follows its
  ``degree`` nearest neighbours on a ring of the IDs (``degree // 2`` on each
  side, at least one); each of those edges is rewired, with probability ``rewire``, to an
  agent drawn uniformly — short paths, high clustering.
* **file**: an edge list (CSV or Parquet) with columns ``src,dst``, meaning
  ``src`` follows ``dst``; self-follows and duplicates are dropped, and each
  agent's follows are sorted by ID.

:func:`edges` returns the whole graph as ``(src, dst)`` arrays — what
``socius.mpi.community_partition(ids, src, dst, ranks)`` takes.
"""
from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from socius.ecs import RaggedArray
from socius.ecs.rng import EntityRng

GRAPHS = ("scale_free", "small_world", "file")
_SHUFFLE = 2_654_435_761  # a prime above any population size we allow: r -> (r * P + c) mod n is a bijection
MAX_AGENTS = _SHUFFLE - 1
_OVERSAMPLE = 8  # extra candidate draws per agent, for the rare self-follow or duplicate


class GraphError(ValueError):
    """A graph that cannot be made or read (the message names the config field)."""


@numba.njit(cache=True)
def _first_unique(cand, ids, want, out_vals, out_len):
    """Per row: the first ``want[i]`` candidates that are neither ``ids[i]`` nor repeated in the row."""
    n, k = cand.shape
    pos = 0
    for i in range(n):
        got = 0
        for j in range(k):
            if got == want[i]:
                break
            c = cand[i, j]
            if c == ids[i]:
                continue
            dup = False
            for q in range(pos, pos + got):
                if out_vals[q] == c:
                    dup = True
                    break
            if not dup:
                out_vals[pos + got] = c
                got += 1
        out_len[i] = got
        pos += got
    return pos


def _pack(cand: np.ndarray, ids: np.ndarray, want: np.ndarray) -> RaggedArray:
    vals = np.empty(int(want.sum()), dtype=np.int64)
    lens = np.zeros(ids.shape[0], dtype=np.int64)
    used = _first_unique(np.ascontiguousarray(cand, dtype=np.int64), ids, want.astype(np.int64), vals, lens)
    return RaggedArray.from_lengths(lens, vals[:used])


def zipf_ranks(u: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """0-based ranks in ``[0, n)`` with ``P(r) ∝ (r + 1)^-alpha`` (continuous inverse CDF, floored)."""
    if abs(alpha - 1.0) < 1e-9:
        x = np.exp(u * np.log(n + 1.0))
    else:
        a = 1.0 - alpha
        x = ((np.power(n + 1.0, a) - 1.0) * u + 1.0) ** (1.0 / a)
    return np.clip(np.floor(x).astype(np.int64) - 1, 0, n - 1)


def scale_free(ids: np.ndarray, n: int, degree: int, gamma: float, seed: int) -> RaggedArray:
    """Follows of agents ``ids`` in a scale-free graph of ``n`` agents (see the module docstring)."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    lo, hi = max(1, degree - degree // 2), degree + degree // 2
    want = np.minimum(EntityRng(seed, "social:graph:degree", 0).integers(ids, lo, hi + 1), n - 1)
    k = hi + _OVERSAMPLE
    u = EntityRng(seed, "social:graph:scale_free", 0).random(ids, k)
    ranks = zipf_ranks(u, n, 1.0 / (gamma - 1.0))
    offset = int(EntityRng(seed, "social:graph:shuffle", 0).integers(np.zeros(1, np.int64), n)[0])
    cand = (ranks * _SHUFFLE + offset) % n        # the popularity order, shuffled over the IDs
    return _pack(cand, ids, want)


def small_world(ids: np.ndarray, n: int, degree: int, rewire: float, seed: int) -> RaggedArray:
    """Follows of agents ``ids`` in a directed Watts–Strogatz graph of ``n`` agents."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    half = max(1, degree // 2)
    steps = np.concatenate([-np.arange(1, half + 1), np.arange(1, half + 1)])  # [2h]: left and right neighbours
    ring = (ids[:, None] + steps[None, :]) % n
    u = EntityRng(seed, "social:graph:rewire", 0).random(ids, 2 * (2 * half))
    rewired = u[:, :2 * half] < rewire
    target = np.minimum((u[:, 2 * half:] * n).astype(np.int64), n - 1)
    cand = np.where(rewired, target, ring)
    spare = np.minimum((EntityRng(seed, "social:graph:spare", 0).random(ids, _OVERSAMPLE) * n).astype(np.int64), n - 1)
    want = np.full(ids.shape[0], min(2 * half, n - 1), dtype=np.int64)
    return _pack(np.concatenate([cand, spare], axis=1), ids, want)


def read_edge_list(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(src, dst)`` int64 arrays from a CSV or Parquet file with columns ``src`` and ``dst``."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise GraphError(f"edges_file: no such file {path}")
    try:
        table = pq.read_table(path) if path.suffix in (".parquet", ".pq") else pacsv.read_csv(path)
    except Exception as e:  # noqa: BLE001 - any reader error is a bad file
        raise GraphError(f"edges_file: cannot read {path}: {e}") from None
    missing = {"src", "dst"} - set(table.column_names)
    if missing:
        raise GraphError(f"edges_file: {path} lacks column(s) {sorted(missing)} (needs src,dst)")
    try:
        src = table.column("src").to_numpy().astype(np.int64)
        dst = table.column("dst").to_numpy().astype(np.int64)
    except Exception as e:  # noqa: BLE001
        raise GraphError(f"edges_file: src/dst must be integer IDs ({e})") from None
    return src, dst


def from_edges(ids: np.ndarray, src: np.ndarray, dst: np.ndarray, n: int) -> RaggedArray:
    """Follows of agents ``ids`` from an edge list over ``0 .. n-1`` (self-follows and duplicates dropped)."""
    if src.shape[0] and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        both = np.concatenate([src, dst])
        bad = int(both[(both < 0) | (both >= n)][0])
        raise GraphError(f"edges_file: agent ID {bad} is outside 0..{n - 1} (agents = {n})")
    keep = src != dst
    key = np.unique(src[keep] * n + dst[keep])  # sorted by (src, dst), duplicates gone
    s, d = key // n, key % n
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    lo = np.searchsorted(s, ids, "left")
    lens = np.searchsorted(s, ids, "right") - lo
    offsets = np.zeros(ids.shape[0] + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    index = np.arange(int(offsets[-1]), dtype=np.int64) + np.repeat(lo - offsets[:-1], lens)
    return RaggedArray(offsets, d[index].astype(np.int64))


def follow_graph(kind: str, ids: np.ndarray, n: int, seed: int, *, degree: int = 10, gamma: float = 2.5,
                 rewire: float = 0.1, edges_file: str = "") -> RaggedArray:
    """Follows ``[len(ids)]`` rows of the ``kind`` graph of ``n`` agents (the same rows on any rank)."""
    if kind == "scale_free":
        return scale_free(ids, n, degree, gamma, seed)
    if kind == "small_world":
        return small_world(ids, n, degree, rewire, seed)
    if kind == "file":
        src, dst = read_edge_list(edges_file)
        return from_edges(ids, src, dst, n)
    raise GraphError(f"graph: must be one of {', '.join(GRAPHS)}, got {kind!r}")


def edge_arrays(ids: np.ndarray, follows: RaggedArray) -> tuple[np.ndarray, np.ndarray]:
    """``(src [m], dst [m])``: ``src`` follows ``dst``, for the rows ``ids`` of ``follows``."""
    return np.repeat(np.asarray(ids, dtype=np.int64), follows.lengths), follows.values.astype(np.int64, copy=False)
