"""Run-side glue of the online correction loop, and ``socius experiment correction``.

``socius run … --correct-every K --judge rule:all|llm[:NAME] --method sft|kto|dpo [--correct-sample SPEC]
[--correct-cohort EXPR] [--correct-wait] [--correct-name NAME] [--correct-base PATH]``: the runner's
``progress`` hook gets a :class:`socius.correct.loop.CorrectionLoop` (:func:`correction_loop`,
:func:`with_loop`), which runs on rank 0 at every tick boundary, before the snapshot. Off under
``--replay`` (the recorded switches answer); a run over several MPI ranks is refused (the loop
schedules on rank 0 only). Training needs the run's model weights: the ``local`` and ``vllm``
engines' model (or ``--correct-base``); the ``mock`` engine has none, so its rounds publish
placeholder adapters (:func:`~socius.correct.loop.placeholder_trainer`) — the machinery, no learning.
The experiment is :mod:`socius.correct.experiment` driven by :func:`run_experiment` here.
"""
from __future__ import annotations

import types
from pathlib import Path

from socius.errors import ConfigError

from .registry import Command

__all__ = ["COMMANDS", "add_correct_arguments", "correction_loop", "with_loop"]


def add_correct_arguments(r) -> None:
    """The ``run`` command's correction-loop flags."""
    from .args import int_flag
    g = r.add_argument_group("online correction (issue 13)")
    g.add_argument("--correct-every", metavar="K", type=int_flag("--correct-every", 1), default=0,
                   help="label, train and switch every K ticks (needs --out)")
    g.add_argument("--judge", default="rule:all", help="rule:all, rule:NAME or llm[:NAME] (default rule:all)")
    g.add_argument("--method", default="kto", choices=("sft", "kto", "dpo"), help="training method (default kto)")
    g.add_argument("--correct-sample", metavar="SPEC", help="what to label per round, e.g. uniform:64 (default all)")
    g.add_argument("--correct-cohort", metavar="EXPR", help="who switches, e.g. 'Profile.age >= 30' (default all)")
    g.add_argument("--correct-wait", action="store_true", help="train at the boundary and switch at once")
    g.add_argument("--correct-name", default="online", help="adapter name (default online)")
    g.add_argument("--correct-base", metavar="PATH", type=Path, help="model folder to train on (default the run's)")
    g.add_argument("--correct-max-steps", metavar="N", type=int_flag("--correct-max-steps", 1),
                   help="training steps per round (default: the trainer's epochs)")


def _base(engine) -> str | None:
    """The transformers weights of the run's engine (None for mock/openai)."""
    config = dict(engine.config or {})
    if config.get("model") and Path(str(config["model"])).is_dir():
        return str(config["model"])
    if engine.kind == "local":
        from socius.llm.engines.local import prepare_local_model
        return str(prepare_local_model())
    return None


def _llm_judge(run_dir: Path, name: str, engine, seed: int, revise: bool):
    """``judge(rows, round) -> JudgeResult`` through the judge's own engine and log (``judges/<name>/``)."""
    def judge(rows, rnd):
        from socius.correct.judge_llm import LLMJudge, judge_policy
        from .engines import llm_resource
        shim = types.SimpleNamespace(name="judge", mock_policy=lambda cfg: judge_policy())
        llm = llm_resource(shim, None, seed, engine, run_dir / "judges" / name)
        model = "mock" if engine.kind == "mock" else Path(str(engine.config.get("model") or engine.kind)).name
        try:
            return LLMJudge(revise=revise, name=name).judge(rows, llm, model=model, seed=seed, round=rnd)
        finally:
            llm.close()
    return judge


