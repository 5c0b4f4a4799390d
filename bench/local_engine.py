"""The ``local`` engine on this CPU: tokens per second and completions per minute by batch size.

::

    python -m socius.bench.local_engine                     # batch 1 and 64 (needs the `local` extra)
    python -m socius.bench.local_engine --batches 1 8 64 --max-tokens 32 --repeats 5
    python -m socius.bench.local_engine --size small        # a quick smoke run

One JSON line per batch size::

    {"bench": "local_engine", "batch": b, "tokens_per_s": ..., "completions_per_min": ...,
     "load_s": ..., "peak_rss_mb": ..., ...}

Each batch size runs in a fresh interpreter (its own engine load and memory
peak). A batch is ``b`` agents, each with its own few-shot prompt (a shared
instruction prefix, as agents of one scenario have, then the agent's own
lines), sampled at temperature 0.8 (``top_p`` 1.0 unless ``--top-p``: on this
CPU, nucleus sampling over Gemma's 262k-token vocabulary costs more than the
model at batch 64) up to ``max_tokens`` tokens; one warm-up
batch, then ``repeats`` timed batches whose prompts differ per repeat (so the
prefix cache helps only as it would across ticks). ``tokens_per_s`` counts the
output tokens vLLM reports, over the wall time of ``generate``; the medians
over repeats are reported. Memory: ``peak_rss_self_mb`` and
``peak_rss_children_mb`` are ``getrusage`` peaks of this process and of the
largest child it reaped (read after the engine is closed); vLLM's model
worker is a grandchild, so that misses most of the engine. ``tree_rss_mb`` is
the largest sampled sum of RSS over the whole process tree (psutil, every
0.25 s; shared pages count once per process). ``peak_rss_mb`` is the larger of
``self + children`` and ``tree_rss_mb``.
"""
from __future__ import annotations

import argparse
import resource
import threading
import time

import numpy as np

from socius.bench.common import emit, median, run_case

MODULE = "socius.bench.local_engine"

SIZES = {
    "small": {"batches": [1, 8], "max_tokens": 16, "repeats": 1},
    "large": {"batches": [1, 64], "max_tokens": 64, "repeats": 3},
}

PREFIX = (
    "The following are short diary entries written by residents of a small town.\n"
    "Entry by Ana, 34, nurse: Long shift today. The new hospital wing is finally open and the "
    "patients seem calmer. I walked home by the river.\n"
    "Entry by Bo, 19, student: Exams next week. Spent the afternoon in the library with friends, "
    "then we cooked pasta together.\n"
)
NAMES = ["Maria", "Li", "Sam", "Noor", "Tom", "Eva", "Raj", "Ines", "Omar", "Kate", "Yuki", "Paul"]
JOBS = ["teacher", "engineer", "farmer", "baker", "driver", "artist", "nurse", "clerk"]


def prompts_for(batch: int, repeat: int) -> list[str]:
    """``batch`` distinct prompts sharing :data:`PREFIX`; ``repeat`` changes the day."""
    return [f"{PREFIX}Entry by {NAMES[i % len(NAMES)]} {i}, {20 + (i * 7) % 50}, "
            f"{JOBS[i % len(JOBS)]}, day {repeat + 1}:" for i in range(batch)]


class _TreeRSS:
    """Samples the summed RSS of this process and its descendants in a thread."""

    def __init__(self, every_s: float = 0.25):
        self.peak_mb, self.every_s = 0.0, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self._stop.wait(self.every_s)

    def __enter__(self) -> "_TreeRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_one(batch: int, max_tokens: int, repeats: int, top_p: float = 1.0) -> dict:
    from socius.llm import RequestBatch, Sampling
    from socius.llm.engines.local import LocalEngine, prepare_local_model

    with _TreeRSS() as tree:
        t0 = time.perf_counter()
        prepare_local_model()
        prepare_s = time.perf_counter() - t0
        engine = LocalEngine(max_num_seqs=max(batch, 1))
        try:
            sampling = Sampling(temperature=0.8, top_p=top_p, max_tokens=max_tokens)

            def make(rep: int) -> RequestBatch:
                return RequestBatch(prompts_for(batch, rep), sampling, "local",
                                    n=np.ones(batch, dtype=np.int32),
                                    seeds=np.arange(batch, dtype=np.int64) + 1000 * rep,
                                    entities=np.arange(batch, dtype=np.int64))

            engine.generate(make(0))                              # warm-up
            tok_s, cpm, wall, mean_out = [], [], [], []
            for rep in range(1, repeats + 1):
                b = make(rep)
                t = time.perf_counter()
                out = engine.generate(b)
                dt = time.perf_counter() - t
                if out.failed.any():
                    raise SystemExit(f"batch {batch}: failed requests: {out.errors[out.failed][:3]}")
                tok_s.append(float(out.output_tokens.sum()) / dt)
                cpm.append(batch / dt * 60.0)
                wall.append(dt)
                mean_out.append(float(out.output_tokens.mean()))
            load_s = engine.load_s
        finally:
            engine.close()
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {"bench": "local_engine", "batch": batch,
            "tokens_per_s": round(median(tok_s), 1),
            "completions_per_min": round(median(cpm), 1),
            "load_s": round(load_s, 1),
            "peak_rss_mb": round(max(self_mb + child_mb, tree.peak_mb), 1),
            "peak_rss_self_mb": round(self_mb, 1), "peak_rss_children_mb": round(child_mb, 1),
            "tree_rss_mb": round(tree.peak_mb, 1),
            "batch_s": round(median(wall), 2), "mean_output_tokens": round(median(mean_out), 1),
            "max_tokens": max_tokens, "top_p": top_p, "repeats": repeats, "prepare_s": round(prepare_s, 1)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="large")
    ap.add_argument("--batches", type=int, nargs="+", help="batch sizes (default: from --size)")
    ap.add_argument("--max-tokens", type=int)
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one case here
    a = ap.parse_args(argv)
    cfg = SIZES[a.size]
    max_tokens = a.max_tokens or cfg["max_tokens"]
    repeats = a.repeats or cfg["repeats"]
    if a.one is not None:
        emit(run_one(a.one, max_tokens, repeats, a.top_p))
        return
    for b in a.batches or cfg["batches"]:
        for rec in run_case(MODULE, ["--one", str(b), "--max-tokens", str(max_tokens),
                                     "--repeats", str(repeats), "--top-p", str(a.top_p)]):
            emit(rec)


if __name__ == "__main__":     # vLLM starts child processes: the guard is required
    main()
