"""The ``socius`` command line.

::

    socius list
    socius run NAME --agents N --steps T --seed S --out DIR [--config FILE]
                    [--snapshot-every K] [--resume DIR_OR_FILE] [--quiet]
    mpiexec -n 4 socius run NAME ...        (one world over 4 MPI ranks; same state_hash)
    socius profile SCENARIO --agents N --ticks T [--engine E] [--json] [--trace FILE] [--out DIR]
    socius experiment fluctuation --engine E --out DIR [--sizes N,N,...] [--runs R] [--seed S] [--full]

``--rounds`` is a synonym of ``--steps``. The last line printed by ``run`` is
``state_hash: <hex>`` of the final world, so anyone can check a rerun. Bad
flags or values print a message naming the flag or field and exit with code 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from socius.ecs import SnapshotError
from socius.errors import ConfigError, EngineSetupError, MissingExtraError
from socius.llm.engines.factory import ENGINES

from .config import build_config, load_config_file
from .registry import BUILTIN, ScenarioNotFound, builtin_scenarios, get_scenario
from .run import EngineChoice, SerialScenarioError, find_snapshot, run_scenario

EXIT_USAGE = 2


def _int_flag(flag: str, minimum: int):
    """An argparse type: an integer >= ``minimum``, errors naming ``flag``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{flag} must be >= {minimum}, got {v}")
        return v
    return parse


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be an integer, got {text!r}") from None


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="socius", description="Social simulation with LLM-driven agents at scale.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="list the built-in scenarios")
    r = sub.add_parser("run", help="run a scenario")
    r.add_argument("scenario", metavar="NAME", help=f"built-in ({', '.join(sorted(BUILTIN))}), "
                   "pkg.module:NAME or path/to/file.py")
    r.add_argument("--agents", type=_int_flag("--agents", 1), help="number of agents (scenario default if omitted)")
    r.add_argument("--steps", "--rounds", dest="steps", type=_int_flag("--steps/--rounds", 0), default=10,
                   help="ticks to run in total (default 10)")
    r.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    r.add_argument("--out", type=Path, help="run directory for metrics, snapshots and run.json")
    r.add_argument("--config", type=Path, help="TOML or JSON file with the scenario's config fields")
    r.add_argument("--snapshot-every", type=_int_flag("--snapshot-every", 0), default=0,
                   help="also snapshot every K ticks (needs --out)")
    r.add_argument("--resume", type=Path, help="continue from a run directory or snapshot file")
    r.add_argument("--engine", choices=ENGINES, default=None,
                   help="LLM engine for LLM scenarios (default: local, the embedded vLLM-on-CPU model)")
    r.add_argument("--engine-config", type=Path, help="TOML or JSON table of engine options")
    r.add_argument("--replay", type=Path, help="answer every LLM call from this run directory's response log")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    f = sub.add_parser("profile", help="profile a scenario: ticks/s, time and memory per system")
    f.add_argument("scenario", metavar="SCENARIO", help=f"built-in ({', '.join(sorted(BUILTIN))}), "
                   "pkg.module:NAME or path/to/file.py")
    f.add_argument("--agents", metavar="N", type=_int_flag("--agents", 1),
                   help="number of agents (scenario default if omitted)")
    f.add_argument("--ticks", metavar="T", type=_int_flag("--ticks", 1), default=10, help="profiled ticks (default 10)")
    f.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    f.add_argument("--engine", choices=ENGINES, default=None, help="LLM engine for LLM scenarios (default: local)")
    f.add_argument("--engine-config", type=Path, help="TOML or JSON table of engine options")
    f.add_argument("--config", type=Path, help="TOML or JSON file with the scenario's config fields")
    f.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    f.add_argument("--trace", metavar="FILE", type=Path,
                   help="also write a Chrome trace / Perfetto JSON of the ticks to FILE")
    f.add_argument("--out", metavar="DIR", type=Path,
                   help="where to save the report (default runs/profile-<scenario>-<time>)")
    from socius.scenarios.recommender.fluctuation import add_parser as add_experiment_parser
    add_experiment_parser(sub)
    return p


def _cmd_list(console: Console) -> int:
    t = Table(title="Socius scenarios")
    t.add_column("name")
    t.add_column("ticks are")
    t.add_column("summary")
    for sc in builtin_scenarios():
        t.add_row(sc.name, sc.unit, sc.summary)
    console.print(t)
    return 0


def resolve_scenario(args, parser: argparse.ArgumentParser, label: str):
    """The scenario named by ``args.scenario`` and its config (file + ``--agents``); usage errors exit 2."""
    try:
        scenario = get_scenario(args.scenario)
    except ScenarioNotFound as e:
        parser.error(f"argument {label}: {e}")
    try:
        values = load_config_file(args.config) if args.config else {}
        if args.agents is not None:
            values["agents"] = args.agents
        cfg = build_config(scenario.config, values)
    except ConfigError as e:
        parser.error(f"config: {e}")
    return scenario, cfg


def engine_choice(args, parser: argparse.ArgumentParser, scenario, replay=None) -> EngineChoice | None:
    """The engine for an LLM scenario from ``--engine`` / ``--engine-config`` (/ ``--replay``); None otherwise."""
    if scenario.mock_policy is None:
        if args.engine or args.engine_config or replay:
            parser.error(f"argument --engine: scenario {scenario.name} makes no LLM calls")
        return None
    try:
        econf = load_config_file(args.engine_config) if args.engine_config else {}
    except ConfigError as e:
        parser.error(f"argument --engine-config: {e}")
    if replay is not None and not replay.exists():
        parser.error(f"argument --replay: no such run directory {replay}")
    return EngineChoice(kind=args.engine or "local", config=econf, replay=replay)


