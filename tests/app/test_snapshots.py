"""Periodic snapshots (``--snapshot-every``) and ``--resume`` from a mid-run one, through the command line.

A run is stopped part-way (a Ctrl-C raised right after tick ``STOP``); its run
directory then holds the snapshot of the last multiple of ``--snapshot-every``
before that, and ``--resume DIR`` from it must reach the uninterrupted run's
final ``state_hash`` — for an LLM scenario on the mock engine (the response
log and the engine's state travel through the snapshot too) and for one
without an LLM.
"""
from __future__ import annotations

import json

import pytest

from socius.app.cli import main
from socius.app.run import find_snapshot, snapshot_tick
from socius.ecs import World

RUNS = {
    "guess": ["run", "guess", "--agents", "60", "--rounds", "7", "--engine", "mock", "--seed", "3", "--quiet"],
    "boltzmann": ["run", "boltzmann", "--agents", "300", "--steps", "7", "--seed", "3", "--quiet"],
}
EVERY, STOP, TOTAL = 2, 5, 7


def final_hash(args, capsys) -> str:
    code = main(args)
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and out[-1].startswith("state_hash: "), out
    return out[-1].split()[1]


def interrupt_after(monkeypatch, tick: int) -> None:
    """Make the next run raise KeyboardInterrupt right after tick ``tick`` (its snapshots already taken)."""
    real_step = World.step

    def step(self, n=1, on_tick=None):
        def hook(w):
            if on_tick is not None:
                on_tick(w)
            if w.tick == tick:
                raise KeyboardInterrupt
        return real_step(self, n, on_tick=hook)
    monkeypatch.setattr(World, "step", step)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_resume_from_a_periodic_mid_run_snapshot_reaches_the_uninterrupted_hash(name, tmp_path, monkeypatch,
                                                                                capsys):
    args = RUNS[name]
    straight = final_hash(args, capsys)
    out = tmp_path / "run"
    with monkeypatch.context() as mp:
        interrupt_after(mp, STOP)
        code = main(args + ["--out", str(out), "--snapshot-every", str(EVERY)])
    assert code == 130
    capsys.readouterr()
    snap = find_snapshot(out)
    assert snap is not None and snapshot_tick(snap) == STOP - STOP % EVERY  # the last periodic one, mid-run
    assert not (out / "run.json").exists()  # the run did not finish
    resumed = final_hash(args + ["--out", str(out), "--resume", str(out)], capsys)
    assert resumed == straight
    info = json.loads((out / "run.json").read_text())
    assert info["ticks"] == TOTAL and info["state_hash"] == straight and info["resumed_from"] == str(snap)


def test_snapshots_are_taken_every_k_ticks(tmp_path, monkeypatch, capsys):
    """The periodic snapshot after tick t is the world after tick t: resuming from each gives the same end."""
    args = RUNS["boltzmann"]
    straight = final_hash(args, capsys)
    seen = []
    for stop in range(1, TOTAL):
        out = tmp_path / f"stop-{stop}"
        with monkeypatch.context() as mp:
            interrupt_after(mp, stop)
            assert main(args + ["--out", str(out), "--snapshot-every", str(EVERY)]) == 130
        snap = find_snapshot(out)
        seen.append(None if snap is None else snapshot_tick(snap))
        if snap is not None:
            assert final_hash(args + ["--resume", str(out)], capsys) == straight
    capsys.readouterr()
    assert seen == [None, 2, 2, 4, 4, 6]
