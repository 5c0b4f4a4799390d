"""LLM decisions for many agents at once: render, deduplicate, call, parse, fall back, log.

A :class:`Decision` declares one action: its prompt :class:`~.templates.Template`,
its reply schema, its sampling and the fallback values used when a reply
cannot be had. A system calls :func:`decide` with the acting agents' IDs and
the template's fields (columns); it gets back one typed value per agent per
reply field, and an outcome code per agent::

    GUESS = Decision("guess", Template(...), JsonReply(number=Number(0, 100)),
                     fallback={"number": 50.0}, sampling=Sampling(temperature=0.7, max_tokens=24))
    res = decide(ctx.world, GUESS, v.ids, {"name": v[Profile].name, "round": ctx.tick + 1})
    v.set(Guess, value=res.values["number"])

The pipeline, all columnar (Arrow C++ kernels and numpy, no per-agent Python):

1. **render** prompts from columns;
2. **route** agents to engines by their model (mixture of LLMs) and adapter;
3. **deduplicate**: identical prompts become one request — greedy ones get a
   single completion fanned out to every agent that asked; sampled ones ask
   for as many completions as agents (one prefill, n samples), each agent
   taking its own, agents in ID order. Prompts are grouped by their 64-bit
   XXH64 hash (texts compared where a hash is shared); requests go in the
   order of their first agent's ID (the engine's prefix cache finds the
   shared template prefix whatever the order);
4. **call** the engine once per model with the whole batch; per-request seeds
   are derived from (seed, decision, tick, first agent's ID), so they never
   depend on batch order or size;
5. **parse** each distinct reply once; a reply that does not parse gets one
   **extraction** call (as AgentScope does), then the declared **fallback**;
   a request that failed in the engine also takes the fallback. Counts of
   ok / extracted / fallback / failed go to :class:`DecisionStats`;
6. **log** every request and reply (prompt hash, prompt, sampling, model,
   adapter, seed, completions, tokens, latency, error) to
   ``<run>/responses/tick-XXXXXXXX-<decision>.parquet`` (encoded and written
   on a background thread, see :class:`ResponseLog`). :class:`ReplayEngine`
   answers from such a log with no LLM at all and reaches the same state.
"""
from __future__ import annotations

import json
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from socius.ecs import SystemContext, World, world_of
from socius.ecs.ragged import gather_index
from socius.ecs.rng import EntityRng

from .engines.base import STR, CompletionBatch, Engine, RequestBatch, Sampling
from socius.text.hashing import hash_strings, strings_equal
from .replies import fill_fallback
from socius.text.strings import arrow_strings, repeat_string
from .templates import Template


class Outcome(IntEnum):
    OK = 0          # the reply parsed
    EXTRACTED = 1   # it did not; the extraction call's reply did
    FALLBACK = 2    # neither parsed: the declared fallback was used
    FAILED = 3      # the engine failed after its retries: fallback used


EXTRACT = Template(
    "Rewrite the answer below in exactly this format: {format}\n"
    "Answer: {reply}\n"
    "Formatted: ",
    untrusted=("reply",),
)


@dataclass(frozen=True)
class Decision:
    name: str
    template: Template
    schema: Any                       # JsonReply / ChoiceReply
    fallback: Mapping[str, Any]
    sampling: Sampling = Sampling()
    extract: Template | None = EXTRACT
    extract_sampling: Sampling = Sampling(temperature=0.0, max_tokens=48)
    format_hint: str = ""             # shown to the extraction call; default: the schema
    cache: bool = False               # reuse replies across runs from LLM.cache (exact key, see ResponseCache)

    def __post_init__(self):
        if not self.name or "/" in self.name:
            raise ValueError(f"Decision name must be non-empty without '/', got {self.name!r}")
        if self.sampling.structured is None and self.schema.structured() is not None:
            object.__setattr__(self, "sampling", _with_structured(self.sampling, self.schema.structured()))
        if self.extract_sampling.structured is None and self.schema.structured() is not None:
            object.__setattr__(self, "extract_sampling",
                               _with_structured(self.extract_sampling, self.schema.structured()))
        probe_cols = self.schema.parse(np.array([""], dtype=STR))[1]
        missing = set(probe_cols) - set(self.fallback)
        if missing:
            raise ValueError(f"Decision {self.name}: fallback lacks reply fields {sorted(missing)}")


def with_structured(s: Sampling, structured: dict | None) -> Sampling:
    """``s`` with its constrained-decoding spec replaced."""
    return _with_structured(s, structured)


def _with_structured(s: Sampling, structured: dict | None) -> Sampling:
    return Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, stop=s.stop,
                    structured=structured)


