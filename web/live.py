"""A running run served live: :class:`LiveRun`, fed by the run loop at each tick boundary.

The simulation's thread calls :meth:`LiveRun.boundary` after every tick (``progress(world, ticks)``
of :func:`socius.app.run.run_scenario`). There, and only there, the world is read and changed:

* the new rows of the scenario's ``metrics(world)`` and of the world's ``DecisionStats`` are
  appended to plain lists (the rows since the last boundary: O(new rows));
* queued jobs run in the order they came: interventions (scheduled for the next tick, see
  :mod:`socius.web.steer`), interviews (out of band: state hash unchanged unless stored), snapshot now;
* when the page asked for agents, a consistent copy of the world (a snapshot in memory, restored)
  is taken — at most once per ``max(min_copy_s, copy_cost × COPY_RATIO)`` seconds so copies cost
  under 1/COPY_RATIO of the run, at once after an intervention took effect;
* while paused, the thread waits here, still serving jobs.

The HTTP threads only read what the boundary published (under one lock) or wait for a job's
result; they never touch a column the systems are writing. Everything else (response log,
labels, forks) comes from the run directory's files, as for :class:`~socius.web.runs.RunFiles`.
"""
from __future__ import annotations

import queue
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pyarrow as pa

from .runs import RunFiles, RunUnavailable, aggregate_decisions
from .steer import SteerError, check_intervention, schedule_ui_intervention

__all__ = ["COPY_RATIO", "LiveRun", "NotLive"]

#: a world copy for the agents pages costs at most 1/COPY_RATIO of the run's time
COPY_RATIO = 100
WAIT_S = 60.0


class NotLive(RunUnavailable):
    """A steering request the run cannot take now (finished, or not served live); the API answers 409."""


