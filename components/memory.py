"""What an agent remembers: fixed-capacity short-term and long-term memory blocks.

Memory is assembled per scenario from parts (add the components you need):

* :class:`ShortTermMemory` — a ring buffer of the last ``K`` observations
  (text, tick, importance). The oldest is overwritten.
* :class:`LongTermMemory` — ``k`` slots of embedded memories per agent:
  ``embedding`` is the ``[n, k, dim]`` float16 block, stored as one
  ``Vector(float16, k * dim)`` column (the kernel's vectors are 1-D per row;
  :func:`embedding_block` gives the ``[n, k, dim]`` view), plus per slot the
  text, creation tick, importance (1–10) and last access tick. A full block
  evicts by an explicit rule (see ``socius.systems.memory.eviction_slots``).
  Texts are fixed-width too: ``text`` is a ``[n, k * text_bytes]`` uint8
  block of UTF-8 (``text_len [n, k]`` bytes used per slot), so retrieval
  gathers the chosen texts in the same kind of numba pass as the scores. A
  longer text is cut at ``text_bytes`` bytes on a character boundary (the
  default 256 bytes holds about 250 characters of English).
* :class:`Reflection` — per-agent bookkeeping of reflection: importance
  accumulated since the last reflection and its tick.
* :class:`MemoryParams` — the run's retrieval weights, decay, reflection
  schedule and importance rater (a resource, saved in snapshots).

Capacities are part of the schema. The defaults are ``K = 8``, ``k = 32``,
``dim = 384`` (all-MiniLM-L6-v2), ``text_bytes = 256``; other sizes are
declared by subclassing the bases with class keywords::

    class BigMemory(LongTermMemoryBase, capacity=64, dim=384, text_bytes=512):
        '''64 long-term memories per agent, texts up to 512 bytes.'''

Short-term slot texts are ``String`` columns ``text_0 … text_{K-1}``; read
long-term texts with ``socius.systems.memory.slot_texts``. An empty slot has
``tick == -1``.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from socius.ecs import Component, Resource, Scalar, String, Vector

IMPORTANCE_MODES = ("rule", "llm")


def _put(cls, name: str, col) -> None:
    col.__set_name__(cls, name)
    setattr(cls, name, col)


def _slot_texts(cls, capacity: int) -> None:
    for s in range(capacity):
        _put(cls, f"text_{s}", String())


class ShortTermMemoryBase(Component):
    """Base of ring buffers; subclass with ``capacity=K``."""

    capacity: ClassVar[int] = 0

    def __init_subclass__(cls, capacity: int | None = None, **kw):
        if capacity is not None:
            if int(capacity) < 1:
                raise ValueError(f"{cls.__qualname__}: capacity must be >= 1, got {capacity}")
            cls.capacity = int(capacity)
            _slot_texts(cls, cls.capacity)
            _put(cls, "tick", Vector(np.int64, cls.capacity, default=-1))
            _put(cls, "importance", Vector(np.float32, cls.capacity))
            _put(cls, "head", Scalar(np.int32))
        super().__init_subclass__(**kw)


class LongTermMemoryBase(Component):
    """Base of embedded memory blocks; subclass with ``capacity=k, dim=d``."""

    capacity: ClassVar[int] = 0
    dim: ClassVar[int] = 0
    text_bytes: ClassVar[int] = 0

    def __init_subclass__(cls, capacity: int | None = None, dim: int = 384, text_bytes: int = 256, **kw):
        if capacity is not None:
            if int(capacity) < 1 or int(dim) < 1 or int(text_bytes) < 1:
                raise ValueError(f"{cls.__qualname__}: capacity, dim and text_bytes must be >= 1, "
                                 f"got {capacity}, {dim}, {text_bytes}")
            cls.capacity, cls.dim, cls.text_bytes = int(capacity), int(dim), int(text_bytes)
            _put(cls, "text", Vector(np.uint8, cls.capacity * cls.text_bytes))
            _put(cls, "text_len", Vector(np.int32, cls.capacity))
            _put(cls, "tick", Vector(np.int64, cls.capacity, default=-1))
            _put(cls, "importance", Vector(np.float32, cls.capacity))
            _put(cls, "last_access", Vector(np.int64, cls.capacity, default=-1))
            _put(cls, "embedding", Vector(np.float16, cls.capacity * cls.dim))
        super().__init_subclass__(**kw)


class ShortTermMemory(ShortTermMemoryBase, capacity=8):
    """The last 8 observations: ``text_s``, ``tick [n, 8] int64`` (-1 empty),
    ``importance [n, 8] float32``, ``head [n] int32`` (the slot written next)."""


class LongTermMemory(LongTermMemoryBase, capacity=32, dim=384):
    """32 embedded memories: ``text [n, 32 * 256] uint8`` with ``text_len [n, 32] int32``,
    ``tick``/``last_access [n, 32] int64`` (-1 empty), ``importance [n, 32] float32``,
    ``embedding [n, 32 * 384] float16``."""


class Reflection(Component):
    """``pending [n] float32``: importance observed since the last reflection;
    ``last_tick [n] int64``: tick of the last reflection (-1 never); ``count [n] int32``."""

    pending = Scalar(np.float32)
    last_tick = Scalar(np.int64, default=-1)
    count = Scalar(np.int32)


class MemoryParams(Resource, name="socius.systems.memory.MemoryParams"):
    """Retrieval weights, decay, reflection schedule and the importance rater (saved in snapshots).

    ``decay`` is the recency factor per tick (``0 < decay <= 1``); ``top_k``
    memories are retrieved per agent. ``reflect_every`` (ticks, 0 = off) and
    ``reflect_threshold`` (accumulated importance, 0 = off) trigger
    reflection, which reads the ``reflect_memories`` most recent memories.
    ``importance`` is ``"rule"`` or ``"llm"``.
    """

    w_recency: float = 1.0
    w_importance: float = 1.0
    w_relevance: float = 1.0
    decay: float = 0.99
    top_k: int = 5
    reflect_every: int = 0
    reflect_threshold: float = 0.0
    reflect_memories: int = 8
    reflection_importance: float = 8.0
    importance: str = "rule"

    def __post_init__(self):
        for f in ("w_recency", "w_importance", "w_relevance", "reflect_threshold"):
            if not float(getattr(self, f)) >= 0:
                raise ValueError(f"MemoryParams.{f} must be >= 0, got {getattr(self, f)}")
        if not 0 < float(self.decay) <= 1:
            raise ValueError(f"MemoryParams.decay must be in (0, 1], got {self.decay}")
        for f in ("top_k", "reflect_memories"):
            if int(getattr(self, f)) < 1:
                raise ValueError(f"MemoryParams.{f} must be >= 1, got {getattr(self, f)}")
        if int(self.reflect_every) < 0:
            raise ValueError(f"MemoryParams.reflect_every must be >= 0, got {self.reflect_every}")
        if not 1 <= float(self.reflection_importance) <= 10:
            raise ValueError(f"MemoryParams.reflection_importance must be in [1, 10], got {self.reflection_importance}")
        if self.importance not in IMPORTANCE_MODES:
            raise ValueError(f"MemoryParams.importance must be one of {IMPORTANCE_MODES}, got {self.importance!r}")


def embedding_block(flat: np.ndarray, memory: type[LongTermMemoryBase]) -> np.ndarray:
    """``[n, k, dim]`` view of an ``embedding`` column ``[n, k * dim]`` (no copy)."""
    return np.asarray(flat).reshape(-1, memory.capacity, memory.dim)


__all__ = ["IMPORTANCE_MODES", "LongTermMemory", "LongTermMemoryBase", "MemoryParams", "Reflection", "ShortTermMemory",
           "ShortTermMemoryBase", "embedding_block"]
