"""``socius list`` and ``socius run``: argument checks, the progress bar, the tables they print.

``run`` prints a summary table, the scenario's per-tick metrics (the last
30 ticks) and, as its last line, ``state_hash: <hex>`` of the final world
(under MPI only rank 0 prints). An error the run raises (bad snapshot,
missing extra, engine set-up, config) prints ``error: <flag>: <message>``
and returns 2; Ctrl-C returns 130.
"""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from socius.ecs import SnapshotError
from socius.errors import ConfigError, EngineSetupError, MissingExtraError

from .args import EXIT_USAGE, fail, ranks_or_exit, resolve_scenario
from .engines import engine_choice
from .registry import registered_scenarios
from .run import SerialScenarioError, find_snapshot, run_scenario

__all__ = ["cmd_list", "cmd_run"]


def cmd_list(console: Console, on_error=None) -> int:
    """The registered scenarios (built-in and installed) as a table, with the commands they add."""
    t = Table(title="Socius scenarios")
    t.add_column("name")
    t.add_column("ticks are")
    t.add_column("summary")
    t.add_column("commands")
    for sc in registered_scenarios(on_error):
        t.add_row(sc.name, sc.unit, sc.summary, ", ".join(" ".join(c.path) for c in sc.commands))
    console.print(t)
    return 0


def cmd_run(args, console: Console, parser: argparse.ArgumentParser) -> int:
    """``socius run``: build or resume, run with a progress bar, print the tables and the state hash."""
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
    ranks = ranks_or_exit(parser)
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
        return fail(console, ranks, f"{label}{e}", EXIT_USAGE)
    except KeyboardInterrupt:
        if bar:
            bar.stop()
        where = f"; resume with --resume {args.out}" if args.out and args.snapshot_every else ""
        console.print(f"[yellow]interrupted[/]{where}")
        return fail(console, ranks, None, 130)
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
