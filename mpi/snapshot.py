"""Distributed snapshots: every rank writes its partition, rank 0 a manifest; restore on any rank count.

Layout of a distributed snapshot (a folder)::

    snapshot.ranks/
        manifest.json                    ranks, tick, seed, world-wide state hash, part files
        part-00000-of-00004.socius       rank 0's entities, components, inbox (the kernel's file format)
        ...

Writing is atomic for the whole folder: the parts and the manifest go into
``.snapshot.ranks.tmp-<tick>``, and only when every rank has written its part
does rank 0 swap it for the old folder (rename, rename, delete). A crash
while writing leaves the previous snapshot whole.

Restoring onto M ranks (any M, including from a one-rank ``snapshot.socius``
file): every rank reads the parts, keeps the entities its partition gives it
— the partition the scenario's ``build`` made for M ranks — and the inbox
messages it would hold after routing (targeted ones at their target's owner,
broadcasts everywhere), then the world-wide state hash is checked against
the manifest's. Every rank reads every part: restore needs memory for the
whole world on each rank for a moment.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from socius.ecs import SnapshotError
from socius.ecs.snapshot import read_manifest, restore_parts

from .world import Ranks, world_ranks

__all__ = ["save_distributed", "restore_distributed", "snapshot_info", "MANIFEST"]

MANIFEST = "manifest.json"
FORMAT = "socius-distributed-snapshot"


def _part_name(rank: int, size: int) -> str:
    return f"part-{rank:05d}-of-{size:05d}.socius"


def save_distributed(world, path: str | Path) -> Path:
    """Collective: write ``world`` (this rank's share of it) into the snapshot folder ``path``."""
    ctx = world_ranks(world)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{world.tick}")
    if ctx.rank == 0:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    ctx.barrier()
    world.save(tmp / _part_name(ctx.rank, ctx.size))
    digest = world.state_hash()  # collective: the whole world's hash
    ok = ctx.all_true(True)
    if ctx.rank == 0 and ok:
        manifest = {"format": FORMAT, "version": 1, "ranks": ctx.size, "tick": world.tick, "seed": world.seed,
                    "state_hash": digest, "parts": [_part_name(r, ctx.size) for r in range(ctx.size)]}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        old = path.with_name(f".{path.name}.old-{world.tick}")
        if path.exists():
            if old.exists():
                shutil.rmtree(old)
            path.rename(old)
        tmp.rename(path)
        if old.exists():
            shutil.rmtree(old)
    ctx.barrier()
    return path


def snapshot_info(path: str | Path) -> dict:
    """``{"tick", "seed", "state_hash", "ranks", "parts": [paths]}`` of a snapshot folder or a one-rank file."""
    path = Path(path)
    if path.is_dir():
        mf = path / MANIFEST
        if not mf.is_file():
            raise SnapshotError(f"{path}: not a distributed snapshot (no {MANIFEST})")
        try:
            m = json.loads(mf.read_text())
        except (OSError, ValueError) as e:
            raise SnapshotError(f"{mf}: unreadable manifest ({e})") from None
        if m.get("format") != FORMAT:
            raise SnapshotError(f"{mf}: not a Socius distributed snapshot manifest")
        parts = [path / p for p in m["parts"]]
        missing = [p.name for p in parts if not p.is_file()]
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