class LiveRun(RunFiles):
    """The live view of the run writing ``path`` (see the module docstring)."""

    def __init__(self, path, scenario, ticks: int, name: str | None = None, snapshot_every: int = 0,
                 min_copy_s: float = 2.0, meta: dict | None = None):
        Path(path).mkdir(parents=True, exist_ok=True)
        super().__init__(path, name)
        self.scenario, self.ticks, self.snapshot_every = scenario, int(ticks), int(snapshot_every)
        self.min_copy_s = float(min_copy_s)
        self._lock = threading.Lock()
        self._jobs: queue.Queue = queue.Queue()
        self._resume = threading.Event()
        self._resume.set()
        self._tick, self._start_tick, self._status, self._hash = 0, None, "starting", None
        self._times: deque = deque(maxlen=32)
        self._metrics: dict[str, list] = {}
        self._metric_rows = 0
        self._decisions: list[dict] = []
        self._table = None
        self._want_copy = False
        self._copy_at, self._copy_cost, self._force_copy_at = 0.0, 0.0, None
        self._steered = 0
        self.meta = dict(meta or {})  # scenario, config, seed, engine: run.json before the run writes it

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
        decisions = self._new_decision_rows(world)
        with self._lock:
            self._tick, self._status = tick, "running"
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
        due = time.perf_counter() - self._copy_at >= max(self.min_copy_s, self._copy_cost * COPY_RATIO)
        if self._want_copy and (force or due or self._table is None):
            self._copy(world)

    def _copy(self, world) -> None:
        from socius.ecs.snapshot import load, save

        from .agents import AgentTable
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="socius-live-") as d:
            save(world, Path(d) / "copy.socius")
            table = AgentTable(load(Path(d) / "copy.socius"))
        with self._lock:
            self._table, self._want_copy, self._force_copy_at = table, False, None
        self._copy_at = time.perf_counter()
        self._copy_cost = self._copy_at - t0

    def finish(self, world, state_hash: str | None = None) -> None:
        """After the run: the final world serves the agents pages; steering answers 409."""
        from .agents import AgentTable
        with self._lock:
            self._status, self._hash, self._tick = "finished", state_hash, int(world.tick)
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

    # ---------------------------------------------------------------- requests
    def submit(self, fn, wait: float | None = WAIT_S):
        """Run ``fn(world)`` on the tick thread at the next boundary; its result (or ``Future`` when
        ``wait`` is None). Raises :class:`NotLive` once the run has ended."""
        with self._lock:
            if self._status in ("finished", "stopped"):
                raise NotLive(f"run {self.name} has {self._status}: it can no longer be steered")
        fut: Future = Future()
        self._jobs.put((fn, fut))
        if wait is None:
            return fut
        return fut.result(wait)

    def intervene(self, body, wait: float = 10.0) -> dict:
        """Check ``body`` against the latest copy, then schedule it at the next boundary (see :mod:`.steer`)."""
        row = check_intervention(self.agents().world, body)

        def job(world):
            checked = check_intervention(world, {k: row[k] for k in ("set", "value", "where", "ids")})
            item = schedule_ui_intervention(world, checked, self.path)
            self._force_copy_at = world.tick + 1
            self._want_copy = True
            if self.snapshot_every and world.tick % self.snapshot_every == 0 and world.tick:
                self._save_now(world)  # the snapshot of this boundary was written before the row
            with self._lock:
                self._steered += 1
            return {**item, "matched": checked["matched"], "status": "scheduled"}
        fut = self.submit(job, wait=None)
        try:
            return fut.result(wait)
        except TimeoutError:
            return {**{k: row[k] for k in ("set", "value", "where", "ids", "matched")}, "status": "queued"}

    def interview(self, ids, question: str, store: bool = False) -> dict:
        from socius.systems import interview
        if not isinstance(question, str) or not question.strip():
            raise SteerError("question: give a non-empty string")
        try:
            ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError):
            raise SteerError(f"ids: expected entity IDs, got {ids!r}") from None
        if not 1 <= ids.size <= 100:
            raise SteerError(f"ids: give 1 to 100 agents, got {ids.size}")

        def job(world):
            alive = world.is_alive(ids)
            if not alive.all():
                raise SteerError(f"ids: entity {int(ids[~alive][0])} is not alive")
            before = None if store else world.state_hash()
            res = interview(world, ids, question, store=bool(store))
            if store:
                self._force_copy_at, self._want_copy = world.tick, True
            return {"tick": int(world.tick), "ids": ids.tolist(), "answers": [str(a) for a in res.answers],
                    "outcome": res.outcome.tolist(), "stored": bool(store),
                    "state_hash_unchanged": None if store else before == world.state_hash()}
        return self.submit(job)

    def snapshot_now(self) -> dict:
        def job(world):
            return self._save_now(world)
        return self.submit(job)

    def _save_now(self, world) -> dict:
        from socius.app.run import SNAPSHOT, keep_snapshot
        world.save(self.path / SNAPSHOT)
        kept = keep_snapshot(self.path, world.tick)
        return {"tick": int(world.tick), "path": str(kept)}

    def pause(self) -> dict:
        self._check_live()
        self._resume.clear()
        return self.live()

    def resume(self) -> dict:
        self._resume.set()
        return self.live()

    def _check_live(self) -> None:
        with self._lock:
            if self._status in ("finished", "stopped"):
                raise NotLive(f"run {self.name} has {self._status}")

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
        live = self.live()
        with self._lock:
            copy_tick = None if self._table is None else self._table.tick
        return f"{live['tick']}-{live['status']}-{live['interventions']}-{copy_tick}-{len(self.response_files())}"

    def info(self) -> dict:
        out = super().info()
        live = self.live()
        out.update(live, version=self.version())
        if self._hash is not None:
            out["state_hash"] = self._hash
        out["scenario"] = out.get("scenario") or getattr(self.scenario, "name", None)
        return out

    def metrics(self) -> pa.Table | None:
        with self._lock:
            cols = {k: list(v) for k, v in self._metrics.items()}
        return pa.table(cols) if cols else None

    def decisions(self) -> pa.Table | None:
        with self._lock:
            rows = list(self._decisions)
        return aggregate_decisions(pa.Table.from_pylist(rows)) if rows else None

    def agents(self):
        """The latest consistent copy; asks the tick thread for a fresher one (waits only for the first)."""
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
