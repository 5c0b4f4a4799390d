"""One ``openai`` engine call's working state: the batch as Python lists and the columns being filled.

The HTTP bodies are built from plain lists (what the JSON encoder takes fastest); a list reply is
written back with numpy fancy indexing (:meth:`BatchJob.fill_chunk`), completions at
``RequestBatch.offsets`` slots. Token counts of a list reply are the summed ``usage`` spread by
prompt length and by reply length (a list reply counts no tokens per prompt); the sums are exact.
"""
from __future__ import annotations

import asyncio
from typing import Any, Mapping

import numpy as np

from .base import CompletionBatch, RequestBatch
from .http_chunks import split_count
from .params import sampling_kwargs, structured_extra_body


class BatchJob:
    """One :meth:`OpenAIEngine.generate` call's state on the private loop: the batch as Python
    lists (what the HTTP bodies are built from) and the output columns being filled."""

    def __init__(self, cfg: Any, batch: RequestBatch, out: CompletionBatch, sem: asyncio.Semaphore):
        self.base = sampling_kwargs(batch.sampling)          # ValueError = misuse, raised
        self.base.pop("structured_outputs")
        self.extra = {**structured_extra_body(batch.sampling, cfg.structured_mode), **cfg.extra_body}
        self.batch, self.out = batch, out
        self.adapters = batch.adapters.tolist()
        self.model = cfg.model or batch.model
        self.greedy = batch.sampling.greedy
        self.prompts = batch.prompts_arrow.to_pylist()       # straight from Arrow (the pipeline's form)
        self.ns = batch.n.tolist()
        self.seeds = batch.seeds.tolist()
        self.offsets = batch.offsets.tolist()
        self.prompt_bytes = batch.prompt_bytes()             # [r] int64, once (chunk planning, token split)
        self.texts = np.full(batch.completions, "", dtype=object)
        self.errors = [""] * len(batch)
        self.attempts = np.zeros(len(batch), dtype=np.int32)
        self.sem = sem                                       # the engine's, shared by its calls

    def fill_chunk(self, rows: np.ndarray, got: list[str], n: int, usage: Mapping[str, Any],
                   latency_s: float) -> None:
        """Put a list reply's texts (prompt-major, ``n`` per prompt) in place; tokens from the summed
        usage, spread by prompt length and by reply length (a list reply counts no tokens per prompt)."""
        from socius.ecs.ragged import gather_index  # noqa: PLC0415 - light, kept off the import path
        batch, out = self.batch, self.out
        want = batch.n[rows]
        slots = gather_index(batch.offsets, rows)[0]
        got_arr = np.array(got, dtype=object)
        if n == 1:
            self.texts[slots] = np.repeat(got_arr, want)      # greedy: one completion, n copies
        else:
            self.texts[slots] = got_arr
        ptok = split_count(int(usage.get("prompt_tokens") or 0), self.prompt_bytes[rows])
        lens = np.fromiter((len(t) for t in got), dtype=np.int64, count=len(got))
        ctok = split_count(int(usage.get("completion_tokens") or 0), lens)
        out.prompt_tokens[rows] = ptok
        out.output_tokens[slots] = np.repeat(ctok, want) if n == 1 else ctok
        out.latency_s[rows] = latency_s
        for i in rows.tolist():
            self.errors[i] = ""
