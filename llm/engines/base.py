"""The batch interface every LLM engine implements.

An engine takes one :class:`RequestBatch` — many prompts that share one action
(so one :class:`Sampling` and one reply schema) — and returns one
:class:`CompletionBatch`. Both are columnar: no Python object per request.

Shapes (``r`` requests, ``c = n.sum()`` completions in total)::

    RequestBatch.prompts     [r]   StringDType   completion-style prompt text (or .prompts_arrow)
    RequestBatch.n           [r]   int32         completions wanted per request (>= 1)
    RequestBatch.seeds       [r]   int64         per-request sampling seed
    RequestBatch.entities    [c]   int64         the entity each completion is for
                                                 (request i owns entities[offsets[i]:offsets[i+1]])
    RequestBatch.offsets     [r+1] int64         ``concat([0], cumsum(n))``
    RequestBatch.adapters    [r]   StringDType   LoRA adapter name per request ("" = base model)

    CompletionBatch.texts         [c]   StringDType   reply text, aligned with RequestBatch.entities
    CompletionBatch.prompt_tokens [r]   int32
    CompletionBatch.output_tokens [c]   int32
    CompletionBatch.latency_s     [r]   float64       wall time from submit to reply
    CompletionBatch.errors        [r]   StringDType   "" when the request succeeded
    CompletionBatch.attempts      [r]   int32         tries per request (``None``: one each)

A request that fails after the engine's own retries is reported in ``errors``
(its texts are ""); ``generate`` itself raises only for misuse (bad batch) or
an engine that cannot start — a run is never killed by one failed request.
An error text starts with its kind (:func:`error_kinds`: ``timeout``,
``connection``, ``http 429``, ``http 503``, ...), so failures are counted by kind.

Progress: an engine whose calls take long may report it. The pipeline sets the
engine's ``progress`` attribute to a ``progress(done, total)`` callable for the
duration of one ``generate`` (``None`` otherwise; :func:`generate_reporting`);
the engine calls it, from any thread, as requests finish (``done`` of the
batch's ``total`` requests).

Batch algebra: :meth:`RequestBatch.take`/:meth:`~RequestBatch.slice` cut a batch,
:meth:`RequestBatch.concat`/:meth:`CompletionBatch.concat` join consecutive parts,
:meth:`CompletionBatch.put` scatters the answers to ``batch.take(rows)`` back.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs import STR
from socius.text.strings import arrow_strings


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters shared by every request of a batch.

    ``structured`` is ``None`` or exactly one of ``{"choice": [str, ...]}``,
    ``{"json": <JSON schema dict>}``, ``{"regex": str}``; engines that support
    constrained decoding enforce it, the others ignore it (the parser checks).
    """

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 64
    stop: tuple[str, ...] = ()
    structured: dict | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class RequestBatch:
    """One engine call's requests (see the module docstring for the columns).

    ``prompts`` may be given as a numpy string array or as an Arrow string
    array (what the decision pipeline renders); either form is converted to
    the other only when asked for (:attr:`prompts`, :attr:`prompts_arrow`),
    so an engine that reads Arrow — or only the prompts' lengths
    (:meth:`prompt_bytes`) — never pays for a numpy copy of long prompts.
    """

    def __init__(self, prompts, sampling: Sampling, model: str, n, seeds, entities, adapters=None,
                 tick: int = 0, prompt_hash=None):
        if isinstance(prompts, (pa.Array, pa.ChunkedArray)):
            arr = prompts.combine_chunks() if isinstance(prompts, pa.ChunkedArray) else prompts
            self._arrow = arr if arr.type == pa.large_string() else arr.cast(pa.large_string())
            self._np = None
            r = len(self._arrow)
        else:
            self._np = np.asarray(prompts, dtype=STR).reshape(-1)
            self._arrow = None
            r = self._np.shape[0]
        self.sampling, self.model, self.tick = sampling, model, int(tick)
        self.n = np.asarray(n, dtype=np.int32).reshape(-1)
        self.seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
        self.entities = np.asarray(entities, dtype=np.int64).reshape(-1)
        self._r = r
        if self.n.shape[0] != r or self.seeds.shape[0] != r:
            raise ValueError(f"RequestBatch: prompts, n and seeds must have one row per request ({r})")
        if r and self.n.min() < 1:
            raise ValueError("RequestBatch: n must be >= 1 for every request")
        self.offsets = np.zeros(r + 1, dtype=np.int64)
        np.cumsum(self.n, out=self.offsets[1:])
        if self.entities.shape[0] != self.offsets[-1]:
            raise ValueError(
                f"RequestBatch: entities has {self.entities.shape[0]} rows, n sums to {self.offsets[-1]}")
        if adapters is None:
            self.adapters = np.full(r, "", dtype=STR)
        else:
            self.adapters = np.asarray(adapters, dtype=STR)
            if self.adapters.shape[0] != r:
                raise ValueError("RequestBatch: adapters must have one row per request")
        self._hash = None if prompt_hash is None else np.asarray(prompt_hash, dtype=np.uint64).reshape(-1)
        if self._hash is not None and self._hash.shape[0] != r:
            raise ValueError("RequestBatch: prompt_hash must have one row per request")

    @property
    def prompts(self) -> np.ndarray:
        """``[r]`` StringDType prompts (converted from Arrow once, on first use)."""
        if self._np is None:
            self._np = np.asarray(self._arrow.to_numpy(zero_copy_only=False), dtype=STR)
        return self._np

    @property
    def prompts_arrow(self) -> pa.Array:
        """``[r]`` Arrow ``large_string`` prompts (converted from numpy once, on first use)."""
        if self._arrow is None:
            self._arrow = arrow_strings(self._np)
        return self._arrow

    def prompt_hash(self) -> np.ndarray:
        """``[r] uint64``: XXH64 of each prompt (:func:`~socius.text.hashing.hash_strings`), computed
        once — the decision pipeline hands over the hashes it deduplicated by."""
        if self._hash is None:
            from socius.text.hashing import hash_strings
            self._hash = hash_strings(self.prompts_arrow)
        return self._hash

    def prompt_bytes(self) -> np.ndarray:
        """``[r] int64``: UTF-8 bytes of each prompt (from Arrow offsets when the prompts came as Arrow)."""
        if self._arrow is not None:
            return pc.binary_length(self._arrow).to_numpy(zero_copy_only=False).astype(np.int64)
        return np.strings.str_len(np.strings.encode(self._np, "utf-8")).astype(np.int64)

    def take(self, rows) -> "RequestBatch":
        """The requests ``rows`` (their completions' entities follow)."""
        from socius.ecs.ragged import gather_index
        rows = np.asarray(rows, dtype=np.int64)
        ent = self.entities[gather_index(self.offsets, rows)[0]]
        prompts = self._arrow.take(pa.array(rows)) if self._arrow is not None else self._np[rows]
        return RequestBatch(prompts, self.sampling, self.model, self.n[rows], self.seeds[rows], ent,
                            self.adapters[rows], self.tick, None if self._hash is None else self._hash[rows])

    def slice(self, lo: int, hi: int) -> "RequestBatch":
        """The requests ``lo:hi`` (contiguous, no copy of the prompts)."""
        c0, c1 = self.offsets[lo], self.offsets[hi]
        prompts = self._arrow.slice(lo, hi - lo) if self._arrow is not None else self._np[lo:hi]
        return RequestBatch(prompts, self.sampling, self.model, self.n[lo:hi], self.seeds[lo:hi],
                            self.entities[c0:c1], self.adapters[lo:hi], self.tick,
                            None if self._hash is None else self._hash[lo:hi])

    @classmethod
    def concat(cls, parts: list["RequestBatch"], like: "RequestBatch") -> "RequestBatch":
        """One batch of consecutive ``parts`` (``like``: sampling, model and tick; itself when none)."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return like
        cat = np.concatenate
        return cls(pa.concat_arrays([p.prompts_arrow for p in parts]), like.sampling, like.model,
                   cat([p.n for p in parts]), cat([p.seeds for p in parts]), cat([p.entities for p in parts]),
                   cat([p.adapters for p in parts]), like.tick, cat([p.prompt_hash() for p in parts]))

    def with_entities(self, entities) -> "RequestBatch":
        """The same requests for other entity keys (same shapes)."""
        out = copy.copy(self)
        out.entities = np.asarray(entities, dtype=np.int64).reshape(-1)
        if out.entities.shape[0] != self.entities.shape[0]:
            raise ValueError("RequestBatch.with_entities: one entity per completion")
        return out

    def __len__(self) -> int:
        return self._r

    @property
    def completions(self) -> int:
        return int(self.offsets[-1])


@dataclass
class CompletionBatch:
    texts: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    latency_s: np.ndarray
    errors: np.ndarray
    attempts: np.ndarray | None = None

    @classmethod
    def empty_for(cls, batch: RequestBatch) -> "CompletionBatch":
        """A batch of the right shapes, every request marked as not yet answered."""
        r, c = len(batch), batch.completions
        return cls(
            texts=np.full(c, "", dtype=STR),
            prompt_tokens=np.zeros(r, dtype=np.int32),
            output_tokens=np.zeros(c, dtype=np.int32),
            latency_s=np.zeros(r, dtype=np.float64),
            errors=np.full(r, "", dtype=STR),
        )

    @classmethod
    def concat(cls, parts: list["CompletionBatch"], batch: RequestBatch | None = None) -> "CompletionBatch":
        """One batch of ``parts`` (answers to consecutive slices of one batch; ``batch``: the shapes
        of an empty one when there are no parts)."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls.empty_for(batch)
        attempts = None
        if any(p.attempts is not None for p in parts):
            attempts = np.concatenate([p.attempts if p.attempts is not None else np.ones(len(p.errors), np.int32)
                                       for p in parts])
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("texts", "prompt_tokens", "output_tokens", "latency_s", "errors")), attempts=attempts)

    def put(self, batch: RequestBatch, rows: np.ndarray, part: "CompletionBatch") -> None:
        """Scatter ``part`` (the answers to ``batch.take(rows)``) into this answer to ``batch``, in place."""
        from socius.ecs.ragged import gather_index
        rows = np.asarray(rows, dtype=np.int64)
        c_idx = gather_index(batch.offsets, rows)[0]
        self.texts[c_idx], self.output_tokens[c_idx] = part.texts, part.output_tokens
        self.prompt_tokens[rows], self.latency_s[rows], self.errors[rows] = (
            part.prompt_tokens, part.latency_s, part.errors)
        if part.attempts is not None:
            if self.attempts is None:
                self.attempts = np.ones(len(batch), np.int32)
            self.attempts[rows] = part.attempts

    @property
    def failed(self) -> np.ndarray:
        """``[r] bool``: requests that failed after retries."""
        return self.errors != ""

    @property
    def retries(self) -> int:
        """Tries beyond the first, over all requests (0 for an engine that does not retry)."""
        return 0 if self.attempts is None else int(self.attempts.sum()) - len(self.errors)


