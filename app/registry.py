"""Scenarios: what ``socius list`` shows and ``socius run NAME`` builds.

A scenario is a :class:`Scenario` value: a name, a one-line summary, a config
dataclass, a ``build(world, config)`` function that inserts resources, spawns
the population and adds systems, and a ``metrics(world)`` function returning
per-tick columns for the run's ``metrics.parquet``. A scenario whose agents
ask an LLM sets ``mock_policy`` (the mock engine's replies); the runner then
puts an :class:`~socius.llm.pipeline.LLM` resource with the chosen engine in
the world before ``build`` runs. Built-in scenarios are
imported lazily by name; a user's scenario is found as ``pkg.module:NAME`` or
``path/to/file.py:NAME`` (``NAME`` defaults to ``SCENARIO``).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from socius.ecs import World

BUILTIN = {
    "boltzmann": "socius.scenarios.boltzmann:SCENARIO",
    "discussion": "socius.scenarios.discussion:SCENARIO",
    "guess": "socius.scenarios.guess:SCENARIO",
    "jobs": "socius.scenarios.jobs:SCENARIO",
    "recommender": "socius.scenarios.recommender:SCENARIO",
    "social": "socius.scenarios.social:SCENARIO",
}


class ScenarioNotFound(LookupError):
    """A scenario name or reference that does not resolve."""


@dataclass(frozen=True)
class Command:
    """A sub-command a scenario adds to ``socius`` (e.g. the recommender's ``experiment fluctuation``).

    ``path`` is the words after ``socius`` (``("experiment", "fluctuation")``);
    ``add_arguments(parser)`` declares its flags on an ``argparse`` parser;
    ``run(args)`` runs it and returns the exit code. The command line lists
    and dispatches the commands of every registered scenario.
    """

    path: tuple[str, ...]
    help: str
    add_arguments: Callable[[Any], None]
    run: Callable[[Any], int]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    config: type
    build: Callable[[World, Any], None]
    metrics: Callable[[World], dict] | None = None
    unit: str = "steps"      # what one tick is called on the command line: "steps" or "rounds"
    distributed: bool = True  # False for inherently serial models (run on one rank)
    mock_policy: Callable[[Any], Callable] | None = None  # cfg -> mock engine policy; set for LLM scenarios
    # writes tables/plots into the run directory; under MPI it runs on every rank (see scenarios.report:
    # write world-wide values only where is_lead(world), gather per-agent tables with gather_table)
    report: Callable[[World, Any], None] | None = None
    commands: tuple[Command, ...] = ()  # sub-commands this scenario adds to `socius`


def _from_ref(ref: str) -> Scenario:
    target, _, attr = ref.partition(":")
    attr = attr or "SCENARIO"
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise ScenarioNotFound(f"no such scenario file: {target}")
        # a stable module name (not Python's per-process hash()): resource and component names contain it,
        # so it must be the same on every MPI rank, in the process that restores a snapshot and on another
        # machine that checks the state hash — the file's name, plus a path key only if that name is taken
        name = f"socius_user_scenario_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}"
        known = sys.modules.get(name)
        if known is not None and Path(getattr(known, "__file__", "")).resolve() != path.resolve():
            name += "_" + hashlib.blake2b(str(path.resolve()).encode(), digest_size=6).hexdigest()
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise ScenarioNotFound(f"{target}: failed to import: {type(e).__name__}: {e}") from e
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise ScenarioNotFound(f"cannot import scenario module {target!r}: {e}") from None
    sc = getattr(module, attr, None)
    if not isinstance(sc, Scenario):
        raise ScenarioNotFound(f"{target}: has no Scenario named {attr!r}")
    return sc


def get_scenario(name: str) -> Scenario:
    """A built-in scenario by name, or a user's by ``module:NAME`` / ``file.py[:NAME]``."""
    if name in BUILTIN:
        return _from_ref(BUILTIN[name])
    if ":" in name or name.endswith(".py"):
        return _from_ref(name)
    raise ScenarioNotFound(f"unknown scenario {name!r} (built-in: {', '.join(sorted(BUILTIN))}; "
                           "or give pkg.module:NAME or path/to/file.py)")


def builtin_scenarios() -> list[Scenario]:
    return [get_scenario(n) for n in sorted(BUILTIN)]