@dataclass
class DecisionResult:
    """Per acting agent (aligned with ``ids``): parsed values, outcome, reply text."""

    ids: np.ndarray
    values: dict[str, np.ndarray]
    outcome: np.ndarray      # [n] int8, see Outcome
    texts: pa.Array          # [n] raw reply text

    def count(self, outcome: Outcome) -> int:
        return int((self.outcome == outcome).sum())


@dataclass
class DecisionStats:
    """Per tick and decision: counts, tokens and time per stage (a plain resource: not saved)."""

    rows: list = field(default_factory=list)

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows) if self.rows else pa.table({})


_UNIQUE = ("prompt", "completions")


class ResponseLog:
    """Writes every request and reply, one Parquet file per (tick, decision, call), atomically.

    The table is built on the calling thread (no copies of prompts or replies); encoding and
    writing the file happen on one background thread, so they overlap the rest of the tick and
    the next engine call. At most ``pending`` files wait to be written: a caller that gets
    further ahead waits for the oldest. :meth:`flush` waits for them all and raises the first
    error a write met (a later :meth:`write` raises it too once that write has ended);
    ``World.save`` flushes before every snapshot and the runner closes the log at the end of a
    run, so a run resumed from a snapshot has every file up to it. ``background=False`` writes
    on the calling thread.
    """

    def __init__(self, directory: str | Path, background: bool = True, pending: int = 2):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="socius-log") if background else None
        self._pending: deque = deque()
        self._max_pending = max(1, int(pending))
        self.written_s = 0.0  # seconds spent encoding and writing files (on the writer thread)

    def _write_file(self, table: pa.Table, name: str) -> None:
        t0 = time.perf_counter()
        tmp = self.dir / f".{name}.tmp-{os.getpid()}"
        # prompts and replies are nearly all distinct: dictionary-encoding them is wasted work
        pq.write_table(table, tmp, use_dictionary=[c for c in table.column_names if c not in _UNIQUE])
        tmp.replace(self.dir / name)
        self.written_s += time.perf_counter() - t0  # one writer thread: no race

    def _reap(self, wait_for: int) -> None:
        """Collect finished writes (raising the first error); wait until at most ``wait_for`` remain."""
        while self._pending and (len(self._pending) > wait_for or self._pending[0].done()):
            self._pending.popleft().result()

    def flush(self) -> None:
        """Wait for every pending file; raises the first error a background write met."""
        self._reap(0)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def write(self, tick: int, decision: str, kind: str, batch: RequestBatch, comp: CompletionBatch,
              texts: pa.Array | None = None) -> None:
        """Log one engine call: ``batch`` and ``comp`` (``texts``: ``comp.texts`` in Arrow, if at hand)."""
        r = len(batch)
        texts = arrow_strings(comp.texts) if texts is None else texts
        completions = pa.LargeListArray.from_arrays(pa.array(batch.offsets), texts)
        out_tokens = pa.ListArray.from_arrays(pa.array(batch.offsets.astype(np.int32)), pa.array(comp.output_tokens))
        s = batch.sampling
        const = lambda v: repeat_string(v, r, pa.string())  # noqa: E731
        table = pa.table({
            "tick": pa.array(np.full(r, tick, np.int64)),
            "decision": const(decision),
            "kind": const(kind),
            "model": const(batch.model),
            "adapter": arrow_strings(batch.adapters).cast(pa.string()),
            "prompt_hash": pa.array(batch.prompt_hash().view(np.int64)),
            "prompt": batch.prompts_arrow,
            "n": pa.array(batch.n),
            "seed": pa.array(batch.seeds),
            "first_entity": pa.array(batch.entities[batch.offsets[:-1]]),
            "temperature": pa.array(np.full(r, s.temperature)),
            "top_p": pa.array(np.full(r, s.top_p)),
            "max_tokens": pa.array(np.full(r, s.max_tokens, np.int32)),
            "structured": const(json.dumps(s.structured, sort_keys=True)),
            "completions": completions,
            "prompt_tokens": pa.array(comp.prompt_tokens),
            "output_tokens": out_tokens,
            "latency_s": pa.array(comp.latency_s),
            "error": arrow_strings(comp.errors).cast(pa.string()),
        })
        name = f"tick-{tick:08d}-{decision}-{kind}.parquet"
        if self._pool is None:
            self._write_file(table, name)
            return
        self._reap(self._max_pending - 1)
        self._pending.append(self._pool.submit(self._write_file, table, name))


