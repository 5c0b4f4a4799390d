"""``socius experiment correction``: the runs, forks and trainings of GenSim Fig. 4 (the computing is
:mod:`socius.correct.experiment`).

Per seed: a base run snapshots every ``every`` ticks; its train agents' replies are labelled by the
training judge; for each method and label count an adapter is trained and the base run is forked with
every agent switched to it; the score is the held-out agents' mean by the *scoring* judge over the
fork's next ``every`` ticks. Multi-round: both arms fork from the same snapshot, the ``on`` arm trains
on all labels so far each round. Round 1 of the two arms is the same measurement as the single-round
points at 0 and at the largest label count of the first method, so those forks are reused, not rerun.

Judges (``--train-judge`` / ``--score-judge``): ``llm``, ``rule`` (every rule judge of the scenario) or
``rule:NAME[,NAME…]`` (:func:`~socius.correct.judges.select_judges`); the two must not share a judge
(refused: the evaluation would be circular).

Engines: ``mock`` (placeholder adapters: the machinery, not learning) or ``local``. With ``local`` one
engine is started for the whole experiment and lent to every run and judge (the runs' ``EngineChoice``
carries it as ``instance``; :func:`~socius.app.engines.llm_resource` wraps it in a :class:`~socius.llm.engines.lent.LentEngine`):
an engine start costs about a minute on a small CPU, and the experiment makes tens of runs. A lent engine is
never stopped by a run; at a run's end it unloads the adapters that run loaded, so the next run
starts on the plain model. After the last seed the first no-adapter fork is run again on that engine
and its replies compared with the first time (``engine check`` in ``note.md``): a stale adapter left
in the engine would show there.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from socius.errors import ConfigError

__all__ = ["judge_spec", "run_experiment"]


def judge_spec(spec: str, scenario, flag: str) -> tuple[str, tuple]:
    """``("llm", ())`` or ``("rule", judges)`` for ``llm``, ``rule`` or ``rule:NAME[,NAME…]``
    (:func:`~socius.correct.judges.select_judges`; the experiment names its LLM judges itself)."""
    from socius.correct.judges import select_judges
    kind, _, rules = select_judges(spec, scenario.judges, flag, scenario.name)
    if kind == "llm" and spec != "llm":
        raise ConfigError(f"{flag}: the experiment names its LLM judges (train, eval): llm, not {spec!r}")
    return kind, rules


def _past_ticks(kmax: int, agents: int, every: int) -> int:
    """Ticks of the base run before the forks: whole rounds of ``every``, enough for the train agents
    (half of ``agents``) to have given ``kmax`` replies."""
    return every * max(1, math.ceil(kmax / max(1, agents // 2) / every))


def _labeller(kind: str, rules: tuple, engine, revise: bool, name: str):
    """``fn(run_dir, rows, world) -> label table`` by the rule judges or an LLM judge."""
    import pyarrow as pa
    from socius.correct.labels import LABEL_SCHEMA
    from .judge import llm_judge_fn
    if kind == "rule":
        return lambda run_dir, rows, world: pa.concat_tables(
            [LABEL_SCHEMA.empty_table()] + [j.judge(rows, world).labels for j in rules])
    return lambda run_dir, rows, world: llm_judge_fn(Path(run_dir), name, engine, 0, revise)(rows, 0).labels


def _rows(run_dir, agents, lo: int, hi: int):
    """The answers of ``agents`` logged at ticks ``lo <= tick < hi`` in ``run_dir``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from socius.correct import load_replies
    r = load_replies(run_dir, since_tick=lo, before_tick=hi)
    return r.filter(pc.and_(pc.is_in(r.column("entity"), pa.array(agents)), pc.equal(r.column("kind"), "answer")))


