"""Streaming into the engine: engine calls run beside the pipeline, so that one ``decide`` overlaps
the engine with its own rendering, deduplication, parsing and fan-out.

A streamed ``decide`` sends exactly the requests of the whole-batch path (:mod:`.plan`: same
prompts, ``n``, seeds, entities and order, deduplicated over the whole batch) but in *chunks*, each
as soon as its requests are final, and parses each chunk's replies while later ones are out:

* **greedy** decisions (and any with ``dedup=False``): agents are rendered in chunks in ID order. A
  request is final once its first (lowest-ID) agent has been rendered — later agents with the same
  prompt share its one completion — so the new requests of each rendered chunk go out at once, and
  the engine starts while later chunks are still being rendered. :class:`~.plan.RequestIndex` tells,
  exactly, which earlier request a prompt joins (64-bit hash, then the texts compared);
* **sampled** decisions with deduplication: a request asks for one completion per agent sharing
  its prompt, so none is final before every prompt is known. The whole batch is rendered and
  planned first, then sent in slices: the engine overlaps parsing, fan-out and the later slices.

:class:`Feed` runs the calls: through the engine's own ``submit(batch, progress) -> Future`` when it
has one (the ``openai`` engine's event loop), else on worker threads, one call at a time unless the
engine declares ``concurrent_calls > 1`` (the mock). Replies are taken back in submission order.

Engines opt in with a ``stream_chunk`` attribute (requests per streamed call; ``0`` or absent: one
call per batch unless a decision asks). None of ours declares it by default:
``bench/dummy_latency.py --stream on,off`` on a 2-core machine measured no gain beyond the noise
for the mock (even greedy, with a 1-s latency model) and a loss for the ``openai`` engine (its
event loop needs the GIL the pipeline holds), and the in-process vLLM engine schedules one big
``generate`` best. :func:`chunk_size` resolves the choice: ``decide(stream=True)`` (or, when
``decide`` is given no ``stream``, ``Decision(..., stream=True)``) streams any call, ``False`` none;
cached decisions never stream.

Timing: :attr:`Feed.engine_s` (a call out) less :attr:`Feed.wait_s` (the pipeline blocked) is the overlap.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from socius.text.hashing import hash_strings
from socius.text.strings import arrow_strings

from .engines.base import CompletionBatch, RequestBatch, check_completions, generate_reporting
from .plan import Asks, Prompts, RequestIndex

#: requests per streamed call for ``stream=True`` with an engine that declares no ``stream_chunk``
#: (``bench/dummy_latency.py --stream-chunk`` at 100k agents: 8k–32k calls cost less than 2k ones
#: for the mock; 4k and 16k about the same for the ``openai`` engine, 1k more)
DEFAULT_CHUNK = 8192


def chunk_size(engine, stream: bool | None, chunk: int | None, batch_size: int | None, cached: bool) -> int:
    """Requests per streamed call, or 0 for one whole-batch call (see the module docstring).

    ``stream``: None (the engine's default: its ``stream_chunk``), False (off) or True (on, with the
    engine's chunk or :data:`DEFAULT_CHUNK`); ``chunk`` sets the size (and streams unless ``stream``
    is False); ``batch_size`` caps it."""
    if stream is False or cached:
        return 0
    own = int(getattr(engine, "stream_chunk", 0) or 0)
    if stream is None and own <= 0 and not chunk:
        return 0
    size = int(chunk) if chunk else (own if own > 0 else DEFAULT_CHUNK)
    if size < 1:
        raise ValueError(f"stream_chunk must be >= 1, got {size}")
    return min(size, batch_size) if batch_size else size


class Feed:
    """One model's engine calls, running beside the caller, answered in the order they were put.

    ``progress(done, total)`` hears requests done over all calls; ``total`` is :attr:`total`, which
    the caller keeps up to date (an upper bound while requests are still being planned): reports
    stay below it until :meth:`close` sends the final one.
    """

    def __init__(self, engine, progress=None):
        self.engine, self.progress = engine, progress
        self._submit = getattr(engine, "submit", None)
        workers = max(1, int(getattr(engine, "concurrent_calls", 1) or 1))
        self._set_progress = workers == 1 and hasattr(engine, "progress")
        self._pool = None if self._submit is not None else ThreadPoolExecutor(workers, "socius-stream")
        self._calls: list[tuple[RequestBatch, Future]] = []
        self._spans: list[list[float]] = []     # [submitted, finished] per call
        self._done: list[int] = []              # requests done per call (as reported)
        self._lock = threading.Lock()
        self._next = 0                          # first call not yet taken back
        self.total = 0
        self.wait_s = 0.0

    def __len__(self) -> int:
        return len(self._calls)

    def put(self, batch: RequestBatch) -> None:
        """Start one call on ``batch`` (nothing for an empty batch)."""
        if len(batch) == 0:
            return
        k = len(self._calls)
        self._spans.append([time.perf_counter(), float("nan")])
        self._done.append(0)
        report = self._reporter(k) if self.progress is not None else None
        if self._submit is not None:
            fut = self._submit(batch, progress=report)
        else:
            fut = self._pool.submit(self._generate, batch, report)
        fut.add_done_callback(lambda f, k=k: self._finished(k, len(batch)))
        self._calls.append((batch, fut))

    def _generate(self, batch: RequestBatch, report) -> CompletionBatch:
        return generate_reporting(self.engine, batch, report if self._set_progress else None)

    def _reporter(self, k: int):
        def report(done: int, total: int) -> None:
            with self._lock:
                self._done[k] = int(done)
                got = sum(self._done)
                top = self.total
            if got < top:
                self.progress(got, top)
        return report

    def _finished(self, k: int, r: int) -> None:
        self._spans[k][1] = time.perf_counter()
        if self.progress is not None:
            self._reporter(k)(r, r)

    def ready(self, block: bool = False):
        """The calls answered so far, in order, as ``(batch, completions)``; ``block``: wait for all."""
        while self._next < len(self._calls):
            batch, fut = self._calls[self._next]
            if not block and not fut.done():
                return
            t0 = time.perf_counter()
            try:
                comp = fut.result()
            finally:
                self.wait_s += time.perf_counter() - t0
            self._next += 1
            yield batch, check_completions(self.engine, batch, comp)

    @property
    def engine_s(self) -> float:
        """Wall time during which at least one call was out (the union of the calls' spans)."""
        spans = sorted((a, b) for a, b in self._spans if b == b)
        total, end = 0.0, -np.inf
        for a, b in spans:
            if b > end:
                total += b - max(a, end)
                end = b
        return total

    def close(self, ok: bool = True) -> None:
        """Final progress report (when ``ok``); cancel calls not started (after an error) and stop the workers."""
        if ok and self.progress is not None and self._calls:
            self.progress(self.total, self.total)
        for _, fut in self._calls[self._next:]:
            fut.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@dataclass
class Streamed:
    """What :func:`stream_call` returns: the whole batch and its answers, as one call would have."""

    batch: RequestBatch
    req_of: np.ndarray          # [m] request of each agent
    comp_of: np.ndarray         # [m] completion of each agent
    comp: CompletionBatch
    texts: pa.Array             # [c] completion texts in Arrow
    ok: np.ndarray              # [c] parsed?
    values: dict                # field -> [c] parsed values
    parse_s: float              # time spent parsing replies
    feed: Feed


def stream_call(engine, asks: Asks, ids: np.ndarray, src: Prompts, rows: np.ndarray, adapters: np.ndarray | None,
                dedup: bool, size: int, parse, progress=None) -> Streamed:
    """One model's requests for agents ``ids``, streamed to ``engine`` in calls of at most ``size``
    requests, each call's replies parsed (``parse(texts) -> (ok, values)``) as it returns.

    ``src``/``rows``: the agents' prompts and their positions in it (hashed by
    :func:`~socius.text.hashing.hash_strings`); ``adapters``: ``[m]`` names or None.
    Greedy (or ``dedup=False``) requests are planned and sent chunk by chunk while later agents
    are rendered; sampled ones once every prompt is known (see the module docstring)."""
    feed = Feed(engine, progress)
    comps, texts, oks, vals = [], [], [], []
    parse_s = 0.0

    def take(block: bool) -> None:
        nonlocal parse_s
        for _, comp in feed.ready(block):
            t = time.perf_counter()
            tx = arrow_strings(comp.texts)
            ok, v = parse(tx)
            comps.append(comp)
            texts.append(tx)
            oks.append(ok)
            vals.append(v)
            parse_s += time.perf_counter() - t
    m = ids.shape[0]
    try:
        if asks.sampling.greedy or not dedup:
            order = np.argsort(ids, kind="stable")            # chunks of agents in ID order
            acodes = (np.zeros(m, np.int64) if adapters is None
                      else np.unique(adapters, return_inverse=True)[1].reshape(-1).astype(np.int64))
            index, req_of, pieces = RequestIndex(), np.empty(m, np.int64), []
            for lo in range(0, m, size):
                at = order[lo:lo + size]
                prompts = src.render(rows[at])
                piece, req_of[at] = asks.chunk(index, ids[at], prompts, hash_strings(prompts), acodes[at],
                                               None if adapters is None else adapters[at], dedup)
                pieces.append(piece)
                feed.total = index.count + (m - lo - at.shape[0])   # an upper bound until all are rendered
                feed.put(piece)
                take(False)
            empty = RequestBatch(pa.array([], pa.large_string()), asks.sampling, asks.model, [], [], [],
                                 tick=asks.tick)
            batch, comp_of = RequestBatch.concat([p for p in pieces if len(p)], empty), req_of
        else:
            prompts, inverse = src.distinct(rows)
            batch, req_of, comp_of = asks.whole(ids, prompts, hash_strings(prompts), adapters, dedup, inverse)
            feed.total = len(batch)
            for lo in range(0, len(batch), size):
                feed.put(batch.slice(lo, min(lo + size, len(batch))))
                take(False)
        take(True)
    except BaseException:
        feed.close(ok=False)
        raise
    feed.close()
    comp = CompletionBatch.concat(comps, batch)
    return Streamed(batch, req_of, comp_of, comp,
                    pa.concat_arrays(texts) if texts else pa.array([], pa.large_string()),
                    np.concatenate(oks) if oks else np.zeros(0, bool),
                    {k: np.concatenate([v[k] for v in vals]) for k in (vals[0] if vals else {})}, parse_s, feed)
