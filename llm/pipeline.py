"""The decision pipeline: render, deduplicate, call, parse, fall back, log — for many agents at once.

A system calls :func:`decide` with a :class:`~.decision.Decision`, the acting
agents' IDs and the template's fields (columns); it gets back one typed value
per agent per reply field, and an outcome code per agent::

    res = decide(ctx, GUESS, v.ids, {"name": v[Profile].name, "round": ctx.tick + 1})
    v.set(Guess, value=res.values["number"])

The pipeline, all columnar (Arrow C++ kernels and numpy, no per-agent Python):

1. **render** prompts from columns, once per distinct combination of field values (:mod:`.plan`);
2. **route** agents to engines by their model (mixture of LLMs) and adapter;
3. **deduplicate**: identical prompts on the same adapter become one request —
   greedy ones get a single completion fanned out to every agent that asked;
   sampled ones ask for as many completions as agents (one prefill, n
   samples), each agent taking its own, agents in ID order. Prompts are
   grouped by their 64-bit XXH64 hash (texts compared where a hash is
   shared), then by adapter; requests go in the order of their first agent's
   ID (the engine's prefix cache finds the shared template prefix whatever
   the order);
4. **call** the engine once per model with the whole batch — or, for an engine
   that streams (:mod:`.stream`), with the same requests in chunks, each sent
   when final, beside the rendering and parsing of the rest; per-request seeds
   are derived from (seed, decision, tick, first agent's ID) (:mod:`.plan`), so they never
   depend on batch order or size; a decision with ``cache=True`` takes hits
   from the :class:`~.cache.ResponseCache` first. What the engine returns
   must fit the batch (:func:`check_completions`), else
   :class:`EngineContractError` names the engine;
5. **parse** each distinct reply once; a reply that does not parse gets one
   **extraction** call (as AgentScope does), then the declared **fallback**;
   a request that failed in the engine (answer or extraction) takes the
   fallback and counts as failed, and is never sent to extraction. Counts of
   ok / extracted / fallback / failed agents go to :class:`~.resource.DecisionStats`,
   with the failed requests by kind (``failed_timeout``, ``failed_http_5xx``, ...:
   :data:`~.engines.base.ERROR_KINDS`), the engine's ``retries`` and the overlap:
   ``wall_s``, ``engine_s`` (a call out), ``wait_s`` (the pipeline blocked on it),
   ``our_s = wall_s - wait_s`` and ``overlap_s = engine_s - wait_s``; the stages
   ``render_s``, ``dedup_s``, ``log_s`` and ``parse_s`` are the answer call's,
   ``extract_s`` the whole extraction (its engine wait too, also in ``engine_s``/``wait_s``);
6. **log** every request and reply to the :class:`~.log.ResponseLog`
   (``<run>/responses/tick-XXXXXXXX-<decision>-<kind>.parquet``);
   :class:`~.engines.replay.ReplayEngine` answers from such a log with no LLM
   at all and reaches the same state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs import STR, SystemContext, World, world_of
from socius.ecs.ragged import gather_index
from socius.text.hashing import hash_strings
from socius.text.strings import arrow_strings

from .cache import ResponseCache
from .decision import Decision, DecisionResult, Outcome
from .engines.base import (ERROR_KINDS, CompletionBatch, Engine, RequestBatch, Sampling, check_completions, error_kinds,
                           generate_reporting)
from .plan import Asks, Prompts
from .replies import fill_fallback
from .resource import LLM, DecisionStats
from .stream import chunk_size, stream_call


@dataclass
class _Call:
    """One model's engine calls, for the agents they served."""

    req_of: np.ndarray     # [n_m] request index of each agent (within this call)
    comp_of: np.ndarray    # [n_m] completion index of each agent
    comp: CompletionBatch
    texts: pa.Array        # comp.texts in Arrow
    parsed: tuple | None = None   # (ok [c], {field: [c]}) per completion, when parsed as the replies came


