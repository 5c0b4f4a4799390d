"""Halo exchange: read-only ghost copies of remote neighbours' public columns.

An agent's systems read its neighbours' public state (an opinion, a post
count, an infection state). When a neighbour lives on another rank, this
rank keeps a *ghost* copy of its public columns, refreshed once per tick.

Build the plan once per partition and graph, then exchange every tick::

    plan = build_halo_plan(ctx, owned_ids, follows, partition)   # collective
    halo = Halo(ctx, plan, {"opinion": Opinion.column("value")})
    halo.exchange({"opinion": opinion_col})                       # first: every row
    ...
    halo.exchange({"opinion": opinion_col}, changed=moved)        # then: changed rows only
    nbr_opinion = halo.gather("opinion", nbr_ids, opinion_col)    # local or ghost, by ID

Plan (:func:`build_halo_plan`): every rank lists the remote IDs its
neighbour lists mention (its ghosts, sorted), groups them by owner and sends
each owner the list with one ``Alltoallv``. The owner turns each request
list into rows of its own storage. After that, nothing about *which* rows
travel is renegotiated: each tick sends, for every destination, only the
planned rows whose ``changed`` flag is set, as ``(slot int32, columns…)``
where ``slot`` is the row's index in that destination's request list.

Tick (:meth:`Halo.exchange`): one ``Alltoall`` of byte counts and one
``Alltoallv`` of a buffer packed column-wise per destination
(:mod:`socius.mpi.pack`). The receiver scatters each column into its ghost
arrays with one fancy-index assignment. ``last_bytes`` reports what was sent
to other ranks (buffer + counts).

Ghost storage is columnar like a kernel table: ``ids [g] int64`` sorted,
``owner [g] int32``, and one array per public column, read-only to callers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from socius.ecs.ragged import RaggedArray

from .context import RankContext
from .pack import Aligned, Fixed, column_kind, pack, unpack
from .partition import Partition

__all__ = ["HaloPlan", "Halo", "build_halo_plan", "public_columns"]

_SLOT = Fixed(np.int32)


@dataclass(frozen=True, eq=False)
class HaloPlan:
    """Who sends which rows to whom; the same for every tick until the graph changes.

    ``owned [n] int64``: this rank's IDs, sorted (the row order of its columns).
    ``ghost_ids [g] int64`` sorted and ``ghost_owner [g] int32``: the remote IDs it mirrors.
    ``send_rows [s] int64``: rows of ``owned`` to send, grouped by destination,
    each group in ID order; ``send_dest [s] int32``; ``send_slot [s] int32``
    (index within the destination's group); ``send_counts [size] int64``.
    ``recv_counts [size] int64``: rows each source sends on a full exchange;
    ``recv_start [size] int64`` their offsets; ``recv_ghost [g] int64``: the
    ghost position of each received row of a full exchange (sources in rank
    order, IDs ascending).
    """

    rank: int
    size: int
    owned: np.ndarray
    ghost_ids: np.ndarray
    ghost_owner: np.ndarray
    send_rows: np.ndarray
    send_dest: np.ndarray
    send_slot: np.ndarray
    send_counts: np.ndarray
    recv_counts: np.ndarray
    recv_start: np.ndarray
    recv_ghost: np.ndarray

    @property
    def n_ghosts(self) -> int:
        return int(self.ghost_ids.shape[0])


def _referenced_ids(neighbours) -> np.ndarray:
    if isinstance(neighbours, RaggedArray):
        v = neighbours.values
    elif isinstance(neighbours, (list, tuple)):
        v = np.concatenate([np.asarray(x, dtype=np.int64).reshape(-1) for x in neighbours]) if neighbours \
            else np.zeros(0, np.int64)
    else:
        v = np.asarray(neighbours)
    v = np.asarray(v)
    if v.dtype.kind not in "iu":
        raise TypeError(f"build_halo_plan: neighbour IDs must be integers, got {v.dtype}")
    v = np.sort(v.astype(np.int64, copy=False).reshape(-1))
    v = v[v >= 0]  # -1 marks "no neighbour"
    return v[np.r_[True, v[1:] != v[:-1]]] if v.shape[0] else v


def build_halo_plan(ctx: RankContext, owned_ids, neighbours, partition: Partition) -> HaloPlan:
    """Collective: the exchange plan for this rank's ``owned_ids`` and their neighbours.

    ``owned_ids [n] int64``: the IDs this rank holds (all owned by it in
    ``partition``); ``neighbours``: the global IDs they read from — a
    :class:`RaggedArray` (e.g. a ``follows`` column), or any integer array
    of IDs (negative = none). ``partition``: the same on every rank.
    """
    if partition.size != ctx.size:
        raise ValueError(f"build_halo_plan: the partition is for {partition.size} ranks, the job has {ctx.size}")
    owned = np.asarray(owned_ids, dtype=np.int64).reshape(-1)
    if owned.shape[0] > 1 and (np.diff(owned) <= 0).any():
        owned = np.unique(owned)
    own_of = partition.owner_of(owned)
    if (own_of != ctx.rank).any():
        bad = owned[own_of != ctx.rank][0]
        raise ValueError(f"build_halo_plan: rank {ctx.rank} holds entity {int(bad)}, "
                         f"which the partition gives to rank {int(partition.owner_of([bad])[0])}")
    refs = _referenced_ids(neighbours)
    ref_owner = partition.owner_of(refs)
    remote = ref_owner != ctx.rank
    ghost_ids, ghost_owner = refs[remote], ref_owner[remote]
    # requests grouped by owner, IDs ascending inside each group
    recv_ghost = np.argsort(ghost_owner, kind="stable").astype(np.int64)
    recv_counts = np.bincount(ghost_owner, minlength=ctx.size).astype(np.int64)
    requests, send_counts = ctx.alltoallv(ghost_ids[recv_ghost], recv_counts)
    rows = np.searchsorted(owned, requests)
    rows_c = np.minimum(rows, max(owned.shape[0] - 1, 0))
    ok = (rows < owned.shape[0]) & (owned[rows_c] == requests) if owned.shape[0] else \
        np.zeros(requests.shape, bool)
    if not ok.all():
        who = np.repeat(np.arange(ctx.size), send_counts)[~ok][0]
        raise ValueError(f"build_halo_plan: rank {int(who)} asked rank {ctx.rank} for entity "
                         f"{int(requests[~ok][0])}, which rank {ctx.rank} does not hold")
    send_dest = np.repeat(np.arange(ctx.size, dtype=np.int32), send_counts)
    send_start = np.zeros(ctx.size + 1, dtype=np.int64)
    np.cumsum(send_counts, out=send_start[1:])
    send_slot = (np.arange(rows.shape[0], dtype=np.int64) - send_start[send_dest]).astype(np.int32)
    recv_start = np.zeros(ctx.size, dtype=np.int64)
    np.cumsum(recv_counts[:-1], out=recv_start[1:])
    arrays = dict(owned=owned, ghost_ids=ghost_ids, ghost_owner=ghost_owner.astype(np.int32),
                  send_rows=rows_c.astype(np.int64), send_dest=send_dest, send_slot=send_slot,
                  send_counts=send_counts, recv_counts=recv_counts, recv_start=recv_start, recv_ghost=recv_ghost)
    for a in arrays.values():
        a.flags.writeable = False
    return HaloPlan(rank=ctx.rank, size=ctx.size, **arrays)


def public_columns(component, *names: str) -> dict:
    """``{name: column spec}`` for the named columns of a component (all columns when none named)."""
    names = names or tuple(component.columns())
    return {n: component.column(n) for n in names}


class Halo:
    """Ghost copies of the public columns of remote neighbours (see the module notes).

    ``public``: ``{name: spec}`` — kernel column specs (``Scalar``, ``Vector``,
    ``String``, ``Ragged``), :class:`~socius.mpi.pack.Fixed`, or a dtype.
    Ghost arrays start at the specs' defaults (zeros for plain dtypes) and
    are filled by the first :meth:`exchange`, which always sends every row.
    """

    def __init__(self, ctx: RankContext, plan: HaloPlan, public: Mapping[str, object]):
        if plan.size != ctx.size or plan.rank != ctx.rank:
            raise ValueError(f"Halo: plan is for rank {plan.rank} of {plan.size}, context is {ctx.rank} of {ctx.size}")
        if not public:
            raise ValueError("Halo: declare at least one public column")
        self.ctx, self.plan = ctx, plan
        self.names = tuple(public)
        self.specs = tuple(public[k] for k in self.names)
        g = plan.n_ghosts
        self._data: dict[str, object] = {}
        for name, spec in zip(self.names, self.specs):
            kind, dtype, shape = column_kind(spec)
            if hasattr(spec, "empty"):
                self._data[name] = spec.empty(g)
            elif kind == "fixed":
                self._data[name] = np.zeros((g,) + shape, dtype=dtype)
        self._primed = False
        self.last_bytes = 0
        self.last_rows = 0
        self.total_bytes = 0
        self.exchanges = 0

    # ----------------------------------------------------------------- storage
    @property
    def ids(self) -> np.ndarray:
        """``[g] int64``: ghost IDs, sorted."""
        return self.plan.ghost_ids

    @property
    def owner(self) -> np.ndarray:
        """``[g] int32``: the rank each ghost comes from."""
        return self.plan.ghost_owner

    def __len__(self) -> int:
        return self.plan.n_ghosts

    def column(self, name: str):
        """The ghost values of column ``name`` (``[g, ...]``, aligned with :attr:`ids`), read-only."""
        try:
            d = self._data[name]
        except KeyError:
            raise KeyError(f"Halo has no public column {name!r} (declared: {', '.join(self.names)})") from None
        if isinstance(d, RaggedArray):
            return d
        v = d.view()
        v.flags.writeable = False
        return v

    def rows(self, ids) -> np.ndarray:
        """``[m] int64``: positions of ``ids`` among the ghosts; ``KeyError`` for an ID that is not a ghost."""
        q = np.asarray(ids, dtype=np.int64).reshape(-1)
        g = self.plan.ghost_ids
        pos = np.searchsorted(g, q)
        pos_c = np.minimum(pos, max(g.shape[0] - 1, 0))
        ok = (pos < g.shape[0]) & (g[pos_c] == q) if g.shape[0] else np.zeros(q.shape, bool)
        if not ok.all():
            raise KeyError(f"entity {int(q[~ok][0])} is not a ghost on rank {self.plan.rank}")
        return pos_c

    def gather(self, name: str, ids, local) -> np.ndarray:
        """Values of column ``name`` for ``ids [m]``, each owned here or a ghost.

        ``local``: this rank's column (``[n, ...]``, aligned with ``plan.owned``).
        Returns ``[m, ...]`` of the column's dtype. Fixed-width and string columns.
        """
        q = np.asarray(ids, dtype=np.int64).reshape(-1)
        owned = self.plan.owned
        pos = np.searchsorted(owned, q)
        pos_c = np.minimum(pos, max(owned.shape[0] - 1, 0))
        here = (pos < owned.shape[0]) & (owned[pos_c] == q) if owned.shape[0] else np.zeros(q.shape, bool)
        local = np.asarray(local)
        ghost = self.column(name)
        if isinstance(ghost, RaggedArray):
            raise TypeError(f"Halo.gather: column {name!r} is ragged; use Halo.rows and RaggedArray.take")
        out = np.empty((q.shape[0],) + ghost.shape[1:], dtype=ghost.dtype)
        out[here] = local[pos_c[here]]
        far = ~here
        if far.any():
            out[far] = ghost[self.rows(q[far])]
        return out

    # ----------------------------------------------------------------- exchange
    def exchange(self, columns: Mapping[str, object], changed=None) -> int:
        """Collective: refresh the ghosts on every rank; returns the bytes this rank sent.

        ``columns``: ``{name: values}`` for every public column, rows aligned
        with ``plan.owned`` (``[n, ...]``, StringDType ``[n]`` or a
        :class:`RaggedArray`). ``changed``: ``None`` (send every planned row),
        a ``[n] bool`` mask of rows whose public columns changed, or
        ``{name: [n] bool}`` per column (their union is sent). The first
        exchange sends every row whatever ``changed`` says.
        """
        with self.ctx.category("halo"):
            return self._exchange(columns, changed)

    def _exchange(self, columns: Mapping[str, object], changed=None) -> int:
        plan, ctx = self.plan, self.ctx
        n = plan.owned.shape[0]
        cols = []
        for name in self.names:
            if name not in columns:
                raise KeyError(f"Halo.exchange: missing public column {name!r}")
            c = columns[name]
            if len(c) != n:
                raise ValueError(f"Halo.exchange: column {name!r} has {len(c)} rows, rank {ctx.rank} owns {n}")
            cols.append(c)
        if changed is None or not self._primed:
            rows, slots, counts = plan.send_rows, plan.send_slot, plan.send_counts
        else:
            mask = self._mask(changed, n)
            idx = np.flatnonzero(mask[plan.send_rows])
            rows, slots = plan.send_rows[idx], plan.send_slot[idx]
            counts = np.bincount(plan.send_dest[idx], minlength=ctx.size).astype(np.int64)
        buf, nbytes = pack((_SLOT,) + self.specs, [Aligned(slots)] + cols, rows, counts)
        recv_nbytes = ctx.alltoall(nbytes)
        recv = ctx.alltoallv_bytes(buf, nbytes, recv_nbytes)
        got, per_src = unpack((_SLOT,) + self.specs, recv, recv_nbytes)
        src = np.repeat(np.arange(ctx.size), per_src)
        pos = plan.recv_ghost[plan.recv_start[src] + got[0].astype(np.int64)]
        for name, values in zip(self.names, got[1:]):
            d = self._data[name]
            if isinstance(d, RaggedArray):
                self._data[name] = d.set_rows(pos, values) if pos.shape[0] else d
            else:
                d[pos] = values
        self._primed = True
        others = np.arange(ctx.size) != ctx.rank
        self.last_bytes = int(nbytes[others].sum()) + 8 * (ctx.size - 1)
        self.last_rows = int(counts[others].sum())
        self.total_bytes += self.last_bytes
        self.exchanges += 1
        return self.last_bytes

    def _mask(self, changed, n: int) -> np.ndarray:
        if isinstance(changed, Mapping):
            unknown = set(changed) - set(self.names)
            if unknown:
                raise KeyError(f"Halo.exchange: changed names unknown columns {sorted(unknown)}")
            mask = np.zeros(n, dtype=bool)
            for m in changed.values():
                mask |= self._mask(m, n)
            return mask
        mask = np.asarray(changed)
        if mask.dtype != np.bool_ or mask.shape != (n,):
            raise ValueError(f"Halo.exchange: changed must be a [{n}] bool mask, got {mask.dtype}{list(mask.shape)}")
        return mask

    def __repr__(self) -> str:
        return (f"Halo(rank={self.plan.rank}, ghosts={len(self)}, columns={list(self.names)}, "
                f"last_bytes={self.last_bytes})")
