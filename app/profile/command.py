"""``socius profile``: argument checks (exit 2 naming the flag), the run, the output and where it is saved.

A copy is always saved: ``profile.json`` and ``profile.txt`` in ``--out DIR``
or ``runs/profile-<scenario>-<YYYYmmdd-HHMMSS>``; ``--json`` prints the JSON
on stdout (status lines go to stderr); ``--trace FILE`` also writes the
Chrome trace. Under MPI every rank profiles, rank 0 prints and saves. As in
``socius run``, an in-process engine's third-party output goes to ``DIR/engine.log``
(``--verbose``: the terminal), and engine calls longer than 2 s show their progress as
plain lines on stderr.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
import sys
import time
from pathlib import Path

from rich.console import Console

from socius.errors import EngineSetupError, MissingExtraError

from ..args import EXIT_USAGE, fail, ranks_or_exit, resolve_scenario
from ..engines import engine_choice, engine_lines
from ..progress_line import engine_progress
from ..registry import Scenario
from ..run import SerialScenarioError
from .measure import profile_scenario
from .report import to_json
from .tables import TEXT_WIDTH, render, render_text
from .trace import chrome_trace

__all__ = ["cmd_profile", "default_out"]


def default_out(scenario: Scenario, when: int | None = None) -> Path:
    """``runs/profile-<scenario>-<time>``; ``when`` (epoch seconds, the same on every MPI rank) names it
    without probing the disk, so all ranks agree on the folder."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", scenario.name).strip("-") or "scenario"
    if when is not None:
        return Path("runs") / f"profile-{slug}-{_dt.datetime.fromtimestamp(when).strftime('%Y%m%d-%H%M%S')}-mpi"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path("runs") / f"profile-{slug}-{stamp}"
    k = 1
    while out.exists():
        k += 1
        out = Path("runs") / f"profile-{slug}-{stamp}-{k}"
    return out


def cmd_profile(args, console: Console, parser) -> int:
    """``socius profile``: argument checks (exit 2 naming the flag), the run, the output."""
    scenario, cfg = resolve_scenario(args, parser, "SCENARIO")
    engine = engine_choice(args, parser, scenario)
    ranks = ranks_or_exit(parser)
    lead = ranks.rank == 0
    if args.trace is not None and (args.trace.is_dir() or not args.trace.parent.is_dir()):
        parser.error(f"argument --trace: cannot write a file at {args.trace}")
    out = args.out if args.out is not None else default_out(scenario)

    if ranks.size > 1:  # every rank must write into the same folder: rank 0's name for it
        stamp = ranks.allgather(int(time.time()))[0]
        if args.out is None:
            out = default_out(scenario, stamp)
    err = Console(stderr=True, highlight=False, quiet=not lead)
    if scenario.mock_policy is not None:  # an LLM scenario: third-party output to engine.log, calls' progress
        for line in engine_lines(engine, out, ranks.rank, args.verbose):
            err.print(line, style="dim", highlight=False, soft_wrap=True)
    calls = engine_progress(engine if scenario.mock_policy is not None else None, None, err)
    try:
        run = profile_scenario(scenario, cfg, seed=args.seed, ticks=args.ticks, engine=engine, out=out,
                               status=lambda text: err.print(text, style="dim"),
                               ranks=ranks if ranks.size > 1 else None)
    except MissingExtraError as e:
        return fail(err, ranks, f"--engine {engine.kind if engine else ''}: {e}", EXIT_USAGE)
    except EngineSetupError as e:
        return fail(err, ranks, f"--engine: {e}", EXIT_USAGE)
    except SerialScenarioError as e:
        return fail(err, ranks, str(e), EXIT_USAGE)
    finally:
        if calls is not None:
            calls.close()
    if not lead:
        return 130 if run.report.get("interrupted") else 0
    rep = run.report
    text = to_json(rep)
    (out / "profile.json").write_text(text + "\n")
    (out / "profile.txt").write_text(render_text(rep))
    if args.trace is not None:
        args.trace.write_text(json.dumps(chrome_trace(run), allow_nan=False))
    if args.json:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:  # a terminal's width; piped or redirected, as wide as profile.txt
        render(rep, console if console.is_terminal else Console(width=TEXT_WIDTH, highlight=False))
    err.print(f"saved: {out / 'profile.json'}, {out / 'profile.txt'}"
              + (f"; trace: {args.trace}" if args.trace is not None else ""), style="dim", soft_wrap=True)
    return 130 if rep.get("interrupted") else 0
