"""Distributed snapshots under a crash at every step of the save: resume always finds a whole one.

``CrashingFS`` stands in for kill -9: it counts every file-system mutation
under one folder (create/open for writing, mkdir, rename, replace, unlink,
rmdir) and makes the ``at``-th and every later one raise — the process is
dead from there on, so no cleanup code gets to run either. For each ``at``
until the save completes, resume (``find_snapshot`` on the run directory,
then restore) must find a complete snapshot, the old or the new, and go on
to the uninterrupted run's final hash.
"""
from __future__ import annotations

import builtins
import io
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from socius.app.run import find_snapshot
from socius.ecs import Component, Message, Resource, Scalar, World, system
from socius.mpi import (attach_ranks, distribute, exact_mean, owned_block, restore_distributed, run_ranks,
                        save_distributed, snapshot_info, world_ranks)


class Crash(BaseException):
    """The process died here: no ``except Exception`` catches it, no later file-system call succeeds."""


class CrashingFS:
    """Counts file-system mutations under ``root``; the ``at``-th (0-based) and all later ones raise Crash."""

    OPS = ("replace", "rename", "mkdir", "unlink", "rmdir")

    def __init__(self, monkeypatch, root: Path, at: int):
        self.root, self.at, self.steps, self.crashed = os.path.join(str(root), ""), at, [], False
        self._lock = threading.Lock()
        for name in self.OPS:
            monkeypatch.setattr(os, name, self._wrap(name, getattr(os, name)))
        real_open = io.open

        def opener(file, mode="r", *a, **kw):
            if any(c in mode for c in "wax+"):
                self._step("open", file, {})
            return real_open(file, mode, *a, **kw)
        monkeypatch.setattr(io, "open", opener)
        monkeypatch.setattr(builtins, "open", opener)

    def _wrap(self, name, real):
        def op(path, *a, **kw):
            self._step(name, path, kw)
            return real(path, *a, **kw)
        return op

    def _step(self, name, path, kw) -> None:
        if kw.get("dir_fd") is None and not os.path.join(os.fspath(path), "").startswith(self.root):
            return  # not ours (dir_fd calls come from shutil.rmtree inside the folder)
        with self._lock:
            if self.crashed or len(self.steps) >= self.at:
                self.crashed = True
                raise Crash(f"killed before {name} {os.fspath(path)!r} (step {len(self.steps)})")
            self.steps.append(f"{name} {os.path.basename(os.fspath(path))}")


class Coin(Component):
    value = Scalar(np.int64)


class Gift(Message):
    amount = Scalar(np.int64)


class Pot(Resource):
    mean: float = 0.0


N = 24


@system(reads=(Coin,), sends=(Gift,))
def give(ctx):
    v = ctx.query(Coin)
    ctx.send(Gift, sender=v.ids, target=ctx.rng("target").integers(v.ids, 0, N), amount=v[Coin].value % 5 + 1)


@system(writes=(Coin,), receives=(Gift,), resources=(Pot,))
def receive(ctx):
    g = ctx.read(Gift)
    v = ctx.query(Coin)
    with v.write(Coin) as c:
        np.add.at(c.value, np.searchsorted(v.ids, g.target), g.payload["amount"])
    ctx.resource(Pot).mean = exact_mean(world_ranks(ctx.world), v[Coin].value.astype(np.float64))


def make(ctx) -> World:
    w = World(seed=11)
    attach_ranks(w, ctx)
    ids = owned_block(w, N)
    w.spawn(ids.shape[0], {Coin: {"value": ids * 3}}, ids=ids)
    w.insert_resource(Pot())
    w.add_systems(give, receive)
    distribute(w)
    return w


def save_at(ctx, tick: int, path: Path) -> str:
    w = make(ctx)
    w.step(tick)
    save_distributed(w, path)
    return w.state_hash()


def resume(ctx, path: Path, total: int) -> tuple[int, str]:
    w = make(ctx)
    restore_distributed(w, path)
    start = w.tick
    w.step(total - w.tick)
    return start, w.state_hash()


def _hash_after(ctx, ticks: int) -> str:
    w = make(ctx)
    w.step(ticks)
    return w.state_hash()


OLD, NEW, TOTAL = 2, 4, 6


