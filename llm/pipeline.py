"""The decision pipeline: render, deduplicate, call, parse, fall back, log — for many agents at once.

A system calls :func:`decide` with a :class:`~.decision.Decision`, the acting
agents' IDs and the template's fields (columns); it gets back one typed value
per agent per reply field, and an outcome code per agent::

    res = decide(ctx, GUESS, v.ids, {"name": v[Profile].name, "round": ctx.tick + 1})
    v.set(Guess, value=res.values["number"])

The pipeline, all columnar (Arrow C++ kernels and numpy, no per-agent Python):

1. **render** prompts from columns;
2. **route** agents to engines by their model (mixture of LLMs) and adapter;
3. **deduplicate**: identical prompts on the same adapter become one request —
   greedy ones get a single completion fanned out to every agent that asked;
   sampled ones ask for as many completions as agents (one prefill, n
   samples), each agent taking its own, agents in ID order. Prompts are
   grouped by their 64-bit XXH64 hash (texts compared where a hash is
   shared), then by adapter; requests go in the order of their first agent's
   ID (the engine's prefix cache finds the shared template prefix whatever
   the order);
4. **call** the engine once per model with the whole batch; per-request seeds
   are derived from (seed, decision, tick, first agent's ID), so they never
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
   :data:`~.engines.base.ERROR_KINDS`) and the engine's ``retries``;
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
from socius.ecs.rng import EntityRng
from socius.text.hashing import hash_strings, strings_equal
from socius.text.strings import arrow_strings

from .cache import ResponseCache
from .decision import Decision, DecisionResult, Outcome
from .engines.base import (ERROR_KINDS, CompletionBatch, Engine, RequestBatch, Sampling, check_completions,
                           error_kinds)
from .replies import fill_fallback
from .resource import LLM, DecisionStats


def _seeds(seed: int, decision: str, kind: str, tick: int, first: np.ndarray) -> np.ndarray:
    return (EntityRng(seed, f"llm:{decision}:{kind}", tick).bits(first) >> np.uint64(1)).astype(np.int64)


@dataclass
class _Call:
    """One engine call's bookkeeping for the agents it served."""

    req_of: np.ndarray     # [n_m] request index of each agent (within this call)
    comp_of: np.ndarray    # [n_m] completion index of each agent
    comp: CompletionBatch
    texts: pa.Array        # comp.texts in Arrow


def _generate(engine: Engine, batch: RequestBatch, batch_size: int | None, progress=None) -> CompletionBatch:
    """One engine call, or several of at most ``batch_size`` requests, joined; each checked against the
    output contract (:func:`check_completions`). ``progress(done, total)``: reported by the engine as
    requests finish (when it can, see :mod:`.engines.base`), and after each part."""
    r = len(batch)
    size = r if batch_size is None or r <= batch_size else batch_size
    parts = []
    for lo in range(0, max(r, 1), max(size, 1)):
        part = batch if size >= r else batch.slice(lo, min(lo + size, r))
        if progress is not None and hasattr(engine, "progress"):
            engine.progress = lambda done, total, lo=lo: progress(lo + done, r)
        try:
            parts.append(check_completions(engine, part, engine.generate(part)))
        finally:
            if progress is not None and hasattr(engine, "progress"):
                engine.progress = None
        if progress is not None:
            progress(min(lo + size, r), r)
    if len(parts) == 1:
        return parts[0]
    attempts = None
    if any(p.attempts is not None for p in parts):
        attempts = np.concatenate([p.attempts if p.attempts is not None else np.ones(len(p.errors), np.int32)
                                   for p in parts])
    return CompletionBatch(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                             ("texts", "prompt_tokens", "output_tokens", "latency_s", "errors")), attempts=attempts)


