"""Run-side glue of the online correction loop, and ``socius experiment correction``.

``socius run … --correct-every K --judge rule:all|rule:NAME[,NAME]|llm[:NAME] --method sft|kto|dpo
[--correct-sample SPEC] [--correct-cohort EXPR] [--correct-wait] [--correct-name NAME] [--correct-base PATH]``:
the runner's ``progress`` hook gets a :class:`socius.correct.loop.CorrectionLoop` (:func:`correction_loop`,
:func:`with_loop`), which runs on rank 0 at every tick boundary, before the snapshot. Off under
``--replay`` (the recorded switches answer). Over several MPI ranks rank 0 labels, trains and
decides, and every rank switches at the same tick (:mod:`socius.correct.rank_switch`); the other
ranks get no loop object. Training needs the run's model weights: the ``local`` and ``vllm``
engines' model (or ``--correct-base``); the ``mock`` engine has none, so its rounds publish
placeholder adapters (:func:`~socius.correct.loop.placeholder_trainer`) — the machinery, no learning.
The experiment is :mod:`socius.correct.experiment` driven by :mod:`socius.app.experiment`.
"""
from __future__ import annotations

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
    g.add_argument("--judge", default="rule:all",
                   help="rule:all, rule:NAME[,NAME] or llm[:NAME] (default rule:all)")
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


def correction_loop(args, scenario, engine, ranks=None, trainer=None):
    """The loop ``socius run`` asked for, or None (no ``--correct-every``, or ``--replay``)."""
    if not getattr(args, "correct_every", 0) or getattr(args, "replay", None) is not None:
        return None
    from socius.correct.loop import CorrectionLoop, LoopSettings, placeholder_trainer
    if args.out is None:
        raise ConfigError("--correct-every: needs --out (labels and adapters live in the run directory)")
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
    from socius.correct.judges import select_judges
    from .judge import llm_judge_fn
    kind, name, _ = select_judges(args.judge, scenario.judges, "--judge", scenario.name)
    judge = llm_judge_fn(args.out, name, engine, args.seed, args.method != "kto") if kind == "llm" else None
    loop = CorrectionLoop(args.out, settings, rules=scenario.judges, llm_judge=judge, trainer=trainer,
                          world_for_rules=lambda w: w)
    return loop if ranks is None or ranks.rank == 0 else None  # checked on every rank alike; runs on rank 0


def with_loop(progress, loop):
    """One ``progress(world, total)``: the loop first (what it schedules belongs in the snapshot), then ``progress``."""
    if loop is None:
        return progress

    def at_boundary(w, total):
        loop(w, total)
        if progress is not None:
            progress(w, total)
    return at_boundary


def _ints(flag: str, text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{flag}: expected comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 0:
        raise ConfigError(f"{flag}: expected integers >= 0, got {text!r}")
    return vals


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
    p.add_argument("--train-judge", default="llm",
                   help="judge of the training labels: llm, rule or rule:NAME[,NAME] (default llm)")
    p.add_argument("--score-judge", help="judge of the score: llm, rule or rule:NAME[,NAME] (default: the other "
                   "kind than --train-judge); never one that made the training labels")
    p.add_argument("--max-steps", type=int_flag("--max-steps", 1), default=20,
                   help="training steps per adapter (default 20)")
    p.add_argument("--lr", type=float, help="learning rate (default: the trainer's per method)")
    p.add_argument("--out", type=Path, required=True, help="the experiment's folder")


def _run_experiment(args) -> int:
    from rich.console import Console
    from rich.table import Table
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods if m not in ("sft", "kto", "dpo")]
    if bad or not methods:
        raise ConfigError(f"--methods: choose from sft, kto, dpo, got {args.methods!r}")
    if args.lr is not None and not 0 < args.lr < 1:
        raise ConfigError(f"--lr: expected a number in (0, 1), got {args.lr}")
    from .experiment import run_experiment
    console = Console(width=160)
    _, summary = run_experiment(args.out, args.experiment_scenario, args.engine, args.agents,
                                _ints("--labels", args.labels), methods, args.rounds, args.every,
                                tuple(range(args.seeds)), args.train_judge, args.score_judge, args.max_steps,
                                args.lr, say=console.print)
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
    console.print(f"table: {args.out / 'summary.parquet'} (per seed: results.parquet); "
                  f"plot: {args.out / 'correction.png'}")
    return 0


COMMANDS = (Command(("experiment", "correction"), "GenSim Fig. 4: held-out score vs labels and over rounds, "
                    "correction on vs off", _add_experiment_arguments, _run_experiment),)
