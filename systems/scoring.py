"""Retrieval scores and top-k: which memories an agent recalls (Generative Agents, Park et al. 2023).

For each agent and each stored memory ``s``::

    score = w_recency · N(decay ** (now - last_access))
          + w_importance · N(importance / 10)
          + w_relevance · N(cos(query, embedding))

where ``N`` min-max normalises over that agent's stored memories (a constant
row normalises to 0.5). The top ``k`` slots by score (ties: lower slot first)
are returned. :func:`retrieval_scores` and :func:`top_slots` are the numpy
reference; :func:`score_top` does both in one numba pass from given relevance,
and :func:`relevance_top` fuses them with the relevance of
:mod:`socius.systems.relevance` into one streaming pass over the ``[n, k, dim]``
float16 block (each agent's slots read once, up to its last stored slot) —
what :func:`~socius.systems.retrieval.retrieve` runs. Weights and decay come
from :class:`~socius.components.memory.MemoryParams`. No per-agent Python loop.
"""
from __future__ import annotations

import numba
import numpy as np

from socius.components.memory import MemoryParams

from .relevance import CHUNK, check_block, dot


def _minmax(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    lo = np.where(valid, x, np.inf).min(axis=1, keepdims=True)
    hi = np.where(valid, x, -np.inf).max(axis=1, keepdims=True)
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.5)
    return np.where(valid, out, 0.0)


def retrieval_scores(rel: np.ndarray, tick: np.ndarray, importance: np.ndarray, last_access: np.ndarray,
                     now: int, params: MemoryParams) -> np.ndarray:
    """``[n, k] float64`` Generative-Agents scores (see module doc); ``-inf`` for empty slots."""
    valid = tick >= 0
    age = np.maximum(now - np.maximum(last_access, tick), 0).astype(np.float64)
    recency = np.power(float(params.decay), age)
    s = (params.w_recency * _minmax(recency, valid)
         + params.w_importance * _minmax(importance.astype(np.float64) / 10.0, valid)
         + params.w_relevance * _minmax(rel.astype(np.float64), valid))
    return np.where(valid, s, -np.inf)


