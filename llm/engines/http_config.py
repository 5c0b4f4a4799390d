"""The ``openai`` engine's settings (:class:`OpenAIConfig`) and its token split for ``n > 1`` replies.

Plain data: no HTTP, no ``openai``; the engine validates its config once at start
(:meth:`OpenAIConfig.validate`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from .params import STRUCTURED_MODES


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
    ``prompt_lists``: ``"auto"`` sends many prompts per completions request and
    falls back to one per request for good if the server refuses lists;
    ``"on"`` always sends lists, ``"off"`` never (the chat endpoint never
    does). A list request holds at most ``max_batch_prompts`` prompts and
    ``max_batch_chars`` characters; ``concurrency`` bounds HTTP requests in
    flight on both paths. ``list_seeds`` (sampled decoding only; a list
    request has one ``seed``): ``"group"`` puts only prompts with the same seed
    in one list, so every reply is the one the per-request path gets;
    ``"server"`` sends sampled lists without a seed, so the server draws every
    prompt independently — many prompts per request, but the replies are not
    reproducible from the run's seed (replay from the response log still is).
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
    prompt_lists: str = "auto"
    max_batch_prompts: int = 256
    max_batch_chars: int = 1_000_000
    list_seeds: str = "group"

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> "OpenAIConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(config) - names
        if unknown:
            raise ValueError(f"unknown OpenAIConfig keys {sorted(unknown)}; known: {sorted(names)}")
        return cls(**dict(config))

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field for a setting out of range."""
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.max_retries < 0 or not self.timeout_s > 0:
            raise ValueError("max_retries must be >= 0 and timeout_s > 0")
        if self.structured_mode not in STRUCTURED_MODES:
            raise ValueError(f"structured_mode must be one of {STRUCTURED_MODES}")
        if self.prompt_lists not in ("auto", "on", "off"):
            raise ValueError(f"prompt_lists must be 'auto', 'on' or 'off', got {self.prompt_lists!r}")
        if self.max_batch_prompts < 1 or self.max_batch_chars < 1:
            raise ValueError("max_batch_prompts and max_batch_chars must be >= 1")
        if self.list_seeds not in ("group", "server"):
            raise ValueError(f"list_seeds must be 'group' or 'server', got {self.list_seeds!r}")

    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or None

    def resolved_api_key(self) -> str:
        return self.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
