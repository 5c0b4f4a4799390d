"""The dashboard's HTTP API (FastAPI, the ``ui`` extra): every route under ``/api/`` reads a :class:`~socius.web.runs.RunSource`.

Routes (JSON; ``{run}`` is a run's name in ``GET /api/runs``)::

    GET  /api/runs                              [{name, scenario, tick, status, version, …}]
    GET  /api/runs/{run}                        run.json + tick, snapshot_tick, status, version
    GET  /api/runs/{run}/metrics                {columns: {name: [per-tick values]}}
    GET  /api/runs/{run}/decisions              per tick: requests, agents, dedup_ratio, tokens,
                                                ok/extracted/fallback/failed, engine_s, own_s; cost
    GET  /api/runs/{run}/cost                   tokens so far, and $ where the engine config has a price
    GET  /api/runs/{run}/ranks                  under MPI, per rank: entities, tick/busy/comm s, bytes routed
    GET  /api/runs/{run}/agents/columns         [{name, kind, dtype, numeric}]
    GET  /api/runs/{run}/agents                 ?where=&q=&sort=&desc=&offset=&limit=&columns=a,b
    GET  /api/runs/{run}/agents/histogram       ?column=&where=&q=&bins=
    GET  /api/runs/{run}/agents/{id}            components, memories, messages, recent decisions
    GET  /api/runs/{run}/labels                 counts per source and the newest labels
    GET  /api/runs/{run}/labels/queue           ?name=&policy=&k=&seed=  replies to label
    POST /api/runs/{run}/labels                 {name, labels: [{reply, score, revision, rationale}]}

Live runs (``socius run … --ui``, :class:`~socius.web.live.LiveRun`; a run served from files answers 409)::

    GET  /api/runs/{run}/live                   tick, ticks, status, ticks_per_s, eta_s, paused
    GET  /api/runs/{run}/interventions          the rows of interventions.jsonl
    POST /api/runs/{run}/interventions          {set, value, where, ids} → scheduled for the next tick
    POST /api/runs/{run}/interview              {ids, question, store} → answers (out of band)
    POST /api/runs/{run}/pause | resume | snapshot
    POST /api/runs/{run}/fork                   {at, out} → a new run dir branched at a kept tick

Security (:mod:`socius.web.guard`, :mod:`socius.web.server`): every ``/api/`` request needs the
token — the ``socius_token…`` cookie that ``/?token=…`` sets, or an
``Authorization: Bearer`` header — else 401; a POST from another origin is
refused (403). Bad queries and labels answer 400 with the message, unknown
runs and agents 404. Text written by agents is returned raw, as JSON
strings; the page renders it as text.

Answers are encoded with :func:`json.dumps` (NaN as null); the polled ones (metrics, decisions,
cost, ranks) once per version of the run, and a live run's in-memory answers are served on the
event loop: a polling page costs the simulation little (``bench/dashboard.py --overhead``).
"""
from __future__ import annotations

import hmac
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from .cost import cost_so_far
from .guard import Guard

__all__ = ["STATIC", "create_app", "json_response", "table_columns"]

STATIC = Path(__file__).resolve().parent / "static"
RECENT_DECISIONS = 20


def table_columns(t: pa.Table | None) -> dict:
    """``{name: [values]}`` of a table, NaN and infinities as None (JSON has no NaN)."""
    if t is None:
        return {}
    out = {}
    for name in t.column_names:
        col = t.column(name)
        if pa.types.is_floating(col.type):
            v = col.to_numpy(zero_copy_only=False).astype(np.float64)
            out[name] = [x if np.isfinite(x) else None for x in v.tolist()]
        elif pa.types.is_timestamp(col.type):
            out[name] = [None if x is None else x.isoformat() for x in col.to_pylist()]
        else:
            out[name] = col.to_pylist()
    return out


def _finite(v):
    if isinstance(v, float):
        return v if np.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)  # paths, datetimes


