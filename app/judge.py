"""``socius correct judge RUN_DIR``: score and revise a run's replies with a rule or an LLM judge.

``--judge rule:NAME`` runs one of the run's scenario's rule judges
(``rule:A,B``: those; ``rule:all`` or ``rule``: every one); ``--judge llm`` (or ``llm:NAME``) the LLM judge,
through any engine (``--engine``, ``--engine-config``; default ``local``),
with rubrics from ``--rubrics FILE`` (a TOML/JSON table ``decision =
"rubric"``, globs allowed; default one generic rubric for every decision).
Labels are appended to the run's label store (``RUN_DIR/labels/``); a label
already there (same ``label_id``) is not written twice.

An LLM judge keeps its own folder, ``RUN_DIR/judges/<NAME>/``: the response
log of its calls (``responses/``) and ``judge.json``, one entry per judging
*round* (the judge world's tick: model, seed, sample, rubrics, revise), so
``--replay [ROUND]`` re-asks a round's requests from the log with no LLM
(the settings come from ``judge.json``) and gives the same labels.
"""
from __future__ import annotations

import json
import os
import sys
import types
from datetime import datetime, timezone
from pathlib import Path

from socius.errors import ConfigError
from socius.llm.engines.factory import ENGINES

from .registry import Command

__all__ = ["COMMANDS", "llm_judge_fn"]


def add_arguments(p) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run directory to judge")
    p.add_argument("--judge", required=True, metavar="rule:NAME[,NAME]|rule:all|llm[:NAME]",
                   help="rule judges of the run's scenario (rule:all or rule: every one), or the LLM judge")
    p.add_argument("--engine", choices=ENGINES, default=None, help="LLM judge's engine (default: local)")
    p.add_argument("--engine-config", type=Path, help="TOML or JSON table of engine options")
    p.add_argument("--rubrics", type=Path, help="LLM judge: TOML/JSON table of decision (or glob) = rubric text")
    p.add_argument("--sample", metavar="SPEC", help="which replies to judge (socius.correct.sampling; default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and of the judge's requests")
    p.add_argument("--revise", action="store_true", help="LLM judge: also ask for a revised reply")
    p.add_argument("--replay", nargs="?", const=-1, type=int, metavar="ROUND",
                   help="LLM judge: answer from the judge's own log (a round; default the last)")


def _run_info(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text())
    except OSError:
        raise ConfigError(f"argument RUN_DIR: {run_dir} is not a run directory (no run.json)") from None
    except ValueError as e:
        raise ConfigError(f"{run_dir / 'run.json'}: not valid JSON ({e})") from None


def _final_world(scenario, info: dict, run_dir: Path):
    """The run's final world: built from run.json's config and restored from its last snapshot."""
    from .config import build_config
    from .engines import EngineChoice
    from .run import build_world, find_snapshot, restore_world
    snap = find_snapshot(run_dir)
    if snap is None:
        raise ConfigError(f"{run_dir}: no snapshot to restore the final world from (a rule judge needs it)")
    cfg = build_config(scenario.config, info.get("config") or {})
    world = build_world(scenario, cfg, int(info.get("seed", 0)), EngineChoice(kind="mock"), None)
    restore_world(world, snap, None)
    return world


def _sample(replies, spec: str | None, seed: int, world):
    if spec is None:
        return replies
    try:
        from socius.correct.sampling import sample
    except ModuleNotFoundError:
        raise ConfigError("argument --sample: sampling is not available (socius.correct.sampling)") from None
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    eligible = np.asarray(pc.and_(pc.equal(replies.column("kind"), "answer"),
                                  pc.equal(replies.column("error").fill_null(""), "")).to_numpy(zero_copy_only=False),
                          dtype=bool)  # what a judge can score: answers the engine gave
    return replies.take(pa.array(sample(replies, spec, seed, world=world, eligible=eligible), pa.int64()))


def _rubrics(path: Path | None) -> dict:
    from socius.correct.judge_llm import DEFAULT_RUBRIC
    if path is None:
        return {"*": DEFAULT_RUBRIC}
    from .config import load_config_file
    table = load_config_file(path)
    bad = [k for k, v in table.items() if not isinstance(v, str) or not v.strip()]
    if bad or not table:
        raise ConfigError(f"argument --rubrics: {path} must map decision names to rubric texts (bad: {bad})")
    return table


def _model_name(llm, kind: str, config: dict) -> str:
    if kind == "mock":
        return "mock"
    model = config.get("model") or getattr(getattr(llm.engines.get(""), "config", None), "model", None)
    return Path(str(model)).name if model else kind


