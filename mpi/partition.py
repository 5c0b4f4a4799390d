"""Partitioners: which rank owns each global entity ID.

A :class:`Partition` maps the sorted global IDs ``ids [n] int64`` to owner
ranks ``owner [n] int32``. Every partitioner here is a pure, deterministic
function of its inputs, so all ranks compute the same partition from the
same data with no communication (or rank 0 computes it and the others
receive it — the result is the same).

* :func:`block_partition` — contiguous runs of IDs, equal counts (±1).
  Best when IDs were spawned in a meaningful order (by region, by group).
* :func:`group_partition` — every member of a group on one rank (a chat
  room, a firm, a household), balancing the members per rank: largest
  groups first onto the least-loaded rank, then the many small groups
  water-filled in label order (imbalance at most one small group).
* :func:`community_partition` — for a social graph, minimise the share of
  edges that cross ranks (the halo and message traffic). The default
  ``method="lpa"`` is a multilevel-free version of the scheme ParHIP
  uses for complex networks: size-constrained label propagation finds
  communities no larger than a fraction of a rank's share, the communities
  are grown into ranks breadth-first over the community graph (neighbouring
  communities land together), and a few passes of balanced label
  propagation on single vertices move boundary vertices to the rank most of
  their neighbours are on. ``method="metis"`` calls METIS through
  ``pymetis`` when that is installed.

:func:`cut_fraction` reports, for any partition and edge list, the share of
edges whose ends lie on different ranks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from socius.ecs.rng import mix64

__all__ = ["Partition", "block_partition", "group_partition", "community_partition", "cut_fraction",
           "graph_csr"]


@dataclass(frozen=True, eq=False)
class Partition:
    """Owner rank of every global entity ID.

    ``ids``: ``[n] int64`` sorted, unique; ``owner``: ``[n] int32`` in
    ``[0, size)``, aligned with ``ids``; ``size``: number of ranks.
    Lookups use ``np.searchsorted`` on ``ids`` (no dense ID -> rank table).
    """

    ids: np.ndarray
    owner: np.ndarray
    size: int

    def __post_init__(self):
        ids = np.ascontiguousarray(self.ids, dtype=np.int64).reshape(-1)
        owner = np.ascontiguousarray(self.owner, dtype=np.int32).reshape(-1)
        if ids.shape != owner.shape:
            raise ValueError(f"Partition: ids {ids.shape} and owner {owner.shape} differ in length")
        if ids.shape[0] > 1 and (np.diff(ids) <= 0).any():
            raise ValueError("Partition: ids must be sorted and unique")
        if int(self.size) < 1:
            raise ValueError(f"Partition: size must be >= 1, got {self.size}")
        if owner.shape[0] and (owner.min() < 0 or owner.max() >= int(self.size)):
            raise ValueError(f"Partition: owners must lie in [0, {int(self.size)})")
        for a in (ids, owner):
            a.flags.writeable = False
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "owner", owner)
        object.__setattr__(self, "size", int(self.size))

    @classmethod
    def from_owner(cls, ids, owner, size: int) -> "Partition":
        """From unsorted ``ids [n]`` and their ``owner [n]`` (sorted here)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        owner = np.asarray(owner).reshape(-1)
        order = np.argsort(ids, kind="stable")
        return cls(ids[order], owner[order], size)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def owner_of(self, ids) -> np.ndarray:
        """``[m] int32``: the owner of each of ``ids [m]``; raises ``KeyError`` naming an unknown ID."""
        q = np.asarray(ids, dtype=np.int64).reshape(-1)
        n = self.ids.shape[0]
        if not n:
            if q.shape[0]:
                raise KeyError(f"entity {int(q[0])} is not in the partition (it is empty)")
            return np.zeros(0, dtype=np.int32)
        if int(self.ids[-1]) - int(self.ids[0]) == n - 1:  # IDs form one run (the usual spawn order): index
            pos = q - self.ids[0]
            ok = (pos >= 0) & (pos < n)
            if not ok.all():
                raise KeyError(f"entity {int(q[~ok][0])} is not in the partition")
            return self.owner[pos]
        pos = np.searchsorted(self.ids, q)
        pos_c = np.minimum(pos, self.ids.shape[0] - 1)
        ok = self.ids[pos_c] == q
        if not ok.all():
            raise KeyError(f"entity {int(q[~ok][0])} is not in the partition")
        return self.owner[pos_c]

    def owned(self, rank: int) -> np.ndarray:
        """``[k] int64``: the IDs owned by ``rank``, sorted."""
        return self.ids[self.owner == int(rank)]

    def counts(self) -> np.ndarray:
        """``[size] int64``: entities per rank."""
        return np.bincount(self.owner, minlength=self.size).astype(np.int64)

    def imbalance(self) -> float:
        """Largest rank's share over the mean share (1.0 = perfect balance)."""
        c = self.counts()
        return float(c.max() / (c.sum() / self.size)) if c.sum() else 1.0

    def cut_fraction(self, src, dst) -> float:
        """Share of the edges ``src[i] -> dst[i]`` (global IDs) whose ends lie on different ranks."""
        return cut_fraction(self, src, dst)


