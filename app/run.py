"""Run a scenario: build the world, step it with progress, save what it made.

A run directory holds::

    run.json          scenario, config, seed, ticks, timings, final state_hash
    metrics.parquet   the scenario's per-tick metrics (pandas/polars/DuckDB read it); with
                      decisions.parquet, rewritten at each snapshot and every few seconds
    ranks/            under MPI: each rank's figures (entities, tick, busy and collective time, bytes routed)
    snapshot.socius   the world after the last completed tick (atomic; --resume takes it)
    snapshot.ranks/   the same for a run over several MPI ranks: one part per rank + manifest

Snapshots are also written every ``snapshot_every`` ticks, so a crash or a
Ctrl-C loses at most that many ticks: ``socius run ... --resume DIR`` goes on
from the last snapshot and reaches the same final state as an uninterrupted
run — on the same or on a different number of ranks.

Under MPI (``mpiexec -n N socius run ...``) every rank builds its share of
the world (the scenario's ``build`` spawns the agents
:func:`socius.mpi.owned_block` gives it), drives its own engine (on a GPU
node the device of its local rank, see :mod:`socius.app.engines`) and logs its own responses
(``responses/rank-0000R/``); messages are routed to their targets' owners
each tick, and rank 0 writes metrics, ``run.json`` and the report. The
final state hash is the whole world's, the same as on one rank.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from socius.correct.switch import install_switch
from socius.ecs import SnapshotError, World

from .config import config_dict
from .engines import EngineChoice, llm_resource
from .registry import Scenario

SNAPSHOTS = "snapshots"  # kept periodic snapshots: snapshots/tick-XXXXXXXX.socius

SNAPSHOT = "snapshot.socius"
SNAPSHOT_RANKS = "snapshot.ranks"
TABLES_EVERY_S = 5.0  # metrics/decisions (and per-rank figures) rewritten at most this often between snapshots


class SerialScenarioError(ValueError):
    """A scenario that cannot be split over ranks was launched on several."""


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


def build_world(scenario: Scenario, cfg, seed: int, engine: EngineChoice | None = None,
                out: Path | None = None, ranks=None) -> World:
    """A new world with the scenario built in it; ``ranks`` (a RankContext) builds this rank's share."""
    world = World(seed=seed)
    distributed = ranks is not None and ranks.size > 1
    if distributed:
        if not scenario.distributed:
            raise SerialScenarioError(f"scenario {scenario.name} is inherently serial (agents act one after "
                                      f"another over the whole world); run it on one rank, not {ranks.size}")
        from socius.mpi import attach_ranks
        attach_ranks(world, ranks)
    if scenario.mock_policy is not None:
        world.insert_resource(llm_resource(scenario, cfg, seed, engine or EngineChoice(), out, ranks))
    scenario.build(world, cfg)
    if distributed:
        from socius.mpi import distribute
        distribute(world)
    return world


def find_snapshot(path: Path) -> Path | None:
    """The newest snapshot in a run directory (one-rank file or several-rank folder), or ``path`` itself."""
    path = Path(path)
    if path.is_dir() and path.name != SNAPSHOT_RANKS and not (path / "manifest.json").is_file():
        found = [p for p in (path / SNAPSHOT, path / SNAPSHOT_RANKS) if p.exists()]
        if not found:
            return None
        return max(found, key=lambda p: snapshot_tick(p))
    return path if path.exists() else None


def snapshot_tick(path: Path) -> int:
    from socius.mpi.snapshot import snapshot_info
    return int(snapshot_info(path)["tick"])


def _save(world: World, out: Path, ranks) -> None:
    if ranks is not None and ranks.size > 1:
        from socius.mpi import save_distributed
        save_distributed(world, out / SNAPSHOT_RANKS)
    else:
        world.save(out / SNAPSHOT)


def restore_world(world: World, path: Path, ranks=None) -> None:
    """Restore ``world`` from a snapshot file, or from a distributed snapshot folder (any number of ranks)."""
    from socius.mpi import restore_distributed, restore_snapshot
    if ranks is not None and ranks.size > 1:  # a file or a folder, onto this job's ranks
        restore_distributed(world, path)
    else:
        restore_snapshot(world, path)


def write_metrics(scenario: Scenario, world: World, out: Path) -> dict[str, Any]:
    """Write ``metrics.parquet`` atomically (the run loop: at each snapshot, every :data:`TABLES_EVERY_S`
    and at the end; ``metrics(world)`` is a per-tick history, cheap at any size); returns the last row."""
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


def decision_files(run_dir: Path) -> list[Path]:
    """The files :func:`write_decisions` wrote in ``run_dir``: ``decisions.parquet``, else one per rank."""
    one = Path(run_dir) / "decisions.parquet"
    return [one] if one.is_file() else sorted((Path(run_dir) / "decisions").glob("rank-*.parquet"))