def _cached_generate(llm: LLM, decision: str, batch: RequestBatch, batch_size: int | None,
                     model: str, progress=None) -> CompletionBatch:
    """Answer cache hits from ``llm.cache``; send only the misses to the engine, then store them."""
    keys = ResponseCache.keys(batch)
    found = llm.cache.lookup(decision, keys)
    miss = np.array([f is None for f in found], dtype=bool)
    out = CompletionBatch.empty_for(batch)
    if miss.any():
        rows = np.flatnonzero(miss)
        c_idx = gather_index(batch.offsets, rows)[0]
        sub = batch.take(rows)
        comp = _generate(llm.engine(model), sub, batch_size, progress)
        out.texts[c_idx] = comp.texts
        out.output_tokens[c_idx] = comp.output_tokens
        out.prompt_tokens[rows] = comp.prompt_tokens
        out.latency_s[rows] = comp.latency_s
        out.errors[rows] = comp.errors
        if comp.attempts is not None:
            out.attempts = np.ones(len(batch), np.int32)
            out.attempts[rows] = comp.attempts
        ok = ~comp.failed
        texts = comp.texts.tolist()
        llm.cache.store(decision, [keys[r] for r, good in zip(rows, ok) if good],
                        [texts[sub.offsets[i]:sub.offsets[i + 1]] for i, good in enumerate(ok) if good])
    hits = np.flatnonzero(~miss)
    if hits.shape[0]:
        h_idx = gather_index(batch.offsets, hits)[0]
        out.texts[h_idx] = np.array([t for r in hits for t in found[r]], dtype=STR)
    return out


def _groups(keys: pa.Array, hashes: np.ndarray) -> np.ndarray:
    """``[n]`` group code of each key: equal keys, equal codes. Keys are grouped by their 64-bit
    hash; the keys of a group with several members are compared with its first one, and on a true
    hash collision (never seen in practice) Arrow's exact dictionary encoding decides."""
    _, first, codes = np.unique(hashes, return_index=True, return_inverse=True)
    codes = codes.reshape(-1)
    if first.shape[0] < codes.shape[0]:
        shared = np.flatnonzero(np.bincount(codes)[codes] > 1)
        if not strings_equal(keys, shared, first[codes[shared]]).all():
            codes = pc.dictionary_encode(keys).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes


def _merge_adapters(codes: np.ndarray, adapters: np.ndarray | None) -> np.ndarray:
    """``[n]`` group codes of (prompt group, adapter) pairs: identical prompts on different LoRA adapters
    are different requests (``adapters``: ``[n]`` names, ``""`` the base model)."""
    if adapters is None or not (adapters != "").any():
        return codes
    _, a_codes = np.unique(adapters, return_inverse=True)
    a_codes = a_codes.reshape(-1).astype(np.int64)
    return np.unique(codes * (int(a_codes.max()) + 1) + a_codes, return_inverse=True)[1].reshape(-1)


