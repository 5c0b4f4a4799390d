"""CI check: the main job's first round on the local engine, within a budget of this machine's bench figure.

::

    python -m socius.bench.local_engine --dtype float32 --rounds 1 > bench.jsonl    # the reference, just before
    socius run guess --agents 300 --rounds 3 --seed 1 --out runs/guess --quiet     # the main job (engine local)
    python -m socius.bench.local_budget runs/guess --bench bench.jsonl --budget 2.5 # exit 1 when over

No absolute time: a CPU twice as slow makes both figures twice as slow. The
run's first round — the rows of its first tick in ``decisions.parquet`` (under
MPI ``decisions/rank-*.parquet``, summed): ``engine_s`` over its completions —
must take at most ``budget`` × ``completions`` × the reference seconds per
completion, the smallest ``s_per_completion`` among the bench's ``local_main_job``
lines (the fastest dtype this machine has). A default that picks a dtype the
CPU computes slowly (bf16 on an AVX2-only CPU: ~4× slower) fails it; the
load average of the moment is printed beside the verdict.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FirstRound", "first_round", "reference_s_per_completion", "check_budget", "main"]


@dataclass(frozen=True)
class FirstRound:
    """The first tick's LLM work in a run directory."""

    tick: int
    engine_s: float
    requests: int
    completions: int


def _decision_tables(run_dir: Path):
    import pyarrow.parquet as pq

    from socius.app.run import decision_files
    files = decision_files(run_dir)
    if not files:
        raise FileNotFoundError(f"{run_dir}: no decisions.parquet (not a run directory of an LLM scenario)")
    return [pq.read_table(f, columns=["tick", "engine_s", "requests", "completions"]) for f in files]


def first_round(run_dir: str | os.PathLike) -> FirstRound:
    """The first tick's summed ``engine_s``, requests and completions over every decision (and rank)."""
    import numpy as np

    ticks, eng, req, comp = [], [], [], []
    for t in _decision_tables(Path(run_dir)):
        ticks.append(t["tick"].to_numpy())
        eng.append(t["engine_s"].to_numpy())
        req.append(t["requests"].to_numpy())
        comp.append(t["completions"].to_numpy())
    tick = np.concatenate(ticks)
    if tick.size == 0:
        raise ValueError(f"{run_dir}: decisions.parquet has no rows")
    first = tick == tick.min()
    return FirstRound(int(tick.min()), float(np.concatenate(eng)[first].sum()),
                      int(np.concatenate(req)[first].sum()), int(np.concatenate(comp)[first].sum()))


def reference_s_per_completion(lines, dtype: str | None = None) -> float:
    """The smallest ``s_per_completion`` among the ``local_main_job`` records ``lines`` (dicts or JSON
    text lines), only those of ``dtype`` if given; ``ValueError`` when there is none."""
    best = None
    for line in lines:
        rec = json.loads(line) if isinstance(line, str) else line
        if not isinstance(rec, dict) or rec.get("bench") != "local_main_job":
            continue
        if dtype is not None and rec.get("dtype") != dtype:
            continue
        v = float(rec["s_per_completion"])
        if v > 0 and (best is None or v < best):
            best = v
    if best is None:
        raise ValueError("no local_main_job record with s_per_completion" + (f" for dtype {dtype}" if dtype else ""))
    return best


def check_budget(first: FirstRound, s_per_completion: float, budget: float) -> tuple[bool, str]:
    """``(ok, message)``: is ``first.engine_s`` at most ``budget`` × completions × ``s_per_completion``?"""
    if budget <= 0 or s_per_completion <= 0:
        raise ValueError(f"budget and s_per_completion must be > 0, got {budget} and {s_per_completion}")
    allowed = budget * first.completions * s_per_completion
    ok = first.engine_s <= allowed
    ratio = first.engine_s / (first.completions * s_per_completion) if first.completions else 0.0
    msg = (f"first round (tick {first.tick}): {first.engine_s:.1f} s for {first.completions} completions "
           f"({first.requests} requests) = {ratio:.2f}× the bench's {s_per_completion:.3f} s per completion; "
           f"budget {budget:g}× = {allowed:.1f} s: {'ok' if ok else 'OVER BUDGET'}")
    return ok, msg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path, help="the main job's run directory (socius run ... --out DIR)")
    ap.add_argument("--bench", type=Path, required=True, help="JSON lines of bench/local_engine.py --dtype ...")
    ap.add_argument("--budget", type=float, default=2.5, help="allowed multiple of the bench figure (default 2.5)")
    ap.add_argument("--dtype", help="compare with the bench line of this dtype only (default: the fastest)")
    a = ap.parse_args(argv)
    try:
        ref = reference_s_per_completion(a.bench.read_text().splitlines(), a.dtype)
        first = first_round(a.run_dir)
        ok, msg = check_budget(first, ref, a.budget)
    except (OSError, ValueError, KeyError) as e:
        print(f"local_budget: error: {e}", file=sys.stderr)
        return 2
    print(f"{msg} (load average {', '.join(f'{x:.2f}' for x in os.getloadavg())})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