def write_decisions(world: World, out: Path, ranks=None, done: dict | None = None) -> None:
    """Per tick and decision: ok / extracted / fallback / failed, tokens, stage times → decisions.parquet.

    Under MPI each rank writes its own calls: ``decisions/rank-0000R.parquet``. ``done``: a dict kept
    by the caller between calls, holding the rows converted so far: only new rows are converted.
    """
    from socius.llm import DecisionStats

    stats = world.get_resource(DecisionStats)
    if stats is not None and stats.rows:
        target = out / "decisions.parquet"
        if ranks is not None and ranks.size > 1:
            (out / "decisions").mkdir(exist_ok=True)
            target = out / "decisions" / f"rank-{ranks.rank:05d}.parquet"
        done = {} if done is None else done
        n, table = (done.get("rows", 0), done.get("table")) if done.get("rows", 0) <= len(stats.rows) else (0, None)
        if n < len(stats.rows):
            new = pa.Table.from_pylist(stats.rows[n:])
            table = new if table is None else pa.concat_tables([table, new], promote_options="permissive")
            done.update(rows=len(stats.rows), table=table)
        tmp = target.with_name(f".{target.name}.tmp")
        pq.write_table(table, tmp)
        tmp.replace(target)


def write_rank_figures(world: World, out: Path, ranks, clock: dict) -> None:
    """Under MPI: this rank's figures (those ``socius profile`` reports) → ``ranks/rank-0000R.json``, atomically:
    ``entities``; per tick timed (boundaries left out) ``tick_s``, ``comm_s`` by category, ``busy_s`` (the
    rest), ``route_bytes``, ``route_wall_s``. ``clock``: the run loop's sums ``{ticks, tick_s, comm}``."""
    from .profile.ranks import COMM
    k = clock["ticks"]
    if not k:
        return
    per = {key: v / k for key, v in clock["comm"].items()}
    row = {"rank": ranks.rank, "ranks": ranks.size, "host": platform.node(), "tick": int(world.tick),
           "entities": len(world), "ticks": k, "tick_s": clock["tick_s"] / k, "comm_s": {c: per[c] for c in COMM},
           "busy_s": clock["tick_s"] / k - sum(per[c] for c in COMM), "route_bytes": per["route_bytes"],
           "route_wall_s": per["route_wall"], "updated": time.time()}
    target = out / "ranks" / f"rank-{ranks.rank:05d}.json"
    target.parent.mkdir(exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(row) + "\n")
    tmp.replace(target)