#: the kinds a failed request is counted under in ``decisions.parquet`` (``failed_<kind>``)
ERROR_KINDS = ("timeout", "connection", "http_429", "http_5xx", "http_4xx", "other")


def error_kinds(errors: np.ndarray) -> dict[str, int]:
    """``{kind: count}`` over :data:`ERROR_KINDS` of the failed requests in ``errors`` (``[r]``
    strings, ``""`` for success), by the kind each error text starts with."""
    e = np.asarray(errors, dtype=STR)
    failed = e != ""
    starts = np.strings.startswith
    kind = {"timeout": starts(e, "timeout"), "connection": starts(e, "connection"),
            "http_429": starts(e, "http 429"), "http_5xx": starts(e, "http 5")}
    kind["http_4xx"] = starts(e, "http 4") & ~kind["http_429"]
    known = np.zeros(e.shape[0], dtype=bool)
    for m in kind.values():
        known |= m
    kind["other"] = failed & ~known
    return {k: int((kind[k] & failed).sum()) for k in ERROR_KINDS}


@runtime_checkable
class Engine(Protocol):
    """A batch of requests in, a batch of completions out.

    LoRA adapters (optional; not part of the protocol check). An engine that serves them also has

    * ``adapters() -> dict[str, str]``: ``{name: folder}`` of the adapters requests can name now;
    * ``load_adapter(name, path) -> None``: load (or replace) adapter ``name`` from folder ``path``
      (a PEFT ``save_pretrained`` folder); a refusal raises :class:`~socius.errors.EngineSetupError`
      and leaves the engine's adapters as they were;
    * ``unload_adapter(name) -> None``: forget ``name`` (``KeyError`` when it is not loaded).

    ``generate`` then answers each request with the adapter in ``RequestBatch.adapters`` (``""``:
    the base model); a request naming an adapter that is not loaded fails alone (its ``errors``
    entry names the adapter). The :class:`~socius.llm.LLM` resource calls these
    (:meth:`~socius.llm.LLM.load_adapter`: every engine or one model's, all or nothing) and refuses
    an engine without them; the adapter per request comes from the askers' ``ModelChoice``
    (:func:`socius.systems.model_choice`, passed to ``decide(…, adapters=…)``). Engines that have
    them: mock, replay (records names only: the log answers), vllm, local, openai (through the
    server's LoRA endpoints).
    """

    name: str

    def generate(self, batch: RequestBatch) -> CompletionBatch: ...

    def close(self) -> None: ...


