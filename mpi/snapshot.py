"""Distributed snapshots: every rank writes its partition, rank 0 a manifest; restore on any rank count.

Layout of a distributed snapshot (a folder)::

    snapshot.ranks/
        manifest.json                    ranks, tick, seed, world-wide state hash, generation, part files
        gen-000007/
            part-00000-of-00004.socius   rank 0's entities, components, inbox (the kernel's file format)
            ...

**The swap is one atomic step.** The manifest names the snapshot: a save
writes every rank's part into a new generation folder beside the current
one, then rank 0 writes the new manifest to a temporary file, fsyncs it and
``os.replace``-s it over ``manifest.json`` — the single rename that commits
the snapshot — and only then deletes the older generations. A crash (kill
-9) before that rename leaves the old manifest pointing at the old, whole
generation; after it, the new one. Leftovers of a crash (a half-written
generation, a temporary manifest) are never named by the manifest and are
removed by the next save. The very first save writes the whole folder under
``.snapshot.ranks.tmp-<tick>`` and renames it into place (one rename too),
so ``snapshot.ranks/`` exists only once it holds a complete snapshot.
Folders of the earlier flat layout (parts beside the manifest) still read.

Restoring onto M ranks (any M, including from a one-rank ``snapshot.socius``
file): every rank reads the parts, keeps the entities its partition gives it
— the partition the scenario's ``build`` made for M ranks — and the inbox
messages it would hold after routing (targeted ones at their target's owner,
broadcasts everywhere), then the world-wide state hash is checked against
the manifest's. Every rank reads every part: restore needs memory for the
whole world on each rank for a moment.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
from pathlib import Path

import numpy as np

from socius.ecs import SnapshotError
from socius.ecs.snapshot import read_manifest, restore_parts

from .world import Ranks, world_ranks

__all__ = ["save_distributed", "restore_distributed", "restore_snapshot", "load_snapshot", "snapshot_info", "MANIFEST"]

MANIFEST = "manifest.json"
FORMAT = "socius-distributed-snapshot"
GEN = "gen-"


def _part_name(rank: int, size: int) -> str:
    return f"part-{rank:05d}-of-{size:05d}.socius"


def _gen_name(generation: int) -> str:
    return f"{GEN}{generation:06d}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_manifest(path: Path) -> dict:
    """The parsed manifest of the snapshot folder ``path``; SnapshotError naming the file if unusable."""
    mf = path / MANIFEST
    if not mf.is_file():
        raise SnapshotError(f"{path}: not a distributed snapshot (no {MANIFEST})")
    try:
        m = json.loads(mf.read_text())
    except (OSError, ValueError) as e:
        raise SnapshotError(f"{mf}: unreadable manifest ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise SnapshotError(f"{mf}: not a Socius distributed snapshot manifest")
    missing = [k for k in ("tick", "seed", "state_hash", "ranks", "parts") if k not in m]
    if missing:
        raise SnapshotError(f"{mf}: manifest lacks the fields {missing}")
    return m


def _next_generation(path: Path) -> int:
    """Rank 0: a generation number above the manifest's and above any leftover folder."""
    seen = [0]
    try:
        seen.append(int(_read_manifest(path).get("generation", 0)))
    except SnapshotError:
        pass
    for p in path.iterdir():
        if p.name.startswith(GEN) and p.name[len(GEN):].isdigit():
            seen.append(int(p.name[len(GEN):]))
    return max(seen) + 1


def _write_manifest(folder: Path, manifest: dict) -> None:
    """Atomically (temporary file, fsync, rename) make ``manifest`` the folder's manifest: the commit."""
    tmp = folder / f".{MANIFEST}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(manifest, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST)
    _fsync_dir(folder)


