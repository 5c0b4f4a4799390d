"""Recalling memories: top-k retrieval for a batch of agents, and their texts as prompt lines.

:func:`retrieve` embeds the queries (or takes vectors), runs the fused
relevance + score + top-k pass of :func:`~socius.systems.scoring.relevance_top`
over the agents' long-term blocks, gathers the chosen texts in Arrow and, with
``touch=True``, sets the retrieved memories' ``last_access`` to ``now``. The
result is a :class:`Recall`; :meth:`Recall.joined` and :func:`join_lines`
make the ``"- ..."`` prompt lines. No per-agent Python loop.
"""
from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.components.memory import LongTermMemory, LongTermMemoryBase, MemoryParams
from socius.ecs import STR, world_of
from socius.text.strings import arrow_strings

from .memory import memory_embedder, numpy_texts, rows_of, slot_texts_arrow
from .scoring import relevance_top


def join_lines_arrow(flat: pa.Array, shape: tuple[int, int], bullet: str = "- ",
                     empty: str = "(nothing yet)") -> pa.Array:
    """``[n]`` Arrow strings: :func:`join_lines` of ``flat`` (``[n * j]`` texts, row-major) seen as ``[n, j]``."""
    n, j = shape
    has = pc.greater(pc.binary_length(flat), 0)
    per_row = np.asarray(has).reshape(n, j).sum(axis=1) if n * j else np.zeros(n, np.int64)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(per_row, out=offsets[1:])
    lines = pc.binary_join_element_wise(pa.scalar(bullet, pa.large_string()), flat.filter(has),
                                        pa.scalar("", pa.large_string()))
    out = pc.binary_join(pa.LargeListArray.from_arrays(pa.array(offsets), lines), pa.scalar("\n", pa.large_string()))
    return pc.if_else(pa.array(per_row > 0), out, pa.scalar(empty, pa.large_string()))


def join_lines(texts: np.ndarray, bullet: str = "- ", empty: str = "(nothing yet)") -> np.ndarray:
    """``[n] StringDType``: the non-empty entries of each row of ``texts [n, j]``, one ``bullet`` line each
    (``empty`` for a row with none)."""
    texts = np.asarray(texts, dtype=STR)
    return numpy_texts(join_lines_arrow(arrow_strings(texts.reshape(-1)), texts.shape, bullet, empty),
                       (texts.shape[0],))


class Recall:
    """Retrieved memories, aligned with ``ids``: ``slots [n, k] int64`` (-1 none),
    ``scores [n, k] float64`` (-inf none), and their texts ("" none), gathered when retrieved:
    ``texts_arrow`` (``[n * k]`` Arrow strings, row-major) and ``texts`` (``[n, k] StringDType``,
    converted from it on first use)."""

    def __init__(self, ids: np.ndarray, slots: np.ndarray, scores: np.ndarray, texts_arrow: pa.Array):
        self.ids, self.slots, self.scores, self.texts_arrow = ids, slots, scores, texts_arrow
        self._texts = None

    @property
    def texts(self) -> np.ndarray:
        if self._texts is None:
            self._texts = numpy_texts(self.texts_arrow, self.slots.shape)
        return self._texts

    def joined(self, bullet: str = "- ", empty: str = "(nothing yet)") -> np.ndarray:
        """``[n] StringDType``: one line per retrieved memory, best first, for prompts
        (:func:`join_lines` of :attr:`texts`, built in Arrow from :attr:`texts_arrow`)."""
        return numpy_texts(join_lines_arrow(self.texts_arrow, self.slots.shape, bullet, empty),
                           (self.slots.shape[0],))


def retrieve(ctx, ids, queries, k: int | None = None, memory: type[LongTermMemoryBase] = LongTermMemory,
             params: MemoryParams | None = None, touch: bool = True, now: int | None = None) -> Recall:
    """Top-``k`` memories of each agent in ``ids`` for ``queries``: ``[n]`` texts (embedded with
    the :class:`MemoryEmbedder` resource) or ``[n, dim]`` vectors. ``touch`` sets the
    retrieved memories' ``last_access`` to ``now`` (default: the world's tick).

    Resources: :class:`~socius.components.memory.MemoryParams` (unless ``params`` is given; the
    defaults when the world has none) and, for text queries, the
    :class:`~socius.systems.memory.MemoryEmbedder`."""
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    params = params or ctx.get_resource(MemoryParams) or MemoryParams()
    k = params.top_k if k is None else int(k)
    now = world.tick if now is None else int(now)
    q = np.asarray(queries)
    if q.ndim != 2 or q.dtype.kind not in "fiu":  # texts (an empty list counts as texts)
        q = memory_embedder(ctx).embed(np.asarray(queries, dtype=STR).reshape(-1))
    if q.shape != (ids.shape[0], memory.dim):
        raise ValueError(f"retrieve: need {ids.shape[0]} queries of dim {memory.dim}, got {q.shape}")
    view = world.query(memory)
    rows = rows_of(view, ids, memory)
    slots, top = relevance_top(view.get(memory, "embedding"), rows, q, view.get(memory, "tick"),
                               view.get(memory, "importance"), view.get(memory, "last_access"), now, params, k,
                               memory.capacity, memory.dim)
    texts = slot_texts_arrow(view, memory, rows, slots)
    if touch and ids.size:
        with view.write(memory, "last_access") as m:
            _touch_kernel(m.last_access, rows, slots, now)
    return Recall(ids, slots, top, texts)


@numba.njit(parallel=True, cache=True)
def _touch_kernel(last_access, rows, slots, now):
    """``last_access[rows[i], slots[i, c]] = now`` for every retrieved slot (``-1`` skipped)."""
    for i in numba.prange(rows.shape[0]):
        for c in range(slots.shape[1]):
            s = slots[i, c]
            if s >= 0:
                last_access[rows[i], s] = now


__all__ = ["Recall", "join_lines", "join_lines_arrow", "retrieve"]
