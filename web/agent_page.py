"""One agent's page: every component's columns for one entity, memories as texts, its messages.

:func:`agent_view` reads a world (never writes it) and returns plain JSON
values: per component, scalars and strings as they are, short vectors and
ragged lists as lists (long ones cut to :data:`MAX_ITEMS` with their length);
short-term memory (:class:`~socius.components.memory.ShortTermMemoryBase`) as
its observations newest first, long-term memory
(:class:`~socius.components.memory.LongTermMemoryBase`) as its slots' texts,
ticks and importance, newest first (the embeddings are not sent). Messages
are those in the snapshot's inbox — sent in the snapshot's last tick, to be
read in the next — that the agent sent or receives. The recent decisions
(prompt and reply) come from the response log, in :mod:`socius.web.labelling`.
"""
from __future__ import annotations

import numpy as np

from socius.components.memory import LongTermMemoryBase, ShortTermMemoryBase
from socius.ecs import STR

__all__ = ["MAX_ITEMS", "agent_view", "plain"]

MAX_ITEMS = 64      # items of a vector or ragged list sent to the page
MAX_MESSAGES = 100  # inbox messages per direction


def plain(value):
    """A numpy scalar / array / string as JSON-able Python (NaN → None)."""
    if isinstance(value, np.ndarray):
        if value.dtype == STR or value.dtype.kind in "OUS":
            return [str(x) for x in value.tolist()]
        return [plain(x) for x in value.tolist()]
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return f if np.isfinite(f) else None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _cut(values) -> dict | list:
    values = np.asarray(values)
    if values.shape[0] <= MAX_ITEMS:
        return plain(values)
    return {"length": int(values.shape[0]), "first": plain(values[:MAX_ITEMS])}


def _memory(world, comp, entity: int) -> list[dict]:
    from socius.systems.memory import recent, slot_texts

    ids = np.array([entity], np.int64)
    tick = world.get(comp, "tick", ids)[0]
    importance = world.get(comp, "importance", ids)[0]
    if issubclass(comp, ShortTermMemoryBase):
        texts = recent(world, ids, memory=comp)[0]
        head = int(world.get(comp, "head", ids)[0])
        slots = (head - 1 - np.arange(comp.capacity)) % comp.capacity
    else:
        texts = slot_texts(world, ids, memory=comp)[0]
        slots = np.lexsort((np.arange(comp.capacity), -tick))
        texts = texts[slots]
    out = []
    for text, s in zip(texts.tolist(), slots.tolist()):
        if tick[s] >= 0:
            out.append({"text": str(text), "tick": int(tick[s]), "importance": plain(importance[s])})
    return out


def _messages(world, entity: int) -> list[dict]:
    out = []
    for kind, batch in world.messages.inbox.items():
        if len(batch) == 0:
            continue
        for direction, col in (("sent", batch.sender), ("received", batch.target)):
            rows = np.flatnonzero(col == entity)[:MAX_MESSAGES]
            for r in rows.tolist():
                payload = {k: _cut(v[r]) if isinstance(v, np.ndarray) and v.ndim > 1 else plain(v[r])
                           for k, v in batch.payload.items() if hasattr(v, "__getitem__")}
                out.append({"kind": kind.__name__, "direction": direction, "tick": int(batch.tick[r]),
                            "sender": int(batch.sender[r]), "target": int(batch.target[r]), "payload": payload})
    return out


def agent_view(world, entity: int) -> dict:
    """``{id, tick, components: {name: {column: value}}, memory: {name: [{text, tick, importance}]},
    messages: [...]}`` for ``entity``; raises ``KeyError`` when it is not alive in ``world``."""
    entity = int(entity)
    if not bool(world.is_alive(np.array([entity], np.int64))[0]):
        raise KeyError(f"no agent {entity} in the snapshot of tick {world.tick}")
    ids = np.array([entity], np.int64)
    components, memory = {}, {}
    for comp in world.component_types():
        if not bool(world.has(ids, comp)[0]):
            continue
        if issubclass(comp, (ShortTermMemoryBase, LongTermMemoryBase)) and comp.capacity:
            memory[comp.__name__] = _memory(world, comp, entity)
            continue
        cols = {}
        for name, col in comp.columns().items():
            value = world.get(comp, name, ids)
            if col.kind == "ragged":
                cols[name] = _cut(value.row(0))
            elif col.kind == "vector":
                cols[name] = _cut(value[0])
            else:
                cols[name] = plain(value[0])
        components[comp.__name__] = cols
    return {"id": entity, "tick": int(world.tick), "components": components, "memory": memory,
            "messages": _messages(world, entity)}