def _generate(engine: Engine, batch: RequestBatch, batch_size: int | None, progress=None) -> CompletionBatch:
    """One engine call, or several of at most ``batch_size`` requests, joined; each checked against the
    output contract (:func:`check_completions`). ``progress(done, total)``: reported by the engine as
    requests finish (when it can, see :mod:`.engines.base`), and after each part."""
    r = len(batch)
    size = r if batch_size is None or r <= batch_size else batch_size
    parts = []
    for lo in range(0, max(r, 1), max(size, 1)):
        part = batch if size >= r else batch.slice(lo, min(lo + size, r))
        report = None if progress is None else (lambda done, total, lo=lo: progress(lo + done, r))
        parts.append(check_completions(engine, part, generate_reporting(engine, part, report)))
        if progress is not None:
            progress(min(lo + size, r), r)
    return CompletionBatch.concat(parts)


def _cached_generate(llm: LLM, decision: str, engine: Engine, batch: RequestBatch, batch_size: int | None,
                     progress=None) -> CompletionBatch:
    """Answer cache hits from ``llm.cache``; send only the misses to the engine, then store them."""
    keys = ResponseCache.keys(batch)
    found = llm.cache.lookup(decision, keys)
    miss = np.array([f is None for f in found], dtype=bool)
    out = CompletionBatch.empty_for(batch)
    if miss.any():
        rows = np.flatnonzero(miss)
        sub = batch.take(rows)
        comp = _generate(engine, sub, batch_size, progress)
        out.put(batch, rows, comp)
        ok = ~comp.failed
        texts = comp.texts.tolist()
        llm.cache.store(decision, [keys[r] for r, good in zip(rows, ok) if good],
                        [texts[sub.offsets[i]:sub.offsets[i + 1]] for i, good in enumerate(ok) if good])
    hits = np.flatnonzero(~miss)
    if hits.shape[0]:
        h_idx = gather_index(batch.offsets, hits)[0]
        out.texts[h_idx] = np.array([t for r in hits for t in found[r]], dtype=STR)
    return out


def _call(llm: LLM, engine: Engine, decision: Decision, asks: Asks, ids: np.ndarray, src: Prompts,
          rows: np.ndarray, adapters: np.ndarray | None, stats: dict, dedup: bool, batch_size: int | None,
          size: int, cached: bool, progress) -> _Call:
    """One model's requests for agents ``ids`` (at ``rows`` of ``src``) to ``engine``: streamed in calls
    of ``size`` (:func:`~.stream.stream_call`), or planned whole and sent in one call (``batch_size``
    parts; ``cached``: through ``llm.cache``), then logged."""
    t0, render0 = time.perf_counter(), src.render_s
    if size:
        s = stream_call(engine, asks, ids, src, rows, adapters, dedup, size,
                        lambda texts: _parse_unique(decision.schema, texts), progress)
        batch, comp, texts, wait, parse_s = s.batch, s.comp, s.texts, s.feed.wait_s, s.parse_s
        stats["engine_s"] += s.feed.engine_s
        stats["stream_calls"] += len(s.feed)
        out = _Call(s.req_of, s.comp_of, comp, texts, (s.ok, s.values))
    else:
        prompts, inverse = src.distinct(rows)
        batch, req_of, comp_of = asks.whole(ids, prompts, hash_strings(prompts), adapters, dedup, inverse)
        t1 = time.perf_counter()
        if cached:
            comp = _cached_generate(llm, decision.name, engine, batch, batch_size, progress)
        else:
            comp = _generate(engine, batch, batch_size, progress)
        wait, parse_s = time.perf_counter() - t1, 0.0
        stats["engine_s"] += wait
        texts = arrow_strings(comp.texts)
        out = _Call(req_of, comp_of, comp, texts)
    t2 = time.perf_counter()
    if llm.log is not None:
        llm.log.write(asks.tick, decision.name, asks.kind, batch, comp, texts)
    log_s = time.perf_counter() - t2
    stats["wait_s"] += wait
    if asks.kind == "answer":  # an extraction's own stages count in extract_s (the stage columns partition)
        stats["log_s"] += log_s
        stats["parse_s"] += parse_s
        stats["dedup_s"] += (t2 - t0) - wait - parse_s - (src.render_s - render0)
    for k, v in (("requests", len(batch)), ("completions", batch.completions), ("retries", comp.retries),
                 ("prompt_tokens", int(comp.prompt_tokens.sum())), ("output_tokens", int(comp.output_tokens.sum())),
                 *((f"failed_{k}", v) for k, v in error_kinds(comp.errors).items())):
        stats[k] += v
    return out


