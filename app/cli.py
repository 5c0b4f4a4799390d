"""The ``socius`` command line: the parser and the dispatch, nothing else.

::

    socius list
    socius run NAME --agents N --steps T --seed S --out DIR [--config FILE]
                    [--snapshot-every K] [--resume DIR_OR_FILE] [--quiet]
    mpiexec -n 4 socius run NAME ...        (one world over 4 MPI ranks; same state_hash)
    socius profile SCENARIO --agents N --ticks T [--engine E] [--json] [--trace FILE] [--out DIR] [--verbose]
    socius experiment fluctuation ...       (a command the recommender scenario adds)

``--rounds`` is a synonym of ``--steps``. The last line printed by ``run`` is
``state_hash: <hex>`` of the final world, so anyone can check a rerun. Bad
flags or values print a message naming the flag or field and exit with code 2.

``list``, ``run`` and ``profile`` live in :mod:`.commands` and
:mod:`.profile`; every other command is a scenario's
(:class:`~socius.app.registry.Command`). Registered scenarios are imported
only when the first word is none of ours, or for ``socius`` / ``socius -h``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from socius.errors import ConfigError, EngineSetupError, MissingExtraError
from socius.llm.engines.factory import ENGINES

from .args import EXIT_USAGE, add_verbose_argument, int_flag, seed_flag
from .commands import add_ui_arguments, cmd_list, cmd_run
from .loop import add_correct_arguments
from .registry import BUILTIN, Command, Scenario, registered_scenarios

__all__ = ["main", "make_parser", "OWN_COMMANDS"]

OWN_COMMANDS = ("list", "run", "profile")
#: modules of the application's further commands, each with ``COMMANDS: tuple[Command, ...]``
#: (imported only when the first word is not one of OWN_COMMANDS; they keep their imports light)
APP_COMMAND_MODULES = ("socius.app.label", "socius.app.judge", "socius.app.train", "socius.app.fork",
                       "socius.app.loop", "socius.web.command")


def make_parser(commands: list[tuple[Command, Scenario]] = ()) -> argparse.ArgumentParser:
    """The ``socius`` parser: its own commands, then the scenarios' ``commands`` (first registered wins)."""
    p = argparse.ArgumentParser(prog="socius", description="Social simulation with LLM-driven agents at scale.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="list the scenarios and the commands they add")
    scenario_help = f"built-in ({', '.join(sorted(BUILTIN))}), an installed one, pkg.module:NAME or path/to/file.py"
    r = sub.add_parser("run", help="run a scenario")
    r.add_argument("scenario", metavar="NAME", help=scenario_help)
    r.add_argument("--agents", type=int_flag("--agents", 1), help="number of agents (scenario default if omitted)")
    r.add_argument("--steps", "--rounds", dest="steps", type=int_flag("--steps/--rounds", 0), default=10,
                   help="ticks to run in total (default 10)")
    r.add_argument("--seed", type=seed_flag, default=0, help="random seed (default 0)")
    r.add_argument("--out", type=Path, help="run directory for metrics, snapshots and run.json")
    r.add_argument("--config", type=Path, help="TOML or JSON file with the scenario's config fields")
    r.add_argument("--snapshot-every", type=int_flag("--snapshot-every", 0), default=0,
                   help="also snapshot every K ticks (needs --out)")
    r.add_argument("--resume", type=Path, help="continue from a run directory or snapshot file")
    r.add_argument("--engine", choices=ENGINES, default=None,
                   help="LLM engine for LLM scenarios (default: local, the embedded vLLM-on-CPU model)")
    r.add_argument("--engine-config", type=Path, help="TOML or JSON table of engine options")
    r.add_argument("--replay", type=Path, help="answer every LLM call from this run directory's response log")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    add_verbose_argument(r)
    add_ui_arguments(r)
    add_correct_arguments(r)
    f = sub.add_parser("profile", help="profile a scenario: ticks/s, time and memory per system")
    f.add_argument("scenario", metavar="SCENARIO", help=scenario_help)
    f.add_argument("--agents", metavar="N", type=int_flag("--agents", 1),
                   help="number of agents (scenario default if omitted)")
    f.add_argument("--ticks", metavar="T", type=int_flag("--ticks", 1), default=10, help="profiled ticks (default 10)")
    f.add_argument("--seed", type=seed_flag, default=0, help="random seed (default 0)")
    f.add_argument("--engine", choices=ENGINES, default=None, help="LLM engine for LLM scenarios (default: local)")
    f.add_argument("--engine-config", type=Path, help="TOML or JSON table of engine options")
    f.add_argument("--config", type=Path, help="TOML or JSON file with the scenario's config fields")
    f.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    f.add_argument("--trace", metavar="FILE", type=Path,
                   help="also write a Chrome trace / Perfetto JSON of the ticks to FILE")
    f.add_argument("--out", metavar="DIR", type=Path,
                   help="where to save the report (default runs/profile-<scenario>-<time>)")
    add_verbose_argument(f)
    _add_commands(sub, commands)
    return p


def _add_commands(sub, commands: list[tuple[Command, Scenario]]) -> None:
    """One sub-parser per command path; commands sharing leading words share a parent parser.

    The parsed arguments carry the command (``scenario_command``), its parser
    and the scenario that added it (``scenario``; None for the application's
    own), which ``run`` may use.
    """
    groups: dict[tuple[str, ...], argparse._SubParsersAction] = {(): sub}
    taken: set[tuple[str, ...]] = {(c,) for c in OWN_COMMANDS}
    for cmd, scenario in commands:
        path = tuple(cmd.path)
        if not path or any(path[:k] in taken for k in range(1, len(path) + 1)):
            continue  # ours, or another scenario's already
        for k in range(1, len(path)):
            if path[:k] not in groups:
                siblings = [" ".join(c.path[k:]) for c, _ in commands if tuple(c.path[:k]) == path[:k]]
                parent = groups[path[:k - 1]].add_parser(path[k - 1], help=f"one of: {', '.join(siblings)}")
                groups[path[:k]] = parent.add_subparsers(dest=f"command_{k}", required=True, metavar="COMMAND")
        leaf = groups[path[:-1]].add_parser(path[-1], help=cmd.help)
        cmd.add_arguments(leaf)
        leaf.set_defaults(scenario_command=cmd, command_parser=leaf, scenario=scenario)
        taken.add(path)


def _left_out(console: Console):
    """``on_error`` for the registry: a scenario that fails to import is named, then left out."""
    def warn(name: str, e: Exception) -> None:
        console.print(f"[yellow]warning:[/] scenario {escape(name)} left out: {escape(f'{type(e).__name__}: {e}')}",
                      highlight=False)
    return warn


def app_commands() -> list[tuple[Command, None]]:
    """The application's further commands (labelling, judging, training, forking)."""
    return [(c, None) for m in APP_COMMAND_MODULES for c in importlib.import_module(m).COMMANDS]


def scenario_commands(console: Console) -> list[tuple[Command, Scenario]]:
    """``(command, the scenario that adds it)`` for every registered scenario (imports them all)."""
    return [(c, sc) for sc in registered_scenarios(_left_out(console)) for c in sc.commands]


def _run_command(cmd: Command, args, console: Console) -> int:
    try:
        return cmd.run(args)
    except ConfigError as e:
        args.command_parser.error(str(e))
    except (EngineSetupError, MissingExtraError) as e:
        console.print(f"[red]error:[/] {escape(str(e))}")
        return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # a pipe or a CI log gets rich's 80-column default: widen it so the metric tables stay readable
    console = Console(stderr=False, width=None if sys.stdout.isatty() else 160)
    own = bool(argv) and argv[0] in OWN_COMMANDS
    parser = make_parser([] if own else app_commands() + scenario_commands(Console(stderr=True)))
    args = parser.parse_args(argv)
    if args.command == "list":
        return cmd_list(console, on_error=_left_out(console))
    if args.command == "run":
        return cmd_run(args, console, parser)
    if args.command == "profile":
        from .profile.command import cmd_profile
        return cmd_profile(args, console, parser)
    return _run_command(args.scenario_command, args, console)


if __name__ == "__main__":
    sys.exit(main())
