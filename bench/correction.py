"""The online correction loop's cost at tick boundaries, and the mock experiment's wall time.

A mock guess run with ``--correct-every K`` (rule judges, placeholder
adapters: no training) is timed boundary by boundary: the loop's share is
what a run pays for labelling, judging and switching on its tick thread
(training itself runs in another process). The same run is then replayed
from its log and must reach the same ``state_hash`` with no loop.
``--experiment`` also times ``socius experiment correction`` on the mock. ::

    python -m socius.bench.correction --agents 2000 --ticks 12 --every 3
    python -m socius.bench.correction --agents 200 --experiment

One JSON line: ``{"bench": "correction", "loop_s": [...], "tick_s": ..., "replay_same_hash": true, ...}``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
import types
from pathlib import Path

from .common import emit, median, peak_rss_mb


def run(agents: int, ticks: int, every: int, experiment: bool) -> dict:
    from socius.app.config import build_config
    from socius.app.engines import EngineChoice
    from socius.app.experiment import run_experiment
    from socius.app.loop import correction_loop, with_loop
    from socius.app.registry import get_scenario
    from socius.app.run import run_scenario
    from socius.correct.loop import read_rounds

    sc = get_scenario("guess")
    cfg = build_config(sc.config, {"agents": agents})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        args = types.SimpleNamespace(correct_every=every, judge="rule:all", method="kto", correct_sample=None,
                                     correct_cohort=None, correct_wait=False, correct_name="online",
                                     correct_base=None, correct_max_steps=None, seed=1, out=out, replay=None)
        loop = correction_loop(args, sc, EngineChoice(kind="mock"))
        spent: list[float] = []

        def timed(w, total):
            t = time.perf_counter()
            loop(w, total)
            spent.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        res = run_scenario(sc, cfg, seed=1, ticks=ticks, out=out, progress=with_loop(None, timed),
                           engine=EngineChoice(kind="mock"))
        wall = time.perf_counter() - t0
        loop.close()
        replay = run_scenario(sc, cfg, seed=1, ticks=ticks, out=Path(tmp) / "replay",
                              engine=EngineChoice(kind="mock", replay=out))
        rounds = read_rounds(out)
        record = {"bench": "correction", "agents": agents, "ticks": ticks, "every": every, "run_s": round(wall, 3),
                  "loop_s_total": round(sum(spent), 3),
                  "loop_s_round_median": round(median([s for i, s in enumerate(spent) if (i + 1) % every == 0]
                                                      or [0.0]), 4),
                  "rounds": len(rounds), "labels": sum(r.get("labels", 0) for r in rounds),
                  "switches": sum("switch" in r["events"] for r in rounds),
                  "replay_same_hash": replay.state_hash == res.state_hash}
        if experiment:
            t = time.perf_counter()
            run_experiment(Path(tmp) / "exp", agents=min(agents, 40), say=lambda *a: None)
            record["experiment_s"] = round(time.perf_counter() - t, 1)
    record["peak_rss_mb"] = peak_rss_mb()
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=500)
    p.add_argument("--ticks", type=int, default=12)
    p.add_argument("--every", type=int, default=3)
    p.add_argument("--experiment", action="store_true", help="also time the mock correction experiment")
    a = p.parse_args(argv)
    record = run(a.agents, a.ticks, a.every, a.experiment)
    emit(record)
    return 0 if record["replay_same_hash"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
