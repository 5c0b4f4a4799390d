"""Reflection: agents turn their recent memories into an insight, stored back as a memory.

An agent reflects when ``MemoryParams.reflect_every`` ticks passed since its
last reflection, or when the importance it accumulated
(``Reflection.pending``) reaches ``reflect_threshold``. All reflecting agents
go in one batched :data:`REFLECT` decision over their
``reflect_memories`` most recent memories; each summary is stored back as a
memory of importance ``reflection_importance``. :func:`reflect_system` runs it
every tick.
"""
from __future__ import annotations

import numpy as np

from socius.components.memory import LongTermMemory, LongTermMemoryBase, MemoryParams, Reflection
from socius.components.profile import Profile
from socius.ecs import STR, system, world_of
from socius.llm import LLM, Decision, Sampling, Template, TextReply, decide

from .memory import MemoryEmbedder, memory_embedder, recent, remember, rows_of
from .retrieval import join_lines

REFLECT = Decision(
    "memory_reflect",
    Template(
        "{who}\n"
        "Recent memories:\n{memories}\n"
        "What is the single most important high-level insight about themselves or their situation that "
        "this person can infer from these memories? Answer in one sentence.\n"
        "Insight:",
        untrusted=("memories",)),
    TextReply(),
    fallback={"text": ""},
    sampling=Sampling(temperature=0.0, max_tokens=60),
)


def due_to_reflect(ctx, params: MemoryParams | None = None, now: int | None = None) -> np.ndarray:
    """IDs of agents with :class:`Reflection` whose reflection is due (see module doc).

    Resources: :class:`~socius.components.memory.MemoryParams` (unless ``params`` is given)."""
    world = world_of(ctx)
    params = params or ctx.get_resource(MemoryParams) or MemoryParams()
    now = world.tick if now is None else int(now)
    view = world.query(Reflection)
    due = np.zeros(len(view), dtype=bool)
    if params.reflect_every > 0:
        since = now - np.maximum(view.get(Reflection, "last_tick"), 0)
        due |= (since >= params.reflect_every) & (now > 0)
    if params.reflect_threshold > 0:
        due |= view.get(Reflection, "pending") >= params.reflect_threshold
    return view.ids[due].copy()


def reflect(ctx, ids=None, memory: type[LongTermMemoryBase] = LongTermMemory,
            params: MemoryParams | None = None) -> np.ndarray:
    """One batched :data:`REFLECT` call for ``ids`` (default: :func:`due_to_reflect`) that have
    memories; each non-empty insight is stored as a memory. Returns the IDs that reflected.

    Resources: the :class:`~socius.llm.LLM`, the :class:`~socius.systems.memory.MemoryEmbedder`
    and :class:`~socius.components.memory.MemoryParams` (also for ``decay`` when storing, even
    with ``params`` given)."""
    world = world_of(ctx)
    params = params or ctx.get_resource(MemoryParams) or MemoryParams()
    ids = due_to_reflect(ctx, params) if ids is None else np.asarray(ids, dtype=np.int64).reshape(-1)
    ids = ids[world.has(ids, memory)] if ids.size else ids
    if ids.size == 0:
        return ids
    texts = recent(ctx, ids, params.reflect_memories, memory)
    ids = ids[np.strings.str_len(texts[:, 0]) > 0]
    texts = texts[np.strings.str_len(texts[:, 0]) > 0]
    if ids.size == 0:
        return ids
    who = _who(world, ids)
    res = decide(ctx, REFLECT, ids, {"who": who, "memories": join_lines(texts)})
    insight = np.asarray(res.values["text"], dtype=STR)
    ok = np.strings.str_len(insight) > 0
    if ok.any():
        emb = memory_embedder(ctx).embed(insight[ok])
        remember(ctx, ids[ok], insight[ok], np.float32(params.reflection_importance), emb, memory)
    has = world.has(ids, Reflection)
    if has.any():
        view = world.query(Reflection)
        rows = rows_of(view, ids[has], Reflection)
        with view.write(Reflection, "pending", "last_tick", "count") as r:
            r.pending[rows] = 0
            r.last_tick[rows] = world.tick
            r.count[rows] += 1
    return ids


def _who(world, ids: np.ndarray) -> np.ndarray:
    has = world.has(ids, Profile)
    out = np.full(ids.shape[0], "You are a person.", dtype=STR)
    if has.any():
        name = world.get(Profile, "name", ids[has])
        named = np.strings.add(np.strings.add("You are ", name), ".")
        out[has] = np.where(np.strings.str_len(name) > 0, named, out[has])
    return out


def reflect_system(memory: type[LongTermMemoryBase] = LongTermMemory, phase: str = "post"):
    """A system that runs :func:`reflect` for every agent whose reflection is due, each tick
    (declaring the resources :func:`reflect` uses)."""

    @system(phase=phase, reads=(Profile,), writes=(memory, Reflection),
            resources=(MemoryParams, MemoryEmbedder, LLM), name=f"reflect_{memory.__name__.lower()}")
    def reflect_memories(ctx):
        reflect(ctx, None, memory, ctx.resource(MemoryParams))

    return reflect_memories


__all__ = ["REFLECT", "due_to_reflect", "reflect", "reflect_system"]
