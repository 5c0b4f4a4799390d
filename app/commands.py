"""``socius list`` and ``socius run``: argument checks, the progress bar, the tables they print.

``run`` prints a summary table, the scenario's per-tick metrics (the last
30 ticks) and, as its last line, ``state_hash: <hex>`` of the final world
(under MPI only rank 0 prints). An error the run raises (bad snapshot,
missing extra, engine set-up, config) prints ``error: <flag>: <message>``
and returns 2; Ctrl-C returns 130.

``run --ui`` (flags from :func:`add_ui_arguments`) serves the run live in the
dashboard (:class:`socius.web.live.LiveRun` fed at each tick boundary, the
server on a background thread) and keeps serving after the run until Ctrl-C
(``--ui-exit``: stop with the run); under MPI rank 0 serves a read-only view.
``--replay DIR`` and ``--resume DIR`` re-schedule the interventions DIR
recorded in ``interventions.jsonl`` at the tick boundaries they were made
(:class:`socius.web.steer.Reapply`).
"""
from __future__ import annotations

import argparse
import importlib

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from socius.ecs import SnapshotError
from socius.errors import ConfigError, EngineSetupError, MissingExtraError

from .args import EXIT_USAGE, fail, ranks_or_exit, resolve_scenario
from .engines import engine_choice, engine_lines
from .loop import correction_loop, with_loop
from .progress_line import engine_progress
from .registry import registered_scenarios
from .run import SerialScenarioError, find_snapshot, run_scenario

__all__ = ["add_ui_arguments", "cmd_list", "cmd_run"]


def _web(module: str):
    """A module of the dashboard, found by name: the dashboard is a plug-in of the application (like the
    scenarios), so the application never imports the web stack unless a run asks for it."""
    return importlib.import_module(f"socius.web.{module}")


def add_ui_arguments(r: argparse.ArgumentParser) -> None:
    """The ``run`` command's dashboard flags (``--ui``, ``--port``, ``--host``, ``--ui-exit``)."""
    r.add_argument("--ui", action="store_true", help="serve this run live in the web dashboard (the ui extra)")
    r.add_argument("--port", type=int, default=8765, help="dashboard port with --ui (default 8765; 0: a free one)")
    r.add_argument("--host", default="127.0.0.1", help="dashboard address with --ui (default 127.0.0.1; others warn)")
    r.add_argument("--ui-exit", action="store_true", help="with --ui: stop serving when the run ends")


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

    live, dash = None, None
    if getattr(args, "ui", False):
        live, dash = _start_ui(args, parser, scenario, cfg, engine, ranks, console)
    reapply = _reapply(args, console, ranks)
    console.print(f"[bold]socius run {scenario.name}[/] seed={args.seed} {scenario.unit}={args.steps} "
                  f"config={escape(str(cfg))}", highlight=False)
    for line in engine_lines(engine, args.out, ranks.rank, getattr(args, "verbose", False)):
        console.print(escape(line), highlight=False)
    progress = None
    bar = None
    calls = None
    if not args.quiet:
        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TimeRemainingColumn(), console=console, transient=True)
        task = bar.add_task(scenario.unit, total=args.steps)
        progress = lambda w, total: bar.update(task, completed=w.tick)  # noqa: E731
        calls = engine_progress(engine, bar, console)
        bar.start()
    progress = _boundary(progress, reapply, live)
    try:
        loop = correction_loop(args, scenario, engine, ranks if ranks.size > 1 else None)
    except ConfigError as e:
        parser.error(str(e))
    progress = with_loop(progress, loop)
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
        if live is not None:
            live.fail(str(e))
            dash.__exit__(None, None, None)
        return fail(console, ranks, f"{label}{e}", EXIT_USAGE)
    except KeyboardInterrupt:
        if bar:
            bar.stop()
        if live is not None:
            live.fail("interrupted")
            dash.__exit__(None, None, None)
        where = f"; resume with --resume {args.out}" if args.out and args.snapshot_every else ""
        console.print(f"[yellow]interrupted[/]{where}")
        return fail(console, ranks, None, 130)
    finally:
        if loop is not None:
            loop.close()
        if calls is not None:
            calls.close()
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
    if live is not None:
        live.finish(res.world, res.state_hash)
        _linger(args, dash, console)
    return 0


