"""``openai``: any OpenAI-compatible server behind the batch interface.

A vLLM server (``vllm serve``), a llama.cpp server, a hosted API: every request
of a batch is one HTTP call (the completions endpoint; the chat endpoint with
``chat=True``) made by ``openai.AsyncOpenAI``, at most ``concurrency`` in flight.
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
``openai`` is imported when an engine is created, not with this module.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from socius.ecs import STR
from socius.errors import EngineSetupError, MissingExtraError

from .base import CompletionBatch, RequestBatch
from .params import STRUCTURED_MODES, sampling_kwargs, structured_extra_body
from .retry import backoff_delay, classify_error, retry_after
from .vllm import unknown_adapter_error


def split_tokens(total: int, n: int) -> np.ndarray:
    """``[n] int32``: a total token count spread over ``n`` completions.

    OpenAI-style responses count completion tokens per response, not per
    choice; for ``n == 1`` this is exact, for ``n > 1`` an even split that
    keeps the sum.
    """
    q, rem = divmod(int(total), int(n))
    out = np.full(n, q, dtype=np.int32)
    out[:rem] += 1
    return out


@dataclass(frozen=True)
class OpenAIConfig:
    """How to reach the server and how hard to try.

    ``base_url``/``api_key`` default to ``$OPENAI_BASE_URL``/``$OPENAI_API_KEY``
    (a local server that checks no key gets ``"EMPTY"``). ``model`` overrides
    ``RequestBatch.model`` (the name the server knows the model by).
    ``timeout_s`` bounds one attempt; ``max_retries`` is the number of retries
    after the first attempt. ``extra_body`` is merged into every request.
    """

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    concurrency: int = 64
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    chat: bool = False
    structured_mode: str = "vllm"
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    jitter_seed: int | None = None

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> "OpenAIConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(config) - names
        if unknown:
            raise ValueError(f"unknown OpenAIConfig keys {sorted(unknown)}; known: {sorted(names)}")
        return cls(**dict(config))

    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or None

    def resolved_api_key(self) -> str:
        return self.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"


class LoRAAdmin:
    """A vLLM server's runtime LoRA endpoints, and the adapters loaded through them.

    ``load(name, path)`` posts ``{"lora_name", "lora_path"}`` to ``<base_url>/load_lora_adapter``
    (``base_url`` ends in ``/v1``, as for the client). Replacing a loaded name first asks the
    server to reload it in place (``load_inplace``, vLLM >= 0.11); a server that refuses (an older
    one: "already been loaded") gets ``unload`` then ``load``, and if that load fails the old
    folder is loaded again, so a failed replacement leaves the server as it was.
    Failures raise :class:`~socius.errors.EngineSetupError` with the server's reason.
    Plain HTTP (``urllib``), one call at a time, between ticks.
    """

    def __init__(self, base_url: str | None, api_key: str = "EMPTY", timeout_s: float = 60.0):
        if not base_url:
            raise EngineSetupError("openai: loading adapters needs base_url (or OPENAI_BASE_URL)")
        self.base_url, self.api_key, self.timeout_s = base_url.rstrip("/"), api_key, float(timeout_s)
        self.loaded: dict[str, str] = {}

    def _post(self, endpoint: str, body: dict) -> tuple[int, str]:
        req = urllib.request.Request(f"{self.base_url}/{endpoint}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.api_key}"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - the user's server
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as e:
            return 0, f"{type(e).__name__}: {getattr(e, 'reason', e)}"

    def _load(self, name: str, path: str, inplace: bool = False) -> tuple[int, str]:
        body = {"lora_name": name, "lora_path": path}
        if inplace:
            body["load_inplace"] = True
        return self._post("load_lora_adapter", body)

    def load(self, name: str, path: str) -> None:
        if not isinstance(name, str) or not name or name != name.strip():
            raise EngineSetupError(f"openai: adapter name must be a non-empty string, got {name!r}")
        path = str(path)
        old = self.loaded.get(name)
        status, text = self._load(name, path, inplace=old is not None)
        if status != 200 and old is not None and "already" in text.lower():  # a server without load_inplace
            self.unload(name)
            status, text = self._load(name, path)
            if status != 200:
                back, _ = self._load(name, old)
                if back == 200:
                    self.loaded[name] = old
        if status != 200:
            raise EngineSetupError(f"openai: adapter {name!r} from {path} did not load on {self.base_url} "
                                   f"(HTTP {status or 'error'}: {text.strip()[:300]}); is the server started with "
                                   "--enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True?")
        self.loaded[name] = path

    def unload(self, name: str) -> None:
        status, text = self._post("unload_lora_adapter", {"lora_name": name})
        self.loaded.pop(name, None)
        if status not in (200, 404):  # 404: the server no longer has it, which is what was asked
            raise EngineSetupError(f"openai: adapter {name!r} did not unload on {self.base_url} "
                                   f"(HTTP {status or 'error'}: {text.strip()[:300]})")


class OpenAIEngine:
    """Batch requests to an OpenAI-compatible server; see the module docstring.

    ``config`` is an :class:`OpenAIConfig`, a mapping of its fields, or ``None``
    (all defaults and the environment). After each :meth:`generate`:
    ``last_attempts`` (``[r] int32``, calls made per request) and the running
    totals in ``stats`` (``requests``, ``attempts``, ``retries``, ``failed``).
    ``latency_s`` of a request is the wall time from its first call to its
    final answer, retries and backoff included (not the time queued behind
    the concurrency limit).
    """

    name = "openai"

    def __init__(self, config: OpenAIConfig | Mapping[str, Any] | None = None):
        if config is None:
            config = OpenAIConfig()
        self.config = config if isinstance(config, OpenAIConfig) else OpenAIConfig.from_mapping(config)
        if self.config.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.config.max_retries < 0 or not self.config.timeout_s > 0:
            raise ValueError("max_retries must be >= 0 and timeout_s > 0")
        if self.config.structured_mode not in STRUCTURED_MODES:
            raise ValueError(f"structured_mode must be one of {STRUCTURED_MODES}")
        try:
            import openai  # noqa: PLC0415 - deliberately lazy
        except ImportError as e:
            raise MissingExtraError("openai", "openai", "The OpenAI-compatible engine") from e
        self._openai = openai
        self._rng = random.Random(self.config.jitter_seed)
        self.stats = {"requests": 0, "attempts": 0, "retries": 0, "failed": 0}
        self.last_attempts = np.zeros(0, dtype=np.int32)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="socius-openai-engine",
                                        daemon=True)
        self._thread.start()
        self._client = self._submit(self._make_client()).result()
        self._lora = LoRAAdmin(self.config.resolved_base_url() or "", self.config.resolved_api_key(),
                               self.config.timeout_s) if self.config.resolved_base_url() else None

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

    async def _generate(self, batch: RequestBatch) -> CompletionBatch:
        out = CompletionBatch.empty_for(batch)
        r = len(batch)
        self.last_attempts = np.zeros(r, dtype=np.int32)
        if r == 0:
            return out
        cfg = self.config
        base = sampling_kwargs(batch.sampling)          # ValueError = misuse, raised
        base.pop("structured_outputs")
        extra = {**structured_extra_body(batch.sampling, cfg.structured_mode),
                 **cfg.extra_body}
        adapters = batch.adapters.tolist()
        model = cfg.model or batch.model
        greedy = batch.sampling.greedy
        prompts = batch.prompts.tolist()
        ns = batch.n.tolist()
        seeds = batch.seeds.tolist()
        offsets = batch.offsets.tolist()
        texts: list[str] = [""] * batch.completions
        errors: list[str] = [""] * r
        attempts = np.zeros(r, dtype=np.int32)
        sem = asyncio.Semaphore(cfg.concurrency)

        async def one(i: int) -> None:
            # a LoRA adapter served by vLLM is addressed as its own model name
            req = dict(model=adapters[i] or model, n=1 if greedy else ns[i], seed=seeds[i], **base)
            t0 = None
            last_exc: BaseException | None = None
            for attempt in range(cfg.max_retries + 1):
                async with sem:
                    if t0 is None:
                        t0 = time.perf_counter()
                    attempts[i] += 1
                    try:
                        resp = await asyncio.wait_for(self._call(prompts[i], req, extra), cfg.timeout_s)
                        self._fill(i, resp, ns[i], offsets[i], texts, out)
                        errors[i] = ""
                        out.latency_s[i] = time.perf_counter() - t0
                        return
                    except Exception as e:  # noqa: BLE001 - classified below
                        last_exc = e
                        retry, kind = classify_error(e)
                        msg = str(e).strip().replace("\n", " ")[:300]
                        errors[i] = f"{kind} after {attempt + 1} attempt(s): {type(e).__name__}: {msg}"
                        if adapters[i] and kind == "http 404":  # the server does not know the adapter
                            errors[i] = f"{unknown_adapter_error(adapters[i], self.adapters())}: {errors[i]}"
                        if not retry:
                            break
                if attempt < cfg.max_retries:
                    await asyncio.sleep(backoff_delay(attempt, self._rng, cfg.backoff_base_s,
                                                      cfg.backoff_max_s, retry_after(last_exc)))
            out.latency_s[i] = time.perf_counter() - (t0 or time.perf_counter())

        await asyncio.gather(*(one(i) for i in range(r)))
        out.texts = np.array(texts, dtype=STR)
        out.errors = np.array(errors, dtype=STR)
        failed = int((out.errors != "").sum())
        self.last_attempts = attempts
        self.stats["requests"] += r
        self.stats["attempts"] += int(attempts.sum())
        self.stats["retries"] += int(attempts.sum()) - r
        self.stats["failed"] += failed
        return out

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

