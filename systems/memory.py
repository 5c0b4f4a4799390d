"""Memory for many agents at once: store, rate, evict, retrieve, reflect.

The components are in :mod:`socius.components.memory`; this module is what
systems call, always with whole batches of agents (``ids [n]``), never one
agent at a time::

    world.insert_resource(MemoryParams(top_k=5))
    world.insert_resource(MemoryEmbedder(make_embedder("hashing")))
    memorize(world, ids, texts)                    # rate, embed, store (long- and short-term)
    recall = retrieve(world, ids, query_texts)     # top-k per agent
    prompt_memories = recall.joined()              # [n] StringDType, one "- ..." line per memory

**Retrieval** (Generative Agents, Park et al. 2023): for each agent and each
stored memory ``s``::

    score = w_recency · N(decay ** (now - last_access))
          + w_importance · N(importance / 10)
          + w_relevance · N(cos(query, embedding))

where ``N`` min-max normalises over that agent's stored memories (a constant
row normalises to 0.5). The top ``k`` slots by score (ties: lower slot first)
are returned; with ``touch=True`` their ``last_access`` becomes ``now``.
Relevance, scores and top-k for all acting agents are one parallel numba pass
over the ``[n, k, dim]`` float16 block (:func:`relevance_top`): each agent's
slots are streamed once (up to its last stored slot), converted fp16 ->
fp32 exactly (in hardware where the CPU has it) and dotted with the query in
explicit 64-lane vector code; the lanes are summed in a fixed order, so
results are the same on every machine and for any ``NUMBA_NUM_THREADS``.
No per-agent Python loop.

**Eviction**: a new memory goes to the lowest empty slot; when the block is
full it replaces the slot with the lowest retention
``importance · decay ** (now - last_access)`` (ties: lower slot), so old,
unimportant, unused memories go first. Capacity never changes.

**Importance** (1–10) is rated by a rule (:func:`rule_importance`) or by the
LLM (:data:`IMPORTANCE`, through :func:`~socius.llm.decide`),
chosen by ``MemoryParams.importance``.

**Reflection**: an agent reflects when ``reflect_every`` ticks passed since
its last reflection, or when the importance it accumulated reaches
``reflect_threshold``. All reflecting agents go in one batched
:data:`REFLECT` decision; each summary is stored back as a memory of
importance ``reflection_importance``.
"""
from __future__ import annotations

import platform
from llvmlite import binding as llvm_binding, ir
import numba
from numba.core import cgutils, types
from numba.extending import intrinsic
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.components.memory import LongTermMemory, LongTermMemoryBase, Reflection, ShortTermMemory, \
    ShortTermMemoryBase
from socius.components.profile import Profile
from socius.ecs import Resource, system, world_of
from socius.ecs.errors import MissingComponentError
from socius.ecs.rng import EntityRng

from socius.llm.pipeline import Decision, decide
from socius.llm.engines.base import RequestBatch, Sampling
from socius.llm.replies import JsonReply, Number, TextReply
from socius.text.strings import arrow_strings, encode_fixed, gather_fixed
from socius.llm.templates import Template

STR = np.dtypes.StringDType()
IMPORTANCE_MODES = ("rule", "llm")


class MemoryParams(Resource):
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


class MemoryEmbedder:
    """The run's text embedder (a plain resource: not saved). ``embedder.dim`` must match the memory's ``dim``."""

    def __init__(self, embedder):
        self.embedder = embedder

    def embed(self, texts) -> np.ndarray:
        return self.embedder.embed(texts)


# ---------------------------------------------------------------------------------------------- prompts

IMPORTANCE = Decision(
    "memory_importance",
    Template(
        "On the scale of 1 to 10, where 1 is purely mundane (e.g., brushing teeth, making bed) and 10 is "
        "extremely poignant (e.g., a break up, college acceptance), rate the likely poignancy of the "
        "following piece of memory.\n"
        "Memory: {memory}\n"
        'Answer as JSON like {{"rating": 4}}.\n'
        "Answer:",
        untrusted=("memory",)),
    JsonReply(rating=Number(1, 10)),
    fallback={"rating": 3.0},
    sampling=Sampling(temperature=0.0, max_tokens=16),
)

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

