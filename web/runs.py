"""A run as the dashboard sees it: a :class:`RunSource` read from the run directory's files.

The API (:mod:`socius.web.api`) never touches a run directly: it asks a
source for ``info()``, ``metrics()``, ``decisions()``, ``agents()`` (an
:class:`~socius.web.agents.AgentTable` over one consistent world) and
``replies()`` (the response log, one row per completion). :class:`RunFiles`
answers from the files a run writes — ``run.json``, ``metrics.parquet``,
``decisions.parquet`` (or ``decisions/rank-*.parquet``), ``ranks/rank-*.json``
(per-rank figures under MPI), ``responses/``,
``snapshot.socius`` / ``snapshot.ranks/`` — so a finished run and a running
one (whose files grow between requests) are served the same way, and the
server never slows the simulation: it only reads files the run has already
renamed into place. A live source fed by the run loop at tick boundaries
implements the same methods.

Every file-derived value is cached under its file's ``(mtime_ns, size)``
signature (:class:`FileCache`): the latest snapshot is restored once per
snapshot file, the response log re-read only when a file is added or changes.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from socius.errors import ConfigError

__all__ = ["FileCache", "RunFiles", "aggregate_decisions", "RunSource", "RunUnavailable", "discover_runs"]

#: a run whose files changed less than this many seconds ago, without a final run.json, is "running"
ACTIVE_S = 120.0
#: stage times summed as our own work in a ``decisions.parquet`` written before ``our_s`` (it double
#: counts the extraction: ``extract_s`` holds its engine wait and, then, its dedup and log times too)
OWN_STAGES = ("render_s", "dedup_s", "log_s", "parse_s", "extract_s")


class RunUnavailable(ConfigError):
    """A file of a run that is missing or unreadable (names the file); the API answers 404/409 with it."""


def _signature(paths) -> tuple:
    out = []
    for p in paths:
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


class FileCache:
    """Values computed from files, recomputed only when the files' signatures change (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._values: dict[str, tuple[tuple, object]] = {}

    def get(self, key: str, paths, make: Callable[[], object]):
        sig = _signature(paths)
        with self._lock:
            hit = self._values.get(key)
            lock = self._locks.setdefault(key, threading.Lock())
        if hit is not None and hit[0] == sig:
            return hit[1]
        with lock:  # one computation per key at a time; the others wait for it
            hit = self._values.get(key)
            if hit is not None and hit[0] == sig:
                return hit[1]
            value = make()
            with self._lock:
                self._values[key] = (sig, value)
            return value


class RunSource:
    """What the API reads from a run (see the module docstring); subclasses implement each method."""

    name: str
    path: Path

    def info(self) -> dict: ...
    def metrics(self) -> pa.Table | None: ...
    def decisions(self) -> pa.Table | None: ...
    def agents(self): ...
    def replies(self) -> pa.Table: ...
    def ranks(self) -> list[dict]: ...
    def version(self) -> str: ...


