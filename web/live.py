"""A running run served live: :class:`LiveRun`, fed by the run loop at each tick boundary.

The simulation's thread calls :meth:`LiveRun.boundary` after every tick (``progress(world, ticks)``
of :func:`socius.app.run.run_scenario`). There, and only there, the world is read and changed:

* the new rows of the scenario's ``metrics(world)`` and of the world's ``DecisionStats`` are
  appended to plain lists (the rows since the last boundary: O(new rows));
* queued jobs run in the order they came: interventions (scheduled for the next tick, see
  :mod:`socius.web.steer`), interviews (out of band: state hash unchanged unless stored), snapshot now;
* when the page asked for agents, a consistent copy of the world (its arrays copied in memory,
  :func:`~socius.web.world_copy.copy_world`) is taken — at most once per
  ``max(min_copy_s, copy_cost × COPY_RATIO)`` seconds so copies cost under 1/COPY_RATIO of the run,
  at once after an intervention took effect;
* while paused, the thread waits here, still serving jobs.

Under MPI (``ranks > 1``) rank 0's share of the world feeds it: the scenario's metrics (world-wide
on rank 0), the tick, ticks/s and ETA. The pipeline and the per-rank rows come from the files every
rank writes as it goes (``decisions/rank-*.parquet``, ``ranks/rank-*.json``: at each snapshot and
every few seconds), the agents from the latest snapshot (``--snapshot-every``). Such a run is served
read-only: steering would need every rank at the boundary (:mod:`socius.web.live_steer`).

The HTTP threads only read what the boundary published (under one lock) or wait for a job's
result; they never touch a column the systems are writing. Everything else (response log,
labels, forks) comes from the run directory's files, as for :class:`~socius.web.runs.RunFiles`.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import pyarrow as pa

from .live_steer import WAIT_S, LiveSteering, NotLive
from .runs import RunFiles, RunUnavailable, aggregate_decisions

__all__ = ["COPY_RATIO", "LiveRun", "NotLive"]

#: a world copy for the agents pages costs at most 1/COPY_RATIO of the run's time
COPY_RATIO = 200


class LiveRun(LiveSteering, RunFiles):
    """The live view of the run writing ``path`` (see the module docstring)."""

    def __init__(self, path, scenario, ticks: int, name: str | None = None, snapshot_every: int = 0,
                 min_copy_s: float = 2.0, meta: dict | None = None, ranks: int = 1):
        Path(path).mkdir(parents=True, exist_ok=True)
        super().__init__(path, name)
        self.scenario, self.ticks, self.snapshot_every = scenario, int(ticks), int(snapshot_every)
        self.n_ranks = int(ranks)  # > 1: rank 0 of an MPI run, fed its share of the world (see the module docstring)
        self.min_copy_s = float(min_copy_s)
        self._lock = threading.Lock()
        self._jobs: queue.Queue = queue.Queue()
        self._resume = threading.Event()
        self._resume.set()
        self._tick, self._start_tick, self._status, self._hash, self._entities = 0, None, "starting", None, None
        self._times: deque = deque(maxlen=32)
        self._metrics: dict[str, list] = {}
        self._metric_rows = 0
        self._decisions: list[dict] = []
        self._table = None
        self._want_copy = False
        self._copy_at, self.copy_cost_s, self._force_copy_at = 0.0, 0.0, None
        self.copies = 0  # world copies taken (bench/dashboard.py reports them)
        self._steered = 0
        self._memo: dict[str, tuple] = {}  # what the HTTP threads built, under the version it was built for
        self.meta = dict(meta or {})  # scenario, config, seed, engine: run.json before the run writes it

    @property
    def in_memory(self) -> bool:
        """The API may answer from the event loop: on one rank, what the boundary published is in memory."""
        return self.n_ranks == 1

    def provisional_run_json(self) -> dict:
        """What ``run.json`` will say, for a fork made while the run goes on."""
        return {**self.meta, "scenario": self.meta.get("scenario", getattr(self.scenario, "name", None)),
                "ticks": self.ticks}

    # ---------------------------------------------------------------- tick thread
    def boundary(self, world, ticks: int | None = None) -> None:
        """After each tick, on the simulation's thread (the ``progress`` callback)."""
        now = time.perf_counter()
        tick = int(world.tick)
        if self._start_tick is None:
            self._start_tick = tick - 1
        metrics = self._new_metric_rows(world)
        decisions = self._new_decision_rows(world) if self.n_ranks == 1 else []
        with self._lock:
            self._tick, self._status = tick, "running"
            self._entities = len(world) if self.n_ranks == 1 else None
            self._times.append((tick, now))
            for k, v in metrics.items():
                self._metrics.setdefault(k, []).extend(v)
            self._metric_rows += len(next(iter(metrics.values()), []))
            self._decisions.extend(decisions)
        self._serve(world)
        if not self._resume.is_set():
            with self._lock:
                self._status = "paused"
            while not self._resume.wait(0.05):
                self._serve(world)
            with self._lock:
                self._status = "running"

    def _new_metric_rows(self, world) -> dict[str, list]:
        if self.scenario is None or self.scenario.metrics is None:
            return {}
        cols = self.scenario.metrics(world)
        return {k: np.asarray(v)[self._metric_rows:].tolist() for k, v in cols.items()}

    def _new_decision_rows(self, world) -> list[dict]:
        from socius.llm import DecisionStats
        stats = world.get_resource(DecisionStats)
        if stats is None:
            return []
        with self._lock:
            seen = len(self._decisions)
        return [dict(r) for r in stats.rows[seen:]]

    def _serve(self, world) -> None:
        while True:
            try:
                fn, fut = self._jobs.get_nowait()
            except queue.Empty:
                break
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(world))
                except BaseException as e:  # noqa: BLE001 - handed to the waiting request
                    fut.set_exception(e)
        force = self._force_copy_at is not None and world.tick >= self._force_copy_at
        due = time.perf_counter() - self._copy_at >= max(self.min_copy_s, self.copy_cost_s * COPY_RATIO)
        if force or (self._want_copy and (due or self._table is None)):
            self._copy(world)

    def _copy(self, world) -> None:
        from .agents import AgentTable
        from .world_copy import copy_world
        t0 = time.perf_counter()
        table = AgentTable(copy_world(world))
        with self._lock:
            self._table, self._want_copy = table, False
            if self._force_copy_at is not None and world.tick >= self._force_copy_at:
                self._force_copy_at = None  # (a copy while paused, before the intervention's tick, keeps it)
        self._copy_at = time.perf_counter()
        self.copy_cost_s, self.copies = self._copy_at - t0, self.copies + 1

    def finish(self, world, state_hash: str | None = None) -> None:
        """After the run: the final world serves the agents pages (under MPI: the final snapshot's files);
        steering answers 409."""
        from .agents import AgentTable
        with self._lock:
            self._status, self._hash, self._tick = "finished", state_hash, int(world.tick)
            if self.n_ranks == 1:
                self._table = AgentTable(world)
        self._resume.set()
        self._fail_jobs("the run has finished")

    def fail(self, why: str) -> None:
        with self._lock:
            self._status = "stopped"
        self._fail_jobs(why)

    def _fail_jobs(self, why: str) -> None:
        while True:
            try:
                _, fut = self._jobs.get_nowait()
            except queue.Empty:
                return
            fut.set_exception(NotLive(why))

    # ---------------------------------------------------------------- RunSource
    def live(self) -> dict:
        with self._lock:
            times = list(self._times)
            status, tick = self._status, self._tick
        if status == "running" and not self._resume.is_set():
            status = "pausing"
        rate = None
        if len(times) >= 2 and times[-1][1] > times[0][1]:
            rate = (times[-1][0] - times[0][0]) / (times[-1][1] - times[0][1])
        eta = (self.ticks - tick) / rate if rate and status not in ("finished", "stopped") else None
        return {"live": True, "tick": tick, "ticks": self.ticks, "status": status, "ticks_per_s": rate,
                "eta_s": eta, "paused": not self._resume.is_set(), "interventions": self._steered}

    def version(self) -> str:
        """Changes at each boundary, pause, intervention and world copy (on one rank no file is read)."""
        live = self.live()
        with self._lock:
            copy_tick = None if self._table is None else self._table.tick
        files = RunFiles.version(self) if self.n_ranks > 1 else ""  # other ranks' decisions and figures
        return f"{live['tick']}-{live['status']}-{live['interventions']}-{copy_tick}-{files}"

    def info(self) -> dict:
        version = self.version()
        hit = self._memo.get("info")
        if hit is None or hit[0] != version:  # the files' part is read once per version
            out = super().info()
            for k in ("scenario", "seed"):  # before the run writes run.json
                out[k] = out.get(k) if out.get(k) is not None else self.meta.get(k)
            out["scenario"] = out["scenario"] or getattr(self.scenario, "name", None)
            out["ranks"] = self.n_ranks
            hit = self._memo["info"] = (version, out)
        out = {**hit[1], **self.live(), "version": version}
        if out.get("entities") is None:  # before run.json: the world's (under MPI: the ranks' figures)
            rows = self.ranks() if self.n_ranks > 1 else []
            out["entities"] = self._entities if self.n_ranks == 1 else (sum(r.get("entities", 0) for r in rows)
                                                                         if rows else None)
        if self._hash is not None:
            out["state_hash"] = self._hash
        return out

    def metrics(self) -> pa.Table | None:
        with self._lock:
            n = self._metric_rows
            hit = self._memo.get("metrics")
            if hit is not None and hit[0] == n:
                return hit[1]
            cols = {k: list(v) for k, v in self._metrics.items()}
        table = pa.table(cols) if cols else None
        self._memo["metrics"] = (n, table)
        return table

    def decisions(self) -> pa.Table | None:
        if self.n_ranks > 1:
            return RunFiles.decisions(self)  # every rank's decisions/rank-*.parquet, as the run writes them
        with self._lock:
            n = len(self._decisions)
            hit = self._memo.get("decisions")
            if hit is not None and hit[0] == n:
                return hit[1]
            rows = list(self._decisions)
        table = aggregate_decisions(pa.Table.from_pylist(rows)) if rows else None
        self._memo["decisions"] = (n, table)
        return table

    def agents(self):
        """The latest consistent copy; asks the tick thread for a fresher one (waits only for the first).
        Under MPI, the latest snapshot (``--snapshot-every``), as ``socius serve`` reads it."""
        if self.n_ranks > 1:
            return RunFiles.agents(self)
        with self._lock:
            table, tick, status = self._table, self._tick, self._status
        if table is not None and (table.tick >= tick or status in ("finished", "stopped")):
            return table
        self._want_copy = True
        if table is not None:
            return table
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self._lock:
                if self._table is not None:
                    return self._table
                if self._status == "stopped":
                    break
            time.sleep(0.02)
        raise RunUnavailable(f"run {self.name}: no copy of the world yet (the first tick has not ended)")