_POIGNANT = ("died", "death", "dead", "married", "divorce", "fired", "lost", "hired", "won", "accident",
             "sick", "hospital", "born", "promoted", "broke", "love", "hate", "angry", "afraid", "crisis",
             "moved", "graduated", "arrested", "betrayed", "argument", "fight")


def rule_importance(texts) -> np.ndarray:
    """``[n] float32`` importance in [1, 10] by rule: 2 + 2 per poignant keyword + 1 per 20 words, capped.

    Deterministic and cheap; used when ``MemoryParams.importance == "rule"``.
    """
    t = np.strings.lower(np.asarray(texts, dtype=STR))
    padded = np.strings.add(np.strings.add(" ", t), " ")
    hits = np.zeros(t.shape[0], dtype=np.float32)
    for w in _POIGNANT:
        hits += (np.strings.find(padded, w) >= 0)
    words = np.strings.count(np.strings.strip(t), " ") + (np.strings.str_len(np.strings.strip(t)) > 0)
    return np.clip(2.0 + 2.0 * hits + words // 20, 1.0, 10.0).astype(np.float32)


def memory_policy(batch: RequestBatch, seed: int) -> np.ndarray:
    """Mock-engine policy for the memory decisions: ratings by :func:`rule_importance` of the quoted
    memory (±1, keyed by entity and tick), reflections as a sentence quoting the newest memory.
    Other prompts get ``""``. For tests and overhead runs only."""
    prompts = np.repeat(batch.prompts, batch.n)
    rng = EntityRng(seed, "mock:memory", batch.tick)
    u = rng.random(batch.entities)
    is_rating = np.strings.find(prompts, "rate the likely poignancy") >= 0
    is_reflect = np.strings.find(prompts, "high-level insight") >= 0
    mem = _between(prompts, "Memory: <<<quote>>>", "<<<end quote>>>\nAnswer as JSON")
    rating = np.clip(np.round(rule_importance(mem) + np.floor(u * 3) - 1), 1, 10).astype(np.int64)
    rating_reply = np.strings.add(np.strings.add('{"rating": ', rating.astype(STR)), "}")
    first = _between(prompts, "Recent memories:\n<<<quote>>>- ", "\n")
    first = np.strings.replace(first, "<<<end quote>>>", "")
    reflect_reply = np.strings.add("I keep coming back to this: ", first)
    out = np.where(is_rating, rating_reply, np.where(is_reflect, reflect_reply, ""))
    return out.astype(STR)


def _between(texts: np.ndarray, start: str, end: str) -> np.ndarray:
    i = np.strings.find(texts, start)
    tail = np.where(i >= 0, np.strings.slice(texts, np.maximum(i, 0) + len(start), None), "").astype(STR)
    j = np.strings.find(tail, end)
    return np.where(j >= 0, np.strings.slice(tail, 0, np.maximum(j, 0)), tail).astype(STR)


# ---------------------------------------------------------------------------------------------- kernels

LANES = 64  # fp32 lanes of the dot product (4 AVX-512 / 8 AVX2 registers): fixes the summation order


def _hardware_fp16() -> bool:
    """Whether numba's target converts fp16 -> fp32 in hardware (x86 needs F16C; other CPUs have it)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    feats = numba.core.config.CPU_FEATURES
    if feats is None:
        feats = "" if numba.core.config.CPU_NAME else llvm_binding.get_host_cpu_features().flatten()
    return "+f16c" in feats


_HW_FP16 = _hardware_fp16()


@intrinsic
def _dot_f16(typingctx, e, base, q, n):
    """``sum(fp32(e[base:base+n]) * q[:n])`` for ``n`` a multiple of :data:`LANES`, as explicit
    ``LANES``-wide vector code: lane ``t`` sums elements ``t, t + LANES, ...`` in order, then the lanes
    add as a fixed pairwise tree. fp16 -> fp32 is exact: the hardware conversion where the CPU has
    one, else bit shifts and one exact scaling (the same values for all finite inputs). The vector
    width is part of the IR, so the result does not depend on the CPU's SIMD width."""
    if not (isinstance(e, types.Array) and e.dtype == types.uint16 and isinstance(q, types.Array)
            and q.dtype == types.float32 and e.layout == "C" and q.layout == "C"):
        return None
    sig = types.float32(e, types.intp, q, types.intp)

    def codegen(context, builder, signature, args):
        ea = context.make_array(signature.args[0])(context, builder, args[0])
        qa = context.make_array(signature.args[2])(context, builder, args[2])
        i16, i32, f32 = ir.IntType(16), ir.IntType(32), ir.FloatType()
        vi16, vi32, vf = ir.VectorType(i16, LANES), ir.VectorType(i32, LANES), ir.VectorType(f32, LANES)
        vh = ir.VectorType(ir.HalfType(), LANES)
        start = builder.gep(ea.data, [args[1]], source_etype=i16)
        acc = cgutils.alloca_once_value(builder, ir.Constant(vf, None))
        nvec = builder.sdiv(args[3], ir.Constant(args[3].type, LANES))
        with cgutils.for_range(builder, nvec) as loop:
            off = builder.mul(loop.index, ir.Constant(loop.index.type, LANES))
            raw = builder.load(builder.gep(start, [off], source_etype=i16), typ=vi16, align=2)
            if _HW_FP16:
                x = builder.fpext(builder.bitcast(raw, vh), vf)
            else:
                h = builder.zext(raw, vi32)
                sign = builder.shl(builder.and_(h, ir.Constant(vi32, [0x8000] * LANES)),
                                   ir.Constant(vi32, [16] * LANES))
                mag = builder.shl(builder.and_(h, ir.Constant(vi32, [0x7FFF] * LANES)), ir.Constant(vi32, [13] * LANES))
                x = builder.fmul(builder.bitcast(builder.or_(sign, mag), vf), ir.Constant(vf, [2.0 ** 112] * LANES))
            y = builder.load(builder.gep(qa.data, [off], source_etype=f32), typ=vf, align=4)
            builder.store(builder.fadd(builder.load(acc, typ=vf), builder.fmul(x, y)), acc)
        v = builder.load(acc, typ=vf)
        width = LANES
        while width > 1:
            half = width // 2
            lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, half), list(range(half))))
            hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, half), list(range(half, width))))
            v = builder.fadd(lo, hi)
            width = half
        return builder.extract_element(v, ir.Constant(i32, 0))

    return sig, codegen