def json_response(obj) -> Response:
    """``obj`` as a JSON response, encoded by :func:`json.dumps` (FastAPI's per-value encoder costs
    milliseconds per answer on the live run's GIL); NaN and infinities become null."""
    try:
        body = json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_plain)
    except ValueError:
        body = json.dumps(_finite(obj), separators=(",", ":"), allow_nan=False, default=_plain)
    return Response(body, media_type="application/json")


def create_app(runs: dict, token: str, cookie: str = "socius_token"):
    """The ASGI app serving ``runs`` (``{name: RunSource}``) to holders of ``token``."""
    from socius.correct import LabelError

    from .agents import QueryError
    from .labelling import BadLabels, queue, store_labels
    from .live import NotLive
    from .runs import RunUnavailable
    from .steer import SteerError

    app = FastAPI(title="Socius dashboard", docs_url=None, redoc_url=None, openapi_url=None)

    app.add_middleware(Guard, token=token, cookie=cookie)
    bodies: dict[tuple, tuple[str, bytes]] = {}  # (route, run) -> (version, the encoded answer)

    def cached(route: str, run: str, src, make) -> Response:
        """The JSON answer of ``make()``, encoded once per version of the run (polling costs a lookup)."""
        version = src.version()
        hit = bodies.get((route, run))
        if hit is None or hit[0] != version:
            hit = bodies[(route, run)] = (version, json_response({"version": version, **make()}).body)
        return Response(hit[1], media_type="application/json")

    @app.exception_handler(NotLive)
    async def not_live(request, exc):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(QueryError)
    @app.exception_handler(SteerError)
    @app.exception_handler(BadLabels)
    async def bad_request(request, exc):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(LabelError)
    async def bad_store(request, exc):  # an unreadable label file: named, not a bare 500
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(RunUnavailable)
    async def unavailable(request, exc):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    def run_of(name: str):
        if name not in runs:
            raise HTTPException(404, f"no run named {name!r} (runs: {', '.join(runs)})")
        return runs[name]

    @app.get("/", include_in_schema=False)
    def index(request: Request):
        given = request.query_params.get("token")
        if given is not None:
            if not hmac.compare_digest(given.encode(), token.encode()):
                return PlainTextResponse("wrong token", status_code=401)
            resp = RedirectResponse("/", status_code=303)  # drop the token from the address bar
            resp.set_cookie(cookie, token, httponly=True, samesite="strict")
            return resp
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/runs")
    def list_runs():
        return json_response([{k: v for k, v in src.info().items() if k != "run"} for src in runs.values()])

    async def answer(src, fn):
        """``fn()`` on the event loop for a source held in memory (a live run: no thread hop, the
        simulation's GIL is taken once), else on a worker thread (it reads files)."""
        from starlette.concurrency import run_in_threadpool
        return fn() if getattr(src, "in_memory", False) else await run_in_threadpool(fn)

    @app.get("/api/runs/{run}")
    async def run_info(run: str):
        src = run_of(run)
        return await answer(src, lambda: json_response(src.info()))

    @app.get("/api/runs/{run}/metrics")
    async def metrics(run: str):
        src = run_of(run)
        return await answer(src, lambda: cached("metrics", run, src, lambda: {"columns": table_columns(src.metrics())}))

    @app.get("/api/runs/{run}/decisions")
    async def decisions(run: str):
        src = run_of(run)

        def make():
            table = src.decisions()
            return {"columns": table_columns(table), "cost": cost_so_far(src, table)}
        return await answer(src, lambda: cached("decisions", run, src, make))

    @app.get("/api/runs/{run}/ranks")
    async def ranks(run: str):
        src = run_of(run)
        return await answer(src, lambda: cached("ranks", run, src, lambda: {"ranks": src.ranks()}))

    @app.get("/api/runs/{run}/cost")
    async def cost(run: str):
        src = run_of(run)
        return await answer(src, lambda: cached("cost", run, src, lambda: cost_so_far(src)))

    @app.get("/api/runs/{run}/agents/columns")
    def agent_columns(run: str):
        table = run_of(run).agents()
        return {"tick": table.tick, "agents": table.n, "columns": table.columns(),
                "default": table.default_columns()}

    @app.get("/api/runs/{run}/agents")
    def agents(run: str, where: str = "", q: str = "", sort: str = "", desc: bool = False, offset: int = 0,
               limit: int = 50, columns: str = ""):
        cols = [c.strip() for c in columns.split(",") if c.strip()] or None
        return json_response(run_of(run).agents().page(where, q, sort or None, desc, offset, limit, cols))

    @app.get("/api/runs/{run}/agents/histogram")
    def histogram(run: str, column: str, where: str = "", q: str = "", bins: int = 20):
        return run_of(run).agents().histogram(column, where, q, bins)

    @app.get("/api/runs/{run}/agents/{entity}")
    def agent(run: str, entity: int):
        src = run_of(run)
        try:
            view = src.agents().agent(entity)
        except KeyError as e:
            raise HTTPException(404, str(e.args[0])) from None
        view["decisions"] = recent_decisions(src, entity)
        return view

    @app.get("/api/runs/{run}/labels")
    def labels(run: str, limit: int = 50):
        table = run_of(run).label_store().read()
        counts = {}
        if table.num_rows:
            g = table.group_by("source").aggregate([("label_id", "count")])
            counts = dict(zip(g.column("source").to_pylist(), g.column("label_id_count").to_pylist()))
        newest = table.slice(max(table.num_rows - max(0, min(limit, 500)), 0))
        return {"total": table.num_rows, "by_source": counts, "newest": table_columns(newest)}

    @app.get("/api/runs/{run}/labels/queue")
    def label_queue(run: str, name: str, policy: str = "uniform", k: int = 20, seed: int = 0):
        src = run_of(run)
        world = None
        if "per-cohort" in policy:
            world = src.agents().world
        items = queue(src.replies(), src.label_store().read(), name, policy, k, seed, world)
        rows = table_columns(items.select(["reply_id", "tick", "decision", "entity", "prompt", "completion",
                                           "model", "adapter"]))
        profiles = {}
        try:
            table = src.agents()
            for e in set(rows.get("entity", [])):
                profiles[str(e)] = table.agent(e)["components"].get("Profile")
        except (RunUnavailable, KeyError):
            pass
        return {"items": [dict(zip(rows, vals)) for vals in zip(*rows.values())], "profiles": profiles}

    @app.post("/api/runs/{run}/labels")
    async def post_labels(run: str, request: Request):
        from starlette.concurrency import run_in_threadpool
        src = run_of(run)
        try:
            body = await request.json()
        except ValueError:
            raise BadLabels("body is not valid JSON") from None
        written = await run_in_threadpool(store_labels, src, body)
        return {"written": written.num_rows, "label_ids": written.column("label_id").to_pylist()}

    from .live_routes import add_live_routes
    add_live_routes(app, run_of)
    return app


def recent_decisions(src, entity: int, k: int = RECENT_DECISIONS) -> list[dict]:
    """The agent's ``k`` newest logged replies (prompt and reply), newest first; [] without a log."""
    from .runs import RunUnavailable
    try:
        replies = src.replies()
    except RunUnavailable:
        return []
    mine = replies.filter(pc.equal(replies.column("entity"), entity))
    if mine.num_rows == 0:
        return []
    mine = mine.take(pa.array(np.arange(mine.num_rows)[::-1][:k].copy()))
    cols = table_columns(mine.select(["reply_id", "tick", "decision", "kind", "prompt", "completion", "model",
                                      "adapter", "error"]))
    return [dict(zip(cols, vals)) for vals in zip(*cols.values())]