def _same_replies(a: Path, b: Path, lo: int, hi: int) -> tuple[int, int]:
    """``(identical, compared)``: the answers of runs ``a`` and ``b`` at ticks ``lo <= tick < hi``,
    matched by (tick, entity, prompt hash, completion index)."""
    import pyarrow.compute as pc
    from socius.correct import load_replies
    keys = ["tick", "entity", "prompt_hash", "completion_index"]
    ra, rb = (load_replies(d, since_tick=lo, before_tick=hi).select(keys + ["completion"]) for d in (a, b))
    both = ra.join(rb, keys, join_type="inner", right_suffix="_b")
    return int(pc.sum(pc.equal(both.column("completion"), both.column("completion_b"))).as_py() or 0), both.num_rows


def _start_engine(kind: str):
    """The engine the experiment lends to its runs (None for the mock: each run makes its own)."""
    if kind != "local":
        return None
    from socius.llm.engines.factory import make_engine
    return make_engine("local", config={"enable_lora": True})


def run_experiment(out: Path, scenario: str = "guess", engine_kind: str = "mock", agents: int = 40,
                   labels=(0, 32, 64, 128), methods=("sft", "kto", "dpo"), rounds: int = 3, every: int = 2,
                   seeds=(0, 1, 2), train_judge: str = "llm", score_judge: str | None = None, max_steps: int = 20,
                   lr: float | None = None, trainer=None, say=print):
    """Run the correction experiment into ``out`` (see the module docstring); returns ``(results,
    summary)`` tables, also written as ``results.parquet`` and ``summary.parquet``, with ``correction.png``
    and ``note.md``. ``score_judge`` None: the other kind than ``train_judge`` (llm ↔ every rule judge)."""
    from .registry import ScenarioNotFound, get_scenario
    try:
        sc = get_scenario(scenario)
    except ScenarioNotFound as e:
        raise ConfigError(f"--scenario: {e}") from None
    if sc.mock_policy is None:
        raise ConfigError(f"--scenario: {sc.name} makes no LLM decisions")
    if score_judge is None:
        score_judge = "rule" if train_judge.partition(":")[0] == "llm" else "llm"
    tk, tj = judge_spec(train_judge, sc, "--train-judge")
    sk, sj = judge_spec(score_judge, sc, "--score-judge")
    shared = {j.name for j in tj} & {j.name for j in sj}
    if (tk == sk == "llm") or shared:
        raise ConfigError(f"--score-judge: {score_judge} also makes the training labels ({train_judge}); "
                          "the evaluation would be circular")
    if engine_kind not in ("mock", "local"):
        raise ConfigError(f"--engine: mock or local, not {engine_kind!r}")
    out.mkdir(parents=True, exist_ok=True)
    t_start, load0 = time.perf_counter(), os.getloadavg()
    engine = _start_engine(engine_kind)
    try:
        rows, check = _seeds(out, sc, engine_kind, engine, agents, labels, methods, rounds, every, seeds,
                             (tk, tj, train_judge), (sk, sj, score_judge), max_steps, lr, trainer, say)
    finally:
        if engine is not None:
            engine.close()
    wall = time.perf_counter() - t_start
    return _write(out, rows, dict(scenario=sc.name, engine=engine_kind, agents=agents, labels=list(labels),
                                  methods=list(methods), rounds=rounds, every=every, seeds=list(seeds),
                                  train_judge=train_judge, score_judge=score_judge, max_steps=max_steps, lr=lr,
                                  wall_s=round(wall, 1), load_start=[round(x, 2) for x in load0],
                                  load_end=[round(x, 2) for x in os.getloadavg()], engine_check=check))