@intrinsic
def _f16_bits_to_f32(typingctx, h):
    """fp32 value of fp16 bits ``h`` (uint16): the same bit shifts and exact scaling as :func:`_dot_f16`."""
    if not (isinstance(h, types.Integer) and h.bitwidth == 16):
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        z = builder.zext(args[0], i32)
        sign = builder.shl(builder.and_(z, ir.Constant(i32, 0x8000)), ir.Constant(i32, 16))
        mag = builder.shl(builder.and_(z, ir.Constant(i32, 0x7FFF)), ir.Constant(i32, 13))
        f32 = ir.FloatType()
        return builder.fmul(builder.bitcast(builder.or_(sign, mag), f32), ir.Constant(f32, 2.0 ** 112))

    return types.float32(h), codegen


@numba.njit(cache=True)
def _dot(row, base, q, d):
    """``<fp32(row[base:base+d]), q>`` (row: fp16 bits as uint16): :func:`_dot_f16` plus a scalar tail."""
    dv = d - d % LANES
    acc = _dot_f16(row, base, q, dv)
    tail = np.float32(0)
    for j in range(dv, d):
        tail += _f16_bits_to_f32(row[base + j]) * q[j]
    return acc + tail


_CHUNK = 64  # agents per parallel work item (scratch is allocated once per item)


