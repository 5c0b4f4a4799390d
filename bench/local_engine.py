"""The ``local`` engine on this CPU: the README's main job per dtype, and tokens/s by batch size.

::

    python -m socius.bench.local_engine --dtype bfloat16 --dtype float32   # the main job per dtype
    python -m socius.bench.local_engine --dtype float32 --isa-cap avx2     # as on an AVX2-only CPU
    python -m socius.bench.local_engine                     # batch 1 and 64 (needs the `local` extra)
    python -m socius.bench.local_engine --batches 1 8 64 --max-tokens 32 --repeats 5
    python -m socius.bench.local_engine --size small        # a quick smoke run

**The main job** (``--dtype``, repeatable; ``auto``: what the engine chooses
for this CPU) runs ``socius run guess --agents 300 --rounds 3 --seed 1 --engine
local`` (``--agents``, ``--rounds``) in a fresh process per dtype and reads its
run directory. One JSON line per dtype::

    {"bench": "local_main_job", "agents": 300, "dtype": "float32", "completions_per_min": ...,
     "s_per_round": ..., "s_per_completion": ..., "load_s": ..., "cpu_flags": [...],
     "isa_cap": null, "peak_rss_mb": ..., "loadavg": [...], ...}

``s_per_round``: the median over rounds of the round's decision time
(``wall_s`` of ``decisions.parquet``, or of every rank's file under MPI;
engine time is almost all of it);
``completions_per_min`` and ``s_per_completion``: completions over the rounds'
``engine_s``; ``load_s``: the run's ``build_s`` (engine start, and the model
conversion on a first run); ``loadavg`` (1, 5, 15 min) at the end of the case, ``loadavg_start`` at its start.
``onednn_fallback``: the engine logged vLLM's "fallback to torch linear" (bf16
on a CPU without native bf16). ``bench/local_budget.py`` compares a run with
``s_per_completion``.

``--isa-cap avx2`` runs the engine as an AVX2-only CPU would, on a CPU with
AVX-512: ``ONEDNN_MAX_CPU_ISA=AVX2`` (oneDNN in torch and in vLLM),
``ATEN_CPU_CAPABILITY=avx2`` (torch's vector kernels),
``MKL_ENABLE_INSTRUCTIONS=AVX2`` (MKL), and a ``sitecustomize`` (on
``PYTHONPATH``, so it runs in vLLM's spawned engine processes too) that makes
``torch.cpu._is_avx512_supported``, ``_is_avx512_bf16_supported``,
``_is_avx512_vnni_supported`` and ``_is_amx_tile_supported`` answer False: vLLM
reads those (torch's cpuinfo, which no variable caps) to load its AVX2 kernel
library (``vllm._C_AVX2``) instead of the AVX-512 one. Instruction set only: the
emulation keeps this CPU's cores, caches and clock.

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
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

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


#: run at the start of every Python process of a capped case (engine children included)
ISA_CAP_SITE = """import os
if os.environ.get("SOCIUS_ISA_CAP", "").lower() == "avx2":
    import torch.cpu as _cpu
    for _name in ("_is_avx512_supported", "_is_avx512_bf16_supported", "_is_avx512_vnni_supported",
                  "_is_amx_tile_supported", "_is_amx_fp16_supported"):
        if hasattr(_cpu, _name):
            setattr(_cpu, _name, lambda: False)
