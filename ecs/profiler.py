"""Profiling a world tick by tick: time, agents processed and memory growth per system.

::

    with Profiler(world) as prof:     # attaches a hook to world.schedule
        prof.step(20)                 # 20 timed ticks
    s = prof.summary()
    s["ticks_per_s"]["median"], [(r["name"], r["median_s"], r["share"]) for r in s["systems"]]

What is measured, per tick and per system (in schedule order):

* **wall time**: ``time.perf_counter`` around the system's function, taken
  by :meth:`Schedule.run_tick` itself when a hook is attached; the tick's
  time is taken around ``world.step(1)``, so it also holds the phase sync
  points (commands applied, messages flipped) and the hooks' own cost.
* **agents processed**: the number of entities that have *every* component
  the system declares in ``reads`` or ``writes`` — what one query over all
  of them would match — counted right after the system ran. It is cached
  on the tables' structural versions, so it costs a tuple compare per tick
  unless entities were spawned, despawned or changed components. A system
  that declares no component processes ``None`` agents (resource-only
  work). It is the size of the system's main query whenever the system
  queries its declared components together, which is the usual case; a
  system that queries them separately (say agents and cells) may match 0.
* **peak memory growth**: how far the process's resident set rose above
  its level at the system's start while the system ran (bytes). Linux
  only: before each system the kernel's RSS high-water mark is reset
  (``/proc/self/clear_refs`` <- ``5``) and afterwards read (``VmHWM`` in
  ``/proc/self/status``), about 8-10 µs per system. It sees every allocator
  (numpy, Arrow, numba, Python) but only memory newly taken from the OS: a
  temporary that reuses memory the allocator already holds does not show,
  which is why the summary reports the *largest* growth over the ticks
  (usually the first). Probing keeps to a time budget (``memory_budget``,
  0.2 % of tick time, amortised, against the probe's measured cost; the
  probe also seems to slow the code right after it a little, so the budget
  stays well under the 2 % the whole profiler may take): the first tick is
  always probed, later ticks whenever the allowance saved up since the last
  probe pays for one — every tick once ticks take ~20 ms, every k-th tick
  of a faster scenario; the summary says how many
  (``ticks_probed``). ``tracemalloc`` was measured as the alternative: exact
  for numpy, blind to Arrow, and 3.6x slower ticks on an Arrow-heavy
  decision system — not usable under a 2 % budget. Where ``clear_refs`` is
  not available (not Linux), memory is reported as ``None``. Resetting the
  high-water mark hides the process's earlier peak from ``getrusage``; the
  profiler keeps it instead (:attr:`Profiler.peak_rss_bytes`).

Cost (``python -m socius.bench.profiler_overhead``, on and off on the same
world): about 1 µs per system per tick for the timing, plus the memory
probe's budget; the Boltzmann model at 100k agents (6-8 ms ticks) measured
+1.3 to +1.5 % with the profiler on (its own work 0.25 %), the guess game at
100k agents with the mock engine +0.9 %.

The profiler knows nothing of LLMs or MPI. A summary is one rank's figures
(``"rank"``); ``socius profile`` under MPI gathers one per rank. Extra per-system figures (an LLM pipeline's stage times, say) can
be gathered by another hook on the same schedule; add it *before* the
profiler's so its own cost is not charged to the next system's memory.
"""
from __future__ import annotations

import os
import resource as _resource
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .storage import find_rows

