"""The steering half of the live run (:class:`~socius.web.live.LiveRun`): requests that change the run.

Each request is checked in full on the HTTP thread, then handed to the simulation's thread as a job
(:meth:`LiveSteering.submit`) that runs at the next tick boundary, where the world may be read and
changed: interventions join the world's ``InterventionSchedule`` for the next tick (recorded in
``interventions.jsonl``, see :mod:`socius.web.steer`), interviews run out of band (state hash
unchanged unless stored), "snapshot now" saves and keeps the world. Pause and resume hold or release
the simulation at the boundary. A finished run, or one over several MPI ranks (served read-only:
steering would need every rank at the boundary), answers :class:`NotLive` (409).
"""
from __future__ import annotations

from concurrent.futures import Future

import numpy as np

from .runs import RunUnavailable
from .steer import SteerError, check_intervention, schedule_ui_intervention

__all__ = ["LiveSteering", "NotLive", "WAIT_S"]

WAIT_S = 60.0


class NotLive(RunUnavailable):
    """A steering request the run cannot take now (finished, over MPI, or not served live); the API answers 409."""


class LiveSteering:
    """Steering requests of :class:`~socius.web.live.LiveRun` (a mixin over its lock, job queue and state)."""

    n_ranks: int = 1

    def submit(self, fn, wait: float | None = WAIT_S):
        """Run ``fn(world)`` on the tick thread at the next boundary; its result (or ``Future`` when
        ``wait`` is None). Raises :class:`NotLive` once the run has ended, or under MPI."""
        self._check_live()
        fut: Future = Future()
        self._jobs.put((fn, fut))
        if wait is None:
            return fut
        return fut.result(wait)

    def intervene(self, body, wait: float = 10.0) -> dict:
        """Check ``body`` against the latest copy, then schedule it at the next boundary (see :mod:`.steer`)."""
        self._check_live()
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
        self._check_live()
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
        self._check_live()  # under MPI too: the other ranks would spin in their next collective
        self._resume.clear()
        return self.live()

    def resume(self) -> dict:
        self._resume.set()
        return self.live()

    def _check_live(self) -> None:
        if self.n_ranks > 1:
            raise NotLive(f"run {self.name} runs over {self.n_ranks} MPI ranks: it is served read-only (steering "
                          "needs every rank at the tick boundary, not available yet); run it on one rank to steer")
        with self._lock:
            if self._status in ("finished", "stopped"):
                raise NotLive(f"run {self.name} has {self._status}: it can no longer be steered")