def _call(world: World, llm: LLM, decision: Decision, kind: str, sampling: Sampling, model: str,
          ids: np.ndarray, prompts: pa.Array, adapters: np.ndarray | None,
          stats: dict, dedup: bool = True, batch_size: int | None = None) -> _Call:
    """Deduplicate ``prompts`` of agents ``ids`` (all on ``model``; ``adapters``: ``[n]`` or None) and run
    one engine call.

    Agents share a request when their prompts and adapters are equal. Requests go in the order of
    their first (lowest-ID) agent, so the batch does not depend on the order of storage; when every
    request is distinct and ``ids`` ascend, the rendered prompts are the batch as they are (no copy)."""
    t0 = time.perf_counter()
    n = ids.shape[0]
    hashes = hash_strings(prompts)
    codes = _merge_adapters(_groups(prompts, hashes), adapters) if dedup else np.arange(n)
    g = int(codes.max()) + 1 if n else 0
    if g == n and (n < 2 or (np.diff(ids) > 0).all()):  # distinct prompts, IDs in order: as rendered
        req_of = agent_order = np.arange(n)
    else:
        by_group = np.lexsort((ids, codes))               # agents by group, ID order inside
        counts_g = np.bincount(codes, minlength=g)
        starts_g = np.zeros(g + 1, np.int64)
        np.cumsum(counts_g, out=starts_g[1:])
        rank = np.empty(g, np.int64)
        rank[np.argsort(ids[by_group[starts_g[:-1]]], kind="stable")] = np.arange(g)
        req_of = rank[codes]                              # [n] request of each agent
        agent_order = np.lexsort((ids, req_of))           # agents grouped by request, ID order inside
    counts = np.bincount(req_of, minlength=g)
    starts = np.zeros(counts.shape[0] + 1, np.int64)
    np.cumsum(counts, out=starts[1:])
    firsts_pos = agent_order[starts[:-1]]
    first = ids[firsts_pos]
    as_rendered = g == n and bool((firsts_pos == np.arange(n)).all())
    req_prompts = prompts if as_rendered else prompts.take(pa.array(firsts_pos))
    if sampling.greedy:
        n_req = np.ones(counts.shape[0], np.int32)
        entities = first
        comp_of = req_of
    else:
        n_req = counts.astype(np.int32)
        entities = ids[agent_order]
        comp_of = np.empty(n, np.int64)
        comp_of[agent_order] = np.arange(n)
    req_adapters = adapters[firsts_pos] if adapters is not None else None
    batch = RequestBatch(prompts=req_prompts, sampling=sampling,
                         model=model, n=n_req, seeds=_seeds(world.seed, decision.name, kind, world.tick, first),
                         entities=entities, adapters=req_adapters, tick=world.tick,
                         prompt_hash=hashes[firsts_pos])
    t1 = time.perf_counter()
    progress = None
    if llm.progress is not None:
        progress = lambda done, total: llm.progress(decision.name, kind, done, total)  # noqa: E731
    if decision.cache and llm.cache is not None and llm.replay is None:
        comp = _cached_generate(llm, decision.name, batch, batch_size, model, progress)
    else:
        comp = _generate(llm.engine(model), batch, batch_size, progress)
    t2 = time.perf_counter()
    texts = arrow_strings(comp.texts)
    if llm.log is not None:
        llm.log.write(world.tick, decision.name, kind, batch, comp, texts)
    t3 = time.perf_counter()
    stats["dedup_s"] += t1 - t0
    stats["engine_s"] += t2 - t1
    stats["log_s"] += t3 - t2
    stats["requests"] += len(batch)
    stats["completions"] += batch.completions
    stats["prompt_tokens"] += int(comp.prompt_tokens.sum())
    stats["output_tokens"] += int(comp.output_tokens.sum())
    stats["retries"] += comp.retries
    for k, v in error_kinds(comp.errors).items():
        stats[f"failed_{k}"] += v
    return _Call(req_of, comp_of, comp, texts)


def _run(world: World, llm: LLM, decision: Decision, kind: str, sampling: Sampling, ids: np.ndarray,
         prompts: pa.Array, models: np.ndarray | None, adapters: np.ndarray | None,
         stats: dict, **opts) -> tuple[pa.Array, np.ndarray]:
    """Texts ``[n]`` and failed mask ``[n]`` for agents ``ids`` asking ``prompts``, split by model."""
    n = ids.shape[0]
    if models is None:
        groups = [("", np.arange(n))]
    else:
        names, inv = np.unique(np.asarray(models, dtype=STR), return_inverse=True)
        groups = [(str(m), np.flatnonzero(inv == k)) for k, m in enumerate(names)]
    texts_parts, idx_parts, failed = [], [], np.zeros(n, dtype=bool)
    for model, rows in groups:
        sub_prompts = prompts if rows.shape[0] == n else prompts.take(pa.array(rows))
        sub_adapters = None if adapters is None else np.asarray(adapters, dtype=STR)[rows]
        call = _call(world, llm, decision, kind, sampling, model, ids[rows], sub_prompts, sub_adapters, stats, **opts)
        texts_parts.append(call.texts.take(pa.array(call.comp_of)))
        idx_parts.append(rows)
        failed[rows] = call.comp.failed[call.req_of]
    if len(groups) == 1:
        return texts_parts[0], failed
    rows = np.concatenate(idx_parts)
    inv = np.empty(n, np.int64)
    inv[rows] = np.arange(n)
    return pa.concat_arrays(texts_parts).take(pa.array(inv)), failed


