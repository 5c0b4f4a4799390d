"""Message routing: every message ends on the rank that owns its target.

On one rank, the inbox of a message type is every message sent last tick,
sorted by ``(tick, sender, seq)`` (:mod:`socius.ecs.message`). On N ranks
each rank's bus holds what *its* entities sent. :class:`Router` moves them so
that afterwards the inbox of rank ``r`` is exactly the one-rank inbox
restricted to

* messages whose ``target`` is owned by ``r``, and
* messages with no single target (``target == -1``) — every rank gets all of
  them (``broadcast="all"``, the default), or only the sender's rank keeps
  them (``broadcast="local"``);

in the same ``(tick, sender, seq)`` order. The order holds because a sender
lives on one rank, so its ``seq`` numbers are those of the one-rank run, and
because the merged inbox is sorted by the full key, not by arrival.

Per message type and tick: one ``Alltoall`` of byte counts, one
``Alltoallv`` of the point-to-point messages packed column-wise per owner
(header columns, then payload columns of any kind — numbers, vectors,
strings, ragged lists; see :mod:`socius.mpi.pack`), and, when broadcast
messages exist anywhere, one ``Allgather`` + ``Allgatherv`` of those.

Call it after the tick's ``flip`` — e.g. ``world.step(1, on_tick=lambda w:
router.route_inbox(w.messages))`` — so systems read routed inboxes.
"""
from __future__ import annotations

import hashlib

import numpy as np

from socius.ecs.message import HEADER, MessageBatch, MessageBus

from .context import RankContext
from .pack import Fixed, pack, unpack
from .partition import Partition

__all__ = ["Router", "route", "merge_batches", "local_view"]

_I64 = Fixed(np.int64)


def _specs(kind):
    cols = kind.columns()
    return [_I64] * len(HEADER) + [cols[k] for k in cols], list(cols)


def _columns(batch: MessageBatch, names):
    return [getattr(batch, k) for k in HEADER] + [batch.payload[k] for k in names]


def _batch(kind, names, cols) -> MessageBatch:
    return MessageBatch(kind, dict(zip(HEADER, cols[:len(HEADER)])), dict(zip(names, cols[len(HEADER):])))