def _llm_judge(args, name: str, replies, world):
    """Run (or replay) one round of the LLM judge ``name``; returns its result."""
    from socius.correct.judge_llm import LLMJudge, judge_policy
    from .engines import engine_choice, llm_resource
    from socius.llm import LLM, ReplayEngine
    folder = args.run_dir / "judges" / name
    manifest = folder / "judge.json"
    rounds = json.loads(manifest.read_text())["rounds"] if manifest.is_file() else []
    if args.replay is not None:
        if not rounds:
            raise ConfigError(f"argument --replay: judge {name} has no logged rounds in {folder}")
        r = args.replay if args.replay >= 0 else len(rounds) - 1
        if not 0 <= r < len(rounds):
            raise ConfigError(f"argument --replay: judge {name} has rounds 0..{len(rounds) - 1}, not {r}")
        entry = rounds[r]
        llm = LLM({}, replay=ReplayEngine(folder / "responses"))
    else:
        entry = {"round": len(rounds), "seed": args.seed, "sample": args.sample, "revise": args.revise,
                 "rubrics": _rubrics(args.rubrics)}
        shim = types.SimpleNamespace(name="judge", mock_policy=lambda cfg: judge_policy())
        choice = engine_choice(args, args.command_parser, shim)
        llm = llm_resource(shim, None, args.seed, choice, folder)
        entry.update(engine=choice.kind, model=_model_name(llm, choice.kind, choice.config))
    judge = LLMJudge(rubrics=entry["rubrics"], revise=entry["revise"], name=name)
    rows = _sample(replies, entry["sample"], entry["seed"], world)
    try:
        result = judge.judge(rows, llm, model=entry["model"], seed=entry["seed"], round=entry["round"])
    finally:
        llm.close()
    if args.replay is None:
        entry["time"] = datetime.now(timezone.utc).isoformat()
        tmp = folder / f".judge.json.tmp-{os.getpid()}"
        tmp.write_text(json.dumps({"rounds": rounds + [entry]}, indent=2) + "\n")
        tmp.replace(manifest)
    return result


def llm_judge_fn(run_dir: Path, name: str, engine, seed: int, revise: bool):
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


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from socius.correct import LabelStore, load_replies
    from socius.correct.judges import score_counts, select_judges
    from .registry import ScenarioNotFound, get_scenario

    info = _run_info(args.run_dir)
    try:
        scenario = get_scenario(info["scenario"])
    except (ScenarioNotFound, KeyError) as e:
        raise ConfigError(f"{args.run_dir / 'run.json'}: unknown scenario ({e})") from None
    kind, name, rules = select_judges(args.judge, scenario.judges, "argument --judge", scenario.name)
    if kind == "rule" and (args.replay is not None or args.revise or args.rubrics or args.engine):
        raise ConfigError("argument --judge: --engine, --rubrics, --revise and --replay are for the LLM judge")
    replies = load_replies(args.run_dir)
    needs_world = any(j.world for j in rules) or "per-cohort" in (args.sample or "")
    world = _final_world(scenario, info, args.run_dir) if needs_world else None
    if kind == "rule":
        rows = _sample(replies, args.sample, args.seed, world)
        results = [j.judge(rows, world) for j in rules]
    else:
        results = [_llm_judge(args, name, replies, world)]
    store = LabelStore(args.run_dir)
    existing = store.read()
    seen = set(existing.column("label_id").to_pylist())
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"labels for {args.run_dir}")
    for col in ("source", "decision", "replies", "labelled", "mean score", "1", "2", "3", "4", "5", "extracted",
                "fell back (no label)"):
        table.add_column(col, justify="left" if col in ("source", "decision") else "right")
    written = 0
    for res in results:
        labels = res.labels
        if labels.num_rows:
            import pyarrow as pa
            fresh = [i for i, lid in enumerate(labels.column("label_id").to_pylist()) if lid not in seen]
            new = labels.take(pa.array(fresh, pa.int64()))
            store.append(new)
            written += new.num_rows
        hist = score_counts(labels)
        for dec, c in sorted(res.counts.items()):
            h = hist.get(dec)
            mean = f"{(h * range(1, 6)).sum() / h.sum():.2f}" if h is not None and h.sum() else "-"
            table.add_row(res.source, dec, str(c["replies"]), str(c["labelled"]), mean,
                          *(str(int(x)) for x in (h if h is not None else [0] * 5)), str(c["extracted"]),
                          str(c["fallback"] + c["failed"]))
    console.print(table)
    fell_back = sum(r.unlabelled for r in results)
    sampled = "" if args.sample else " (all replies: no --sample)"
    console.print(f"{written} new labels in {store.dir}{sampled}; {fell_back} judge calls fell back (no label)")
    return 0


COMMANDS = (Command(path=("correct", "judge"), help="score (and revise) a run's replies with a rule or an LLM judge",
                    add_arguments=add_arguments, run=run),)