def run_scenario(scenario: Scenario, cfg, *, out: Path | None, ranks=None, **kw) -> RunResult:
    """:func:`_run_scenario`; a run directory this call created is removed again when the run fails
    before its first snapshot (so a failed start leaves no half-written run directory)."""
    created = out is not None and not out.exists() and (ranks is None or ranks.rank == 0)
    try:
        return _run_scenario(scenario, cfg, out=out, ranks=ranks, **kw)
    except BaseException:
        if created and out.is_dir() and not any(out.glob("snapshot*")):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _run_scenario(scenario: Scenario, cfg, *, seed: int, ticks: int, out: Path | None,
                  snapshot_every: int = 0, resume: Path | None = None, progress=None,
                  engine: EngineChoice | None = None, ranks=None, parent: dict | None = None) -> RunResult:
    """Build (or resume) and run ``ticks`` ticks in total; ``progress(world, ticks)`` after each tick.

    ``ranks``: this process's :class:`~socius.mpi.RankContext` when the run is
    split over MPI ranks (every rank calls ``run_scenario``; rank 0 writes the
    run directory's tables, every rank its snapshot part and response log).
    ``parent``: the run this one was forked from (``socius fork``), kept in ``run.json``.

    Every ``snapshot_every`` ticks the snapshot is also kept as
    ``snapshots/tick-XXXXXXXX.socius`` (a hard link), so a run can be forked at
    those ticks. Adapter switches (:mod:`socius.correct.switch`) scheduled in
    the world, or recorded in the run being replayed or resumed, apply at
    their tick boundary.
    """
    t0 = time.perf_counter()
    lead = ranks is None or ranks.rank == 0
    distributed = ranks is not None and ranks.size > 1
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    world = build_world(scenario, cfg, seed, engine, out, ranks)
    replayed = engine.replay if engine is not None and engine.replay is not None else None
    install_switch(world, out, source=replayed or (out if resume is not None else None), lead=lead)
    if resume is not None:
        info_seed = _snapshot_seed(resume)
        if info_seed != seed:
            raise SnapshotError(f"{resume}: snapshot was made with seed {info_seed}, not {seed}")
        restore_world(world, resume, ranks)
    build_s = time.perf_counter() - t0

    from .profile.ranks import comm_totals
    tables = {"at": time.perf_counter(), "decisions": {}}  # when the tables were last written, rows done
    clock = {"ticks": 0, "tick_s": 0.0, "comm": {}, "at": None, "c_at": {}}  # c_at: set by timed() below

    def timed(w: World, start: bool) -> None:  # tick time and collectives inside ticks, boundaries left out
        now, c = time.perf_counter(), (comm_totals(w) or {}) if distributed else {}
        if start and clock["at"] is not None:
            clock["ticks"] += 1
            clock["tick_s"] += now - clock["at"]
            for key, v in c.items():
                clock["comm"][key] = clock["comm"].get(key, 0) + v - clock["c_at"].get(key, 0)
        clock["at"], clock["c_at"] = (None, c) if start else (now, c)

    def write_tables(w: World) -> dict:  # as the run goes too: a killed run keeps them, `socius serve` charts them
        summary = write_metrics(scenario, w, out) if lead else {}
        write_decisions(w, out, ranks, tables["decisions"])
        if distributed:
            write_rank_figures(w, out, ranks, clock)
        tables["at"] = time.perf_counter()
        return summary

    def on_tick(w: World) -> None:
        timed(w, True)
        if progress is not None and lead:  # first: what it changes at this boundary belongs in the snapshot
            progress(w, ticks)
        snap = out is not None and snapshot_every and w.tick % snapshot_every == 0
        if snap:
            _save(w, out, ranks)  # World.save flushes the response log first
            if lead:
                keep_snapshot(out, w.tick)
        if out is not None and (snap or time.perf_counter() - tables["at"] >= TABLES_EVERY_S):
            write_tables(w)
        timed(w, False)

    t1 = time.perf_counter()
    timed(world, False)
    start_tick = world.tick
    remaining = max(0, ticks - world.tick)
    try:
        world.step(remaining, on_tick=on_tick)
    finally:
        run_s = time.perf_counter() - t1
        if out is not None:
            summary = write_tables(world)
        llm = _get_llm(world)
        if llm is not None:
            llm.close()
    digest = world.state_hash()  # collective under MPI, like the count below
    n_entities = _global_count(world, ranks)
    result = RunResult(scenario.name, seed, world.tick, world.tick - start_tick, digest, out, build_s, run_s, world)
    if out is not None:
        _save(world, out, ranks)
        result.summary = summary
    if out is not None and lead:
        info = {"scenario": scenario.name, "config": config_dict(cfg), "seed": seed, "ticks": world.tick,
                "entities": n_entities, "ranks": 1 if ranks is None else ranks.size,
                "build_s": build_s, "run_s": run_s, "state_hash": digest,
                "resumed_from": str(resume) if resume else None, "python": platform.python_version(),
                "summary": summary}
        if parent is not None:
            info["parent"] = parent
        if engine is not None and scenario.mock_policy is not None:
            info["engine"] = {"kind": engine.kind, "config": engine.config,
                              "replay": str(engine.replay) if engine.replay else None}
        (out / "run.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    if out is not None and scenario.report is not None and (lead or distributed):
        scenario.report(world, out)  # under MPI on every rank: per-agent tables are gathered to rank 0
    if out is None and scenario.metrics is not None:
        cols = scenario.metrics(world)
        result.summary = {k: np.asarray(v)[-1].item() for k, v in cols.items() if len(v)}
    return result


def keep_snapshot(out: Path, tick: int) -> Path | None:
    """Keep the snapshot just written in ``out`` as ``snapshots/tick-XXXXXXXX.socius`` (a hard link, or a
    copy; a several-rank ``snapshot.ranks/`` folder becomes ``tick-XXXXXXXX.ranks/``); returns its path.

    The runner calls it after each ``--snapshot-every`` save (snapshots are written to a new file and
    renamed, so the kept link never changes under it)."""
    out = Path(out)
    src = next((p for p in (out / "snapshot.socius", out / "snapshot.ranks") if p.exists()), None)
    if src is None:
        return None
    dst = out / SNAPSHOTS / f"tick-{int(tick):08d}{'.ranks' if src.is_dir() else '.socius'}"
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    dst.parent.mkdir(exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    if src.is_dir():
        shutil.copytree(src, tmp, copy_function=_link)
    else:
        _link(src, tmp)
    if dst.is_dir():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
    return dst


def _link(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _snapshot_seed(path: Path) -> int:
    from socius.mpi.snapshot import snapshot_info
    return int(snapshot_info(path)["seed"])


def _global_count(world: World, ranks) -> int:
    if ranks is None or ranks.size == 1:
        return len(world)
    return int(ranks.allreduce(np.array([len(world)], dtype=np.int64), "sum")[0])


def _get_llm(world: World):
    from socius.llm import LLM
    return world.get_resource(LLM)
