"""The response cache: completions kept across runs, for decisions that ask for it.

A :class:`~.decision.Decision` with ``cache=True`` (generated backgrounds, say) takes
its replies from ``LLM.cache`` when the very same request was answered before, and
sends only the misses to the engine; a re-run with the same seed and config then
reaches the same state without the LLM. Unlike the response log (one run's record,
read back by replay), the cache outlives runs and keeps only successful replies.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .engines.base import RequestBatch


class ResponseCache:
    """Completions kept across runs, for decisions with ``cache=True`` (e.g. generated backgrounds).

    The key is exact — (decision, model, adapter, prompt hash, n, seed, sampling) — so a hit
    returns what the engine returned for the very same request, and a re-run
    with the same seed and config reaches the same state without the LLM.
    One Parquet file per decision under ``directory`` (written atomically).
    """

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self._mem: dict[str, dict] = {}

    def _load(self, decision: str) -> dict:
        if decision not in self._mem:
            f = self.dir / f"{decision}.parquet"
            table = {}
            if f.is_file():
                t = pq.read_table(f)
                for key, comps in zip(t.column("key").to_pylist(), t.column("completions").to_pylist()):
                    table[key] = comps
            self._mem[decision] = table
        return self._mem[decision]

    @staticmethod
    def keys(batch: RequestBatch) -> list[str]:
        hashes = batch.prompt_hash()
        s = json.dumps([batch.sampling.temperature, batch.sampling.top_p, batch.sampling.max_tokens,
                        list(batch.sampling.stop), batch.sampling.structured], sort_keys=True)
        return [f"{batch.model}|{a}|{h:016x}|{n}|{seed}|{s}"  # one string per request, not per agent
                for a, h, n, seed in zip(batch.adapters.tolist(), hashes.tolist(), batch.n.tolist(),
                                         batch.seeds.tolist())]

    def lookup(self, decision: str, keys: list[str]) -> list:
        table = self._load(decision)
        return [table.get(k) for k in keys]

    def store(self, decision: str, keys: list[str], completions: list[list[str]]) -> None:
        table = self._load(decision)
        table.update(zip(keys, completions))
        self.dir.mkdir(parents=True, exist_ok=True)
        f = self.dir / f"{decision}.parquet"
        tmp = self.dir / f".{decision}.parquet.tmp-{os.getpid()}"
        pq.write_table(pa.table({"key": list(table), "completions": list(table.values())}), tmp)
        tmp.replace(f)
