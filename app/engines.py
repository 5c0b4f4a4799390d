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

What the run shows of its engine: :func:`engine_header` (the local engine's dtype
and why), :func:`quiet_output` (an in-process engine's third-party output goes to
``engine.log``, :mod:`.quiet`) and ``EngineChoice.progress`` (set as the
resource's ``LLM.progress``, :mod:`.progress_line`).
"""
from __future__ import annotations

import os
import subprocess
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from socius.errors import ConfigError, EngineSetupError, MissingExtraError
from .prices import PRICE_KEYS, price_error

from .config import load_config_file

__all__ = ["EngineChoice", "engine_choice", "engine_header", "engine_lines", "quiet_output", "llm_resource",
           "pin_device", "cache_dir"]

#: engines that run third-party code in this process (their output goes to engine.log unless --verbose)
IN_PROCESS = ("local", "vllm")


@dataclass
class EngineChoice:
    """Which engine answers the scenario's LLM calls, or which log replays them."""

    kind: str = "mock"
    config: dict = field(default_factory=dict)
    replay: Path | None = None     # a run directory (or its responses/ folder)
    output: Any = None             # an EngineOutput (.quiet): where third-party output goes; None: the terminal
    progress: Callable | None = None  # becomes LLM.progress(decision, kind, done, total)
    instance: Any = None           # a started engine of ``kind`` to lend (llm.engines.lent.LentEngine), not make


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
    kind = args.engine or "local"
    for k in PRICE_KEYS:
        if (err := price_error(econf, k)) is not None:
            parser.error(f"argument --engine-config: {err}")
    if kind == "local" and "dtype" in econf and replay is None:
        from socius.llm.engines.cpu import choose_dtype
        try:
            choose_dtype((), econf["dtype"])  # the engine's own check (no CPU flags needed for it)
        except ValueError as e:
            parser.error(f"argument --engine-config: {e}")
    return EngineChoice(kind=kind, config=econf, replay=replay)


def _kinds(engine: EngineChoice) -> set[str]:
    """The engine kinds the choice starts (its own and its ``models`` table's)."""
    models = engine.config.get("models", {})
    if not isinstance(models, dict):
        return {engine.kind}
    return {engine.kind} | {m.get("kind", engine.kind) for m in models.values() if isinstance(m, dict)}


def engine_header(engine: EngineChoice | None) -> str | None:
    """The line the run prints about its engine before it starts (None: nothing to say).

    The local engine: its dtype and why (``engine: local, float32: CPU lacks avx512_bf16/amx_bf16
    (AVX2 only): bf16 would fall back to slow kernels``)."""
    if engine is None or engine.replay is not None:
        return None
    if engine.kind == "local":
        from socius.llm.engines.local import local_dtype
        return f"engine: local, {local_dtype(engine.config).reason}"
    return f"engine: {engine.kind}"


def quiet_output(engine: EngineChoice | None, out: Path | None, rank: int = 0, verbose: bool = False):
    """Send the third-party output of an in-process engine (:data:`IN_PROCESS`) to a log file:
    sets ``engine.output`` to an :class:`~.quiet.EngineOutput` and returns it (None when the run
    needs none: no LLM engine, a replay, another kind, or ``verbose``)."""
    if engine is None or verbose or engine.replay is not None or not _kinds(engine) & set(IN_PROCESS):
        return None
    from .quiet import EngineOutput
    engine.output = EngineOutput.for_run(out, rank)
    engine.output.prepare()
    return engine.output


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


def engine_lines(engine: EngineChoice | None, out: Path | None, rank: int = 0, verbose: bool = False) -> list[str]:
    """The run header's engine lines: :func:`engine_header`, and where third-party output goes
    (:func:`quiet_output`, which this sets up)."""
    lines = [line] if (line := engine_header(engine)) else []
    output = quiet_output(engine, out, rank, verbose)
    if output is not None:
        lines.append(f"engine log: {output.path} (vLLM/torch warnings; --verbose shows them here)")
    return lines


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
    for k in PRICE_KEYS:  # read by the dashboard from run.json, not by the engines
        config.pop(k, None)
    if not isinstance(models, dict):
        raise EngineSetupError("engine config: 'models' must be a table of name = {kind = ..., options...}")
    quiet = engine.output.redirect if engine.output is not None else nullcontext
    engines = {}
    try:
        with quiet():
            if engine.instance is not None:  # lent for this resource: its close() leaves the engine running
                from socius.llm.engines.lent import LentEngine
                engines[""] = LentEngine(engine.instance)
            else:
                engines[""] = factory.make_engine(engine.kind, seed=seed, policy=policy, config=config)
            for name, mconf in models.items():  # a mixture of LLMs: one engine per model name
                mconf = {k: v for k, v in mconf.items() if k not in PRICE_KEYS}
                kind = mconf.pop("kind", engine.kind)
                engines[name] = factory.make_engine(kind, seed=seed, policy=policy, config=mconf)
    except (EngineSetupError, MissingExtraError, ConfigError):
        _close_all(engines)
        raise
    except Exception as e:  # noqa: BLE001 - a third-party engine failing to start: say where its output went
        _close_all(engines)
        if engine.output is None:
            raise
        raise EngineSetupError(f"the {engine.kind} engine did not start: {type(e).__name__}: {e}\n"
                               f"last lines of {engine.output.path}:\n{engine.output.tail()}") from e
    for e in engines.values():
        if hasattr(e, "around_call") and engine.output is not None:
            e.around_call = quiet
            _name_log_when_dead(e, engine.output)
    cache = ResponseCache(cache_dir() / "responses" / engine.kind) if engine.kind != "mock" else None
    llm = LLM(engines, default="", log_dir=log_dir, cache=cache)
    llm.progress = engine.progress
    return llm


def _name_log_when_dead(eng, output) -> None:
    """Make a dead engine (its child process crashed mid-run: ``RuntimeError`` "engine died") raise
    :class:`EngineSetupError` with the end of its log, where the root cause went (the run exits 2)."""
    generate = eng.generate

    def generate_or_name_log(batch):
        try:
            return generate(batch)
        except RuntimeError as e:
            if "engine died" not in str(e):
                raise
            raise EngineSetupError(f"{e}\nlast lines of {output.path}:\n{output.tail()}") from e
    eng.generate = generate_or_name_log


def _close_all(engines: dict) -> None:
    for e in engines.values():
        try:
            e.close()
        except Exception:  # noqa: BLE001 - the start-up error is the one to report
            pass