def _seeds(out, sc, engine_kind, engine, agents, labels, methods, rounds, every, seeds, train, score, max_steps, lr,
           trainer, say):
    """Every seed's runs (``engine``: the started engine lent to each, or None: each makes its own);
    returns (result dicts, engine check or None)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from socius.correct import LabelStore, load_replies
    from socius.correct.experiment import held_out_split, score_agents
    from socius.correct.loop import placeholder_trainer, sft_targets
    from socius.correct.sampling import run_world, sample
    from socius.correct.train import start_training
    from .config import build_config
    from .engines import EngineChoice
    from .fork import fork_run
    from .run import run_scenario

    cfg = build_config(sc.config, {"agents": agents}, prefix="--agents: ")
    # local: the embedded vLLM engine with LoRA on, so the forks' switches load the adapters; the judges'
    # resources are made from this choice too, so they borrow the same engine
    choice = EngineChoice(kind=engine_kind, config={"enable_lora": True} if engine_kind == "local" else {},
                          instance=engine)
    trainer = trainer or (placeholder_trainer if engine_kind == "mock" else start_training)
    label_with = _labeller(train[0], train[1], choice, True, "train")
    score_with = _labeller(score[0], score[1], choice, False, "eval")
    kmax, t_start = max(labels), time.perf_counter()
    results = []

    def clock() -> str:
        return f"[{time.perf_counter() - t_start:6.0f} s, load {os.getloadavg()[0]:.1f}]"

    def train_on(run_dir, name, method, table):
        table = sft_targets(table) if method == "sft" else table
        return trainer(run_dir, name, method, labels=table, max_steps=max_steps, lr=lr).wait()

    def arm(parent, at, dest, adapter, held):
        over = {"adapter_switches": [{"tick": at, "adapter": adapter[0], "path": adapter[1]}]} if adapter else {}
        res = fork_run(parent, at, dest, over, steps=at + every, engine=choice)
        return score_agents(score_with(dest, _rows(dest, held, at, at + every), res.world), held), res.world

    for seed in seeds:
        d = out / f"seed-{seed}"
        t0 = _past_ticks(kmax, agents, every)
        base = run_scenario(sc, cfg, seed=seed, ticks=t0, out=d / "base", snapshot_every=every, engine=choice)
        logged = load_replies(d / "base")
        answers = logged.filter(pc.equal(logged.column("kind"), "answer"))
        train_ids, test_ids = held_out_split(np.unique(answers.column("entity").to_numpy()), seed)
        pool = _rows(d / "base", train_ids, 0, t0)
        pool = pool.take(pa.array(sample(pool, f"uniform:{min(kmax, pool.num_rows)}", seed), pa.int64()))
        rank = {k: i for i, k in enumerate(zip(*(pool.column(c).to_pylist()
                                                for c in ("tick", "entity", "prompt_hash"))))}
        all_labels = label_with(d / "base", pool, base.world)
        LabelStore(d / "base").append(all_labels)
        pos = np.array([rank.get(k, 1 << 30) for k in zip(*(all_labels.column(c).to_pylist()
                                                            for c in ("tick", "entity", "prompt_hash")))])
        say(f"{clock()} seed {seed}: {len(train_ids)} train / {len(test_ids)} held-out agents, "
            f"{all_labels.num_rows} labels ({train[2]}), past of {t0} ticks")
        zero = arm(d / "base", t0, d / "single-0", None, test_ids)[0]
        done = {}  # (method, k) -> (score, n, fork dir): the round-1 "on" arm reuses (methods[0], kmax)
        for method in methods:
            for k in labels:
                score_n = zero
                if k:
                    try:
                        m = train_on(d / "base", f"{method}{k}", method, all_labels.filter(pa.array(pos < k)))
                        score_n = arm(d / "base", t0, d / f"single-{method}-{k}", ("fix", m["path"]), test_ids)[0]
                        done[(method, k)] = (*score_n, d / f"single-{method}-{k}")
                    except ConfigError as e:  # too few rows for the method, a failed training
                        say(f"  {method} with {k} labels: skipped ({e})")
                        score_n = (float("nan"), 0)
                    say(f"{clock()}   {method} {k:4d} labels: held-out score {score_n[0]:.3f} (n {score_n[1]})")
                results.append(dict(part="single", method=method, labels=k, round=0, arm="on" if k else "off",
                                    seed=seed, score=score_n[0], n=score_n[1]))
        method, cum = methods[0], all_labels
        prev, prev_off = d / "base", d / "single-0"  # both arms fork from the snapshot at t0
        for r in range(rounds):
            t = t0 + r * every
            if r:
                off = arm(prev_off, t, d / f"off-{r}", None, test_ids)[0]
                prev_off = d / f"off-{r}"
            else:
                off = zero  # the same fork as the single round's 0-label point
            results.append(dict(part="rounds", method=method, labels=cum.num_rows, round=r + 1, arm="off",
                                seed=seed, score=off[0], n=off[1]))
            try:
                if r == 0 and (method, kmax) in done:  # the same training set and fork as that point
                    *on, here = done[(method, kmax)]
                    world = None
                else:
                    m = train_on(prev, f"round{r}", method, cum)
                    here = d / f"on-{r}"
                    on, world = arm(prev, t, here, ("fix", m["path"]), test_ids)
            except ConfigError as e:
                say(f"  round {r + 1}: skipped ({e})")
                break
            say(f"{clock()}   round {r + 1}: off {off[0]:.3f}, on {on[0]:.3f} ({cum.num_rows} labels)")
            results.append(dict(part="rounds", method=method, labels=cum.num_rows, round=r + 1, arm="on",
                                seed=seed, score=on[0], n=on[1]))
            if r + 1 < rounds:  # the next round trains on these too
                new = _rows(here, train_ids, t, t + every)
                new = new.take(pa.array(sample(new, f"uniform:{min(kmax, new.num_rows)}", seed + r + 1), pa.int64()))
                cum = pa.concat_tables([cum, label_with(here, new, world if world is not None else run_world(here))])
            prev = here
    check = None
    if engine_kind == "local" and seeds:  # the first no-adapter fork again, after every adapter came and went
        d = out / f"seed-{seeds[0]}"
        t0 = _past_ticks(kmax, agents, every)
        fork_run(d / "base", t0, d / "check-0", {}, steps=t0 + every, engine=choice)
        same, n = _same_replies(d / "single-0", d / "check-0", t0, t0 + every)
        check = {"identical": same, "compared": n}
        say(f"{clock()} engine check: {same} of {n} replies of the no-adapter fork identical when run again")
    return results, check


def _write(out: Path, rows: list[dict], meta: dict):
    """``results.parquet``, ``summary.parquet``, ``experiment.json``, ``correction.png`` and ``note.md``."""
    import pyarrow.parquet as pq
    from socius.correct.experiment import MOCK_NOTE, plot_results, result_rows, summarise
    from .report import pyplot
    table = result_rows(rows)
    summary = summarise(table)
    for name, t in (("results.parquet", table), ("summary.parquet", summary)):
        pq.write_table(t, out / f".{name}.tmp")
        (out / f".{name}.tmp").replace(out / name)
    (out / "experiment.json").write_text(json.dumps(meta, indent=1) + "\n")
    note = MOCK_NOTE if meta["engine"] == "mock" else _note(meta)
    plt = pyplot()
    if plt is not None:
        plot_results(summary, out / "correction.png", plt, title=note[:90] if meta["engine"] == "mock" else
                     f"{meta['scenario']}, {meta['agents']} agents, train: {meta['train_judge']}, "
                     f"score: {meta['score_judge']}, {len(meta['seeds'])} seeds")
    (out / "note.md").write_text(note + "\n")
    return table, summary


def _note(meta: dict) -> str:
    """The note of a real-engine experiment: what was run, on what, how long."""
    check = meta.get("engine_check") or {}
    lines = [f"engine {meta['engine']}, scenario {meta['scenario']}, {meta['agents']} agents, seeds "
             f"{meta['seeds']}, labels {meta['labels']}, methods {meta['methods']}, {meta['rounds']} rounds of "
             f"{meta['every']} ticks, {meta['max_steps']} training steps (lr {meta['lr'] or 'default'}).",
             f"Training labels: {meta['train_judge']}; score: {meta['score_judge']} on the held-out agents.",
             f"Wall time {meta['wall_s'] / 60:.1f} min; load average {meta['load_start'][0]:.2f} at the start, "
             f"{meta['load_end'][0]:.2f} at the end (1-minute)."]
    if check:
        lines.append(f"Engine check: the no-adapter fork run again after every adapter was loaded and unloaded "
                     f"gave {check['identical']} of {check['compared']} replies identical.")
    return "\n".join(lines)