def _unique(a: np.ndarray, counts: bool = False):
    """Sorted unique values of a 1-D array (sort-based; numpy's hash-based unique is slower here)."""
    a = np.sort(a, kind="stable")
    if not a.shape[0]:
        return (a, np.zeros(0, np.int64)) if counts else a
    first = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
    if not counts:
        return a[first]
    return a[first], np.diff(np.r_[first, a.shape[0]]).astype(np.int64)


def _sorted_ids(ids) -> np.ndarray:
    return _unique(np.asarray(ids, dtype=np.int64).reshape(-1))


def block_partition(ids, size: int) -> Partition:
    """Contiguous runs of sorted IDs, ``n // size`` or one more per rank (lower ranks get the extra)."""
    ids = _sorted_ids(ids)
    n, size = ids.shape[0], int(size)
    if size < 1:
        raise ValueError(f"block_partition: size must be >= 1, got {size}")
    # rank r holds positions [r*n//size, (r+1)*n//size)
    bounds = (np.arange(size + 1, dtype=np.int64) * n) // size
    owner = (np.searchsorted(bounds, np.arange(n, dtype=np.int64), side="right") - 1).astype(np.int32)
    return Partition(ids, owner, size)


def _balance_groups(sizes: np.ndarray, size: int) -> np.ndarray:
    """Rank for each group of ``sizes [k]`` (int64): LPT for the large groups, water-fill for the rest."""
    k = sizes.shape[0]
    out = np.zeros(k, dtype=np.int32)
    if k == 0 or size == 1:
        return out
    total = int(sizes.sum())
    target = total / size
    order = np.lexsort((np.arange(k), -sizes))  # largest first, ties by group index
    large_cut = max(target / 16.0, 1.0)
    n_large = int(np.searchsorted(-sizes[order], -large_cut, side="right"))  # sizes >= large_cut
    load = np.zeros(size, dtype=np.int64)
    for g in order[:n_large]:  # at most 16 * size groups: a loop over ranks' worth of groups
        r = int(np.argmin(load))  # lowest load, lowest rank on ties
        out[g] = r
        load[r] += sizes[g]
    small = np.sort(order[n_large:])  # the many small groups, in group order
    if small.shape[0]:
        # water-fill: give each rank what it lacks of the target, groups taken in order
        need = np.maximum(np.ceil(target) - load, 0).astype(np.int64)
        fill_end = np.cumsum(need)
        start = np.cumsum(sizes[small]) - sizes[small]  # first member index of each small group
        r_of = np.searchsorted(fill_end, start, side="right")
        ranks_by_need = np.arange(size)
        out[small] = ranks_by_need[np.minimum(r_of, size - 1)]
    return out