class RunFiles(RunSource):
    """A run directory read from its files (finished, or still being written by a running ``socius run``)."""

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ConfigError(f"{self.path}: not a run directory")
        self.name = name or self.path.name
        self.cache = FileCache()

    # ------------------------------------------------------------------ files
    def _snapshot(self) -> Path | None:
        from socius.mpi.snapshot import snapshot_info
        found = [p for p in (self.path / "snapshot.socius", self.path / "snapshot.ranks") if p.exists()]
        if len(found) < 2:
            return found[0] if found else None
        try:
            return max(found, key=lambda p: int(snapshot_info(p)["tick"]))
        except Exception:  # noqa: BLE001 - a half-written pair: take the file
            return found[0]

    def _snapshot_files(self, snap: Path) -> list[Path]:
        return sorted(snap.iterdir()) if snap.is_dir() else [snap]

    def response_files(self) -> list[Path]:
        base = self.path / "responses"
        return sorted(base.glob("tick-*.parquet")) + sorted(base.glob("rank-*/tick-*.parquet"))

    def _decision_files(self) -> list[Path]:
        from socius.app.run import decision_files  # the layout is the writer's (lazy: the run machinery)
        return decision_files(self.path)

    def _rank_files(self) -> list[Path]:
        return sorted((self.path / "ranks").glob("rank-*.json"))

    def _watched(self) -> list[Path]:
        snap = self._snapshot()
        return ([self.path / "run.json", self.path / "metrics.parquet", *self._decision_files(), *self._rank_files()]
                + (self._snapshot_files(snap) if snap else []) + self.response_files()[-1:])

    def version(self) -> str:
        """Changes whenever a file the dashboard shows changes (the page polls it)."""
        sig = repr((_signature(self._watched()), len(self.response_files()))).encode()
        return hashlib.blake2b(sig, digest_size=8).hexdigest()

    # ------------------------------------------------------------------ values
    def run_json(self) -> dict | None:
        p = self.path / "run.json"

        def make():
            try:
                return json.loads(p.read_text())
            except (OSError, ValueError):
                return None
        return self.cache.get("run.json", [p], make)

    def info(self) -> dict:
        """``run.json`` (or what is known before it exists) plus ``tick``, ``status``, ``snapshot_tick``."""
        from socius.mpi.snapshot import snapshot_info
        meta = self.run_json() or {}
        snap = self._snapshot()
        snap_tick = None
        if snap is not None:
            snap_tick = self.cache.get("snapshot_info", self._snapshot_files(snap),
                                       lambda: _try(lambda: int(snapshot_info(snap)["tick"])))
        files = self.response_files()
        log_tick = max((int(f.name.split("-")[1]) + 1 for f in files), default=None)
        ticks = [t for t in (meta.get("ticks"), snap_tick, log_tick) if t is not None]
        watched = [p for p in self._watched() if p.exists()]
        newest = max((p.stat().st_mtime for p in watched), default=0.0)
        done = (self.path / "run.json").exists() and newest <= (self.path / "run.json").stat().st_mtime + 1.0
        status = "finished" if done else ("running" if time.time() - newest < ACTIVE_S else "stopped")
        return {"name": self.name, "path": str(self.path), "scenario": meta.get("scenario"),
                "seed": meta.get("seed"), "entities": meta.get("entities"), "state_hash": meta.get("state_hash"),
                "tick": max(ticks) if ticks else 0, "snapshot_tick": snap_tick, "status": status,
                "updated": newest, "version": self.version(), "run": meta}

    def metrics(self) -> pa.Table | None:
        p = self.path / "metrics.parquet"
        return self.cache.get("metrics", [p], lambda: _read_parquet(p) if p.is_file() else None)

    def decisions(self) -> pa.Table | None:
        """Per tick (summed over decisions and ranks): the pipeline's counts, tokens and times,
        with ``own_s`` (our own time, see :func:`aggregate_decisions`) beside ``engine_s`` and
        ``dedup_ratio`` = agents / requests."""
        files = self._decision_files()

        def make():
            if not files:
                return None
            return aggregate_decisions(pa.concat_tables([_read_parquet(f) for f in files],
                                                        promote_options="permissive"))
        return self.cache.get("decisions", files, make)

    def ranks(self) -> list[dict]:
        """Under MPI, one row per rank (``ranks/rank-0000R.json``, rewritten by each rank as the run goes):
        ``rank``, ``entities``, ``tick`` and per tick ``tick_s``, ``busy_s``, ``comm_s`` by category,
        ``route_bytes``; [] for a run on one rank."""
        files = self._rank_files()

        def make():
            rows = []
            for f in files:
                try:
                    rows.append(json.loads(f.read_text()))
                except (OSError, ValueError):
                    continue  # being replaced: the next poll has it
            return sorted(rows, key=lambda r: r.get("rank", 0))
        return self.cache.get("ranks", files, make)

    def agents(self):
        """The :class:`~socius.web.agents.AgentTable` over the latest snapshot (restored once per file)."""
        from .agents import AgentTable
        snap = self._snapshot()
        if snap is None:
            raise RunUnavailable(f"{self.path}: no snapshot yet (snapshot.socius or snapshot.ranks/); "
                                 "run with --snapshot-every to see a running run's agents")
        return self.cache.get("agents", self._snapshot_files(snap), lambda: AgentTable(_restore(snap)))

    def replies(self) -> pa.Table:
        """The response log, one row per completion (:func:`socius.correct.load_replies`), plus ``reply_id``."""
        from socius.correct import LabelError, load_replies
        from .labelling import with_reply_ids

        def make():
            try:
                return with_reply_ids(load_replies(self.path))
            except LabelError as e:
                raise RunUnavailable(str(e)) from None
        return self.cache.get("replies", self.response_files(), make)

    def label_store(self):
        from socius.correct import LabelStore
        return LabelStore(self.path)


