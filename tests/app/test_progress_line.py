"""Live progress of long engine calls (``app/progress_line.py``), on a fake clock: no thread, no sleeps."""
from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from socius.app.progress_line import EngineProgress, LineView, RichView, format_line


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def line_progress(every_s=5.0, min_s=2.0):
    lines, clock = [], Clock()
    prog = EngineProgress(LineView(lines.append, every_s=every_s), min_s=min_s, clock=clock)
    prog._ensure_thread = lambda: None      # the test drives tick() itself
    return prog, lines, clock


LINE = re.compile(r"^guess answer: (\d+)/(\d+) requests, (\d+) s$")


def test_format():
    assert format_line("guess answer", 120, 300, 45.2) == "guess answer: 120/300 requests, 45 s"


def test_a_fast_call_prints_nothing():
    prog, lines, clock = line_progress()
    prog("guess", "answer", 0, 300)
    clock.t += 0.5
    prog.tick()
    prog("guess", "answer", 150, 300)
    clock.t += 1.0
    prog("guess", "answer", 300, 300)
    assert lines == []
    assert prog._calls == {}


def test_a_call_ending_at_its_first_report_prints_nothing():
    prog, lines, clock = line_progress()
    prog("guess", "answer", 300, 300)              # an engine that does not report while it runs
    assert lines == [] and prog._calls == {}


def test_a_long_call_prints_every_few_seconds_and_at_the_end():
    prog, lines, clock = line_progress(every_s=5.0)
    prog("guess", "answer", 0, 300)
    for step in range(1, 25):                      # 12 s in 0.5 s polls, a request finishing now and then
        clock.t += 0.5
        if step % 4 == 0:
            prog("guess", "answer", step * 10, 300)
        prog.tick()
    clock.t += 0.3
    prog("guess", "answer", 300, 300)
    parsed = [tuple(map(int, LINE.match(x).groups())) for x in lines]
    assert parsed[-1] == (300, 300, 12)            # the end is always printed for a shown call
    assert parsed[0][2] == 2                       # first line once the call has lasted min_s
    shown = [s for _, _, s in parsed[:-1]]
    assert all(b - a >= 5 for a, b in zip(shown, shown[1:])), shown
    assert all(d <= t == 300 for d, t, _ in parsed)
    assert prog._calls == {}


@given(st.lists(st.floats(0.01, 3.0), min_size=1, max_size=60), st.floats(1.0, 10.0))
def test_lines_are_spaced_by_every_s(gaps, every_s):
    prog, lines, clock = line_progress(every_s=every_s)
    prog("guess", "answer", 0, 100)
    for g in gaps:
        clock.t += g
        prog.tick()
    total = sum(gaps)
    assert all(LINE.match(x) for x in lines)
    assert len(lines) <= 1 + total / every_s + 1e-9
    if total >= 2.0 + 1e-6:
        assert lines
    if total < 2.0 - 1e-6:
        assert not lines


def test_two_calls_are_kept_apart():
    prog, lines, clock = line_progress()
    prog("guess", "answer", 0, 10)
    prog("guess", "extract", 0, 4)
    clock.t += 3
    prog.tick()
    assert sorted(x.split(":")[0] for x in lines) == ["guess answer", "guess extract"]
    prog("guess", "extract", 4, 4)
    assert set(prog._calls) == {"guess answer"}


class FakeBar:
    """The part of ``rich.progress.Progress`` that RichView uses."""

    def __init__(self):
        self.tasks, self.next = {}, 0

    def add_task(self, description, total=None, completed=0, visible=True):
        self.next += 1
        self.tasks[self.next] = dict(description=description, total=total, completed=completed, visible=visible)
        return self.next

    def update(self, task, **kw):
        self.tasks[task].update(kw)

    def remove_task(self, task):
        del self.tasks[task]


def test_rich_row_appears_after_min_s_and_goes_at_the_end():
    bar, clock = FakeBar(), Clock()
    prog = EngineProgress(RichView(bar), clock=clock)
    prog._ensure_thread = lambda: None
    prog("guess", "answer", 0, 300)
    (task,) = bar.tasks.values()
    assert task["description"] == "guess answer" and not task["visible"]
    clock.t += 2.5
    prog("guess", "answer", 120, 300)
    assert task["visible"] and task["completed"] == 120 and task["total"] == 300
    prog("guess", "answer", 300, 300)
    assert bar.tasks == {}


def test_close_stops_the_thread_and_drops_running_rows():
    bar = FakeBar()
    prog = EngineProgress(RichView(bar), poll_s=0.01)
    prog("guess", "answer", 0, 10)
    assert prog._thread is not None and prog._thread.is_alive()
    prog.close()
    assert not prog._thread.is_alive() and bar.tasks == {}