def group_partition(ids, groups, size: int) -> Partition:
    """Each group on one rank, members per rank balanced.

    ``ids [n] int64`` and ``groups [n]`` (any integer labels, aligned with
    ``ids``). Groups of at least 1/16 of a rank's share are placed largest
    first on the least-loaded rank; the rest are water-filled in label order.
    """
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    if ids.shape != groups.shape:
        raise ValueError(f"group_partition: ids {ids.shape} and groups {groups.shape} differ in length")
    if groups.dtype.kind not in "iub":
        raise TypeError(f"group_partition: group labels must be integers, got {groups.dtype}")
    if _unique(ids).shape[0] != ids.shape[0]:
        raise ValueError("group_partition: ids must be unique")
    labels = _unique(groups)
    inv = np.searchsorted(labels, groups)
    sizes = np.bincount(inv, minlength=labels.shape[0]).astype(np.int64)
    rank_of_group = _balance_groups(sizes, int(size))
    return Partition.from_owner(ids, rank_of_group[inv], int(size))


# ---------------------------------------------------------------- graphs
def graph_csr(ids: np.ndarray, src, dst) -> tuple[np.ndarray, np.ndarray]:
    """Undirected simple graph over positions in sorted ``ids [n]``: ``(indptr [n+1], indices [2m'])`` int64.

    Edges ``src[i] - dst[i]`` are global IDs; direction, duplicates and
    self-loops are dropped. Raises ``KeyError`` for an endpoint not in ``ids``.
    """
    n = ids.shape[0]
    src = np.asarray(src, dtype=np.int64).reshape(-1)
    dst = np.asarray(dst, dtype=np.int64).reshape(-1)
    if src.shape != dst.shape:
        raise ValueError(f"graph: src {src.shape} and dst {dst.shape} differ in length")
    u = np.searchsorted(ids, src)
    v = np.searchsorted(ids, dst)
    for name, pos, q in (("src", u, src), ("dst", v, dst)):
        bad = (pos >= n) | (ids[np.minimum(pos, max(n - 1, 0))] != q) if n else np.ones(q.shape, bool)
        if bad.any():
            raise KeyError(f"graph: {name} entity {int(q[bad][0])} is not among the partitioned IDs")
    keep = u != v
    a = np.concatenate([u[keep], v[keep]])
    b = np.concatenate([v[keep], u[keep]])
    key = _unique(a * np.int64(n) + b)
    a, b = key // max(n, 1), key % max(n, 1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(a, minlength=n), out=indptr[1:])
    return indptr, b.astype(np.int64)


@numba.njit(cache=True)
def _hash_order(n):
    """A fixed pseudo-random visiting order of ``n`` vertices (SplitMix64 of the index)."""
    keys = np.empty(n, dtype=np.uint64)
    for i in range(n):
        keys[i] = mix64(np.uint64(i))
    return np.argsort(keys, kind="mergesort")


@numba.njit(cache=True)
def _cluster_lpa(indptr, indices, cap, iters, order):
    """Size-constrained label propagation: ``[n] int64`` cluster labels, no cluster above ``cap``."""
    n = indptr.shape[0] - 1
    label = np.arange(n)
    csize = np.ones(n, dtype=np.int64)
    score = np.zeros(n, dtype=np.int64)
    touched = np.empty(n, dtype=np.int64)
    for _ in range(iters):
        moved = 0
        for t in range(n):
            v = order[t]
            cur = label[v]
            nt = 0
            for j in range(indptr[v], indptr[v + 1]):
                lab = label[indices[j]]
                if score[lab] == 0:
                    touched[nt] = lab
                    nt += 1
                score[lab] += 1
            best = cur
            best_s = score[cur]
            for i in range(nt):
                lab = touched[i]
                s = score[lab]
                if lab != cur and csize[lab] < cap and (s > best_s or (s == best_s and lab < best and best != cur)):
                    best = lab
                    best_s = s
            for i in range(nt):
                score[touched[i]] = 0
            if best != cur:
                csize[cur] -= 1
                csize[best] += 1
                label[v] = best
                moved += 1
        if moved == 0:
            break
    return label