def generate_reporting(engine: Engine, batch: RequestBatch, report=None) -> CompletionBatch:
    """``engine.generate(batch)`` with ``engine.progress = report`` for this call (see "Progress" above;
    an engine without the attribute, or no ``report``: a plain call)."""
    if report is None or not hasattr(engine, "progress"):
        return engine.generate(batch)
    engine.progress = report
    try:
        return engine.generate(batch)
    finally:
        engine.progress = None


class EngineContractError(RuntimeError):
    """An engine returned a :class:`CompletionBatch` that does not fit the :class:`RequestBatch` it was
    sent (a bug in the engine, not a failed request: those are reported in ``errors``)."""


def check_completions(engine: "Engine", batch: RequestBatch, comp) -> CompletionBatch:
    """``comp`` if it fits ``batch`` (``texts``/``output_tokens``: one row per completion, the rest one
    per request, all 1-D numpy arrays), else :class:`EngineContractError` naming the engine and the column."""
    name = getattr(engine, "name", type(engine).__name__)
    r, c = len(batch), batch.completions

    def broken(what: str) -> EngineContractError:
        return EngineContractError(f"engine {name!r} broke the output contract: {what} "
                                   f"(the batch had {r} requests asking for {c} completions)")
    if not isinstance(comp, CompletionBatch):
        raise broken(f"generate returned {type(comp).__name__}, not a CompletionBatch")
    for col, rows, per in (("texts", c, "completion"), ("output_tokens", c, "completion"),
                           ("prompt_tokens", r, "request"), ("latency_s", r, "request"), ("errors", r, "request")):
        v = getattr(comp, col)
        if not isinstance(v, np.ndarray):
            raise broken(f"{col} is {'None' if v is None else type(v).__name__ + ', not a numpy array'}")
        if v.ndim != 1:
            raise broken(f"{col} has shape {v.shape}, expected ({rows},)")
        if v.shape[0] != rows:
            raise broken(f"{col} has {v.shape[0]} rows, expected {rows} (one per {per})")
    if comp.attempts is not None and (not isinstance(comp.attempts, np.ndarray) or comp.attempts.shape != (r,)):
        raise broken(f"attempts has shape {getattr(comp.attempts, 'shape', None)}, expected ({r},)")
    return comp