def correction_loop(args, scenario, engine, ranks=None, trainer=None):
    """The loop ``socius run`` asked for, or None (no ``--correct-every``, or ``--replay``)."""
    if not getattr(args, "correct_every", 0) or getattr(args, "replay", None) is not None:
        return None
    from socius.correct.loop import CorrectionLoop, LoopSettings, placeholder_trainer
    if args.out is None:
        raise ConfigError("--correct-every: needs --out (labels and adapters live in the run directory)")
    if ranks is not None and ranks.size > 1:
        raise ConfigError("--correct-every: the online loop runs on one rank for now")
    if engine is None:
        raise ConfigError(f"--correct-every: scenario {scenario.name} makes no LLM decisions")
    base = str(args.correct_base) if args.correct_base else _base(engine)
    if trainer is None and base is None:
        if engine.kind != "mock":
            raise ConfigError(f"--correct-base: the {engine.kind} engine has no local weights to train on")
        trainer = placeholder_trainer
    settings = LoopSettings(every=args.correct_every, judge=args.judge, method=args.method,
                            sample=args.correct_sample, cohort=args.correct_cohort, wait=args.correct_wait,
                            name=args.correct_name, seed=args.seed, base=base,
                            chat=bool((engine.config or {}).get("chat", False)),
                            hparams={"max_steps": args.correct_max_steps} if getattr(args, "correct_max_steps", None)
                            else {})
    kind, _, name = args.judge.partition(":")
    judge = _llm_judge(args.out, name or "llm", engine, args.seed, args.method != "kto") if kind == "llm" else None
    return CorrectionLoop(args.out, settings, rules=scenario.judges, llm_judge=judge, trainer=trainer,
                          world_for_rules=lambda w: w)


def with_loop(progress, loop):
    """One ``progress(world, total)``: the loop first (what it schedules belongs in the snapshot), then ``progress``."""
    if loop is None:
        return progress

    def at_boundary(w, total):
        loop(w, total)
        if progress is not None:
            progress(w, total)
    return at_boundary


def _add_experiment_arguments(p) -> None:
    from .args import int_flag
    p.add_argument("--scenario", dest="experiment_scenario", default="guess", help="scenario (default guess)")
    p.add_argument("--engine", default="mock", choices=("mock", "local"), help="engine (default mock)")
    p.add_argument("--agents", type=int_flag("--agents", 4), default=40, help="agents (default 40)")
    p.add_argument("--labels", default="0,32,64,128", help="label counts for the single round (default 0,32,64,128)")
    p.add_argument("--methods", default="sft,kto,dpo", help="methods (default sft,kto,dpo)")
    p.add_argument("--rounds", type=int_flag("--rounds", 1), default=3, help="multi-round rounds (default 3)")
    p.add_argument("--every", type=int_flag("--every", 1), default=2, help="ticks per round (default 2)")
    p.add_argument("--seeds", type=int_flag("--seeds", 1), default=3, help="seeds (default 3)")
    p.add_argument("--train-judge", default="llm", help="judge of the training labels: llm or rule (default llm)")
    p.add_argument("--max-steps", type=int, default=20, help="training steps per adapter (default 20)")
    p.add_argument("--out", type=Path, required=True, help="the experiment's folder")


def _judge_fn(kind: str, scenario, engine, seed: int, revise: bool, name: str):
    """``fn(run_dir, rows, world) -> label table``: the scenario's rule judges, or an LLM judge."""
    import pyarrow as pa
    from socius.correct.labels import LABEL_SCHEMA
    if kind == "rule":
        if not scenario.judges:
            raise ConfigError(f"--train-judge: scenario {scenario.name} declares no rule judges")
        return lambda run_dir, rows, world: pa.concat_tables(
            [LABEL_SCHEMA.empty_table()] + [j.judge(rows, world).labels for j in scenario.judges])
    return lambda run_dir, rows, world: _llm_judge(Path(run_dir), name, engine, seed, revise)(rows, 0).labels