def top_slots(scores: np.ndarray, k: int) -> np.ndarray:
    """``[n, k] int64`` slots by score descending, ties by lower slot; ``-1`` past the stored memories."""
    k = min(int(k), scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    ok = np.isfinite(np.take_along_axis(scores, order, axis=1))
    return np.where(ok, order, -1).astype(np.int64)


_POW_TABLE = 4096  # decay ** age for ages below this come from a table built once per call


@numba.njit(cache=True)
def _decay_table(now, decay):
    tab = np.empty(min(max(now, 0), _POW_TABLE - 1) + 1, np.float64)
    for a in range(tab.shape[0]):
        tab[a] = decay ** np.float64(a)
    return tab


@numba.njit(cache=True)
def _rank(i, r, rv, tick, importance, last_access, now, decay, tab, w_rec, w_imp, w_rel, rec, imp, sc,
          out_slots, out_scores):
    """Scores (module doc) and top-k of agent ``i`` (column row ``r``); ``rv[s]`` is its relevance
    for stored slots. Ties keep the lower slot first; ``-1`` / ``-inf`` past the stored memories.
    ``rec``, ``imp``, ``sc`` are scratch of length ``capacity``."""
    cap = tick.shape[1]
    kk = out_slots.shape[1]
    lo0, lo1, lo2 = np.inf, np.inf, np.inf
    hi0, hi1, hi2 = -np.inf, -np.inf, -np.inf
    any_valid = False
    for s in range(cap):
        t = tick[r, s]
        if t < 0:
            rec[s] = 0.0
            imp[s] = 0.0
            rv[s] = 0.0
            continue
        any_valid = True
        la = last_access[r, s]
        age = now - (la if la > t else t)
        age = age if age > 0 else 0
        x = tab[age] if age < tab.shape[0] else decay ** np.float64(age)
        rec[s] = x
        lo0 = min(lo0, x)
        hi0 = max(hi0, x)
        x = np.float64(importance[r, s]) / 10.0
        imp[s] = x
        lo1 = min(lo1, x)
        hi1 = max(hi1, x)
        x = rv[s]
        lo2 = min(lo2, x)
        hi2 = max(hi2, x)
    for j in range(kk):
        out_slots[i, j] = -1
        out_scores[i, j] = -np.inf
    if not any_valid:
        return
    # w * ((x - lo) / span) where span > 0, else w * 0.5, written branch-free (same arithmetic):
    # a constant term has span 1, mask 0, offset 0.5; (v * 1) + 0 == v exactly.
    sp0, sp1, sp2 = hi0 - lo0, hi1 - lo1, hi2 - lo2
    m0, m1, m2 = np.float64(sp0 > 0), np.float64(sp1 > 0), np.float64(sp2 > 0)
    c0, c1, c2 = 0.5 - 0.5 * m0, 0.5 - 0.5 * m1, 0.5 - 0.5 * m2
    sp0, sp1, sp2 = (sp0 if sp0 > 0 else 1.0), (sp1 if sp1 > 0 else 1.0), (sp2 if sp2 > 0 else 1.0)
    for s in range(cap):
        sc[s] = (w_rec * (((rec[s] - lo0) / sp0) * m0 + c0) + w_imp * (((imp[s] - lo1) / sp1) * m1 + c1)) \
            + w_rel * (((rv[s] - lo2) / sp2) * m2 + c2)
    count = 0
    for s in range(cap):
        if tick[r, s] < 0:
            continue
        x = sc[s]
        if count == kk and not x > out_scores[i, kk - 1]:
            continue
        pos = count if count < kk else kk - 1
        while pos > 0 and x > out_scores[i, pos - 1]:  # strict: ties keep the lower slot first
            out_scores[i, pos] = out_scores[i, pos - 1]
            out_slots[i, pos] = out_slots[i, pos - 1]
            pos -= 1
        out_scores[i, pos] = x
        out_slots[i, pos] = s
        if count < kk:
            count += 1


@numba.njit(parallel=True, cache=True)
def _score_top_kernel(rel, rows, tick, importance, last_access, now, decay, w_rec, w_imp, w_rel,
                      out_slots, out_scores):
    """:func:`retrieval_scores` + :func:`top_slots` per agent, from given relevance ``rel [n, k]``."""
    n, cap = rel.shape
    tab = _decay_table(now, decay)
    for c in numba.prange((n + CHUNK - 1) // CHUNK):
        rv = np.empty(cap, np.float64)
        rec = np.empty(cap, np.float64)
        imp = np.empty(cap, np.float64)
        sc = np.empty(cap, np.float64)
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            for s in range(cap):
                rv[s] = np.float64(rel[i, s])
            _rank(i, rows[i], rv, tick, importance, last_access, now, decay, tab, w_rec, w_imp, w_rel, rec, imp, sc,
                  out_slots, out_scores)


@numba.njit(parallel=True, cache=True)
def _retrieve_kernel(e16, q, d, rows, tick, importance, last_access, now, decay, w_rec, w_imp, w_rel,
                     out_slots, out_scores):
    """Relevance, scores and top-k in one pass over the block, by work items of :data:`CHUNK`
    agents: first the dot products of each agent's slots up to its last stored one (slots fill
    from 0, so that is usually all it has; the block streams without pauses), then
    :func:`_rank` for each agent."""
    n = rows.shape[0]
    cap = tick.shape[1]
    tab = _decay_table(now, decay)
    for c in numba.prange((n + CHUNK - 1) // CHUNK):
        rvs = np.zeros((CHUNK, cap), np.float64)
        rec = np.empty(cap, np.float64)
        imp = np.empty(cap, np.float64)
        sc = np.empty(cap, np.float64)
        lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
        for i in range(lo, hi):
            r = rows[i]
            row = e16[r]
            qi = q[i]
            end = cap  # dot products up to the last stored slot (empty ones below it are ignored)
            while end > 0 and tick[r, end - 1] < 0:
                end -= 1
            for s in range(end):
                rvs[i - lo, s] = np.float64(dot(row, s * d, qi, d))
        for i in range(lo, hi):
            _rank(i, rows[i], rvs[i - lo], tick, importance, last_access, now, decay, tab, w_rec, w_imp, w_rel,
                  rec, imp, sc, out_slots, out_scores)


def _weights(params: MemoryParams):
    return (float(params.decay), float(params.w_recency), float(params.w_importance), float(params.w_relevance))


def score_top(rel: np.ndarray, rows: np.ndarray, tick: np.ndarray, importance: np.ndarray,
              last_access: np.ndarray, now: int, params: MemoryParams, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(slots [n, k] int64, scores [n, k] float64)``: :func:`retrieval_scores` then :func:`top_slots`
    in one numba pass; ``tick``/``importance``/``last_access`` are whole columns read at ``rows``."""
    k = min(int(k), rel.shape[1])
    slots = np.empty((rel.shape[0], k), dtype=np.int64)
    scores = np.empty((rel.shape[0], k), dtype=np.float64)
    if rel.shape[0] and k:
        _score_top_kernel(np.ascontiguousarray(rel, dtype=np.float32), np.ascontiguousarray(rows, dtype=np.int64),
                          np.ascontiguousarray(tick), np.ascontiguousarray(importance),
                          np.ascontiguousarray(last_access), int(now), *_weights(params), slots, scores)
    return slots, scores


def relevance_top(block: np.ndarray, rows: np.ndarray, queries: np.ndarray, tick: np.ndarray,
                  importance: np.ndarray, last_access: np.ndarray, now: int, params: MemoryParams,
                  k: int, capacity: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~socius.systems.relevance.relevance` then :func:`score_top` fused into one streaming pass
    over the ``[N, k * dim]`` float16 block (what :func:`~socius.systems.retrieval.retrieve` runs);
    same results as the two steps."""
    block, q, rows = check_block(block, rows, queries, capacity, dim, "relevance_top")
    k = min(int(k), capacity)
    slots = np.empty((rows.shape[0], k), dtype=np.int64)
    scores = np.empty((rows.shape[0], k), dtype=np.float64)
    if rows.shape[0] and k:
        _retrieve_kernel(block.view(np.uint16), q, int(dim), rows, np.ascontiguousarray(tick),
                         np.ascontiguousarray(importance), np.ascontiguousarray(last_access), int(now),
                         *_weights(params), slots, scores)
    return slots, scores


__all__ = ["relevance_top", "retrieval_scores", "score_top", "top_slots"]
