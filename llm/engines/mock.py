"""The mock engine: deterministic scripted replies and a latency model.

For tests and for measuring the platform's own overhead, never as the only
path. Replies come from a *policy*, a vectorised function of the batch::

    policy(batch: RequestBatch, seed: int) -> np.ndarray   # [c] StringDType, one per completion

keyed by (seed, entity, tick) through the kernel's counter-based RNG, so a
reply never depends on batch order, batch size or deduplication. A greedy
request (temperature 0) stands for every agent that sent the same prompt,
and a greedy LLM's answer depends on the prompt alone, so for greedy
requests ``batch.entities`` holds a key derived from the prompt text (not
the first agent's ID): the reply then does not depend on which agents share
the prompt — nor on how many MPI ranks they are spread over. Latency
model: every request takes ``per_request_s`` plus ``per_output_token_s`` per
output token, all requests in flight at once (unlimited concurrency), so a
batch takes as long as its slowest request — AgentScope's dummy model that
sleeps 1 s per call. ``fail_rate`` makes that fraction of requests fail
(deterministically) to exercise the failure paths.

Streaming (:mod:`socius.llm.stream`): the mock takes streamed calls — up to
``concurrent_calls`` at once from different threads; every call's reply
depends on its requests alone, so chunks change nothing but the wall time,
and their latencies overlap as a server's would. It streams when asked
(``decide(stream=True)``) or given ``stream_chunk > 0``; by default it takes
whole batches: ``bench/dummy_latency.py --stream on,off`` measured no gain
beyond the noise, even for greedy calls with a 1-s latency model.

Adapters: :meth:`MockEngine.load_adapter` records ``name -> folder`` (the folder
must exist, as for a real engine; a failed load changes nothing), a request
naming an adapter that is not loaded fails alone with the name in its error,
and the policy sees each request's adapter in ``batch.adapters`` —
:func:`adapter_policy` answers each adapter's requests with its own policy, so
a switched cohort's replies really change.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from socius.ecs import STR
from socius.ecs.rng import EntityRng

from .base import CompletionBatch, RequestBatch
from .vllm import adapter_errors, adapter_folder

Policy = Callable[[RequestBatch, int], np.ndarray]


@dataclass(frozen=True)
class Latency:
    per_request_s: float = 0.0
    per_output_token_s: float = 0.0


def approx_tokens(texts: np.ndarray) -> np.ndarray:
    """A cheap token count (~4 characters per token, at least 1 for non-empty text)."""
    n = np.strings.str_len(texts)
    return np.where(n > 0, np.maximum(1, (n + 3) // 4), 0).astype(np.int32)


class MockEngine:
    """Deterministic replies from ``policy``; see the module docstring."""

    def __init__(self, policy: Policy, seed: int = 0, latency: Latency = Latency(), fail_rate: float = 0.0,
                 name: str = "mock", sleep: Callable[[float], None] = time.sleep, stream_chunk: int = 0,
                 concurrent_calls: int = 64):
        self.policy, self.seed, self.latency, self.fail_rate = policy, int(seed), latency, float(fail_rate)
        self.name = name
        self._sleep = sleep
        self.stream_chunk = int(stream_chunk)       # requests per streamed call; 0: whole batches unless asked
        self.concurrent_calls = int(concurrent_calls)
        self._lock = threading.Lock()   # the counters below, under concurrent calls
        self.calls = 0
        self.requests = 0
        self._adapters: dict[str, str] = {}
        self.loads = 0  # adapter loads so far (a reload of the same name counts again)

    def adapters(self) -> dict[str, str]:
        """``{name: folder}`` of the adapters requests can name now."""
        return dict(self._adapters)

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Record adapter ``name`` at ``path`` (replacing one of that name); a bad name or folder raises
        :class:`~socius.errors.EngineSetupError` and changes nothing."""
        self._adapters[name] = adapter_folder(name, path, self.name)
        self.loads += 1

    def unload_adapter(self, name: str) -> None:
        if name not in self._adapters:
            raise KeyError(f"{self.name}: no adapter {name!r} loaded (loaded: {sorted(self._adapters)})")
        del self._adapters[name]

    def generate(self, batch: RequestBatch) -> CompletionBatch:
        t0 = time.perf_counter()
        out = CompletionBatch.empty_for(batch)
        with self._lock:
            self.calls += 1
            self.requests += len(batch)
        if len(batch) == 0:
            return out
        asked = batch
        if batch.sampling.greedy:  # the prompt decides, not which agent happened to ask first
            asked = batch.with_entities((batch.prompt_hash() >> np.uint64(2)).astype(np.int64))
        texts = np.asarray(self.policy(asked, self.seed), dtype=STR)
        if texts.shape != (batch.completions,):
            raise ValueError(f"mock policy returned {texts.shape[0]} replies for {batch.completions} completions")
        unknown = adapter_errors(batch.adapters, self._adapters)
        if (unknown != "").any():  # a request on an adapter that is not loaded fails alone
            out.errors = unknown
            texts = np.where(np.repeat(unknown != "", batch.n), "", texts).astype(STR)
        out.texts = texts
        out.output_tokens = approx_tokens(texts)
        b = batch.prompt_bytes()
        out.prompt_tokens = np.where(b > 0, np.maximum(1, (b + 3) // 4), 0).astype(np.int32)
        if self.fail_rate > 0:
            first = asked.entities[batch.offsets[:-1]]
            failed = EntityRng(self.seed, "mock:fail", batch.tick).random(first) < self.fail_rate
            out.errors = np.where(failed & (out.errors == ""), "mock: injected failure", out.errors).astype(STR)
            out.texts = np.where(np.repeat(failed, batch.n), "", out.texts).astype(STR)
        wait = self.latency.per_request_s + self.latency.per_output_token_s * float(out.output_tokens.max(initial=0))
        if wait > 0:
            self._sleep(wait)
        out.latency_s[:] = time.perf_counter() - t0
        return out

    def close(self) -> None:
        pass


def number_policy(low: float, high: float, key: str = "number", integer: bool = True,
                  stream: str = "mock:number") -> Policy:
    """Replies ``{"<key>": x}`` with x uniform in [low, high] per (seed, entity, tick)."""

    def policy(batch: RequestBatch, seed: int) -> np.ndarray:
        u = EntityRng(seed, stream, batch.tick).random(batch.entities)
        x = low + u * (high - low)
        vals = np.floor(x).astype(np.int64).astype(STR) if integer else np.round(x, 2).astype(STR)
        return np.strings.add(np.strings.add(f'{{"{key}": ', vals), "}")

    return policy


def choice_policy(options: list[str], weights: list[float] | None = None, key: str | None = None,
                  stream: str = "mock:choice") -> Policy:
    """Replies one of ``options`` (or ``{"<key>": "<option>"}``) per (seed, entity, tick)."""
    opts = np.array([f'{{"{key}": "{o}"}}' if key else o for o in options], dtype=STR)
    w = np.ones(len(options)) if weights is None else np.asarray(weights, dtype=np.float64)

    def policy(batch: RequestBatch, seed: int) -> np.ndarray:
        return opts[EntityRng(seed, stream, batch.tick).choice(batch.entities, w)]

    return policy


def echo_policy(batch: RequestBatch, seed: int) -> np.ndarray:
    """Replies with each request's prompt (for tests of routing and fan-out)."""
    return np.repeat(batch.prompts, batch.n)


def adapter_policy(policies: Mapping[str, Policy], base: Policy) -> Policy:
    """A policy that answers each adapter's requests with ``policies[adapter]`` and the rest
    (the base model, ``""``, or an adapter not listed) with ``base``, each on its own sub-batch."""
    from socius.ecs.ragged import gather_index

    def policy(batch: RequestBatch, seed: int) -> np.ndarray:
        names = batch.adapters
        if not (names != "").any():
            return np.asarray(base(batch, seed), dtype=STR)
        out = np.full(batch.completions, "", dtype=STR)
        which = np.where(np.isin(names, np.array(list(policies), dtype=STR)), names, "")
        for u in np.unique(which).tolist():
            rows = np.flatnonzero(which == u)
            fn = policies[u] if u else base
            out[gather_index(batch.offsets, rows)[0]] = np.asarray(fn(batch.take(rows), seed), dtype=STR)
        return out

    return policy