def _cmd_run(args, console: Console, parser: argparse.ArgumentParser) -> int:
    scenario, cfg = resolve_scenario(args, parser, "NAME")
    if args.snapshot_every and args.out is None:
        parser.error("argument --snapshot-every: needs --out")
    resume = None
    if args.resume is not None:
        try:
            resume = find_snapshot(args.resume)
        except SnapshotError as e:
            parser.error(f"argument --resume: {e}")
        if resume is None:
            parser.error(f"argument --resume: no snapshot at {args.resume}")

    engine = engine_choice(args, parser, scenario, replay=args.replay)
    ranks = _ranks(parser)
    if ranks.size > 1 and ranks.rank != 0:  # one voice: rank 0 prints, the others only compute
        console = Console(quiet=True)
        args.quiet = True
    if ranks.size > 1 and args.replay is not None:
        parser.error("argument --replay: replaying a response log runs on one rank")

    console.print(f"[bold]socius run {scenario.name}[/] seed={args.seed} {scenario.unit}={args.steps} "
                  f"config={escape(str(cfg))}", highlight=False)
    progress = None
    bar = None
    if not args.quiet:
        bar = Progress(TextColumn(f"{scenario.unit}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TimeRemainingColumn(), console=console, transient=True)
        task = bar.add_task("run", total=args.steps)
        progress = lambda w, total: bar.update(task, completed=w.tick)  # noqa: E731
        bar.start()
    try:
        res = run_scenario(scenario, cfg, seed=args.seed, ticks=args.steps, out=args.out,
                           snapshot_every=args.snapshot_every, resume=resume, progress=progress, engine=engine,
                           ranks=ranks if ranks.size > 1 else None)
    except (SerialScenarioError, SnapshotError, MissingExtraError, EngineSetupError, ConfigError) as e:
        if bar:
            bar.stop()
        what = {SnapshotError: "--resume: ", MissingExtraError: f"--engine {engine.kind if engine else ''}: ",
                EngineSetupError: "--engine/--replay: ", ConfigError: "config: "}
        label = next((v for k, v in what.items() if isinstance(e, k)), "")
        return _fail(console, ranks, f"{label}{e}", EXIT_USAGE)
    except KeyboardInterrupt:
        if bar:
            bar.stop()
        where = f"; resume with --resume {args.out}" if args.out and args.snapshot_every else ""
        console.print(f"[yellow]interrupted[/]{where}")
        return _fail(console, ranks, None, 130)
    finally:
        if bar:
            bar.stop()
    entities = len(res.world) if ranks.size == 1 else f"{len(res.world)} on rank 0 of {ranks.size}"
    t = Table(title=f"{scenario.name}: {res.ticks} {scenario.unit}, {entities} entities")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("build s", f"{res.build_s:.3f}")
    t.add_row("run s", f"{res.run_s:.3f}")
    if res.run_s > 0 and res.ticks_run:
        rate = res.ticks_run / res.run_s
        if rate >= 1:
            t.add_row(f"{scenario.unit}/s", f"{rate:.1f}")
        else:
            t.add_row(f"s per {scenario.unit[:-1]}", f"{1 / rate:.1f}")
    console.print(t)
    _print_metrics(console, scenario, res)
    if res.out is not None:
        console.print(f"run directory: {res.out}")
    if ranks.rank == 0:
        print(f"state_hash: {res.state_hash}", flush=True)
    return 0


def _fail(console: Console, ranks, message: str | None, code: int) -> int:
    """Report an error and return its exit code; on several ranks, end every rank now (never a hang)."""
    if message is not None:
        console.print(f"[red]error:[/] {escape(message)}")
    if ranks.size > 1:
        if message is not None:
            sys.stderr.write(f"rank {ranks.rank}: error: {message}\n")
            sys.stderr.flush()
        ranks.abort(code)
    return code


def _ranks(parser: argparse.ArgumentParser):
    """This process's rank context: one rank, or the MPI job's when started by ``mpiexec``."""
    from socius.mpi import rank_context
    try:
        return rank_context()
    except MissingExtraError as e:
        parser.error(f"mpiexec: {e}")


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _print_metrics(console: Console, scenario, res, max_rows: int = 30) -> None:
    """The scenario's per-tick metrics as a table (the last ``max_rows`` ticks)."""
    if scenario.metrics is None:
        return
    cols = scenario.metrics(res.world)
    if not cols:
        return
    names = list(cols)
    n = len(cols[names[0]])
    t = Table(title=f"per {scenario.unit[:-1]} metrics" + (f" (last {max_rows} of {n})" if n > max_rows else ""))
    for k in names:
        t.add_column(k, justify="right")
    for i in range(max(0, n - max_rows), n):
        t.add_row(*(_fmt(cols[k][i].item() if hasattr(cols[k][i], "item") else cols[k][i]) for k in names))
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    # a pipe or a CI log gets rich's 80-column default: widen it so the metric tables stay readable
    console = Console(stderr=False, width=None if sys.stdout.isatty() else 160)
    if args.command == "list":
        return _cmd_list(console)
    if args.command == "profile":
        from .profile import cmd_profile
        return cmd_profile(args, console, parser)
    if args.command == "experiment":
        from socius.scenarios.recommender.fluctuation import cmd_experiment
        return cmd_experiment(args, console, parser)
    return _cmd_run(args, console, parser)


if __name__ == "__main__":
    sys.exit(main())
