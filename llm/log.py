"""The response log: every request and reply an engine saw, as Parquet files.

One file per (tick, decision, call kind, model), ``<run>/responses/tick-XXXXXXXX-<decision>-<kind>.parquet``
— with ``-<model>`` before ``.parquet`` when the call went to a named model of a mixture
(``decide(models=…)`` calls each model's engine apart; without the name each model's file would
replace the one before) — one row per request: prompt hash, prompt, sampling, model, adapter, seed, completions
(a list per request) and ``entities`` (a list aligned with ``completions``: the agent each
completion went to — a sampled request's agents in ID order; a greedy request's one
completion, shared by every agent that asked, under its first agent, also ``first_entity``),
tokens, latency, error. Logs written before ``entities`` existed lack the column; readers
fall back to ``first_entity``. The files are a
run's record of what the LLM said; :class:`~.engines.replay.ReplayEngine` answers from
them with no LLM at all and reaches the same state.

Files are written atomically (temporary name, then rename) and, by default, on one
background thread, so encoding overlaps the rest of the tick and the next engine call.
"""
from __future__ import annotations

import json
import os
import re
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from socius.text.strings import arrow_strings, repeat_string

from .engines.base import CompletionBatch, RequestBatch

_UNIQUE = ("prompt", "completions")


def log_file_name(tick: int, decision: str, kind: str, model: str = "") -> str:
    """``tick-XXXXXXXX-<decision>-<kind>[-<model>].parquet``: the model (characters other than
    letters, digits and ``_.-`` made ``_``) only for a named model of a mixture; readers find
    files by ``tick-*.parquet`` and the tick in the name's second field either way."""
    suffix = f"-{re.sub(r'[^A-Za-z0-9_.-]+', '_', model)}" if model else ""
    return f"tick-{tick:08d}-{decision}-{kind}{suffix}.parquet"


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
        offsets = pa.array(batch.offsets)
        completions = pa.LargeListArray.from_arrays(offsets, texts)
        entities = pa.LargeListArray.from_arrays(offsets, pa.array(batch.entities))
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
            "entities": entities,
            "prompt_tokens": pa.array(comp.prompt_tokens),
            "output_tokens": out_tokens,
            "latency_s": pa.array(comp.latency_s),
            "error": arrow_strings(comp.errors).cast(pa.string()),
        })
        name = log_file_name(tick, decision, kind, batch.model)
        if self._pool is None:
            self._write_file(table, name)
            return
        self._reap(self._max_pending - 1)
        self._pending.append(self._pool.submit(self._write_file, table, name))
