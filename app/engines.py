"""Which engine answers a scenario's LLM calls, and the ``LLM`` resource built from that choice.

An :class:`EngineChoice` comes from the command line (``--engine``,
``--engine-config``, ``--replay``: :func:`engine_choice`) or from code.
:func:`llm_resource` turns it into the world's :class:`~socius.llm.LLM`
resource: one engine per model name (a ``models`` table in the engine
config mixes several), a response log in the run directory
(``responses/``, per rank ``responses/rank-0000R/`` under MPI), a response
cache for real engines, or a :class:`~socius.llm.ReplayEngine` reading an
earlier run's log.

Device pinning: under MPI on a node with several GPUs, each rank drives the
GPU of its local rank (:func:`pin_device` narrows ``CUDA_VISIBLE_DEVICES``
before the engine starts).
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from socius.errors import ConfigError, EngineSetupError

from .config import load_config_file

__all__ = ["EngineChoice", "engine_choice", "llm_resource", "pin_device", "cache_dir"]


@dataclass
class EngineChoice:
    """Which engine answers the scenario's LLM calls, or which log replays them."""

    kind: str = "mock"
    config: dict = field(default_factory=dict)
    replay: Path | None = None     # a run directory (or its responses/ folder)


def engine_choice(args, parser, scenario, replay: Path | None = None) -> EngineChoice | None:
    """The engine for an LLM scenario from ``--engine`` / ``--engine-config`` (/ ``--replay``); None otherwise.

    Usage errors exit 2 through ``parser.error``, naming the flag.
    """
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


def cache_dir() -> Path:
    """Where Socius keeps converted models and LLM response caches (``$SOCIUS_CACHE`` or ~/.cache/socius)."""
    return Path(os.environ.get("SOCIUS_CACHE") or Path.home() / ".cache" / "socius")


def pin_device(ranks) -> None:
    """On a node with several GPUs and several ranks, each rank drives the GPU of its local rank.

    ``ranks``: a :class:`~socius.mpi.RankContext` (``local_size``,
    ``device_index(n)``) or None. Narrows ``CUDA_VISIBLE_DEVICES`` to one
    device; counts the node's GPUs with ``nvidia-smi -L`` when no list is set.
    """
    if ranks is None or ranks.local_size <= 1:
        return
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        devs = [d for d in visible.split(",") if d.strip()]
        if len(devs) > 1:
            os.environ["CUDA_VISIBLE_DEVICES"] = devs[ranks.device_index(len(devs))]
        return
    try:  # no list given: count the node's GPUs without importing torch
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
        n = sum(1 for line in out.splitlines() if line.startswith("GPU "))
    except (OSError, subprocess.SubprocessError):
        n = 0
    if n > 1:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(ranks.device_index(n))


def llm_resource(scenario, cfg, seed: int, engine: EngineChoice, out: Path | None, ranks=None):
    """The :class:`~socius.llm.LLM` resource for ``scenario`` answered as ``engine`` says.

    ``out``: the run directory whose ``responses/`` logs every request (None:
    no log); ``ranks``: this rank's context under MPI (own log folder, own GPU).
    """
    from socius.llm import LLM, ReplayEngine, ResponseCache
    from socius.llm.engines import factory

    log_dir = out / "responses" if out is not None else None
    if log_dir is not None and ranks is not None and ranks.size > 1:
        log_dir = log_dir / f"rank-{ranks.rank:05d}"
    pin_device(ranks)
    if engine.replay is not None:
        src = engine.replay / "responses" if (engine.replay / "responses").is_dir() else engine.replay
        try:
            return LLM({}, log_dir=log_dir, replay=ReplayEngine(src))
        except (OSError, ValueError) as e:  # missing, or a log Arrow cannot read (ArrowInvalid is a ValueError)
            raise EngineSetupError(f"--replay: {e}") from None
    policy = scenario.mock_policy(cfg) if scenario.mock_policy is not None else None
    config = dict(engine.config)
    models = config.pop("models", {})
    if not isinstance(models, dict):
        raise EngineSetupError("engine config: 'models' must be a table of name = {kind = ..., options...}")
    engines = {"": factory.make_engine(engine.kind, seed=seed, policy=policy, config=config)}
    for name, mconf in models.items():  # a mixture of LLMs: one engine per model name
        mconf = dict(mconf)
        kind = mconf.pop("kind", engine.kind)
        engines[name] = factory.make_engine(kind, seed=seed, policy=policy, config=mconf)
    cache = ResponseCache(cache_dir() / "responses" / engine.kind) if engine.kind != "mock" else None
    return LLM(engines, default="", log_dir=log_dir, cache=cache)
