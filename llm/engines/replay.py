"""The replay engine: answers every request from a run's response log, with no LLM.

A request is looked up by (tick, model, adapter, prompt hash, n, seed) — everything that
decides what an engine returns — in the ``tick-*.parquet`` files a
:class:`~socius.llm.log.ResponseLog` wrote. A run replayed with the same seed and config
asks the same requests and so reaches the same state; a request not in the log is an
error (the run was made with other settings), never a silent fallback.

Adapters are part of the key, so a run that switched agents to an adapter mid-way
replays as it ran; :meth:`ReplayEngine.load_adapter` only records the name (the
log answers, no weights are read).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from socius.ecs import STR
from socius.errors import EngineSetupError

from .base import CompletionBatch, RequestBatch


class ReplayMiss(EngineSetupError, LookupError):
    """A request the response log does not hold: the run is not the one that was logged (a usage error)."""


class ReplayEngine:
    """An engine that answers from a run's response log; a request it has not seen is an error."""

    def __init__(self, directory: str | Path, name: str = "replay"):
        self.name = name
        self.dir = Path(directory)
        files = sorted(self.dir.glob("tick-*.parquet"))
        if not files:
            raise FileNotFoundError(f"--replay: no response log in {self.dir}")
        t = pa.concat_tables([_read_log_file(f) for f in files])
        keys = zip(t.column("tick").to_pylist(), t.column("model").to_pylist(), t.column("adapter").to_pylist(),
                   t.column("prompt_hash").to_pylist(), t.column("n").to_pylist(), t.column("seed").to_pylist())
        self._index = {k: i for i, k in enumerate(keys)}
        self._completions = t.column("completions").combine_chunks()
        self._errors = t.column("error").to_numpy(zero_copy_only=False).astype(STR)
        self.requests = 0
        self._adapters: dict[str, str] = {}

    def adapters(self) -> dict[str, str]:
        return dict(self._adapters)

    def load_adapter(self, name: str, path) -> None:
        """Record ``name`` (nothing is loaded: the log holds what the adapter said)."""
        self._adapters[name] = str(path)

    def unload_adapter(self, name: str) -> None:
        self._adapters.pop(name, None)

    def generate(self, batch: RequestBatch) -> CompletionBatch:
        out = CompletionBatch.empty_for(batch)
        hashes = batch.prompt_hash().view(np.int64)
        rows = np.empty(len(batch), np.int64)
        for i in range(len(batch)):  # one dict lookup per request, not per agent
            key = (batch.tick, batch.model, str(batch.adapters[i]), int(hashes[i]), int(batch.n[i]),
                   int(batch.seeds[i]))
            j = self._index.get(key)
            if j is None:
                adapter = f", adapter {str(batch.adapters[i])!r}" if batch.adapters[i] != "" else ""
                raise ReplayMiss(f"--replay: request not in the log of {self.dir} (tick {batch.tick}, model {batch.model!r}"
                                  f"{adapter}, prompt hash {hashes[i]:#x}); was the run made with other settings?")
            rows[i] = j
        sel = self._completions.take(pa.array(rows))
        out.texts = pa.concat_arrays([sel.flatten()]).to_numpy(zero_copy_only=False).astype(STR) \
            if batch.completions else out.texts
        out.errors = self._errors[rows]
        self.requests += len(batch)
        return out

    def close(self) -> None:
        pass


def _read_log_file(path: Path) -> pa.Table:
    """The key columns of one response-log file; a file Arrow cannot read is named."""
    try:
        return pq.read_table(path, columns=["tick", "model", "adapter", "prompt_hash", "n", "seed", "completions",
                                            "error"])
    except (OSError, ValueError, KeyError) as e:  # ArrowInvalid is a ValueError; a missing column a KeyError
        raise EngineSetupError(f"{path}: unreadable response log file ({type(e).__name__}: {e})") from None
