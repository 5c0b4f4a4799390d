"""How far a long engine call has got, shown while it runs.

The decision pipeline reports ``LLM.progress(decision, kind, done, total)`` as
an engine call's requests finish (see :mod:`socius.llm.resource`).
:class:`EngineProgress` is that callable: it keeps one small record per running
call (``decision kind``) and shows nothing for a call that ends within
``min_s`` (2 s), so a fast run prints nothing more and pays one locked update
per report. A call that lasts longer is shown through a *view*:

* :class:`LineView` (standard output is not a terminal: CI logs, pipes) prints
  a plain line ``guess answer: 120/300 requests, 45 s`` every ``every_s`` (5 s)
  and once at the end of the call;
* :class:`RichView` (a terminal) adds a row to the run's ``rich`` progress
  display (description, bar, ``done/total``, elapsed time, time left), updated
  live, removed when the call ends.

A daemon thread wakes every ``poll_s`` (0.5 s) while a call runs, so the
elapsed time moves even while no request finishes (the first requests of a
big batch finish together, after a long prefill); it starts with the first
report and ends with :meth:`EngineProgress.close`. Reports may come from any thread.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

__all__ = ["EngineProgress", "LineView", "RichView", "engine_progress", "format_line"]


def format_line(label: str, done: int, total: int, elapsed_s: float) -> str:
    """``"guess answer: 120/300 requests, 45 s"``."""
    return f"{label}: {done}/{total} requests, {elapsed_s:.0f} s"


@dataclass
class _Call:
    t0: float
    done: int
    total: int
    shown: bool = False
    last_print: float = 0.0


class View(Protocol):
    def show(self, key: str, done: int, total: int, elapsed_s: float, final: bool) -> None: ...

    def start(self, key: str, done: int, total: int) -> None: ...

    def end(self, key: str) -> None: ...


class LineView:
    """Plain lines through ``write`` (``print`` by default) every ``every_s`` and at the end of a shown call."""

    def __init__(self, write: Callable[[str], None] = print, every_s: float = 5.0):
        self.write, self.every_s = write, every_s
        self._last: dict[str, float] = {}

    def start(self, key: str, done: int, total: int) -> None:
        self._last.pop(key, None)

    def show(self, key: str, done: int, total: int, elapsed_s: float, final: bool) -> None:
        last = self._last.get(key)
        if final or last is None or elapsed_s - last >= self.every_s:
            self._last[key] = elapsed_s
            self.write(format_line(key, done, total, elapsed_s))

    def end(self, key: str) -> None:
        self._last.pop(key, None)


class RichView:
    """A row per shown call in a ``rich.progress.Progress`` (the run's display)."""

    def __init__(self, progress):
        self.progress = progress
        self._tasks: dict[str, int] = {}

    def start(self, key: str, done: int, total: int) -> None:
        # added hidden at once, so its elapsed-time column counts from the call's start
        self._tasks[key] = self.progress.add_task(key, total=total, completed=done, visible=False)

    def show(self, key: str, done: int, total: int, elapsed_s: float, final: bool) -> None:
        task = self._tasks.get(key)
        if task is not None:
            self.progress.update(task, completed=done, total=total, visible=True)

    def end(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self.progress.remove_task(task)


class EngineProgress:
    """``LLM.progress``: shows engine calls that last longer than ``min_s`` through ``view``."""

    def __init__(self, view: View, min_s: float = 2.0, poll_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic):
        self.view, self.min_s, self.poll_s, self.clock = view, min_s, poll_s, clock
        self._calls: dict[str, _Call] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, decision: str, kind: str, done: int, total: int) -> None:
        key, now = f"{decision} {kind}", self.clock()
        with self._lock:
            call = self._calls.get(key)
            if call is None:
                if done >= total:
                    return                  # a call that ended at its first report: nothing to show
                call = self._calls[key] = _Call(now, int(done), int(total))
                self.view.start(key, call.done, call.total)
                self._ensure_thread()
            call.done, call.total = int(done), int(total)
            if done >= total:
                del self._calls[key]
                if call.shown or now - call.t0 >= self.min_s:
                    self.view.show(key, call.done, call.total, now - call.t0, True)
                self.view.end(key)
                return
            self._show(key, call, now)

    def tick(self) -> None:
        """Show every running call that has lasted ``min_s`` (the thread calls it every ``poll_s``)."""
        now = self.clock()
        with self._lock:
            for key, call in list(self._calls.items()):
                self._show(key, call, now)

    def _show(self, key: str, call: _Call, now: float) -> None:
        if now - call.t0 >= self.min_s:
            call.shown = True
            self.view.show(key, call.done, call.total, now - call.t0, False)

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._loop, name="socius-engine-progress", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.tick()

    def close(self) -> None:
        """Stop the thread and drop the rows of calls still running (an interrupted run)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for key in list(self._calls):
                self.view.end(key)
            self._calls.clear()


def engine_progress(engine, bar, console) -> EngineProgress | None:
    """Set ``engine.progress`` (an :class:`~.engines.EngineChoice`; None: no LLM calls, returns None) to an
    :class:`EngineProgress` showing long calls as rows of ``bar`` on a terminal, as plain lines through
    ``console`` otherwise or when there is no ``bar``; the caller closes it when the run ends."""
    if engine is None:
        return None
    if bar is not None and console.is_terminal:
        view = RichView(bar)
    else:
        view = LineView(lambda text: console.print(text, highlight=False))
    engine.progress = EngineProgress(view)
    return engine.progress