def _run(world: World, llm: LLM, decision: Decision, kind: str, sampling: Sampling, ids: np.ndarray,
         src: Prompts, models: np.ndarray | None, adapters: np.ndarray | None, stats: dict, dedup: bool = True,
         batch_size: int | None = None, stream: bool | None = None,
         stream_chunk: int | None = None) -> tuple[pa.Array, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Texts ``[n]``, failed mask ``[n]``, parse ok ``[n]`` and values for agents ``ids`` asking ``src``'s
    prompts, split by model; each model's engine streams or takes the whole batch (:func:`~.stream.chunk_size`)."""
    n = ids.shape[0]
    if models is None:
        groups = [("", np.arange(n))]
    else:
        names, inv = np.unique(np.asarray(models, dtype=STR), return_inverse=True)
        groups = [(str(m), np.flatnonzero(inv == k)) for k, m in enumerate(names)]
    texts_parts, failed, ok, values = [], np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), {}
    cached = decision.cache and llm.cache is not None and llm.replay is None
    progress = None
    if llm.progress is not None:
        progress = lambda done, total: llm.progress(decision.name, kind, done, total)  # noqa: E731
    for model, rows in groups:
        sub_adapters = None if adapters is None else np.asarray(adapters, dtype=STR)[rows]
        engine = llm.engine(model)
        size = chunk_size(engine, stream, stream_chunk, batch_size, cached)
        asks = Asks(world.seed, decision.name, kind, world.tick, model, sampling)
        call = _call(llm, engine, decision, asks, ids[rows], src, rows, sub_adapters, stats, dedup, batch_size,
                     size, cached, progress)
        texts = call.texts.take(pa.array(call.comp_of))
        if call.parsed is None:
            t0 = time.perf_counter()
            g_ok, g_vals = _parse_unique(decision.schema, texts)
            if kind == "answer":
                stats["parse_s"] += time.perf_counter() - t0
        else:
            g_ok, g_vals = call.parsed[0][call.comp_of], {k: v[call.comp_of] for k, v in call.parsed[1].items()}
        if len(groups) == 1:
            return texts, call.comp.failed[call.req_of], g_ok, g_vals
        texts_parts.append(texts)
        failed[rows] = call.comp.failed[call.req_of]
        ok[rows] = g_ok
        for k, v in g_vals.items():
            values.setdefault(k, np.empty(n, dtype=v.dtype))[rows] = v
    rows = np.concatenate([r for _, r in groups])
    inv = np.empty(n, np.int64)
    inv[rows] = np.arange(n)
    return pa.concat_arrays(texts_parts).take(pa.array(inv)), failed, ok, values