def _parse_unique(schema, texts: pa.Array) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Parse each distinct text once and fan the result out."""
    enc = pc.dictionary_encode(texts)
    idx = enc.indices.to_numpy(zero_copy_only=False)
    ok_u, cols_u = schema.parse(enc.dictionary)
    return ok_u[idx], {k: v[idx] for k, v in cols_u.items()}


def decide(ctx: SystemContext | World, decision: Decision, ids: np.ndarray, fields: Mapping[str, Any],
           models: np.ndarray | None = None, adapters: np.ndarray | None = None, *,
           dedup: bool = True, batch_size: int | None = None) -> DecisionResult:
    """Ask the LLM for ``decision`` on behalf of agents ``ids`` (see the module docstring).

    ``ctx``: the calling system's context — the system must declare
    ``resources=(LLM,)`` — or, outside a tick, the world.

    ``fields``: the template's values (``[n]`` columns aligned with ``ids``, or
    scalars). ``models``/``adapters``: ``[n]`` engine and LoRA names per agent.
    ``dedup=False`` sends every agent its own request; ``batch_size`` caps
    the requests per engine call.
    """
    opts = {"dedup": dedup, "batch_size": batch_size}
    llm: LLM = ctx.resource(LLM)
    world = world_of(ctx)  # the pipeline's own bookkeeping (DecisionStats) comes with the LLM it declared
    stats_res = world.get_resource(DecisionStats)
    if stats_res is None:
        stats_res = DecisionStats()
        world.insert_resource(stats_res)
    ids = np.asarray(ids, dtype=np.int64)
    n = ids.shape[0]
    st = {k: 0 for k in ("requests", "completions", "prompt_tokens", "output_tokens", "retries")}
    st.update({f"failed_{k}": 0 for k in ERROR_KINDS})
    st.update({k: 0.0 for k in ("render_s", "dedup_s", "engine_s", "log_s", "parse_s", "extract_s")})
    t0 = time.perf_counter()
    prompts = decision.template.render_arrow(fields, n)
    st["render_s"] = time.perf_counter() - t0
    outcome = np.full(n, Outcome.OK, dtype=np.int8)
    if n == 0:
        texts = pa.array([], type=pa.large_string())
        ok, values = decision.schema.parse(np.zeros(0, dtype=STR))
        return DecisionResult(ids, values, outcome, texts)
    texts, failed = _run(world, llm, decision, "answer", decision.sampling, ids, prompts, models, adapters, st, **opts)
    t1 = time.perf_counter()
    ok, values = _parse_unique(decision.schema, texts)
    st["parse_s"] = time.perf_counter() - t1
    bad = ~ok & ~failed
    if bad.any() and decision.extract is not None:
        t2 = time.perf_counter()
        rows = np.flatnonzero(bad)
        hint = decision.hint()
        ex_prompts = decision.extract.render_arrow({"format": hint, "reply": texts.take(pa.array(rows))}, rows.shape[0])
        ex_texts, ex_failed = _run(world, llm, decision, "extract", decision.extract_sampling, ids[rows], ex_prompts,
                                   None if models is None else np.asarray(models, dtype=STR)[rows],
                                   None if adapters is None else np.asarray(adapters, dtype=STR)[rows], st, **opts)
        ex_ok, ex_vals = _parse_unique(decision.schema, ex_texts)
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
    stats_res.rows.append({"tick": world.tick, "decision": decision.name, "agents": n,
                           "ok": int(counts[0]), "extracted": int(counts[1]), "fallback": int(counts[2]),
                           "failed": int(counts[3]),
                           "dedup_ratio": (n / st["requests"]) if st["requests"] else 0.0, **st})
    return DecisionResult(ids, values, outcome, texts)