"""


def isa_cap_env(cap: str | None, folder: Path) -> dict[str, str]:
    """Environment that runs a process tree as on a CPU with at most ISA ``cap`` (``avx2``); writes
    ``folder/sitecustomize.py``. ``{}`` for no cap."""
    if cap is None:
        return {}
    if cap != "avx2":
        raise SystemExit(f"--isa-cap: only avx2 is supported, got {cap!r}")
    (folder / "sitecustomize.py").write_text(ISA_CAP_SITE)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2", "SOCIUS_ISA_CAP": "avx2", "PYTHONPATH": path}


def _round_figures(run_dir: Path) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from socius.app.run import decision_files
    t = pa.concat_tables([pq.read_table(f) for f in decision_files(run_dir)],
                         promote_options="permissive").to_pydict()   # one file, or one per MPI rank
    rounds: dict[int, list[float]] = {}
    for i, tick in enumerate(t["tick"]):
        r = rounds.setdefault(tick, [0.0, 0.0, 0, 0, 0])
        r[0] += t["wall_s"][i]                                      # the decision's wall time
        r[1] += t["engine_s"][i]
        r[2] += t["requests"][i]
        r[3] += t["completions"][i]
        r[4] += t["output_tokens"][i]
    per = [rounds[k] for k in sorted(rounds)]
    engine_s, completions = sum(r[1] for r in per), sum(r[3] for r in per)
    return {"s_per_round": round(median([r[0] for r in per]), 2),
            "round_s": [round(r[0], 2) for r in per],
            "completions_per_min": round(completions / engine_s * 60.0, 1) if engine_s else 0.0,
            "s_per_completion": round(engine_s / completions, 4) if completions else 0.0,
            "requests_per_round": [r[2] for r in per], "completions_per_round": [r[3] for r in per],
            "output_tokens_per_round": [r[4] for r in per]}


def run_main_job(dtype: str, agents: int, rounds: int, isa_cap: str | None, seed: int = 1) -> dict:
    """The README's main job with the local engine in ``dtype`` (``auto``: the CPU's choice), in a fresh
    process tree; the figures of its run directory (see the module docstring)."""
    from socius.llm.engines.cpu import capped_flags, choose_dtype, read_cpu_flags, relevant_flags

    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="socius-bench-") as tmp:
        env = {**os.environ, **isa_cap_env(isa_cap, Path(tmp))}
        run_dir = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "socius.app", "run", "guess", "--agents", str(agents), "--rounds", str(rounds),
               "--seed", str(seed), "--engine", "local", "--out", str(run_dir), "--quiet"]
        if dtype != "auto":
            (Path(tmp) / "engine.toml").write_text(f"dtype = {json.dumps(dtype)}\n")
            cmd += ["--engine-config", str(Path(tmp) / "engine.toml")]
        with _TreeRSS() as tree:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"main job ({dtype}, isa cap {isa_cap}) failed with exit code {proc.returncode}")
        info = json.loads((run_dir / "run.json").read_text())
        figures = _round_figures(run_dir)
        log = run_dir / "engine.log"
        fallback = log.is_file() and "fallback to torch linear" in log.read_text(errors="replace")
    flags = read_cpu_flags()
    chosen = choose_dtype(capped_flags(flags, env), None if dtype == "auto" else dtype)
    return {"bench": "local_main_job", "agents": agents, "rounds": rounds, "dtype": chosen.dtype,
            "dtype_reason": chosen.reason, **figures, "load_s": round(info["build_s"], 1),
            "run_s": round(info["run_s"], 1), "onednn_fallback": fallback,
            "cpu_flags": relevant_flags(flags), "isa_cap": isa_cap,
            "peak_rss_mb": round(tree.peak_mb, 1), "loadavg": [round(x, 2) for x in os.getloadavg()],
            "loadavg_start": [round(x, 2) for x in load0],
            "state_hash": info["state_hash"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", action="append", choices=["auto", "bfloat16", "float32"],
                    help="run the main job in this dtype (repeatable); without it: the batch-size bench")
    ap.add_argument("--agents", type=int, default=300, help="main job: agents (default 300)")
    ap.add_argument("--rounds", type=int, default=3, help="main job: rounds (default 3)")
    ap.add_argument("--isa-cap", choices=["avx2"], help="main job: run as on a CPU with at most this ISA")
    ap.add_argument("--size", choices=sorted(SIZES), default="large")
    ap.add_argument("--batches", type=int, nargs="+", help="batch sizes (default: from --size)")
    ap.add_argument("--max-tokens", type=int)
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one case here
    a = ap.parse_args(argv)
    if a.dtype:
        for dtype in a.dtype:
            emit(run_main_job(dtype, a.agents, a.rounds, a.isa_cap))
        return
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