def _remove_unnamed(folder: Path, keep: str) -> None:
    """Delete everything in ``folder`` but the manifest and generation ``keep`` (older generations,
    flat-layout parts, leftovers of crashed saves). Best effort: what stays is never read."""
    for p in folder.iterdir():
        if p.name in (MANIFEST, keep):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def save_distributed(world, path: str | Path) -> Path:
    """Collective: write ``world`` (this rank's share of it) into the snapshot folder ``path``.

    Atomic (see the module notes): whatever moment a crash hits, ``path`` holds
    the previous complete snapshot, the new one, or — before the first save
    completed — nothing.
    """
    ctx = world_ranks(world)
    path = Path(path)
    state = ctx.bcast_int((0 if path.is_dir() else 2 if path.exists() else 1) if ctx.rank == 0 else 0)
    if state == 2:
        raise SnapshotError(f"{path}: exists and is not a snapshot folder")
    first = state == 1
    if first:
        folder = path.with_name(f".{path.name}.tmp-{world.tick}")
        generation = 1
        if ctx.rank == 0:
            if folder.exists():
                shutil.rmtree(folder)
            (folder / _gen_name(generation)).mkdir(parents=True)
    else:
        folder = path
        generation = ctx.bcast_int(_next_generation(path) if ctx.rank == 0 else 0)
        if ctx.rank == 0:
            (folder / _gen_name(generation)).mkdir()
    ctx.barrier()
    gen = _gen_name(generation)
    world.save(folder / gen / _part_name(ctx.rank, ctx.size))
    digest = world.state_hash()  # collective: the whole world's hash
    ok = ctx.all_true(True)
    if ctx.rank == 0 and ok:
        _fsync_dir(folder / gen)  # the parts' names, then the generation's, are durable before the commit
        _fsync_dir(folder)
        manifest = {"format": FORMAT, "version": 1, "ranks": ctx.size, "tick": world.tick, "seed": world.seed,
                    "state_hash": digest, "generation": generation,
                    "parts": [f"{gen}/{_part_name(r, ctx.size)}" for r in range(ctx.size)]}
        _write_manifest(folder, manifest)
        if first:
            os.rename(folder, path)  # a fresh name: atomic, and no old snapshot to lose
            _fsync_dir(path.parent)
        else:
            _remove_unnamed(path, gen)
        for p in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):  # a crashed first save's folder
            shutil.rmtree(p, ignore_errors=True)
    ctx.barrier()
    return path


def snapshot_info(path: str | Path) -> dict:
    """``{"tick", "seed", "state_hash", "ranks", "parts": [paths]}`` of a snapshot folder or a one-rank file."""
    path = Path(path)
    if path.is_dir():
        m = _read_manifest(path)
        parts = [path / p for p in m["parts"]]
        missing = [str(p.relative_to(path)) for p in parts if not p.is_file()]
        if missing:
            raise SnapshotError(f"{path}: missing part files {missing}")
        return {"tick": m["tick"], "seed": m["seed"], "state_hash": m["state_hash"], "ranks": m["ranks"],
                "parts": parts}
    m, _ = read_manifest(path)
    return {"tick": m["tick"], "seed": m["seed"], "state_hash": m["state_hash"], "ranks": 1, "parts": [path]}


def restore_distributed(world, path: str | Path, types=()) -> None:
    """Collective: replace every rank's share of ``world`` by its share of the snapshot at ``path``.

    ``path``: a distributed snapshot folder or a one-rank snapshot file. The
    world's :class:`~socius.mpi.Ranks` partition says who owns what.
    """
    ctx = world_ranks(world)
    info = snapshot_info(path)
    part = world.resource(Ranks).partition
    if part is None and ctx.size > 1:
        raise SnapshotError("restore_distributed: the world has no partition (call owned_block or distribute first)")

    def keep_entities(ids):
        if part is None:
            return np.ones(ids.shape[0], bool)
        return _owner(part, ids) == ctx.rank

    def keep_messages(i, kind, mb):
        t = np.asarray(mb.target)
        keep = np.zeros(t.shape[0], bool)
        p2p = t >= 0
        keep[p2p] = keep_entities(t[p2p])
        keep[~p2p] = i == 0  # broadcasts: every rank holds all of them; take one part's copy
        return keep

    restore_parts(world, info["parts"], keep_entities, keep_messages, types)
    got = world.state_hash()
    if got != info["state_hash"]:
        raise SnapshotError(f"{path}: restored world hashes to {got}, the snapshot recorded {info['state_hash']}")


def _owner(part, ids: np.ndarray) -> np.ndarray:
    try:
        return part.owner_of(ids)
    except KeyError as e:
        raise SnapshotError(f"restore_distributed: {e.args[0]} — the snapshot holds an entity the new "
                            "partition does not place (was it spawned after build?)") from None


def restore_snapshot(world, path: str | Path, types=()) -> None:
    """Restore ``world`` from either kind of snapshot: a file (``World.restore``) or an N-rank folder
    (:func:`restore_distributed`, onto this process's ranks — one rank, or any other number)."""
    path = Path(path)
    if path.is_dir():
        restore_distributed(world, path, types)
    else:
        world.restore(path)


def load_snapshot(path: str | Path):
    """A new world holding the state of either kind of snapshot (read-only use: no systems are added)."""
    from socius.ecs import World

    path = Path(path)
    if not path.is_dir():
        return World.load(path)
    world = World()
    restore_distributed(world, path)
    return world