def _rows(run_dir, agents, lo: int, hi: int):
    """The answers of ``agents`` logged at ticks ``lo <= tick < hi`` in ``run_dir``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from socius.correct import load_replies
    r = load_replies(run_dir)
    t = r.column("tick")
    keep = pc.and_(pc.and_(pc.greater_equal(t, lo), pc.less(t, hi)),
                   pc.and_(pc.is_in(r.column("entity"), pa.array(agents)), pc.equal(r.column("kind"), "answer")))
    return r.filter(keep)


def run_experiment(out: Path, scenario: str = "guess", engine_kind: str = "mock", agents: int = 40,
                   labels=(0, 32, 64, 128), methods=("sft", "kto", "dpo"), rounds: int = 3, every: int = 2,
                   seeds=(0, 1, 2), train_judge: str = "llm", max_steps: int = 20, trainer=None, say=print):
    """Run the correction experiment into ``out`` (see :mod:`socius.correct.experiment`); returns
    ``(results, summary)`` tables, also written as ``results.parquet`` and ``summary.parquet``."""
    import math

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from socius.correct import LabelStore, load_replies
    from socius.correct.experiment import (MOCK_NOTE, held_out_split, plot_results, result_rows, score_agents,
                                           summarise)
    from socius.correct.loop import placeholder_trainer, sft_targets
    from socius.correct.sampling import sample
    from socius.correct.train import start_training
    from .config import build_config
    from .engines import EngineChoice
    from .fork import fork_run
    from .registry import ScenarioNotFound, get_scenario
    from .report import pyplot
    from .run import run_scenario

    if train_judge not in ("llm", "rule"):
        raise ConfigError(f"--train-judge: llm or rule, not {train_judge!r}")
    try:
        sc = get_scenario(scenario)
    except ScenarioNotFound as e:
        raise ConfigError(f"--scenario: {e}") from None
    if sc.mock_policy is None:
        raise ConfigError(f"--scenario: {sc.name} makes no LLM decisions")
    cfg = build_config(sc.config, {"agents": agents}, prefix="--agents: ")
    # local: the embedded vLLM engine with LoRA on, so the forks' switches load the adapters
    engine = EngineChoice(kind=engine_kind, config={"enable_lora": True} if engine_kind == "local" else {})
    if trainer is None:
        trainer = placeholder_trainer if engine_kind == "mock" else start_training
    label_with = _judge_fn(train_judge, sc, engine, 0, True, "train")
    score_with = _judge_fn("llm" if train_judge == "rule" else "rule", sc, engine, 0, False, "eval")
    kmax = max(labels)
    out.mkdir(parents=True, exist_ok=True)
    results = []

    def train(run_dir, name, method, table):
        table = sft_targets(table) if method == "sft" else table
        return trainer(run_dir, name, method, labels=table, max_steps=max_steps).wait()

    def arm(parent, at, dest, adapter, seed, agents_out):
        over = {"adapter_switches": [{"tick": at, "adapter": adapter[0], "path": adapter[1]}]} if adapter else {}
        res = fork_run(parent, at, dest, over, steps=at + every)
        return score_agents(score_with(dest, _rows(dest, agents_out, at, at + every), res.world), agents_out)

    for seed in seeds:
        d = out / f"seed-{seed}"
        n_train = max(1, agents // 2)
        t0 = every * max(1, math.ceil(kmax / n_train / every))
        base = run_scenario(sc, cfg, seed=seed, ticks=t0, out=d / "base", snapshot_every=every, engine=engine)
        logged = load_replies(d / "base")
        answers = logged.filter(pc.equal(logged.column("kind"), "answer"))
        train_ids, test_ids = held_out_split(np.unique(answers.column("entity").to_numpy()), seed)
        pool = _rows(d / "base", train_ids, 0, t0)
        pool = pool.take(pa.array(sample(pool, f"uniform:{min(kmax, pool.num_rows)}", seed), pa.int64()))
        rank = {(t, e, h): i for i, (t, e, h) in enumerate(zip(*(pool.column(c).to_pylist()
                                                                for c in ("tick", "entity", "prompt_hash"))))}
        all_labels = label_with(d / "base", pool, base.world)
        LabelStore(d / "base").append(all_labels)
        pos = np.array([rank.get(k, 1 << 30) for k in zip(*(all_labels.column(c).to_pylist()
                                                            for c in ("tick", "entity", "prompt_hash")))])
        say(f"seed {seed}: {len(train_ids)} train / {len(test_ids)} held-out agents, {all_labels.num_rows} labels "
            f"({train_judge} judge), past of {t0} ticks")
        zero = arm(d / "base", t0, d / "single-0", None, seed, test_ids)
        for method in methods:
            for k in labels:
                score, n = zero
                if k:
                    try:
                        m = train(d / "base", f"{method}{k}", method, all_labels.filter(pa.array(pos < k)))
                        score, n = arm(d / "base", t0, d / f"single-{method}-{k}", ("fix", m["path"]), seed, test_ids)
                    except ConfigError as e:  # too few rows for the method, a failed training
                        say(f"  {method} with {k} labels: skipped ({e})")
                        score, n = float("nan"), 0
                results.append(dict(part="single", method=method, labels=k, round=0, arm="on" if k else "off",
                                    seed=seed, score=score, n=n))
        method = methods[0]
        cum, prev, prev_off = all_labels, d / "base", d / "base"  # both arms fork from the snapshot at t0
        for r in range(rounds):
            t = t0 + r * every
            off = arm(prev_off, t, d / f"off-{r}", None, seed, test_ids)
            prev_off = d / f"off-{r}"
            results.append(dict(part="rounds", method=method, labels=cum.num_rows, round=r + 1, arm="off",
                                seed=seed, score=off[0], n=off[1]))
            try:
                m = train(prev, f"round{r}", method, cum)
                on = arm(prev, t, d / f"on-{r}", ("fix", m["path"]), seed, test_ids)
            except ConfigError as e:
                say(f"  round {r + 1}: skipped ({e})")
                break
            results.append(dict(part="rounds", method=method, labels=cum.num_rows, round=r + 1, arm="on",
                                seed=seed, score=on[0], n=on[1]))
            new = _rows(d / f"on-{r}", train_ids, t, t + every)
            new = new.take(pa.array(sample(new, f"uniform:{min(kmax, new.num_rows)}", seed + r + 1), pa.int64()))
            cum = pa.concat_tables([cum, label_with(d / f"on-{r}", new, None)])
            prev = d / f"on-{r}"
    table = result_rows(results)
    summary = summarise(table)
    for name, t in (("results.parquet", table), ("summary.parquet", summary)):
        pq.write_table(t, out / f".{name}.tmp")
        (out / f".{name}.tmp").replace(out / name)
    plt = pyplot()
    note = MOCK_NOTE if engine_kind == "mock" else ""
    if plt is not None:
        plot_results(summary, out / "correction.png", plt, title=note[:90])
    (out / "note.md").write_text(note + "\n")
    return table, summary


def _ints(flag: str, text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{flag}: expected comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 0:
        raise ConfigError(f"{flag}: expected integers >= 0, got {text!r}")
    return vals


def _run_experiment(args) -> int:
    from rich.console import Console
    from rich.table import Table
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods if m not in ("sft", "kto", "dpo")]
    if bad or not methods:
        raise ConfigError(f"--methods: choose from sft, kto, dpo, got {args.methods!r}")
    console = Console(width=160)
    _, summary = run_experiment(args.out, args.experiment_scenario, args.engine, args.agents, _ints("--labels", args.labels),
                                methods, args.rounds, args.every, tuple(range(args.seeds)), args.train_judge,
                                args.max_steps, say=console.print)
    t = Table(title=f"correction experiment: score of held-out agents (1-5), mean ± std over {args.seeds} seeds")
    for c in ("part", "method", "labels", "round", "arm", "score", "seeds", "replies"):
        t.add_column(c, justify="left" if c in ("part", "method", "arm") else "right")
    for r in summary.to_pylist():
        t.add_row(r["part"], r["method"], str(r["labels"]), str(r["round"]), r["arm"],
                  f"{r['score_mean']:.3f} ± {r['score_std'] or 0:.3f}", str(r["seeds"]), str(r["replies"]))
    console.print(t)
    note = (args.out / "note.md").read_text().strip()
    if note:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"table: {args.out / 'summary.parquet'} (per seed: results.parquet); plot: {args.out / 'correction.png'}")
    return 0


COMMANDS = (Command(("experiment", "correction"), "GenSim Fig. 4: held-out score vs labels and over rounds, "
                    "correction on vs off", _add_experiment_arguments, _run_experiment),)