def _order(tick: np.ndarray, sender: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Stable order by ``(tick, sender, seq)``. The parts arrive as sorted runs: one int64 key and
    numpy's stable (run-aware) sort when the key fits, else a three-key lexsort."""
    if tick.shape[0] and tick[0] == tick[-1] and (tick == tick[0]).all() and sender.min() >= 0 and seq.min() >= 0:
        sb, qb = int(sender.max()).bit_length(), int(seq.max()).bit_length()
        if sb + qb <= 63:
            return np.argsort((sender << qb) | seq, kind="stable")
    return np.lexsort((seq, sender, tick))


def merge_batches(kind, parts: list[MessageBatch]) -> MessageBatch:
    """One batch of all ``parts`` sorted by ``(tick, sender, seq)``; raises if a key repeats."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return MessageBatch.empty(kind)
    if len(parts) == 1:
        b = parts[0]
    else:
        cols = kind.columns()
        b = MessageBatch(kind, {k: np.concatenate([getattr(p, k) for p in parts]) for k in HEADER},
                         {k: c.concat([p.payload[k] for p in parts]) for k, c in cols.items()})
    order = _order(b.tick, b.sender, b.seq)
    t, s, q = b.tick[order], b.sender[order], b.seq[order]
    dup = (t[1:] == t[:-1]) & (s[1:] == s[:-1]) & (q[1:] == q[:-1])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise ValueError(f"{kind.__qualname__}: message (tick={int(t[i])}, sender={int(s[i])}, seq={int(q[i])}) "
                         "arrived twice — was the same sender active on two ranks?")
    if np.all(order[1:] > order[:-1]):
        return b
    return b.take(order)


def local_view(batch: MessageBatch, partition: Partition, rank: int, broadcast: str = "all") -> MessageBatch:
    """The part of a one-rank inbox that rank ``rank`` sees after routing (the reference for tests)."""
    keep = batch.target == -1 if broadcast == "all" else np.zeros(len(batch), bool)
    p2p = np.flatnonzero(batch.target >= 0)
    if p2p.shape[0]:
        keep[p2p] = partition.owner_of(batch.target[p2p]) == rank
    return batch.take(np.flatnonzero(keep))


class Router:
    """Routes message batches to the owners of their targets (see the module notes).

    ``partition``: the same on every rank. ``broadcast``: ``"all"`` or ``"local"``.
    ``last_bytes`` / ``total_bytes``: bytes this rank sent to other ranks.
    """

    def __init__(self, ctx: RankContext, partition: Partition, broadcast: str = "all"):
        if partition.size != ctx.size:
            raise ValueError(f"Router: the partition is for {partition.size} ranks, the job has {ctx.size}")
        if broadcast not in ("all", "local"):
            raise ValueError(f"Router: broadcast must be 'all' or 'local', got {broadcast!r}")
        self.ctx, self.partition, self.broadcast = ctx, partition, broadcast
        self.last_bytes = 0
        self.total_bytes = 0

    def route(self, batch: MessageBatch) -> MessageBatch:
        """Collective: this rank's share of every rank's ``batch`` (same message type on all ranks)."""
        with self.ctx.category("route"):
            return self._route(batch)

    def _route(self, batch: MessageBatch) -> MessageBatch:
        ctx, kind = self.ctx, batch.kind
        specs, names = _specs(kind)
        cols = _columns(batch, names)
        target = batch.target
        if (target < -1).any():
            bad = int(target[target < -1][0])
            raise ValueError(f"{kind.__qualname__}: target must be an entity ID or -1, got {bad}")
        p2p = np.flatnonzero(target >= 0)
        dest = self.partition.owner_of(target[p2p])
        order = np.argsort(dest, kind="stable")
        counts = np.bincount(dest, minlength=ctx.size).astype(np.int64)
        buf, nbytes = pack(specs, cols, p2p[order], counts)
        recv_nbytes = ctx.alltoall(nbytes)
        got, _ = unpack(specs, ctx.alltoallv_bytes(buf, nbytes, recv_nbytes), recv_nbytes)
        parts = [_batch(kind, names, got)]
        others = np.arange(ctx.size) != ctx.rank
        sent = int(nbytes[others].sum()) + 8 * (ctx.size - 1)
        bc = np.flatnonzero(target == -1)
        if self.broadcast == "local":
            parts.append(batch.take(bc))
        elif ctx.size == 1:
            parts.append(batch.take(bc))
        else:
            any_bc = ctx.allreduce(np.array([bc.shape[0]], dtype=np.int64), "max")[0] > 0
            if any_bc:
                bbuf, bbytes = pack(specs, cols, bc, np.array([bc.shape[0]], dtype=np.int64))
                all_b, per_rank = ctx.allgatherv(bbuf)
                got_b, _ = unpack(specs, all_b, per_rank)
                parts.append(_batch(kind, names, got_b))
                sent += int(bbytes.sum()) * (ctx.size - 1) + 8 * (ctx.size - 1)
        self.last_bytes = sent
        self.total_bytes += sent
        return merge_batches(kind, parts)

    def route_inbox(self, bus: MessageBus) -> int:
        """Collective: route every message type of ``bus.inbox`` in place; returns bytes sent.

        Every rank must hold the same message types (checked: all ranks raise
        together if they differ); when a type may be missing on some ranks,
        name the types with :meth:`route_types`.
        """
        kinds = sorted(bus.inbox, key=lambda k: k.__component_name__)
        names = "\n".join(k.__component_name__ for k in kinds).encode()
        h = int.from_bytes(hashlib.blake2b(names, digest_size=8).digest(), "little", signed=True)
        with self.ctx.category("route"):
            seen = self.ctx.allgather(h)
        if (seen != seen[0]).any():
            raise ValueError(f"Router.route_inbox: ranks hold different message types (rank {self.ctx.rank} has "
                             f"{[k.__qualname__ for k in kinds]}); pass the types to route_types")
        return self.route_types(bus, kinds)

    def route_types(self, bus: MessageBus, kinds) -> int:
        """Collective: route the given message types of ``bus.inbox`` (same list on every rank)."""
        total = 0
        for kind in kinds:
            routed = self.route(bus.read(kind))
            total += self.last_bytes
            if len(routed) or kind in bus.inbox:
                bus.inbox[kind] = routed
        self.last_bytes = total
        return total


def route(ctx: RankContext, batch: MessageBatch, partition: Partition, broadcast: str = "all") -> MessageBatch:
    """Collective: route one batch (a one-off :class:`Router`)."""
    return Router(ctx, partition, broadcast).route(batch)
