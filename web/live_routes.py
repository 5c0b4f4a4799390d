"""The steering routes of the API (``/api/runs/{run}/…``): interventions, interview, pause, resume,
snapshot now, fork. Each answers 409 (:class:`~socius.web.live.NotLive`) for a run not served live
(except reading ``interventions`` and forking a finished run) and 400 (``SteerError``) for a bad body;
a request is checked in full before anything changes. Forks run on a thread of the server
(``fork_run``); ``GET /api/runs/{run}/forks`` says where each went and how it ended.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

from fastapi import Request

from .steer import SteerError, read_interventions

__all__ = ["add_live_routes"]


async def _body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise SteerError("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise SteerError("body: expected a JSON object")
    return body


def _live(src):
    from .live import LiveRun, NotLive
    if not isinstance(src, LiveRun):
        raise NotLive(f"run {src.name} is served from its files, not live: steer a run started with "
                      "`socius run … --ui`")
    return src


def add_live_routes(app, run_of) -> None:
    from starlette.concurrency import run_in_threadpool
    forks: dict[str, list[dict]] = {}

    @app.get("/api/runs/{run}/live")
    async def live(run: str):  # in memory, no lock held for long: on the event loop
        return _live(run_of(run)).live()

    @app.get("/api/runs/{run}/interventions")
    def interventions(run: str):
        return {"interventions": read_interventions(run_of(run).path)}

    @app.post("/api/runs/{run}/interventions")
    async def post_intervention(run: str, request: Request):
        src = _live(run_of(run))
        body = await _body(request)
        return await run_in_threadpool(src.intervene, body)

    @app.post("/api/runs/{run}/interview")
    async def post_interview(run: str, request: Request):
        src = _live(run_of(run))
        body = await _body(request)
        unknown = sorted(set(body) - {"ids", "question", "store"})
        if unknown:
            raise SteerError(f"{unknown[0]}: unknown field (use ids, question, store)")
        if not isinstance(body.get("store", False), bool):
            raise SteerError("store: expected true or false")
        ids = body.get("ids")
        if isinstance(ids, int) and not isinstance(ids, bool):
            ids = [ids]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise SteerError(f"ids: expected a list of entity IDs, got {ids!r}")
        return await run_in_threadpool(src.interview, ids, body.get("question"), body.get("store", False))

    @app.post("/api/runs/{run}/pause")
    def pause(run: str):
        return _live(run_of(run)).pause()

    @app.post("/api/runs/{run}/resume")
    def resume(run: str):
        return _live(run_of(run)).resume()

    @app.post("/api/runs/{run}/snapshot")
    def snapshot(run: str):
        return _live(run_of(run)).snapshot_now()

    @app.get("/api/runs/{run}/forks")
    def list_forks(run: str):
        run_of(run)
        return {"forks": forks.get(run, [])}

    @app.post("/api/runs/{run}/fork")
    async def post_fork(run: str, request: Request):
        from socius.app.fork import tick_snapshots
        src = run_of(run)
        body = await _body(request)
        unknown = sorted(set(body) - {"at", "out", "steps"})
        if unknown:
            raise SteerError(f"{unknown[0]}: unknown field (use at, out, steps)")
        at = body.get("at")
        kept = sorted(tick_snapshots(src.path))
        if not isinstance(at, int) or isinstance(at, bool) or at not in kept:
            raise SteerError(f"at: no kept snapshot at tick {at!r} (kept ticks: {', '.join(map(str, kept)) or 'none'};"
                             " run with --snapshot-every K or press 'snapshot now')")
        out = Path(body.get("out") or src.path.parent / f"{src.path.name}-fork-{at}-{int(time.time())}")
        if out.exists() and any(out.iterdir()):
            raise SteerError(f"out: {out} exists and is not empty")
        steps = body.get("steps")
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < at):
            raise SteerError(f"steps: expected an int >= {at}, got {steps!r}")
        job = {"at": at, "out": str(out), "status": "running", "state_hash": None, "error": None}
        forks.setdefault(run, []).append(job)
        threading.Thread(target=_fork, args=(src, at, out, steps, job), daemon=True, name="socius-fork").start()
        return job


def _fork(src, at: int, out: Path, steps, job: dict) -> None:
    """``fork_run`` on this thread. A running run has no ``run.json`` yet: the fork then reads a view
    (its provisional ``run.json`` + links to the kept snapshots and responses) and names the real parent."""
    from socius.app.fork import fork_run
    view = None
    try:
        parent = src.path
        if not (parent / "run.json").is_file():
            view = Path(tempfile.mkdtemp(prefix="socius-fork-view-"))
            (view / "run.json").write_text(json.dumps(src.provisional_run_json()))
            for name in ("snapshots", "responses"):
                if (parent / name).exists():
                    (view / name).symlink_to((parent / name).resolve())
        res = fork_run(view or parent, at, out, steps=steps)
        if view is not None:
            info = json.loads((out / "run.json").read_text())
            info.setdefault("parent", {})["run_dir"] = str(parent.resolve())
            tmp = out / ".run.json.tmp"
            tmp.write_text(json.dumps(info, indent=2, default=str) + "\n")
            tmp.replace(out / "run.json")
        job.update(status="finished", state_hash=res.state_hash, ticks=res.ticks)
    except Exception as e:  # noqa: BLE001 - shown on the page
        job.update(status="failed", error=f"{type(e).__name__}: {e}")
    finally:
        if view is not None:
            shutil.rmtree(view, ignore_errors=True)