def crash_every_step(tmp_path, monkeypatch, size: int, with_old: bool) -> dict:
    """Save at tick NEW over one made at tick OLD (or over nothing), crashing at step 0, 1, 2, ... until
    a save completes; after each crash, resume must reach the final hash. Returns outcome counts."""
    final = run_ranks(1, _hash_after, TOTAL)[0]
    at_tick = {t: run_ranks(1, _hash_after, t)[0] for t in (OLD, NEW)}
    outcomes = {"old": 0, "new": 0, "none": 0}
    for at in range(200):
        run = tmp_path / f"{size}-{with_old}-{at}"
        run.mkdir()
        path = run / "snapshot.ranks"
        if with_old:
            run_ranks(size, save_at, OLD, path)
        with monkeypatch.context() as mp:
            fs = CrashingFS(mp, run, at)
            try:
                run_ranks(size, save_at, NEW, path, timeout=10)
            except BaseException:  # noqa: BLE001 — a Crash, on a rank (RankError) or here
                if not fs.crashed:
                    raise
        snap = find_snapshot(run)
        if snap is None:
            assert not with_old, f"crash at step {at} {fs.steps}: the old snapshot is gone"
            outcomes["none"] += 1
        else:
            info = snapshot_info(snap)
            assert info["tick"] in ((OLD, NEW) if with_old else (NEW,)), (at, info["tick"])
            assert info["state_hash"] == at_tick[info["tick"]]
            for ranks in sorted({1, size, 3}):  # resume on any rank count
                got = run_ranks(ranks, resume, snap, TOTAL)
                assert got == [(info["tick"], final)] * ranks, f"crash at step {at} ({fs.steps}), {ranks} ranks"
            outcomes["old" if info["tick"] == OLD else "new"] += 1
        # whatever the crash left behind, the next save works and leaves one clean snapshot
        run_ranks(size, save_at, TOTAL, path)
        assert snapshot_info(path)["state_hash"] == final
        assert sorted(p.name for p in run.iterdir()) == ["snapshot.ranks"], (at, fs.steps)
        assert len(list(path.iterdir())) == 2, (at, sorted(p.name for p in path.iterdir()))
        if not fs.crashed:
            outcomes["steps"] = len(fs.steps)
            return outcomes
    raise AssertionError("the save never completed")


@pytest.mark.parametrize("size", [1, 2])
def test_a_crash_at_any_step_of_replacing_a_snapshot_leaves_the_old_or_the_new(tmp_path, monkeypatch, size):
    out = crash_every_step(tmp_path, monkeypatch, size, with_old=True)
    # parts (open + rename each), generation folder, manifest (open + replace), old generation removed
    assert out["steps"] >= 3 * size + 4, out
    assert out["old"] >= 1 and out["new"] >= 1 and out["none"] == 0, out


@pytest.mark.parametrize("size", [1, 2])
def test_a_crash_during_the_first_save_leaves_nothing_or_a_whole_snapshot(tmp_path, monkeypatch, size):
    out = crash_every_step(tmp_path, monkeypatch, size, with_old=False)
    assert out["none"] >= 3 and out["new"] >= 1 and out["old"] == 0, out


def test_a_flat_layout_folder_still_reads_and_is_replaced_cleanly(tmp_path):
    """A snapshot written before generations (parts beside the manifest) resumes and is tidied on save."""
    import json
    path = tmp_path / "snapshot.ranks"
    run_ranks(2, save_at, OLD, path)
    m = json.loads((path / "manifest.json").read_text())
    gen = path / m["parts"][0].split("/")[0]
    for p in gen.iterdir():
        p.rename(path / p.name)
    gen.rmdir()
    m["parts"] = [p.split("/")[1] for p in m["parts"]]
    del m["generation"]
    (path / "manifest.json").write_text(json.dumps(m))
    assert run_ranks(2, resume, path, TOTAL) == [(OLD, run_ranks(1, _hash_after, TOTAL)[0])] * 2
    run_ranks(2, save_at, NEW, path)
    assert snapshot_info(path)["tick"] == NEW
    assert not list(path.glob("part-*"))  # the flat parts are gone with the old snapshot


def test_save_refuses_a_path_that_is_a_file(tmp_path):
    from socius.ecs import SnapshotError
    path = tmp_path / "snapshot.ranks"
    path.write_text("not a folder")
    with pytest.raises(Exception, match="not a snapshot folder"):
        run_ranks(2, save_at, OLD, path)
    with pytest.raises(SnapshotError, match="not a Socius snapshot"):
        snapshot_info(path)