@numba.njit(cache=True)
def _grow_parts(cindptr, cindices, csizes, size, n):
    """Assign clusters to ``size`` parts by growing each part breadth-first over the cluster graph.

    A growing part takes its queued neighbour clusters (heaviest tie first);
    when it runs out of neighbours it restarts at the lowest cluster not yet
    considered. A cluster that would overshoot the part's share by more than
    the part still lacks is passed over. Parts ``0 .. size-2`` take their
    share of the remaining vertices; the last part takes the rest.
    """
    k = csizes.shape[0]
    part = np.full(k, -1, dtype=np.int32)
    queue = np.empty(k, dtype=np.int64)
    queued = np.zeros(k, dtype=np.bool_)
    remaining = n
    for p in range(size - 1):
        target = remaining // (size - p)
        load = 0
        head = 0
        tail = 0
        next_free = 0
        while load < target:
            if head == tail:
                while next_free < k and (part[next_free] != -1 or queued[next_free]):
                    next_free += 1
                if next_free >= k:
                    break
                queue[tail] = next_free
                queued[next_free] = True
                tail += 1
            c = queue[head]
            head += 1
            if part[c] != -1:
                continue
            if load > 0 and load + csizes[c] - target > target - load:
                continue  # passed over; stays marked so it is not queued again for this part
            part[c] = p
            load += csizes[c]
            for j in range(cindptr[c], cindptr[c + 1]):
                d = cindices[j]
                if part[d] == -1 and not queued[d]:
                    queued[d] = True
                    queue[tail] = d
                    tail += 1
        for i in range(tail):
            queued[queue[i]] = False
        remaining -= load
    for c in range(k):
        if part[c] == -1:
            part[c] = size - 1
    return part


@numba.njit(cache=True)
def _refine(indptr, indices, part, size, cap, passes, order):
    """Move vertices to the part most of their neighbours are on while no part exceeds ``cap``."""
    n = indptr.shape[0] - 1
    load = np.zeros(size, dtype=np.int64)
    for v in range(n):
        load[part[v]] += 1
    count = np.zeros(size, dtype=np.int64)
    for _ in range(passes):
        moved = 0
        for t in range(n):
            v = order[t]
            cur = part[v]
            for j in range(indptr[v], indptr[v + 1]):
                count[part[indices[j]]] += 1
            best = cur
            best_c = count[cur]
            for j in range(indptr[v], indptr[v + 1]):
                p = part[indices[j]]
                c = count[p]
                if p != cur and load[p] < cap and (c > best_c or (c == best_c and best != cur and p < best)):
                    best = p
                    best_c = c
            for j in range(indptr[v], indptr[v + 1]):
                count[part[indices[j]]] = 0
            if best != cur:
                load[cur] -= 1
                load[best] += 1
                part[v] = best
                moved += 1
        if moved == 0:
            break
    return part


@numba.njit(cache=True)
def _rebalance(indptr, indices, part, size, cap, order):
    """Bring every part down to ``cap``: first move boundary vertices of an
    overfull part to the non-full neighbouring part they have most ties to,
    then, if needed, any vertices to the least-loaded part."""
    n = indptr.shape[0] - 1
    load = np.zeros(size, dtype=np.int64)
    for v in range(n):
        load[part[v]] += 1
    count = np.zeros(size, dtype=np.int64)
    for t in range(n):
        v = order[t]
        cur = part[v]
        if load[cur] <= cap:
            continue
        for j in range(indptr[v], indptr[v + 1]):
            count[part[indices[j]]] += 1
        best = -1
        best_c = 0
        for j in range(indptr[v], indptr[v + 1]):
            p = part[indices[j]]
            if p != cur and load[p] < cap and (count[p] > best_c or (count[p] == best_c and p < best)):
                best = p
                best_c = count[p]
        for j in range(indptr[v], indptr[v + 1]):
            count[part[indices[j]]] = 0
        if best >= 0:
            load[cur] -= 1
            load[best] += 1
            part[v] = best
    for t in range(n):
        v = order[t]
        cur = part[v]
        if load[cur] <= cap:
            continue
        best = 0
        for p in range(size):
            if load[p] < load[best]:
                best = p
        load[cur] -= 1
        load[best] += 1
        part[v] = best
    return part


