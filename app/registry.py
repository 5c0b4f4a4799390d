"""Scenarios: what ``socius list`` shows, ``socius run NAME`` builds, and the sub-commands they add.

A scenario is a :class:`Scenario` value: a name, a one-line summary, a config
dataclass, a ``build(world, config)`` function that inserts resources, spawns
the population and adds systems, and a ``metrics(world)`` function returning
per-tick columns for the run's ``metrics.parquet``. A scenario whose agents
ask an LLM sets ``mock_policy`` (the mock engine's replies); the runner then
puts an :class:`~socius.llm.LLM` resource with the chosen engine in the world
before ``build`` runs. ``commands`` adds sub-commands to ``socius``
(:class:`Command`; the recommender's ``experiment fluctuation``).

Where scenarios come from, all by reference string (``module:ATTR``), so
nothing is imported until a scenario is asked for:

* the built-ins (:data:`BUILTIN`);
* installed packages, through the entry-point group ``socius.scenarios``
  (a built-in name wins over an installed one)::

      # the other package's pyproject.toml
      [project.entry-points."socius.scenarios"]
      epidemic = "my_package.epidemic:SCENARIO"

* a user's module or file, named on the command line as ``pkg.module:NAME``
  or ``path/to/file.py[:NAME]`` (``NAME`` defaults to ``SCENARIO``).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
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
ENTRY_POINTS = "socius.scenarios"   # the entry-point group installed packages register scenarios in


class ScenarioNotFound(LookupError):
    """A scenario name or reference that does not resolve."""


@dataclass(frozen=True)
class Command:
    """A sub-command a scenario adds to ``socius`` (e.g. the recommender's ``experiment fluctuation``).

    ``path`` is the words after ``socius`` (``("experiment", "fluctuation")``;
    commands sharing a first word are grouped under it); ``add_arguments(parser)``
    declares its flags on an ``argparse`` parser; ``run(args)`` runs it and
    returns the exit code. A :class:`~socius.errors.ConfigError` raised by
    ``run`` is a usage error (its message, naming the flag, and exit code 2);
    an :class:`~socius.errors.EngineSetupError` or a missing extra prints
    ``error: <message>`` and exits 2. The command line adds the commands of
    every registered scenario, importing them only when the first word is not
    one of its own commands (or help is asked for).
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
    judges: tuple = ()  # rule judges (socius.correct.judges.RuleJudge) that score this scenario's replies


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


def installed() -> dict[str, str]:
    """Scenarios of installed packages: ``{name: "module:ATTR"}`` from the entry-point group (nothing imported)."""
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINTS)
            if ep.name not in BUILTIN}


def scenario_names() -> list[str]:
    """Every registered name, built-in and installed, sorted."""
    return sorted(BUILTIN.keys() | installed().keys())


def get_scenario(name: str) -> Scenario:
    """A registered scenario by name (built-in or installed), or a user's by ``module:NAME`` / ``file.py[:NAME]``."""
    if name in BUILTIN:
        return _from_ref(BUILTIN[name])
    if ":" in name or name.endswith(".py"):
        return _from_ref(name)
    refs = installed()
    if name in refs:
        return _from_ref(refs[name])
    raise ScenarioNotFound(f"unknown scenario {name!r} (built-in: {', '.join(sorted(BUILTIN))}"
                           + (f"; installed: {', '.join(sorted(refs))}" if refs else "")
                           + "; or give pkg.module:NAME or path/to/file.py)")


def builtin_scenarios() -> list[Scenario]:
    """The built-in scenarios, imported, by name."""
    return [get_scenario(n) for n in sorted(BUILTIN)]


def registered_scenarios(on_error: Callable[[str, Exception], None] | None = None) -> list[Scenario]:
    """Every registered scenario (built-in and installed), imported, by name.

    ``on_error(name, error)`` is told of one that fails to import, which is
    then left out (a broken plug-in must not break ``socius``); without it the
    error is raised.
    """
    found = []
    for name in scenario_names():
        try:
            found.append(get_scenario(name))
        except Exception as e:  # noqa: BLE001 - reported, then left out
            if on_error is None:
                raise
            on_error(name, e)
    return found
