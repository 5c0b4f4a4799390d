"""Storing memories for many agents at once: long-term blocks, short-term rings, reading them back.

The components are in :mod:`socius.components.memory`; this module is what
systems call, always with whole batches of agents (``ids [n]``), never one
agent at a time::

    world.insert_resource(MemoryParams(top_k=5))
    world.insert_resource(MemoryEmbedder(make_embedder("hashing")))
    memorize(ctx, ids, texts)                      # rate, embed, store (long- and short-term)
    recall = retrieve(ctx, ids, query_texts)       # top-k per agent (socius.systems.retrieval)
    prompt_memories = recall.joined()              # [n] StringDType, one "- ..." line per memory

**Eviction**: a new memory goes to the lowest empty slot; when the block is
full it replaces the slot with the lowest retention
``importance · decay ** (now - last_access)`` (ties: lower slot), so old,
unimportant, unused memories go first. Capacity never changes.

**Importance** (1–10) is rated by :mod:`socius.systems.importance`;
retrieval is :mod:`socius.systems.retrieval`, reflection
:mod:`socius.systems.reflection`.

**Resources**: calls take the system context (or, outside a tick, the world)
and fetch what they use through it, so a system calling them declares it:
:class:`~socius.components.memory.MemoryParams` (optional: defaults when the
world has none) and :class:`MemoryEmbedder` (to embed texts). Each function's
docstring names its own.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from socius.components.memory import (LongTermMemory, LongTermMemoryBase, MemoryParams, Reflection, ShortTermMemory,
                                      ShortTermMemoryBase)
from socius.ecs import STR, world_of
from socius.ecs.errors import MissingComponentError
from socius.text.strings import encode_fixed, gather_fixed

from .importance import score_importance


class MemoryEmbedder:
    """The run's text embedder (a plain resource: not saved). ``embedder.dim`` must match the memory's ``dim``."""

    def __init__(self, embedder):
        self.embedder = embedder

    def embed(self, texts) -> np.ndarray:
        return self.embedder.embed(texts)


def memory_embedder(ctx) -> MemoryEmbedder:
    """The :class:`MemoryEmbedder` resource, fetched through ``ctx``; raises ``LookupError`` when absent."""
    e = ctx.get_resource(MemoryEmbedder)
    if e is None:
        raise LookupError("no MemoryEmbedder resource: world.insert_resource(MemoryEmbedder(make_embedder(...)))")
    return e


def memory_params(ctx, params: MemoryParams | None = None) -> MemoryParams:
    """``params`` if given, else the :class:`MemoryParams` resource fetched through ``ctx``, else the defaults."""
    return params or ctx.get_resource(MemoryParams) or MemoryParams()


def eviction_slots(tick: np.ndarray, importance: np.ndarray, last_access: np.ndarray, now: int,
                   decay: float) -> np.ndarray:
    """``[n] int64``: where each agent's next memory goes — the lowest empty slot, else the slot with
    the lowest retention ``importance * decay ** (now - last_access)`` (ties: lower slot)."""
    empty = tick < 0
    age = np.maximum(now - np.maximum(last_access, tick), 0).astype(np.float64)
    retention = importance.astype(np.float64) * np.power(float(decay), age)
    first_empty = np.argmax(empty, axis=1)
    return np.where(empty.any(axis=1), first_empty, np.argmin(retention, axis=1)).astype(np.int64)


def _rounds(ids: np.ndarray):
    """Split positions of ``ids`` into rounds holding each ID at most once (input order kept per ID)."""
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    start = np.r_[True, s[1:] != s[:-1]] if s.size else np.zeros(0, bool)
    grp = np.cumsum(start) - 1
    first = np.flatnonzero(start)
    rank = np.arange(s.size) - first[grp] if s.size else np.zeros(0, np.int64)
    for r in range(int(rank.max()) + 1 if rank.size else 0):
        yield np.sort(order[rank == r])


def rows_of(view, ids: np.ndarray, memory) -> np.ndarray:
    """``[n] int64`` rows of ``ids`` in ``view``; raises ``MissingComponentError`` if one lacks ``memory``."""
    rows, found = view.rows_of(ids)
    if not found.all():
        raise MissingComponentError(f"entity {int(ids[~found][0])} has no {memory.__qualname__}")
    return rows


def remember(ctx, ids, texts, importance, embeddings, memory: type[LongTermMemoryBase] = LongTermMemory,
             now: int | None = None) -> np.ndarray:
    """Store one memory per row in the long-term block of ``ids`` (repeats allowed: stored in order).

    ``texts [n]``, ``importance [n]`` (1–10), ``embeddings [n, dim]``. Returns the slot of each
    row. Evicts by :func:`eviction_slots` when a block is full. A text longer than the
    component's ``text_bytes`` is stored cut at that many bytes, on a character boundary.
    Resources: :class:`~socius.components.memory.MemoryParams` (optional, for ``decay``).
    """
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    n = ids.shape[0]
    texts = np.asarray(texts, dtype=STR).reshape(-1)
    imp = np.broadcast_to(np.asarray(importance, dtype=np.float32), (n,))
    emb = np.asarray(embeddings, dtype=np.float32)
    if texts.shape != (n,) or emb.shape != (n, memory.dim):
        raise ValueError(f"remember: need texts [{n}] and embeddings [{n}, {memory.dim}], "
                         f"got {texts.shape} and {emb.shape}")
    if n and not ((imp >= 1) & (imp <= 10)).all():
        raise ValueError("remember: importance must be in [1, 10]")
    now = world.tick if now is None else int(now)
    slots = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return slots
    view = world.query(memory)
    k, d, w = memory.capacity, memory.dim, memory.text_bytes
    encoded, lengths = encode_fixed(texts, w)
    with view.write(memory, "tick", "importance", "last_access", "embedding", "text", "text_len") as m:
        block = m.embedding.reshape(-1, k, d)
        text = m.text.reshape(-1, k, w)
        for part in _rounds(ids):
            rows = rows_of(view, ids[part], memory)
            slot = eviction_slots(m.tick[rows], m.importance[rows], m.last_access[rows], now, world_decay(ctx))
            m.tick[rows, slot] = now
            m.last_access[rows, slot] = now
            m.importance[rows, slot] = imp[part]
            block[rows, slot] = emb[part].astype(np.float16)
            text[rows, slot] = encoded[part]
            m.text_len[rows, slot] = lengths[part]
            slots[part] = slot
    return slots


def world_decay(ctx) -> float:
    """The recency decay of the :class:`~socius.components.memory.MemoryParams` resource (the default if none)."""
    p = ctx.get_resource(MemoryParams)
    return float(p.decay) if p is not None else MemoryParams().decay


def observe(ctx, ids, texts, importance, memory: type[ShortTermMemoryBase] = ShortTermMemory,
            now: int | None = None) -> None:
    """Push one observation per row into the short-term ring buffer of ``ids`` (oldest overwritten)."""
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    n = ids.shape[0]
    texts = np.asarray(texts, dtype=STR).reshape(-1)
    imp = np.broadcast_to(np.asarray(importance, dtype=np.float32), (n,))
    if texts.shape != (n,):
        raise ValueError(f"observe: need texts [{n}], got {texts.shape}")
    if n == 0:
        return
    now = world.tick if now is None else int(now)
    view = world.query(memory)
    k = memory.capacity
    with view.write(memory, "tick", "importance", "head", *(f"text_{s}" for s in range(k))) as m:
        for part in _rounds(ids):
            rows = rows_of(view, ids[part], memory)
            slot = m.head[rows].astype(np.int64)
            m.tick[rows, slot] = now
            m.importance[rows, slot] = imp[part]
            for s in np.unique(slot).tolist():
                sel = slot == s
                getattr(m, f"text_{s}")[rows[sel]] = texts[part][sel]
            m.head[rows] = ((slot + 1) % k).astype(np.int32)


def slot_texts_arrow(view, memory, rows: np.ndarray, slots: np.ndarray) -> pa.Array:
    """``[n * j]`` Arrow strings (row-major): long-term text of slot ``slots[i, c]`` of row ``rows[i]``."""
    return gather_fixed(view.get(memory, "text"), view.get(memory, "text_len"), rows, slots, memory.text_bytes)


def numpy_texts(flat: pa.Array, shape) -> np.ndarray:
    """Arrow strings ``flat`` as a ``StringDType`` array of ``shape``."""
    return np.asarray(flat.to_numpy(zero_copy_only=False), dtype=STR).reshape(shape)


def _slot_texts(view, memory, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """``[n, j] StringDType``: text of slot ``slots[i, c]`` of row ``rows[i]`` ("" where slot is -1).

    Long-term memory: gathered from the fixed-width text block. Short-term memory (``String``
    columns per slot) as follows.

    Each string is copied once where ``rows`` is a run of consecutive rows (a whole tick's agents):
    one masked copy per slot from that slot's text column. Otherwise one stable sort groups the
    entries by slot and each slot's column is gathered at its rows, then scattered."""
    if issubclass(memory, LongTermMemoryBase):
        return numpy_texts(slot_texts_arrow(view, memory, rows, slots), slots.shape)
    out = np.full(slots.shape, "", dtype=STR)
    if out.size == 0:
        return out
    present = np.flatnonzero(np.bincount(slots[slots >= 0], minlength=memory.capacity))
    first = int(rows[0])
    if rows[-1] - first == rows.shape[0] - 1 and (np.diff(rows) == 1).all():
        for s in present.tolist():
            col = view.get(memory, f"text_{s}")[first:first + rows.shape[0], None]
            np.copyto(out, col, where=slots == s)
        return out
    flat = slots.reshape(-1)
    key = flat.astype(np.int16) if memory.capacity < 2 ** 15 else flat
    order = np.argsort(key, kind="stable")
    sorted_slots = flat[order]
    lo = np.searchsorted(sorted_slots, present, "left")
    hi = np.searchsorted(sorted_slots, present, "right")
    out_flat = out.reshape(-1)
    width = slots.shape[1]
    for s, a, b in zip(present.tolist(), lo.tolist(), hi.tolist()):
        at = order[a:b]
        out_flat[at] = view.get(memory, f"text_{s}")[rows[at // width]]
    return out


def recent(ctx, ids, count: int | None = None, memory=ShortTermMemory) -> np.ndarray:
    """``[n, count] StringDType``: the newest short-term observations first ("" where fewer).

    ``memory`` may also be a long-term component (newest by creation tick, ties by slot).
    """
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    count = memory.capacity if count is None else min(int(count), memory.capacity)
    view = world.query(memory)
    rows = rows_of(view, ids, memory)
    tick = view.get(memory, "tick")[rows]
    if issubclass(memory, ShortTermMemoryBase):
        head = view.get(memory, "head")[rows].astype(np.int64)
        order = (head[:, None] - 1 - np.arange(count)[None, :]) % memory.capacity
    else:
        slot_idx = np.broadcast_to(np.arange(memory.capacity), tick.shape)
        order = np.lexsort((slot_idx, -tick), axis=-1)[:, :count]
    slots = np.where(np.take_along_axis(tick, order, axis=1) >= 0, order, -1)
    return _slot_texts(view, memory, rows, slots)


def slot_texts(ctx, ids, memory: type[LongTermMemoryBase] = LongTermMemory) -> np.ndarray:
    """``[n, capacity] StringDType``: the text in every slot of ``ids`` ("" where empty)."""
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    view = world.query(memory)
    rows = rows_of(view, ids, memory)
    tick = view.get(memory, "tick")[rows]
    slots = np.where(tick >= 0, np.arange(memory.capacity)[None, :], -1)
    return _slot_texts(view, memory, rows, slots)


def memorize(ctx, ids, texts, importance=None, memory: type[LongTermMemoryBase] | None = LongTermMemory,
             short: type[ShortTermMemoryBase] | None = ShortTermMemory) -> np.ndarray:
    """Rate (unless ``importance`` is given), embed and store observations ``texts [n]`` of ``ids``:
    in ``memory`` and ``short`` where the agents have them (``None`` skips one), adding the
    importance to ``Reflection.pending`` where agents have :class:`Reflection`. Returns importance.

    Resources: :class:`MemoryEmbedder` (when storing long-term),
    :class:`~socius.components.memory.MemoryParams` (optional) and, with ``importance`` unset and
    ``MemoryParams.importance == "llm"``, the :class:`~socius.llm.LLM`."""
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    texts = np.asarray(texts, dtype=STR).reshape(-1)
    imp = score_importance(ctx, ids, texts) if importance is None else \
        np.broadcast_to(np.asarray(importance, dtype=np.float32), ids.shape).copy()
    if memory is not None:
        has = world.has(ids, memory)
        if has.any():
            emb = memory_embedder(ctx).embed(texts[has])
            remember(ctx, ids[has], texts[has], imp[has], emb, memory)
    if short is not None:
        has = world.has(ids, short)
        if has.any():
            observe(ctx, ids[has], texts[has], imp[has], short)
    has = world.has(ids, Reflection)
    if has.any():
        view = world.query(Reflection)
        with view.write(Reflection, "pending") as r:
            np.add.at(r.pending, rows_of(view, ids[has], Reflection), imp[has])
    return imp


__all__ = ["MemoryEmbedder", "eviction_slots", "memorize", "memory_embedder", "memory_params", "observe", "recent",
           "remember", "slot_texts"]