class ReplayEngine:
    """An engine that answers from a run's response log; a request it has not seen is an error."""

    def __init__(self, directory: str | Path, name: str = "replay"):
        self.name = name
        self.dir = Path(directory)
        files = sorted(self.dir.glob("tick-*.parquet"))
        if not files:
            raise FileNotFoundError(f"--replay: no response log in {self.dir}")
        t = pa.concat_tables([pq.read_table(f, columns=["tick", "model", "adapter", "prompt_hash", "n", "seed",
                                                        "completions", "error"]) for f in files])
        keys = zip(t.column("tick").to_pylist(), t.column("model").to_pylist(), t.column("adapter").to_pylist(),
                   t.column("prompt_hash").to_pylist(), t.column("n").to_pylist(), t.column("seed").to_pylist())
        self._index = {k: i for i, k in enumerate(keys)}
        self._completions = t.column("completions").combine_chunks()
        self._errors = t.column("error").to_numpy(zero_copy_only=False).astype(STR)
        self.requests = 0

    def generate(self, batch: RequestBatch) -> CompletionBatch:
        out = CompletionBatch.empty_for(batch)
        hashes = batch.prompt_hash().view(np.int64)
        rows = np.empty(len(batch), np.int64)
        for i in range(len(batch)):  # one dict lookup per request, not per agent
            key = (batch.tick, batch.model, str(batch.adapters[i]), int(hashes[i]), int(batch.n[i]),
                   int(batch.seeds[i]))
            j = self._index.get(key)
            if j is None:
                raise LookupError(f"replay: request not in the log (tick {batch.tick}, model {batch.model!r}, "
                                  f"prompt hash {hashes[i]:#x}); was the run made with other settings?")
            rows[i] = j
        sel = self._completions.take(pa.array(rows))
        out.texts = pa.concat_arrays([sel.flatten()]).to_numpy(zero_copy_only=False).astype(STR) \
            if batch.completions else out.texts
        out.errors = self._errors[rows]
        self.requests += len(batch)
        return out

    def close(self) -> None:
        pass


class ResponseCache:
    """Completions kept across runs, for decisions with ``cache=True`` (e.g. generated backgrounds).

    The key is exact — (decision, model, adapter, prompt hash, n, seed, sampling) — so a hit
    returns what the engine returned for the very same request, and a re-run
    with the same seed and config reaches the same state without the LLM.
    One Parquet file per decision under ``directory`` (written atomically).
    """

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self._mem: dict[str, dict] = {}

    def _load(self, decision: str) -> dict:
        if decision not in self._mem:
            f = self.dir / f"{decision}.parquet"
            table = {}
            if f.is_file():
                t = pq.read_table(f)
                for key, comps in zip(t.column("key").to_pylist(), t.column("completions").to_pylist()):
                    table[key] = comps
            self._mem[decision] = table
        return self._mem[decision]

    @staticmethod
    def keys(batch: RequestBatch) -> list[str]:
        hashes = batch.prompt_hash()
        s = json.dumps([batch.sampling.temperature, batch.sampling.top_p, batch.sampling.max_tokens,
                        list(batch.sampling.stop), batch.sampling.structured], sort_keys=True)
        return [f"{batch.model}|{a}|{h:016x}|{n}|{seed}|{s}"  # one string per request, not per agent
                for a, h, n, seed in zip(batch.adapters.tolist(), hashes.tolist(), batch.n.tolist(),
                                         batch.seeds.tolist())]

    def lookup(self, decision: str, keys: list[str]) -> list:
        table = self._load(decision)
        return [table.get(k) for k in keys]

    def store(self, decision: str, keys: list[str], completions: list[list[str]]) -> None:
        table = self._load(decision)
        table.update(zip(keys, completions))
        self.dir.mkdir(parents=True, exist_ok=True)
        f = self.dir / f"{decision}.parquet"
        tmp = self.dir / f".{decision}.parquet.tmp-{os.getpid()}"
        pq.write_table(pa.table({"key": list(table), "completions": list(table.values())}), tmp)
        tmp.replace(f)


class LLM:
    """The run's engines by model name, plus the response log (a plain resource: not saved).

    ``engines[""]`` (or ``default``) serves agents without a model choice.
    With ``replay`` set, every model is answered from that log instead.
    """

    def __init__(self, engines: Mapping[str, Engine], default: str | None = None,
                 log_dir: str | Path | None = None, replay: ReplayEngine | None = None,
                 cache: ResponseCache | None = None):
        if not engines and replay is None:
            raise ValueError("LLM: need at least one engine")
        self.engines = dict(engines)
        self.default = default if default is not None else (next(iter(self.engines)) if self.engines else "")
        self.log = ResponseLog(log_dir) if log_dir is not None else None
        self.replay = replay
        self.cache = cache

    def engine(self, model: str) -> Engine:
        if self.replay is not None:
            return self.replay
        name = model or self.default
        try:
            return self.engines[name]
        except KeyError:
            raise LookupError(f"no engine for model {name!r} (engines: {', '.join(self.engines)})") from None

    def flush(self) -> None:
        """Wait until the response log has written every call so far (before a snapshot)."""
        if self.log is not None:
            self.log.flush()

    def close(self) -> None:
        """Flush and close the response log, then close every engine (each even if one fails)."""
        try:
            if self.log is not None:
                self.log.close()
        finally:
            for e in self.engines.values():
                e.close()