def _start_ui(args, parser, scenario, cfg, engine, ranks, console):
    """The live source and the dashboard thread (on rank 0 only; (None, None) on the others), the URL
    printed; exits 2 without the extra. Under MPI the view is read-only (see :mod:`socius.web.live`)."""
    import time
    from pathlib import Path

    from .config import config_dict
    if ranks.size > 1 and args.out is None:
        parser.error("argument --ui: a run over several MPI ranks needs --out (every rank writes there)")
    if not 0 <= args.port <= 65535:
        parser.error(f"argument --port: must be 0..65535, got {args.port}")
    for module in ("fastapi", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            raise SystemExit(fail(console, ranks, str(MissingExtraError("ui", module, "socius run --ui")),
                                  EXIT_USAGE)) from None
    if ranks.rank != 0:  # rank 0 serves; the others write their decisions, figures and snapshot parts
        return None, None
    LiveRun = _web("live").LiveRun
    DashboardThread, is_loopback = _web("server").DashboardThread, _web("server").is_loopback
    if args.out is None:
        args.out = Path("runs") / f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not is_loopback(args.host):
        console.print(f"[yellow]warning:[/] --host {escape(args.host)}: the dashboard is reachable from other "
                      "machines; anyone with the token can read and steer this run")
    meta = {"scenario": scenario.name, "config": config_dict(cfg), "seed": args.seed}
    if engine is not None and scenario.mock_policy is not None:
        meta["engine"] = {"kind": engine.kind, "config": engine.config}
    live = LiveRun(args.out, scenario, args.steps, snapshot_every=args.snapshot_every, meta=meta, ranks=ranks.size)
    try:
        dash = DashboardThread({live.name: live}, host=args.host, port=args.port).__enter__()
    except ConfigError as e:
        parser.error(str(e))
    print(f"dashboard: open {dash.url}", flush=True)
    console.print(f"run directory: {args.out}")
    if ranks.size > 1:
        console.print(f"[yellow]note:[/] over {ranks.size} MPI ranks the dashboard is read-only (no steering); "
                      "its agents come from the snapshots (--snapshot-every)")
    return live, dash


def _reapply(args, console, ranks):
    """The interventions recorded by the run being replayed or resumed (None without any)."""
    from pathlib import Path

    Reapply = _web("steer").Reapply
    src = args.replay if args.replay is not None else args.resume
    if src is None:
        return None
    src = Path(src)
    src = src if src.is_dir() and src.name != "snapshot.ranks" else src.parent
    if src.name == "snapshots":
        src = src.parent
    try:
        hook = Reapply(src, args.out)
        if hook and ranks.size > 1:
            raise ConfigError(f"{src}: its interventions were made live on one rank; resume it on one rank")
    except ConfigError as e:
        raise SystemExit(fail(console, ranks, f"--replay/--resume: {e}", EXIT_USAGE)) from None
    return hook or None


def _boundary(progress, reapply, live):
    """One ``progress(world, ticks)`` calling the recorded interventions, the live view and the bar, in that order."""
    if reapply is None and live is None:
        return progress

    def at_boundary(w, total):
        if reapply is not None:
            reapply(w)
        if live is not None:
            live.boundary(w, total)
        if progress is not None:
            progress(w, total)
    return at_boundary


def _linger(args, dash, console) -> None:
    import time
    if not args.ui_exit:
        console.print(f"run finished; the dashboard still serves it at {dash.url} (Ctrl-C to stop)")
        try:
            while dash.thread.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    dash.__exit__(None, None, None)


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
