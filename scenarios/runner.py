"""Run a scenario: build the world, step it with progress, save what it made.

A run directory holds::

    run.json          scenario, config, seed, ticks, timings, final state_hash
    metrics.parquet   the scenario's per-tick metrics (pandas/polars/DuckDB read it)
    snapshot.socius   the world after the last completed tick (atomic; --resume takes it)

Snapshots are also written every ``snapshot_every`` ticks, so a crash or a
Ctrl-C loses at most that many ticks: ``socius run ... --resume DIR`` goes on
from the last snapshot and reaches the same final state as an uninterrupted
run.
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from socius.ecs import World

from .config import config_dict
from .registry import Scenario

SNAPSHOT = "snapshot.socius"


@dataclass
class RunResult:
    scenario: str
    seed: int
    ticks: int
    ticks_run: int
    state_hash: str
    out: Path | None
    build_s: float
    run_s: float
    world: World = field(repr=False, default=None)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class EngineChoice:
    """Which engine answers the scenario's LLM calls, or which log replays them."""

    kind: str = "mock"
    config: dict = field(default_factory=dict)
    replay: Path | None = None     # a run directory (or its responses/ folder)


def cache_dir() -> Path:
    """Where Socius keeps converted models and LLM response caches (``$SOCIUS_CACHE`` or ~/.cache/socius)."""
    import os
    return Path(os.environ.get("SOCIUS_CACHE") or Path.home() / ".cache" / "socius")


def _llm_resource(scenario: Scenario, cfg, seed: int, engine: EngineChoice, out: Path | None):
    from socius.systems.decide import LLM, ReplayEngine, ResponseCache
    from socius.systems.engines.factory import EngineSetupError, make_engine

    log_dir = out / "responses" if out is not None else None
    if engine.replay is not None:
        src = engine.replay / "responses" if (engine.replay / "responses").is_dir() else engine.replay
        try:
            return LLM({}, log_dir=log_dir, replay=ReplayEngine(src))
        except FileNotFoundError as e:
            raise EngineSetupError(str(e)) from None
    policy = scenario.mock_policy(cfg) if scenario.mock_policy is not None else None
    config = dict(engine.config)
    models = config.pop("models", {})
    if not isinstance(models, dict):
        raise EngineSetupError("engine config: 'models' must be a table of name = {kind = ..., options...}")
    engines = {"": make_engine(engine.kind, seed=seed, policy=policy, config=config)}
    for name, mconf in models.items():  # a mixture of LLMs: one engine per model name
        mconf = dict(mconf)
        kind = mconf.pop("kind", engine.kind)
        engines[name] = make_engine(kind, seed=seed, policy=policy, config=mconf)
    cache = ResponseCache(cache_dir() / "responses" / engine.kind) if engine.kind != "mock" else None
    return LLM(engines, default="", log_dir=log_dir, cache=cache)


def build_world(scenario: Scenario, cfg, seed: int, engine: EngineChoice | None = None,
                out: Path | None = None) -> World:
    world = World(seed=seed)
    if scenario.mock_policy is not None:
        world.insert_resource(_llm_resource(scenario, cfg, seed, engine or EngineChoice(), out))
    scenario.build(world, cfg)
    return world


def write_metrics(scenario: Scenario, world: World, out: Path) -> dict[str, Any]:
    """Write ``metrics.parquet``; returns the last row as a summary."""
    if scenario.metrics is None:
        return {}
    cols = scenario.metrics(world)
    table = pa.table({k: np.asarray(v) for k, v in cols.items()})
    tmp = out / ".metrics.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(out / "metrics.parquet")
    if table.num_rows == 0:
        return {}
    return {k: table.column(k)[table.num_rows - 1].as_py() for k in table.column_names}


def write_decisions(world: World, out: Path) -> None:
    """Per tick and decision: ok / extracted / fallback / failed, tokens, stage times → decisions.parquet."""
    from socius.systems.decide import DecisionStats

    stats = world.get_resource(DecisionStats)
    if stats is not None and stats.rows:
        tmp = out / ".decisions.parquet.tmp"
        pq.write_table(stats.table(), tmp)
        tmp.replace(out / "decisions.parquet")


def run_scenario(scenario: Scenario, cfg, *, seed: int, ticks: int, out: Path | None,
                 snapshot_every: int = 0, resume: Path | None = None, progress=None,
                 engine: EngineChoice | None = None) -> RunResult:
    """Build (or resume) and run ``ticks`` ticks in total; ``progress(world, ticks)`` after each tick."""
    t0 = time.perf_counter()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    world = build_world(scenario, cfg, seed, engine, out)
    if resume is not None:
        world.restore(resume)
        if world.seed != seed:
            raise ValueError(f"--resume: snapshot was made with seed {world.seed}, not {seed}")
    build_s = time.perf_counter() - t0

    def on_tick(w: World) -> None:
        if out is not None and snapshot_every and w.tick % snapshot_every == 0:
            w.save(out / SNAPSHOT)
        if progress is not None:
            progress(w, ticks)

    t1 = time.perf_counter()
    start_tick = world.tick
    remaining = max(0, ticks - world.tick)
    try:
        world.step(remaining, on_tick=on_tick)
    finally:
        run_s = time.perf_counter() - t1
        if out is not None:
            summary = write_metrics(scenario, world, out)
            write_decisions(world, out)
        llm = _get_llm(world)
        if llm is not None:
            llm.close()
    digest = world.state_hash()
    result = RunResult(scenario.name, seed, world.tick, world.tick - start_tick, digest, out, build_s, run_s, world)
    if out is not None:
        world.save(out / SNAPSHOT)
        result.summary = summary
        info = {"scenario": scenario.name, "config": config_dict(cfg), "seed": seed, "ticks": world.tick,
                "entities": len(world), "build_s": build_s, "run_s": run_s, "state_hash": digest,
                "resumed_from": str(resume) if resume else None, "python": platform.python_version(),
                "summary": summary}
        if engine is not None and scenario.mock_policy is not None:
            info["engine"] = {"kind": engine.kind, "config": engine.config,
                              "replay": str(engine.replay) if engine.replay else None}
        (out / "run.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
        if scenario.report is not None:
            scenario.report(world, out)
    elif scenario.metrics is not None:
        cols = scenario.metrics(world)
        result.summary = {k: np.asarray(v)[-1].item() for k, v in cols.items() if len(v)}
    return result


def _get_llm(world: World):
    from socius.systems.decide import LLM
    return world.get_resource(LLM)