def _seeds(seed: int, decision: str, kind: str, tick: int, first: np.ndarray) -> np.ndarray:
    return (EntityRng(seed, f"llm:{decision}:{kind}", tick).bits(first) >> np.uint64(1)).astype(np.int64)


@dataclass
class _Call:
    """One engine call's bookkeeping for the agents it served."""

    req_of: np.ndarray     # [n_m] request index of each agent (within this call)
    comp_of: np.ndarray    # [n_m] completion index of each agent
    comp: CompletionBatch
    texts: pa.Array        # comp.texts in Arrow


def _generate(engine: Engine, batch: RequestBatch, batch_size: int | None) -> CompletionBatch:
    """One engine call, or several of at most ``batch_size`` requests, joined."""
    if batch_size is None or len(batch) <= batch_size:
        return engine.generate(batch)
    parts = []
    for lo in range(0, len(batch), batch_size):
        hi = min(lo + batch_size, len(batch))
        parts.append(engine.generate(batch.slice(lo, hi)))
    return CompletionBatch(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                             ("texts", "prompt_tokens", "output_tokens", "latency_s", "errors")))


def _cached_generate(llm: LLM, decision: str, batch: RequestBatch, batch_size: int | None,
                     model: str) -> CompletionBatch:
    """Answer cache hits from ``llm.cache``; send only the misses to the engine, then store them."""
    keys = ResponseCache.keys(batch)
    found = llm.cache.lookup(decision, keys)
    miss = np.array([f is None for f in found], dtype=bool)
    out = CompletionBatch.empty_for(batch)
    if miss.any():
        rows = np.flatnonzero(miss)
        c_idx = gather_index(batch.offsets, rows)[0]
        sub = batch.take(rows)
        comp = _generate(llm.engine(model), sub, batch_size)
        out.texts[c_idx] = comp.texts
        out.output_tokens[c_idx] = comp.output_tokens
        out.prompt_tokens[rows] = comp.prompt_tokens
        out.latency_s[rows] = comp.latency_s
        out.errors[rows] = comp.errors
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


def _call(world: World, llm: LLM, decision: Decision, kind: str, sampling: Sampling, model: str,
          ids: np.ndarray, keys: pa.Array, prompts: pa.Array, adapters: np.ndarray | None,
          stats: dict, dedup: bool = True, batch_size: int | None = None) -> _Call:
    """Deduplicate ``prompts`` of agents ``ids`` (all on ``model``) and run one engine call.

    Requests go in the order of their first (lowest-ID) agent, so the batch does not depend on
    the order of storage; when every prompt is distinct and ``ids`` ascend, the rendered prompts
    are the batch as they are (no copy)."""
    t0 = time.perf_counter()
    n = ids.shape[0]
    hashes = hash_strings(keys)
    codes = _groups(keys, hashes) if dedup else np.arange(n)
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
                         prompt_hash=hashes[firsts_pos] if keys is prompts else None)
    t1 = time.perf_counter()
    if decision.cache and llm.cache is not None and llm.replay is None:
        comp = _cached_generate(llm, decision.name, batch, batch_size, model)
    else:
        comp = _generate(llm.engine(model), batch, batch_size)
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
        keys = sub_prompts
        if sub_adapters is not None and (sub_adapters != "").any():
            keys = pc.binary_join_element_wise(arrow_strings(sub_adapters), sub_prompts,
                                               pa.scalar("\x1f", pa.large_string()))
        call = _call(world, llm, decision, kind, sampling, model, ids[rows], keys, sub_prompts, sub_adapters, stats,
                     **opts)
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
    st = {k: 0 for k in ("requests", "completions", "prompt_tokens", "output_tokens")}
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
        hint = decision.format_hint or _format_hint(decision.schema)
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


def _format_hint(schema) -> str:
    s = schema.structured()
    if "choice" in s:
        return "one of: " + ", ".join(s["choice"])
    if "json" in s:
        props = s["json"]["properties"]
        example = {k: (0 if v.get("type") in ("number", "integer") else (v.get("enum") or ["..."])[0])
                   for k, v in props.items()}
        return json.dumps(example)
    return str(s)