if TYPE_CHECKING:
    from .system import System
    from .world import World

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class RssProbe:
    """The process's resident set and its resettable high-water mark (Linux ``/proc``).

    One ``pread`` of ``/proc/self/status`` gives both the high-water mark
    since the last reset (``VmHWM``) and the current RSS (``VmRSS``); one
    write of ``5`` to ``/proc/self/clear_refs`` resets the mark — about 8 µs
    together. ``available`` is False where that is not possible (not Linux,
    or ``clear_refs`` not writable); the profiler then reports no memory.
    """

    def __init__(self):
        self.available = False
        self.initial_peak: int | None = None
        self._fds: list[int] = []
        try:
            self._status = os.open("/proc/self/status", os.O_RDONLY)
            self._fds.append(self._status)
            self._clear = os.open("/proc/self/clear_refs", os.O_WRONLY)
            self._fds.append(self._clear)
            self.initial_peak, _ = self.read()
            os.write(self._clear, b"5")
            self.available = True
        except (OSError, ValueError):
            self.close()

    def read(self) -> tuple[int, int]:
        """``(peak, current)`` resident bytes: the high-water mark since the last reset, and now."""
        data = os.pread(self._status, 4096, 0)
        i = data.index(b"VmHWM:")
        j = data.index(b"VmRSS:", i)
        return int(data[i + 6:data.index(b"kB", i)]) * 1024, int(data[j + 6:data.index(b"kB", j)]) * 1024

    def current(self) -> int:
        return self.read()[1]

    def reset(self) -> None:
        """Reset the high-water mark to the current RSS."""
        os.write(self._clear, b"5")

    def close(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        self.available = False


@dataclass
class SystemRecord:
    """One system's figures, one entry per profiled tick it ran in."""

    name: str
    phase: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    ticks: list[int] = field(default_factory=list)          # index of the profiled tick
    seconds: list[float] = field(default_factory=list)      # wall seconds
    starts: list[float] = field(default_factory=list)       # perf_counter at the start
    agents: list[int | None] = field(default_factory=list)  # entities with all declared components
    mem_growth: list[int | None] = field(default_factory=list)  # peak RSS growth, bytes


def _stats(xs) -> dict[str, float]:
    a = np.asarray(xs, dtype=np.float64)
    if a.size == 0:
        return {k: float("nan") for k in ("median", "mean", "p10", "p90", "min", "max")}
    p10, med, p90 = np.percentile(a, [10, 50, 90])
    return {"median": float(med), "mean": float(a.mean()), "p10": float(p10), "p90": float(p90),
            "min": float(a.min()), "max": float(a.max())}


def _count_all(tables) -> int:
    """Entities present in every one of ``tables`` (ID-sorted entity arrays)."""
    if any(t is None or len(t) == 0 for t in tables):
        return 0
    base = min(tables, key=len)
    ids = base.entities
    if all(len(t) == len(base) and (t is base or np.array_equal(t.entities, ids)) for t in tables):
        return int(ids.shape[0])
    mask = np.ones(ids.shape[0], dtype=bool)
    for t in tables:
        if t is not base:
            mask &= find_rows(t.entities, ids)[1]
    return int(mask.sum())


class Profiler:
    """Times every system of ``world`` tick by tick (see the module docstring).

    ``memory=False`` skips the RSS probe. ``memory_budget``: the fraction of
    tick time the RSS probe may take, amortised — the first tick is always
    probed, later ones whenever the allowance saved up since the last probed
    tick covers a probe's measured cost (every tick once ticks last a few ms;
    every k-th tick of a fast scenario). Use as a context manager or call
    :meth:`attach` / :meth:`detach`; only ticks run through :meth:`step` are
    recorded.
    """

    def __init__(self, world: "World", memory: bool = True, rank: int = 0, memory_budget: float = 0.002):
        self.world = world
        self.rank = rank
        self.rss = RssProbe() if memory else None
        if self.rss is not None and not self.rss.available:
            self.rss = None
        self.memory_budget = float(memory_budget)
        self.probe_cost_s = self._measure_probe() if self.rss is not None else 0.0
        self.tick_probed: list[bool] = []        # whether memory was probed in each profiled tick
        self._allowance = 0.0
        self._probing = False
        self.systems: dict[str, SystemRecord] = {}
        self.tick_seconds: list[float] = []
        self.tick_starts: list[float] = []
        self.tick_numbers: list[int] = []        # world.tick at the start of each profiled tick
        self.tick_rss: list[int | None] = []     # resident bytes at the start of each profiled tick
        self.tick_mem_growth: list[int | None] = []  # peak RSS growth over the whole tick
        self._peak = self.rss.initial_peak if self.rss is not None else None
        self._agent_cache: dict[str, tuple[tuple, int]] = {}
        self._declared: dict[str, tuple] = {}
        self._active = False
        self._index = -1
        self._r0: int | None = None
        self._tick_r0: int | None = None
        self._tick_peak: int = 0

    def _measure_probe(self) -> float:
        """Seconds one read + reset of the RSS probe takes (median of a few)."""
        times = []
        for _ in range(9):
            t = time.perf_counter()
            self.rss.read()
            self.rss.reset()
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    # ------------------------------------------------------------------ attach / run
    def attach(self) -> "Profiler":
        if self._hook not in self.world.schedule.hooks:
            self.world.schedule.hooks.append(self._hook)
        return self

    def detach(self) -> None:
        hooks = self.world.schedule.hooks
        if self._hook in hooks:
            hooks.remove(self._hook)

    def __enter__(self) -> "Profiler":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()

    def close(self) -> None:
        self.detach()
        if self.rss is not None:
            self.rss.close()

    @property
    def running(self) -> bool:
        """True while :meth:`step` runs a tick (hooks of other probes check it)."""
        return self._active

    @property
    def tick_index(self) -> int:
        """Index of the profiled tick now running (or last run); -1 before the first."""
        return self._index

    @property
    def peak_rss_bytes(self) -> int | None:
        """The process's peak resident set (bytes) over its life, including before the profiler."""
        if self.rss is None:
            return _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss * 1024
        if self.rss.available:
            self._peak = max(self._peak or 0, self.rss.read()[0])
        return self._peak

    def step(self, ticks: int = 1) -> None:
        """Run and record ``ticks`` ticks (attaches the hook if needed)."""
        self.attach()
        world, rss = self.world, self.rss
        for _ in range(int(ticks)):
            self._index += 1
            self.tick_numbers.append(world.tick)
            probing = rss is not None and (
                not self.tick_probed or self._allowance >= self.probe_cost_s * (len(self.systems) + 2))
            self._probing = probing
            self.tick_probed.append(probing)
            if probing:
                self._allowance = 0.0
                p, self._r0 = rss.read()  # p: the peak since the last probed tick
                self._peak = max(self._peak or 0, p)
                rss.reset()
                self._tick_r0 = self._tick_peak = self._r0
            self.tick_rss.append(self._tick_r0 if probing else None)
            self._active = True
            t0 = time.perf_counter()
            try:
                world.step(1)
            finally:  # a tick that raised is still recorded (its systems' rows point at it)
                dt = time.perf_counter() - t0
                self._active = False
                self.tick_starts.append(t0)
                self.tick_seconds.append(dt)
                self._allowance += dt * self.memory_budget
                if probing:
                    p = max(self._tick_peak, rss.read()[0])
                    self._peak = max(self._peak or 0, p)
                    self.tick_mem_growth.append(p - self._tick_r0)
                else:
                    self.tick_mem_growth.append(None)

    def _hook(self, s: "System", seconds: float) -> None:
        if not self._active:
            return
        end = time.perf_counter()
        rec = self.systems.get(s.name)
        if rec is None:
            rec = self.systems[s.name] = SystemRecord(
                s.name, s.phase, tuple(sorted(c.__qualname__ for c in s.reads)),
                tuple(sorted(c.__qualname__ for c in s.writes)))
            self._declared[s.name] = tuple(sorted(s.reads | s.writes, key=lambda c: c.__component_name__))
        rec.ticks.append(self._index)
        rec.seconds.append(seconds)
        rec.starts.append(end - seconds)
        rec.agents.append(self._agents(s.name))
        if self._probing:
            rss = self.rss
            p, now = rss.read()
            rss.reset()
            if p > self._tick_peak:
                self._tick_peak = p
            rec.mem_growth.append(p - self._r0)
            self._r0 = now
        else:
            rec.mem_growth.append(None)

    def _agents(self, name: str) -> int | None:
        comps = self._declared[name]
        if not comps:
            return None
        tables = [self.world._tables.get(c) for c in comps]
        key = tuple((id(t), t.version) if t is not None else None for t in tables)
        hit = self._agent_cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        n = _count_all(tables)
        self._agent_cache[name] = (key, n)
        return n

    # ------------------------------------------------------------------ results
    def order(self) -> list[str]:
        """Profiled systems in schedule order (systems since removed come last)."""
        names = [s.name for s in self.world.schedule.systems() if s.name in self.systems]
        return names + [n for n in self.systems if n not in names]

    def system_share(self, name: str) -> np.ndarray:
        """``[k]`` the system's fraction of each tick it ran in."""
        rec = self.systems[name]
        tick = np.asarray(self.tick_seconds)[rec.ticks]
        return np.asarray(rec.seconds) / np.where(tick > 0, tick, np.nan)

    def summary(self) -> dict[str, Any]:
        """This rank's figures as plain data (seconds, bytes; medians over the profiled ticks)."""
        tick = np.asarray(self.tick_seconds, dtype=np.float64)
        tps = 1.0 / tick[tick > 0] if tick.size else tick
        systems = []
        total_sys = np.zeros(tick.shape[0])
        for name in self.order():
            rec = self.systems[name]
            sec = np.asarray(rec.seconds)
            np.add.at(total_sys, rec.ticks, sec)
            agents = [a for a in rec.agents if a is not None]
            n_agents = int(np.median(agents)) if agents else None
            med = float(np.median(sec)) if sec.size else float("nan")
            mem = [m for m in rec.mem_growth if m is not None]
            systems.append({
                "name": name, "phase": rec.phase, "reads": list(rec.reads), "writes": list(rec.writes),
                "ticks": len(rec.seconds),
                "seconds": _stats(sec),
                "median_s": med,
                "share": float(np.nanmedian(self.system_share(name))) if sec.size else float("nan"),
                "agents": n_agents,
                "us_per_agent": (med * 1e6 / n_agents) if n_agents else None,
                "peak_mem_growth_bytes": max(mem) if mem else None,
            })
        other = tick - total_sys
        mem_ticks = [m for m in self.tick_mem_growth if m is not None]
        return {
            "rank": self.rank,
            "ticks": int(tick.shape[0]),
            "entities": len(self.world),
            "tick_s": _stats(tick),
            "ticks_per_s": _stats(tps),
            "run_s": float(tick.sum()),
            "systems": systems,
            "kernel": {  # what the tick holds besides the systems: sync points, message flip, hooks
                "median_s": float(np.median(other)) if other.size else float("nan"),
                "share": float(np.median(other / np.where(tick > 0, tick, np.nan))) if other.size else float("nan"),
            },
            "memory": {
                "method": "rss_hwm" if self.rss is not None else None,
                "ticks_probed": int(sum(self.tick_probed)),
                "probe_cost_s": self.probe_cost_s,
                "peak_rss_bytes": self.peak_rss_bytes,
                "tick_peak_growth_bytes": max(mem_ticks) if mem_ticks else None,
            },
            "components": component_memory(self.world),
        }


def component_memory(world: "World") -> list[dict[str, Any]]:
    """Per component table: holders, bytes (strings estimated from their lengths) and bytes per holder."""
    out = []
    for c in world.component_types():
        n = world.count(c)
        b = world._tables[c].n_bytes()
        out.append({"name": c.__qualname__, "entities": n, "bytes": int(b),
                    "bytes_per_agent": (b / n) if n else None})
    return out