def _parse_unique(schema, texts: pa.Array) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Parse each distinct text once and fan the result out."""
    enc = pc.dictionary_encode(texts)
    idx = enc.indices.to_numpy(zero_copy_only=False)
    ok_u, cols_u = schema.parse(enc.dictionary)
    return ok_u[idx], {k: v[idx] for k, v in cols_u.items()}


def decide(ctx: SystemContext | World, decision: Decision, ids: np.ndarray, fields: Mapping[str, Any],
           models: np.ndarray | None = None, adapters: np.ndarray | None = None, *,
           dedup: bool = True, batch_size: int | None = None, stream: bool | None = None,
           stream_chunk: int | None = None) -> DecisionResult:
    """Ask the LLM for ``decision`` on behalf of agents ``ids`` (see the module docstring).

    ``ctx``: the calling system's context — the system must declare
    ``resources=(LLM,)`` — or, outside a tick, the world.

    ``fields``: the template's values (``[n]`` columns aligned with ``ids``, or
    scalars). ``models``/``adapters``: ``[n]`` engine and LoRA names per agent.
    ``dedup=False`` sends every agent its own request; ``batch_size`` caps
    the requests per engine call. ``stream``: None takes ``Decision.stream``
    (whose None streams into engines that declare ``stream_chunk``), False
    never, True always; ``stream_chunk`` sets the requests per streamed call
    (and streams unless ``stream`` is False; :mod:`.stream`). Streaming changes
    no request, reply or log row.
    """
    if stream is None:
        stream = decision.stream
    opts = {"dedup": dedup, "batch_size": batch_size, "stream": stream, "stream_chunk": stream_chunk}
    llm: LLM = ctx.resource(LLM)
    world = world_of(ctx)  # the pipeline's own bookkeeping (DecisionStats) comes with the LLM it declared
    stats_res = world.get_resource(DecisionStats)
    if stats_res is None:
        stats_res = DecisionStats()
        world.insert_resource(stats_res)
    ids = np.asarray(ids, dtype=np.int64)
    n = ids.shape[0]
    st = {k: 0 for k in ("requests", "completions", "prompt_tokens", "output_tokens", "retries", "stream_calls")}
    st.update({f"failed_{k}": 0 for k in ERROR_KINDS})
    st.update({k: 0.0 for k in ("render_s", "dedup_s", "engine_s", "log_s", "parse_s", "extract_s", "wait_s")})
    t_start = time.perf_counter()
    src = Prompts(decision.template, fields, n)
    outcome = np.full(n, Outcome.OK, dtype=np.int8)
    if n == 0:
        src.render(np.arange(0))  # the template still checks its fields
        texts = pa.array([], type=pa.large_string())
        ok, values = decision.schema.parse(np.zeros(0, dtype=STR))
        return DecisionResult(ids, values, outcome, texts)
    texts, failed, ok, values = _run(world, llm, decision, "answer", decision.sampling, ids, src, models, adapters,
                                     st, **opts)
    st["render_s"] = src.render_s
    bad = ~ok & ~failed
    if bad.any() and decision.extract is not None:
        t2 = time.perf_counter()
        rows = np.flatnonzero(bad)
        ex_src = Prompts(decision.extract, {"format": decision.hint(), "reply": texts.take(pa.array(rows))},
                          rows.shape[0])
        _, ex_failed, ex_ok, ex_vals = _run(world, llm, decision, "extract", decision.extract_sampling, ids[rows],
                                            ex_src, None if models is None else np.asarray(models, dtype=STR)[rows],
                                            None if adapters is None else np.asarray(adapters, dtype=STR)[rows],
                                            st, **opts)
        ex_ok &= ~ex_failed
        good = rows[ex_ok]
        for k in values:
            values[k][good] = ex_vals[k][ex_ok]
        outcome[good] = Outcome.EXTRACTED
        outcome[rows[~ex_ok]] = Outcome.FALLBACK
        failed[rows[ex_failed]] = True  # the engine failed the extraction call: a failure, counted as one
        st["extract_s"] = time.perf_counter() - t2
    elif bad.any():
        outcome[bad] = Outcome.FALLBACK
    outcome[failed] = Outcome.FAILED
    fill_fallback(decision.schema, values, outcome >= Outcome.FALLBACK, decision.fallback)
    counts = np.bincount(outcome, minlength=4)
    wall = time.perf_counter() - t_start
    stats_res.rows.append({"tick": world.tick, "decision": decision.name, "agents": n,
                           "ok": int(counts[0]), "extracted": int(counts[1]), "fallback": int(counts[2]),
                           "failed": int(counts[3]),
                           "dedup_ratio": (n / st["requests"]) if st["requests"] else 0.0, **st,
                           "wall_s": wall, "our_s": wall - st["wait_s"],
                           "overlap_s": max(0.0, st["engine_s"] - st["wait_s"])})
    return DecisionResult(ids, values, outcome, texts)