def aggregate_decisions(t: pa.Table) -> pa.Table | None:
    """Per tick (summed over decisions and ranks) the pipeline's counts, tokens and times of
    ``DecisionStats`` rows, with ``own_s`` (the pipeline's ``our_s``: its wall time less its waits on
    the engine; for older files the sum of :data:`OWN_STAGES`) and ``dedup_ratio``; None when there are none."""
    if t.num_rows == 0 or "tick" not in t.column_names:
        return None
    own = [c for c in OWN_STAGES if c in t.column_names]
    total = t.column(own[0]) if own else None
    for c in own[1:]:
        total = pc.add(total, t.column(c))
    if "our_s" in t.column_names:  # rows of older rank files (null here) keep the sum
        total = t.column("our_s") if total is None else pc.coalesce(t.column("our_s"), total)
    if total is not None:
        t = t.append_column("own_s", total)
    numeric = (pa.types.is_integer, pa.types.is_floating)
    sums = [f.name for f in t.schema if f.name not in ("tick", "dedup_ratio")
            and any(ok(f.type) for ok in numeric)]
    g = t.group_by("tick").aggregate([(c, "sum") for c in sums]).sort_by("tick")
    g = g.rename_columns([c.removesuffix("_sum") for c in g.column_names])
    if "agents" in g.column_names and "requests" in g.column_names:
        req = g.column("requests").to_numpy().astype(np.float64)
        ratio = np.divide(g.column("agents").to_numpy(), req, out=np.ones_like(req), where=req > 0)
        g = g.append_column("dedup_ratio", pa.array(ratio))
    return g


def _try(fn):
    try:
        return fn()
    except Exception:  # noqa: BLE001 - a file being replaced: report nothing rather than fail the page
        return None


def _read_parquet(p: Path) -> pa.Table:
    try:
        return pq.read_table(p)
    except Exception as e:  # noqa: BLE001 - name the file
        raise RunUnavailable(f"{p}: unreadable ({type(e).__name__}: {e})") from None


def _restore(snap: Path):
    from socius.ecs import SnapshotError
    from socius.mpi.snapshot import load_snapshot
    try:
        return load_snapshot(snap)
    except (SnapshotError, ImportError, OSError) as e:
        raise RunUnavailable(f"{snap}: cannot restore the snapshot ({type(e).__name__}: {e})") from None


def discover_runs(paths) -> dict[str, RunFiles]:
    """``{name: RunFiles}`` for each path: a run directory, or a folder whose sub-folders are runs.
    Names are the folder names, made unique with ``-2``, ``-3`` … Raises :class:`ConfigError` when a
    path does not exist or holds no run."""
    runs: dict[str, RunFiles] = {}
    for raw in paths:
        p = Path(raw)
        if not p.is_dir():
            raise ConfigError(f"serve: {p} is not a directory")
        found = [p] if _is_run(p) else sorted(c for c in p.iterdir() if c.is_dir() and _is_run(c))
        if not found:
            raise ConfigError(f"serve: {p} holds no run (no run.json, snapshot or responses/)")
        for d in found:
            name, k = d.name, 1
            while name in runs:
                k += 1
                name = f"{d.name}-{k}"
            runs[name] = RunFiles(d, name)
    return runs


def _is_run(p: Path) -> bool:
    return any((p / f).exists() for f in ("run.json", "snapshot.socius", "snapshot.ranks", "responses"))