@numba.njit(parallel=True, cache=True)
def _relevance_kernel(e16, rows, q, k, d, out):
    """``out[i, s] = <fp32(e16[rows[i], s*d:(s+1)*d]), q[i]>``."""
    n = rows.shape[0]
    for c in numba.prange((n + _CHUNK - 1) // _CHUNK):
        for i in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            row = e16[rows[i]]
            qi = q[i]
            for s in range(k):
                out[i, s] = _dot(row, s * d, qi, d)


def relevance(block: np.ndarray, rows: np.ndarray, queries: np.ndarray, capacity: int, dim: int) -> np.ndarray:
    """``[n, k] float32`` inner products of ``queries [n, dim]`` with the stored
    embeddings of rows ``rows [n]`` of ``block [N, k * dim] float16`` (read in place, no copy)."""
    block, q, rows = _check_block(block, rows, queries, capacity, dim, "relevance")
    out = np.empty((rows.shape[0], capacity), dtype=np.float32)
    if rows.shape[0]:
        _relevance_kernel(block.view(np.uint16), rows, q, capacity, dim, out)
    return out


def _check_block(block, rows, queries, capacity, dim, who):
    block = np.ascontiguousarray(block)
    if block.dtype != np.float16 or block.ndim != 2 or block.shape[1] != capacity * dim:
        raise ValueError(f"{who}: block must be [N, {capacity * dim}] float16, got {block.dtype} {block.shape}")
    q = np.ascontiguousarray(queries, dtype=np.float32)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if q.shape != (rows.shape[0], dim):
        raise ValueError(f"{who}: queries must be [{rows.shape[0]}, {dim}], got {q.shape}")
    return block, q, rows


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
    for c in numba.prange((n + _CHUNK - 1) // _CHUNK):
        rv = np.empty(cap, np.float64)
        rec = np.empty(cap, np.float64)
        imp = np.empty(cap, np.float64)
        sc = np.empty(cap, np.float64)
        for i in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            for s in range(cap):
                rv[s] = np.float64(rel[i, s])
            _rank(i, rows[i], rv, tick, importance, last_access, now, decay, tab, w_rec, w_imp, w_rel, rec, imp, sc,
                  out_slots, out_scores)


@numba.njit(parallel=True, cache=True)
def _retrieve_kernel(e16, q, d, rows, tick, importance, last_access, now, decay, w_rec, w_imp, w_rel,
                     out_slots, out_scores):
    """Relevance, scores and top-k in one pass over the block, by work items of :data:`_CHUNK`
    agents: first the dot products of each agent's slots up to its last stored one (slots fill
    from 0, so that is usually all it has; the block streams without pauses), then
    :func:`_rank` for each agent."""
    n = rows.shape[0]
    cap = tick.shape[1]
    tab = _decay_table(now, decay)
    for c in numba.prange((n + _CHUNK - 1) // _CHUNK):
        rvs = np.zeros((_CHUNK, cap), np.float64)
        rec = np.empty(cap, np.float64)
        imp = np.empty(cap, np.float64)
        sc = np.empty(cap, np.float64)
        lo, hi = c * _CHUNK, min(n, (c + 1) * _CHUNK)
        for i in range(lo, hi):
            r = rows[i]
            row = e16[r]
            qi = q[i]
            end = cap  # dot products up to the last stored slot (empty ones below it are ignored)
            while end > 0 and tick[r, end - 1] < 0:
                end -= 1
            for s in range(end):
                rvs[i - lo, s] = np.float64(_dot(row, s * d, qi, d))
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
    """:func:`relevance` then :func:`score_top` fused into one streaming pass over the ``[N, k * dim]``
    float16 block (what :func:`retrieve` runs); same results as the two steps."""
    block, q, rows = _check_block(block, rows, queries, capacity, dim, "relevance_top")
    k = min(int(k), capacity)
    slots = np.empty((rows.shape[0], k), dtype=np.int64)
    scores = np.empty((rows.shape[0], k), dtype=np.float64)
    if rows.shape[0] and k:
        _retrieve_kernel(block.view(np.uint16), q, int(dim), rows, np.ascontiguousarray(tick),
                         np.ascontiguousarray(importance), np.ascontiguousarray(last_access), int(now),
                         *_weights(params), slots, scores)
    return slots, scores


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


def _rows(view, ids: np.ndarray, memory) -> np.ndarray:
    rows, found = view.rows_of(ids)
    if not found.all():
        raise MissingComponentError(f"entity {int(ids[~found][0])} has no {memory.__qualname__}")
    return rows


# ---------------------------------------------------------------------------------------------- storing

def remember(ctx, ids, texts, importance, embeddings, memory: type[LongTermMemoryBase] = LongTermMemory,
             now: int | None = None) -> np.ndarray:
    """Store one memory per row in the long-term block of ``ids`` (repeats allowed: stored in order).

    ``texts [n]``, ``importance [n]`` (1–10), ``embeddings [n, dim]``. Returns the slot of each
    row. Evicts by :func:`eviction_slots` when a block is full. A text longer than the
    component's ``text_bytes`` is stored cut at that many bytes, on a character boundary.
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
            rows = _rows(view, ids[part], memory)
            slot = eviction_slots(m.tick[rows], m.importance[rows], m.last_access[rows], now, world_decay(world))
            m.tick[rows, slot] = now
            m.last_access[rows, slot] = now
            m.importance[rows, slot] = imp[part]
            block[rows, slot] = emb[part].astype(np.float16)
            text[rows, slot] = encoded[part]
            m.text_len[rows, slot] = lengths[part]
            slots[part] = slot
    return slots


def world_decay(world) -> float:
    p = world.get_resource(MemoryParams)
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
            rows = _rows(view, ids[part], memory)
            slot = m.head[rows].astype(np.int64)
            m.tick[rows, slot] = now
            m.importance[rows, slot] = imp[part]
            for s in np.unique(slot).tolist():
                sel = slot == s
                getattr(m, f"text_{s}")[rows[sel]] = texts[part][sel]
            m.head[rows] = ((slot + 1) % k).astype(np.int32)


def _slot_texts_arrow(view, memory, rows: np.ndarray, slots: np.ndarray) -> pa.Array:
    """``[n * j]`` Arrow strings (row-major): long-term text of slot ``slots[i, c]`` of row ``rows[i]``."""
    return gather_fixed(view.get(memory, "text"), view.get(memory, "text_len"), rows, slots, memory.text_bytes)


def _numpy_texts(flat: pa.Array, shape) -> np.ndarray:
    return np.asarray(flat.to_numpy(zero_copy_only=False), dtype=STR).reshape(shape)


def _slot_texts(view, memory, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """``[n, j] StringDType``: text of slot ``slots[i, c]`` of row ``rows[i]`` ("" where slot is -1).

    Long-term memory: gathered from the fixed-width text block. Short-term memory (``String``
    columns per slot) as follows.

    Each string is copied once where ``rows`` is a run of consecutive rows (a whole tick's agents):
    one masked copy per slot from that slot's text column. Otherwise one stable sort groups the
    entries by slot and each slot's column is gathered at its rows, then scattered."""
    if issubclass(memory, LongTermMemoryBase):
        return _numpy_texts(_slot_texts_arrow(view, memory, rows, slots), slots.shape)
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
    rows = _rows(view, ids, memory)
    tick = view.get(memory, "tick")[rows]
    if issubclass(memory, ShortTermMemoryBase):
        head = view.get(memory, "head")[rows].astype(np.int64)
        order = (head[:, None] - 1 - np.arange(count)[None, :]) % memory.capacity
    else:
        slot_idx = np.broadcast_to(np.arange(memory.capacity), tick.shape)
        order = np.lexsort((slot_idx, -tick), axis=-1)[:, :count]
    slots = np.where(np.take_along_axis(tick, order, axis=1) >= 0, order, -1)
    return _slot_texts(view, memory, rows, slots)


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
    return _numpy_texts(join_lines_arrow(arrow_strings(texts.reshape(-1)), texts.shape, bullet, empty),
                        (texts.shape[0],))


# ---------------------------------------------------------------------------------------------- retrieval

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
            self._texts = _numpy_texts(self.texts_arrow, self.slots.shape)
        return self._texts

    def joined(self, bullet: str = "- ", empty: str = "(nothing yet)") -> np.ndarray:
        """``[n] StringDType``: one line per retrieved memory, best first, for prompts
        (:func:`join_lines` of :attr:`texts`, built in Arrow from :attr:`texts_arrow`)."""
        return _numpy_texts(join_lines_arrow(self.texts_arrow, self.slots.shape, bullet, empty),
                            (self.slots.shape[0],))


def _embedder(world):
    e = world.get_resource(MemoryEmbedder)
    if e is None:
        raise LookupError("no MemoryEmbedder resource: world.insert_resource(MemoryEmbedder(make_embedder(...)))")
    return e


def retrieve(ctx, ids, queries, k: int | None = None, memory: type[LongTermMemoryBase] = LongTermMemory,
             params: MemoryParams | None = None, touch: bool = True, now: int | None = None) -> Recall:
    """Top-``k`` memories of each agent in ``ids`` for ``queries``: ``[n]`` texts (embedded with
    the :class:`MemoryEmbedder` resource) or ``[n, dim]`` vectors. ``touch`` sets the
    retrieved memories' ``last_access`` to ``now`` (default: the world's tick)."""
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    params = params or world.get_resource(MemoryParams) or MemoryParams()
    k = params.top_k if k is None else int(k)
    now = world.tick if now is None else int(now)
    q = np.asarray(queries)
    if q.ndim != 2 or q.dtype.kind not in "fiu":  # texts (an empty list counts as texts)
        q = _embedder(world).embed(np.asarray(queries, dtype=STR).reshape(-1))
    if q.shape != (ids.shape[0], memory.dim):
        raise ValueError(f"retrieve: need {ids.shape[0]} queries of dim {memory.dim}, got {q.shape}")
    view = world.query(memory)
    rows = _rows(view, ids, memory)
    slots, top = relevance_top(view.get(memory, "embedding"), rows, q, view.get(memory, "tick"),
                               view.get(memory, "importance"), view.get(memory, "last_access"), now, params, k,
                               memory.capacity, memory.dim)
    texts = _slot_texts_arrow(view, memory, rows, slots)
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


def slot_texts(ctx, ids, memory: type[LongTermMemoryBase] = LongTermMemory) -> np.ndarray:
    """``[n, capacity] StringDType``: the text in every slot of ``ids`` ("" where empty)."""
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    view = world.query(memory)
    rows = _rows(view, ids, memory)
    tick = view.get(memory, "tick")[rows]
    slots = np.where(tick >= 0, np.arange(memory.capacity)[None, :], -1)
    return _slot_texts(view, memory, rows, slots)


# ---------------------------------------------------------------------------------------------- high level

def score_importance(ctx, ids, texts, params: MemoryParams | None = None) -> np.ndarray:
    """``[n] float32`` importance in [1, 10] by ``params.importance``: the rule, or the LLM via ``decide``."""
    world = world_of(ctx)
    params = params or world.get_resource(MemoryParams) or MemoryParams()
    texts = np.asarray(texts, dtype=STR).reshape(-1)
    if params.importance == "rule":
        return rule_importance(texts)
    res = decide(world, IMPORTANCE, np.asarray(ids, dtype=np.int64), {"memory": texts})
    return np.clip(res.values["rating"], 1, 10).astype(np.float32)


def memorize(ctx, ids, texts, importance=None, memory: type[LongTermMemoryBase] | None = LongTermMemory,
             short: type[ShortTermMemoryBase] | None = ShortTermMemory) -> np.ndarray:
    """Rate (unless ``importance`` is given), embed and store observations ``texts [n]`` of ``ids``:
    in ``memory`` and ``short`` where the agents have them (``None`` skips one), adding the
    importance to ``Reflection.pending`` where agents have :class:`Reflection`. Returns importance."""
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    texts = np.asarray(texts, dtype=STR).reshape(-1)
    imp = score_importance(world, ids, texts) if importance is None else \
        np.broadcast_to(np.asarray(importance, dtype=np.float32), ids.shape).copy()
    if memory is not None:
        has = world.has(ids, memory)
        if has.any():
            emb = _embedder(world).embed(texts[has])
            remember(world, ids[has], texts[has], imp[has], emb, memory)
    if short is not None:
        has = world.has(ids, short)
        if has.any():
            observe(world, ids[has], texts[has], imp[has], short)
    has = world.has(ids, Reflection)
    if has.any():
        view = world.query(Reflection)
        with view.write(Reflection, "pending") as r:
            np.add.at(r.pending, _rows(view, ids[has], Reflection), imp[has])
    return imp


def due_to_reflect(ctx, params: MemoryParams | None = None, now: int | None = None) -> np.ndarray:
    """IDs of agents with :class:`Reflection` whose reflection is due (see module doc)."""
    world = world_of(ctx)
    params = params or world.get_resource(MemoryParams) or MemoryParams()
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
    memories; each non-empty insight is stored as a memory. Returns the IDs that reflected."""
    world = world_of(ctx)
    params = params or world.get_resource(MemoryParams) or MemoryParams()
    ids = due_to_reflect(world, params) if ids is None else np.asarray(ids, dtype=np.int64).reshape(-1)
    ids = ids[world.has(ids, memory)] if ids.size else ids
    if ids.size == 0:
        return ids
    texts = recent(world, ids, params.reflect_memories, memory)
    ids = ids[np.strings.str_len(texts[:, 0]) > 0]
    texts = texts[np.strings.str_len(texts[:, 0]) > 0]
    if ids.size == 0:
        return ids
    who = _who(world, ids)
    res = decide(world, REFLECT, ids, {"who": who, "memories": join_lines(texts)})
    insight = np.asarray(res.values["text"], dtype=STR)
    ok = np.strings.str_len(insight) > 0
    if ok.any():
        emb = _embedder(world).embed(insight[ok])
        remember(world, ids[ok], insight[ok], np.float32(params.reflection_importance), emb, memory)
    has = world.has(ids, Reflection)
    if has.any():
        view = world.query(Reflection)
        rows = _rows(view, ids[has], Reflection)
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
    """A system that runs :func:`reflect` for every agent whose reflection is due, each tick."""
    from socius.llm.pipeline import LLM

    @system(phase=phase, reads=(Profile,), writes=(memory, Reflection),
            resources=(MemoryParams, MemoryEmbedder, LLM), name=f"reflect_{memory.__name__.lower()}")
    def reflect_memories(ctx):
        reflect(ctx, None, memory, ctx.resource(MemoryParams))

    return reflect_memories


__all__ = ["IMPORTANCE", "IMPORTANCE_MODES", "MemoryEmbedder", "MemoryParams", "REFLECT", "Recall",
           "due_to_reflect", "eviction_slots", "join_lines", "memorize", "memory_policy", "observe", "recent",
           "reflect", "reflect_system", "relevance", "relevance_top", "remember", "retrieval_scores", "retrieve",
           "rule_importance", "score_importance", "score_top", "slot_texts", "top_slots"]