def community_partition(ids, src, dst, size: int, *, method: str = "lpa", imbalance: float = 0.03,
                        iterations: int = 10, refine_passes: int = 4) -> Partition:
    """Ranks for a social graph that keep most edges inside a rank.

    ``ids [n] int64``: all entity IDs; ``src, dst [m] int64``: edges by global
    ID (treated as undirected). ``imbalance``: the largest rank holds at most
    ``ceil((1 + imbalance) * n / size)`` entities. ``method``: ``"lpa"`` (see
    the module notes; numba, deterministic) or ``"metis"`` (``pymetis``).
    """
    ids = _sorted_ids(ids)
    n, size = ids.shape[0], int(size)
    if size < 1:
        raise ValueError(f"community_partition: size must be >= 1, got {size}")
    if size == 1 or n == 0:
        return Partition(ids, np.zeros(n, np.int32), size)
    indptr, indices = graph_csr(ids, src, dst)
    if method == "metis":
        return Partition(ids, _metis(indptr, indices, size, imbalance), size)
    if method != "lpa":
        raise ValueError(f"community_partition: method must be 'lpa' or 'metis', got {method!r}")
    order = _hash_order(n)
    cap_cluster = max(1, n // (size * 8))
    label = _cluster_lpa(indptr, indices, cap_cluster, int(iterations), order)
    # clusters -> community graph (edge weights = edges between clusters)
    cl = _unique(label)
    cid = np.searchsorted(cl, label)
    k = cl.shape[0]
    csizes = np.bincount(cid, minlength=k).astype(np.int64)
    row = np.repeat(np.arange(n), np.diff(indptr))
    a, b = cid[row], cid[indices]
    cross = a != b
    key, w = _unique(a[cross] * np.int64(k) + b[cross], counts=True)
    ca, cb = key // k, key % k
    cindptr = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.bincount(ca, minlength=k), out=cindptr[1:])
    # neighbours of each cluster, heaviest connection first, so growth follows strong ties
    o = np.lexsort((cb, -w, ca))
    cindices = cb[o].astype(np.int64)
    cpart = _grow_parts(cindptr, cindices, csizes, size, n)
    part = cpart[cid].astype(np.int32)
    cap = int(np.ceil((1.0 + float(imbalance)) * n / size))
    part = _rebalance(indptr, indices, part, size, cap, order)
    part = _refine(indptr, indices, part, size, cap, int(refine_passes), order)
    return Partition(ids, part, size)


def _metis(indptr, indices, size, imbalance) -> np.ndarray:
    try:
        import pymetis
    except ImportError as e:
        raise ImportError("community_partition(method='metis') needs pymetis (not part of any socius extra): "
                          "pip install pymetis — or use the default method='lpa'") from e
    opts = pymetis.Options(ufactor=max(1, int(round(float(imbalance) * 1000))), seed=0)
    _, parts = pymetis.part_graph(size, xadj=indptr, adjncy=indices, options=opts)
    return np.asarray(parts, dtype=np.int32)


def cut_fraction(partition: Partition | np.ndarray, src, dst, ids=None) -> float:
    """Share of edges ``src[i] - dst[i]`` whose two ends have different owners.

    ``partition``: a :class:`Partition`, or an owner array ``[n]`` aligned
    with sorted ``ids`` (then pass ``ids``). Self-loops count as internal;
    an empty edge list gives 0.0.
    """
    if not isinstance(partition, Partition):
        if ids is None:
            raise TypeError("cut_fraction: pass a Partition, or an owner array together with ids")
        partition = Partition.from_owner(ids, partition, int(np.max(partition)) + 1 if len(partition) else 1)
    src = np.asarray(src, dtype=np.int64).reshape(-1)
    dst = np.asarray(dst, dtype=np.int64).reshape(-1)
    if src.shape != dst.shape:
        raise ValueError(f"cut_fraction: src {src.shape} and dst {dst.shape} differ in length")
    if src.shape[0] == 0:
        return 0.0
    return float(np.count_nonzero(partition.owner_of(src) != partition.owner_of(dst)) / src.shape[0])
