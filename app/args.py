"""What the ``run`` and ``profile`` commands share: flag types, the scenario the flags name, ranks, failing.

Every usage error goes through ``parser.error``: a message naming the flag
or the config field on stderr and exit code 2, never a traceback. Under MPI
:func:`fail` ends every rank at once (a rank left waiting in a collective
would hang the job).
"""
from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.markup import escape

from socius.errors import ConfigError, MissingExtraError

from .config import build_config, load_config_file
from .registry import ScenarioNotFound, get_scenario

__all__ = ["EXIT_USAGE", "int_flag", "seed_flag", "add_verbose_argument", "resolve_scenario", "ranks_or_exit", "fail"]

EXIT_USAGE = 2


#: the largest count a flag takes (entities, ticks): beyond it arrays could not be allocated anyway
MAX_COUNT = 2**40


def int_flag(flag: str, minimum: int, maximum: int = MAX_COUNT):
    """An argparse type: an integer in ``minimum..maximum``, errors naming ``flag``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{flag} must be >= {minimum}, got {v}")
        if v > maximum:
            raise argparse.ArgumentTypeError(f"{flag} must be <= {maximum}, got {v}")
        return v
    return parse


def seed_flag(text: str) -> int:
    """An argparse type for ``--seed``: any integer."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be an integer, got {text!r}") from None


def add_verbose_argument(p: argparse.ArgumentParser) -> None:
    """``--verbose``: third-party engine output (vLLM, torch, Triton, transformers) on the terminal
    instead of the run's ``engine.log`` (:mod:`socius.app.quiet`)."""
    p.add_argument("--verbose", action="store_true",
                   help="show the engine's own warnings and logs (vLLM, torch, ...) here instead of engine.log")


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


def ranks_or_exit(parser: argparse.ArgumentParser):
    """This process's rank context: one rank, or the MPI job's when started by ``mpiexec``."""
    from socius.mpi import rank_context
    try:
        return rank_context()
    except MissingExtraError as e:
        parser.error(f"mpiexec: {e}")


def fail(console: Console, ranks, message: str | None, code: int) -> int:
    """Report an error and return its exit code; on several ranks, end every rank now (never a hang)."""
    if message is not None:
        console.print(f"[red]error:[/] {escape(message)}")
    if ranks.size > 1:
        if message is not None:
            sys.stderr.write(f"rank {ranks.rank}: error: {message}\n")
            sys.stderr.flush()
        ranks.abort(code)
    return code
