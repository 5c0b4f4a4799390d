"""``openai``: any OpenAI-compatible server behind the batch interface.

A vLLM server (``vllm serve``), a llama.cpp server, a hosted API. Two paths, both
through one shared ``openai.AsyncOpenAI`` client (one connection pool), at most
``concurrency`` HTTP calls in flight:

* **batched** (the completions endpoint, ``prompt_lists`` ``"auto"``/``"on"``): many
  prompts per request, ``prompt`` as a list, chunked by :mod:`.http_chunks` (same
  adapter, ``n`` and — when sampling — seed per chunk; at most ``max_batch_prompts``
  prompts and ``max_batch_chars`` characters). Replies map back by ``choices[i].index``.
  A chunk is retried as a whole; one that fails as a whole (a 4xx, a reply that does
  not fit, or retries spent) goes prompt by prompt, so errors land on single prompts.
  In ``"auto"`` the first list reply tells whether the server takes lists: a refused
  list whose prompts then all succeed alone switches the engine to per-request for
  good (one warning in the log; :attr:`OpenAIEngine.http_path` says which path).
* **per-request** (the chat endpoint, ``prompt_lists="off"``, or a server without
  lists): every request is one HTTP call.

Each call has its own timeout and is retried with exponential backoff and full
jitter on 408/409/429/5xx, timeouts and connection errors; other errors (a 400
for a prompt the server rejects, a 404 for an unknown model) fail the request
at once. A request that still fails is reported in ``errors``, never raised.

Structured outputs go the way vLLM's server (>= 0.12) takes them:
``extra_body={"structured_outputs": {"choice": [...]}}`` (or ``json``/``regex``);
``structured_mode="guided"`` sends the older ``guided_choice``/``guided_json``/
``guided_regex`` fields (vLLM < 0.12) and ``"none"`` sends nothing (servers
without constrained decoding: the parser checks replies).

A request whose ``RequestBatch.adapters`` entry is not ``""`` is sent with that
adapter's name as its model (how vLLM's server addresses LoRA adapters, whether
started with ``--lora-modules name=path`` or loaded at run time); a server that
does not know the name fails the request with an error naming the adapter.
:meth:`OpenAIEngine.load_adapter` loads an adapter into the running server through
its runtime endpoint (``POST /v1/load_lora_adapter`` with ``lora_name`` and
``lora_path``, a folder on the *server's* file system; the server needs
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``): see :class:`LoRAAdmin`.

The engine owns a private event loop on a daemon thread, so the synchronous
:meth:`OpenAIEngine.generate` works whether or not the calling thread already
runs an event loop; async callers can ``await engine.agenerate(batch)``.
:meth:`OpenAIEngine.submit` starts a call and returns a future: the decision
pipeline streams chunks of a batch this way (``stream_chunk`` requests each,
:mod:`socius.llm.stream`), several calls out at once on the one loop, all
within one ``concurrency`` bound (the semaphore belongs to the engine).
``openai`` is imported when an engine is created, not with this module.
"""
from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from typing import Any, Mapping

import numpy as np

from socius.ecs import STR
from socius.errors import EngineSetupError, MissingExtraError

from .base import CompletionBatch, RequestBatch
from .http_chunks import ListReplyError, map_choices, plan_chunks
from .http_config import OpenAIConfig, split_tokens
from .http_job import BatchJob
from .http_lora import LoRAAdmin
from .retry import backoff_delay, classify_error, retry_after
from .vllm import unknown_adapter_error

#: A batch smaller than ``LIST_SPREAD * max_batch_prompts`` still goes out as about this many
#: list requests (at least 16 prompts each), so that they travel in parallel.
LIST_SPREAD = 8
#: Requests per streamed call by default: 0, whole batches (``bench/dummy_latency.py --stream on,off``:
#: streaming was slower — the engine's event loop and the pipeline share one GIL).
STREAM_CHUNK = 0


