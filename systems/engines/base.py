"""The batch interface every LLM engine implements.

An engine takes one :class:`RequestBatch` — many prompts that share one action
(so one :class:`Sampling` and one reply schema) — and returns one
:class:`CompletionBatch`. Both are columnar: no Python object per request.

Shapes (``r`` requests, ``c = n.sum()`` completions in total)::

    RequestBatch.prompts     [r]   StringDType   completion-style prompt text
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

A request that fails after the engine's own retries is reported in ``errors``
(its texts are ""); ``generate`` itself raises only for misuse (bad batch) or
an engine that cannot start — a run is never killed by one failed request.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

STR = np.dtypes.StringDType()


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


@dataclass
class RequestBatch:
    prompts: np.ndarray
    sampling: Sampling
    model: str
    n: np.ndarray
    seeds: np.ndarray
    entities: np.ndarray
    adapters: np.ndarray | None = None
    tick: int = 0
    offsets: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.prompts = np.asarray(self.prompts, dtype=STR)
        r = self.prompts.shape[0]
        self.n = np.asarray(self.n, dtype=np.int32).reshape(-1)
        self.seeds = np.asarray(self.seeds, dtype=np.int64).reshape(-1)
        self.entities = np.asarray(self.entities, dtype=np.int64).reshape(-1)
        if self.n.shape[0] != r or self.seeds.shape[0] != r:
            raise ValueError(f"RequestBatch: prompts, n and seeds must have one row per request ({r})")
        if r and self.n.min() < 1:
            raise ValueError("RequestBatch: n must be >= 1 for every request")
        self.offsets = np.zeros(r + 1, dtype=np.int64)
        np.cumsum(self.n, out=self.offsets[1:])
        if self.entities.shape[0] != self.offsets[-1]:
            raise ValueError(
                f"RequestBatch: entities has {self.entities.shape[0]} rows, n sums to {self.offsets[-1]}")
        if self.adapters is None:
            self.adapters = np.full(r, "", dtype=STR)
        else:
            self.adapters = np.asarray(self.adapters, dtype=STR)
            if self.adapters.shape[0] != r:
                raise ValueError("RequestBatch: adapters must have one row per request")

    def __len__(self) -> int:
        return self.prompts.shape[0]

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

    @property
    def failed(self) -> np.ndarray:
        """``[r] bool``: requests that failed after retries."""
        return self.errors != ""


@runtime_checkable
class Engine(Protocol):
    """A batch of requests in, a batch of completions out."""

    name: str

    def generate(self, batch: RequestBatch) -> CompletionBatch: ...

    def close(self) -> None: ...


class MissingExtraError(ImportError):
    """Raised when code needs an optional dependency group that is not installed."""

    def __init__(self, extra: str, package: str, what: str):
        super().__init__(
            f"{what} needs the '{extra}' extra ({package} is not installed): "
            f"pip install 'socius[{extra}]'")
        self.extra = extra