class OpenAIEngine:
    """Batch requests to an OpenAI-compatible server; see the module docstring.

    ``config`` is an :class:`OpenAIConfig`, a mapping of its fields, or ``None``
    (all defaults and the environment). After each :meth:`generate`:
    ``last_attempts`` (``[r] int32``, calls made per request; with calls
    streamed, the last call to finish) and the running totals in ``stats``
    (``requests``, ``attempts``, ``retries``, ``failed``). ``stream_chunk``:
    requests per streamed call (0, the default: the pipeline sends whole
    batches unless a decision asks to stream).
    ``latency_s`` of a request is the wall time from its first call to its
    final answer, retries and backoff included (not the time queued behind
    the concurrency limit).
    """

    name = "openai"

    def __init__(self, config: OpenAIConfig | Mapping[str, Any] | None = None):
        if config is None:
            config = OpenAIConfig()
        self.config = config if isinstance(config, OpenAIConfig) else OpenAIConfig.from_mapping(config)
        self.config.validate()
        try:
            import openai  # noqa: PLC0415 - deliberately lazy
        except ImportError as e:
            raise MissingExtraError("openai", "openai", "The OpenAI-compatible engine") from e
        self._openai = openai
        self._rng = random.Random(self.config.jitter_seed)
        self.stats = {"requests": 0, "attempts": 0, "retries": 0, "failed": 0,
                      "http_calls": 0, "list_calls": 0, "list_fallbacks": 0}
        # does the server take prompt lists? None: not known yet (learnt from the first list reply)
        self._lists: bool | None = {"on": True, "off": False}.get(self.config.prompt_lists)
        self.last_attempts = np.zeros(0, dtype=np.int32)
        self.progress = None   # progress(done, total), set by the pipeline for one call (see .base)
        self.stream_chunk = STREAM_CHUNK
        self._sem: asyncio.Semaphore | None = None   # HTTP calls in flight, over every call (on the loop)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="socius-openai-engine",
                                        daemon=True)
        self._thread.start()
        self._client = self._submit(self._make_client()).result()
        self._lora = LoRAAdmin(self.config.resolved_base_url() or "", self.config.resolved_api_key(),
                               self.config.timeout_s) if self.config.resolved_base_url() else None

    @property
    def http_path(self) -> str:
        """``"batched"`` (prompt lists), ``"per-request"`` (one prompt per request: chat, lists
        off, or a server that refused them) or ``"unknown"`` (auto, before the first list reply)."""
        if self.config.chat or self._lists is False:
            return "per-request"
        return "batched" if self._lists else "unknown"

    def _learn_lists(self, ok: bool, why: str = "") -> None:
        if self._lists is not None or self.config.prompt_lists != "auto":
            return
        self._lists = ok
        log = logging.getLogger("socius.llm.openai")
        if ok:
            log.info("openai: %s takes prompt lists; sending up to %d prompts per request",
                     self.config.resolved_base_url(), self.config.max_batch_prompts)
        else:
            log.warning("openai: %s refused a prompt list (%s); one prompt per request from now on",
                        self.config.resolved_base_url(), why)

    # -- adapters ----------------------------------------------------------

    def adapters(self) -> dict[str, str]:
        """``{name: server-side folder}`` of the adapters loaded through :meth:`load_adapter`."""
        return dict(self._lora.loaded) if self._lora is not None else {}

    def load_adapter(self, name: str, path) -> None:
        """Load (or replace) adapter ``name`` from ``path`` on the server; see :class:`LoRAAdmin`."""
        if self._lora is None:
            raise EngineSetupError("openai: loading adapters needs base_url (or OPENAI_BASE_URL)")
        self._lora.load(name, str(path))

    def unload_adapter(self, name: str) -> None:
        if self._lora is None or name not in self._lora.loaded:
            raise KeyError(f"openai: no adapter {name!r} loaded (loaded: {sorted(self.adapters())})")
        self._lora.unload(name)

    async def _make_client(self) -> Any:
        # Created on the private loop: the HTTP connection pool belongs to it.
        return self._openai.AsyncOpenAI(
            base_url=self.config.resolved_base_url(), api_key=self.config.resolved_api_key(),
            max_retries=0, timeout=self.config.timeout_s)

    def _submit(self, coro: Any) -> Any:
        if self._loop is None or self._loop.is_closed():
            coro.close()
            raise RuntimeError("OpenAIEngine used after close()")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    # -- public ------------------------------------------------------------

    def generate(self, batch: RequestBatch) -> CompletionBatch:
        """Answer every request of ``batch``; blocks until all are answered or failed.

        Safe to call from a thread that runs an event loop (it blocks that loop
        meanwhile; prefer :meth:`agenerate` there).
        """
        return self._submit(self._generate(batch)).result()

    async def agenerate(self, batch: RequestBatch) -> CompletionBatch:
        """Async form of :meth:`generate`, for callers on their own event loop."""
        return await asyncio.wrap_future(self._submit(self._generate(batch)))

    def submit(self, batch: RequestBatch, progress=None):
        """Start answering ``batch``; returns a ``concurrent.futures.Future`` of its
        :class:`CompletionBatch`. ``progress(done, total)`` hears this call's requests finish
        (instead of :attr:`progress`). Safe from any thread, several calls at once."""
        return self._submit(self._generate(batch, progress))

    def close(self) -> None:
        """Close the HTTP client and stop the private loop. Idempotent."""
        loop = getattr(self, "_loop", None)
        if loop is None or loop.is_closed():
            return
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            try:
                asyncio.run_coroutine_threadsafe(client.close(), loop).result(timeout=10)
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            loop.close()
        self._loop = None

    def __enter__(self) -> "OpenAIEngine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    # -- the work, on the private loop -------------------------------------

    async def _generate(self, batch: RequestBatch, progress=None) -> CompletionBatch:
        out = CompletionBatch.empty_for(batch)
        r = len(batch)
        if r == 0:
            self.last_attempts = np.zeros(0, dtype=np.int32)
            return out
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.config.concurrency)
        job = BatchJob(self.config, batch, out, self._sem)
        done = [0]
        report = progress if progress is not None else self.progress

        async def unit(coro, k: int) -> None:       # a request or a chunk, reported when it is over
            await coro
            done[0] += k
            if report is not None:
                report(done[0], r)
        if self.config.chat or self._lists is False:
            await asyncio.gather(*(unit(self._one(job, i), 1) for i in range(r)))
        else:
            greedy = batch.sampling.greedy
            n_eff = np.ones(r, dtype=np.int32) if greedy else batch.n
            by_seed = not greedy and self.config.list_seeds == "group"
            chunks = plan_chunks(batch.adapters, n_eff, batch.seeds if by_seed else None,
                                 job.prompt_bytes, self.config.max_batch_prompts,
                                 self.config.max_batch_chars,
                                 spread=min(self.config.concurrency, LIST_SPREAD))
            await asyncio.gather(*(unit(self._chunk(job, rows), len(rows)) for rows in chunks))
        out.texts = np.array(job.texts.tolist(), dtype=STR)
        out.errors = np.array(job.errors, dtype=STR)
        failed = int((out.errors != "").sum())
        attempts = job.attempts
        out.attempts = attempts.copy()
        self.last_attempts = attempts
        self.stats["requests"] += r
        self.stats["attempts"] += int(attempts.sum())
        self.stats["retries"] += int(attempts.sum()) - r
        self.stats["failed"] += failed
        return out

    async def _backoff(self, attempt: int, exc: BaseException | None) -> None:
        cfg = self.config
        await asyncio.sleep(backoff_delay(attempt, self._rng, cfg.backoff_base_s, cfg.backoff_max_s,
                                          retry_after(exc)))

    def _error(self, job: BatchJob, i: int, e: BaseException, tries: int) -> tuple[bool, str]:
        retry, kind = classify_error(e)
        msg = str(e).strip().replace("\n", " ")[:300]
        err = f"{kind} after {tries} attempt(s): {type(e).__name__}: {msg}"
        if job.adapters[i] and kind == "http 404":  # the server does not know the adapter
            err = f"{unknown_adapter_error(job.adapters[i], self.adapters())}: {err}"
        return retry, err

    async def _one(self, job: BatchJob, i: int, max_retries: int | None = None) -> bool:
        """Request ``i`` alone (the per-request path, and the fallback for a failed list)."""
        cfg = self.config
        retries = cfg.max_retries if max_retries is None else max_retries
        # a LoRA adapter served by vLLM is addressed as its own model name
        req = dict(model=job.adapters[i] or job.model, n=1 if job.greedy else job.ns[i], seed=job.seeds[i],
                   **job.base)
        t0 = None
        last_exc: BaseException | None = None
        for attempt in range(retries + 1):
            async with job.sem:
                if t0 is None:
                    t0 = time.perf_counter()
                job.attempts[i] += 1
                self.stats["http_calls"] += 1
                try:
                    resp = await asyncio.wait_for(self._call(job.prompts[i], req, job.extra), cfg.timeout_s)
                    self._fill(i, resp, job.ns[i], job.offsets[i], job.texts, job.out)
                    job.errors[i] = ""
                    job.out.latency_s[i] = time.perf_counter() - t0
                    return True
                except Exception as e:  # noqa: BLE001 - classified below
                    last_exc = e
                    retry, job.errors[i] = self._error(job, i, e, int(job.attempts[i]))
                    if not retry:
                        break
            if attempt < retries:
                await self._backoff(attempt, last_exc)
        job.out.latency_s[i] = time.perf_counter() - (t0 or time.perf_counter())
        return False

    async def _chunk(self, job: BatchJob, rows: np.ndarray) -> None:
        """Prompts ``rows`` (same adapter, ``n`` and, when sampling, seed) in one list request,
        retried as a whole; a chunk that fails as a whole goes prompt by prompt."""
        cfg = self.config
        i0 = int(rows[0])
        if self._lists is False:                      # learnt meanwhile from another chunk
            await asyncio.gather(*(self._one(job, int(i)) for i in rows))
            return
        n = 1 if job.greedy else job.ns[i0]
        body = dict(model=job.adapters[i0] or job.model, prompt=[job.prompts[i] for i in rows.tolist()],
                    n=n, **job.base, **job.extra)
        if not job.greedy and cfg.list_seeds == "group":   # greedy ignores the seed; "server": none sent
            body["seed"] = job.seeds[i0]
        t0 = None
        last_exc: BaseException | None = None
        refused = says_no = False       # failed as a whole / the failure says "no lists here"
        for attempt in range(cfg.max_retries + 1):
            got = None
            async with job.sem:
                if self._lists is False:              # another chunk learnt it while this one queued
                    refused = True
                    break
                if t0 is None:
                    t0 = time.perf_counter()
                job.attempts[rows] += 1
                self.stats["http_calls"] += 1
                self.stats["list_calls"] += 1
                try:
                    data = await asyncio.wait_for(
                        self._client.post("/completions", cast_to=object, body=body), cfg.timeout_s)
                    got = map_choices(data, len(rows), n)
                except Exception as e:  # noqa: BLE001 - classified below
                    last_exc = e
                    retry, kind = classify_error(e)
                    if isinstance(e, ValueError) or not retry:   # a reply that does not fit, a 4xx
                        refused = True
                        says_no = isinstance(e, ListReplyError) or kind in ("http 400", "http 413", "http 422")
                        break
            if got is not None:
                self._learn_lists(True)
                job.fill_chunk(rows, got, n, data.get("usage") or {}, time.perf_counter() - t0)
                return
            if attempt < cfg.max_retries:
                await self._backoff(attempt, last_exc)
        t0 = t0 or time.perf_counter()
        if getattr(last_exc, "status_code", None) == 404:   # an unknown model or adapter: every prompt alike
            for i in rows.tolist():
                _, job.errors[i] = self._error(job, i, last_exc, int(job.attempts[i]))
            job.out.latency_s[rows] = time.perf_counter() - t0
            return
        self.stats["list_fallbacks"] += 1
        # one by one: a refused list gets every prompt's own retries; a list that kept failing
        # with retryable errors gets one more try per prompt (it may have been too big, not down)
        if len(rows) == 1 and not refused:
            _, job.errors[i0] = self._error(job, i0, last_exc, int(job.attempts[i0]))
            job.out.latency_s[i0] = time.perf_counter() - t0
            return
        ok = await asyncio.gather(*(self._one(job, int(i), None if refused else 0) for i in rows))
        if says_no and all(ok):
            self._learn_lists(False, f"{type(last_exc).__name__}: {str(last_exc)[:200]}")

    async def _call(self, prompt: str, req: dict[str, Any], extra: dict[str, Any]) -> Any:
        client = self._client
        if self.config.chat:
            return await client.chat.completions.create(
                messages=[{"role": "user", "content": prompt}], extra_body=extra or None, **req)
        return await client.completions.create(prompt=prompt, extra_body=extra or None, **req)

    def _fill(self, i: int, resp: Any, n: int, offset: int, texts: list[str],
              out: CompletionBatch) -> None:
        """Copy one response into the batch; raises ValueError if it is malformed."""
        choices = sorted(resp.choices, key=lambda c: c.index)
        if self.config.chat:
            got = [c.message.content or "" for c in choices]
        else:
            got = [c.text or "" for c in choices]
        if len(got) == 1 and n > 1:
            got = got * n                       # greedy: one call, n identical completions
        if len(got) != n:
            raise ValueError(f"server returned {len(got)} choices, {n} asked")
        usage = getattr(resp, "usage", None)
        ptok = int(getattr(usage, "prompt_tokens", 0) or 0)
        ctok = int(getattr(usage, "completion_tokens", 0) or 0)
        if len(choices) == 1 and n > 1:
            per = np.full(n, ctok, dtype=np.int32)
        else:
            per = split_tokens(ctok, n)
        texts[offset:offset + n] = got
        out.prompt_tokens[i] = ptok
        out.output_tokens[offset:offset + n] = per


