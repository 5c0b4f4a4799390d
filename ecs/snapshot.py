"""Snapshots (one atomic file) and the state hash.

File layout (all integers little-endian)::

    b"SOCSNAP1"                     8-byte magic
    section 0 .. k-1                each an Arrow IPC stream
    manifest                        UTF-8 JSON: format version, seed, tick, next_id,
                                    and per section its kind, name, schema,
                                    offset, length and BLAKE2b digest
    16 bytes                        BLAKE2b digest of the manifest
    uint64 manifest length
    b"SOCSEND1"                     8-byte end magic

Sections: ``entities`` (the live IDs), one ``component`` per table (column
``__entity__`` plus one Arrow column per declared column: primitives,
``FixedSizeList`` for vectors, ``large_string``, ``large_list`` for ragged),
one ``messages`` per message type in the inbox, one ``resource`` per
snapshot-able resource. The file is written to a temporary name in the same
folder, fsynced and renamed over the target, so a crash mid-write leaves the
previous snapshot intact (the next save removes the temporary file a killed
one left). Reading checks both magics, the manifest's digest
and every section digest; any mismatch raises :class:`SnapshotError` naming
the file.

``state_hash`` digests the same canonical content — tick, ID allocator,
live IDs, every non-empty table, message inboxes and snapshot-able
resources — from explicit little-endian bytes, never Python ``hash()`` or
pickles, so it is stable across processes and machines; it is assembled
from per-row digests that add up (:mod:`.digest`), so a world split over
MPI ranks has the same hash as the same world in one process. The seed is
not hashed: two worlds that hold the same data hash the same.
"""
from __future__ import annotations

import glob
import hashlib
import importlib
import io
import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np
import pyarrow as pa

from .component import Column, Schema
from .errors import SnapshotError
from .message import HEADER, Message, MessageBatch
from .ragged import RaggedArray
from .resource import Resource, decode_state, encode_state, is_snapshot_resource, resource_name
from .storage import Table

if TYPE_CHECKING:
    from .world import World

MAGIC, END = b"SOCSNAP1", b"SOCSEND1"
FORMAT_VERSION = 2  # 2: the manifest carries its own digest
TRAILER = 16 + 8 + 8  # manifest digest, manifest length, end magic
STR = np.dtypes.StringDType()


# ---------------------------------------------------------------- canonical bytes
def _le(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False)).tobytes()


def _string_buffers(a: np.ndarray) -> tuple[bytes, bytes]:
    arr = pa.array(a, type=pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype="<i8")[: len(arr) + 1]
    data = arr.buffers()[2]
    data = b"" if data is None else data.to_pybytes()[: int(offsets[-1])]
    return offsets.tobytes(), data


def _column_bytes(col: Column, data) -> Iterator[bytes]:
    if col.kind == "string":
        yield from _string_buffers(data)
    elif col.kind == "ragged":
        yield _le(data.offsets)
        yield _le(data.values)
    else:
        yield _le(data)


def _feed(h, *parts: bytes) -> None:
    for p in parts:
        h.update(struct.pack("<Q", len(p)))
        h.update(p)


def state_hash(world: "World") -> str:
    """This process's state hash (:mod:`.digest`); for a world split over ranks, its own part only."""
    from .digest import finish, parts
    return finish(parts(world))


# ---------------------------------------------------------------- arrow conversion
def _to_arrow(col: Column, data) -> pa.Array:
    if col.kind == "scalar":
        return pa.array(data)
    if col.kind == "vector":
        return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(data).reshape(-1)), col.dim)
    if col.kind == "string":
        return pa.array(data, type=pa.large_string())
    return pa.LargeListArray.from_arrays(pa.array(data.offsets), pa.array(data.values))


def _from_arrow(col: Column, arr: pa.Array, n: int):
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if col.kind == "scalar":
        out = arr.to_numpy(zero_copy_only=False).astype(col.dtype, copy=True)
    elif col.kind == "vector":
        out = arr.flatten().to_numpy(zero_copy_only=False).astype(col.dtype).reshape(n, col.dim)
    elif col.kind == "string":
        out = arr.to_numpy(zero_copy_only=False).astype(STR)
    else:
        offsets = arr.offsets.to_numpy().astype(np.int64)
        values = arr.values.to_numpy(zero_copy_only=False).astype(col.dtype)
        out = RaggedArray(offsets - offsets[0], values[offsets[0]:offsets[-1]])
    if len(out) != n:
        raise SnapshotError(f"column {col.where}: {len(out)} rows, expected {n}")
    return out


def _ipc(batch: pa.RecordBatch) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    return sink.getvalue()


def _schema_batch(kind: type[Schema], head: dict[str, np.ndarray], data: dict) -> pa.RecordBatch:
    arrays = [pa.array(v) for v in head.values()]
    names = list(head)
    for name, col in kind.columns().items():
        arrays.append(_to_arrow(col, data[name]))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


# ---------------------------------------------------------------- save
def _sections(world: "World") -> Iterator[tuple[dict, bytes]]:
    yield {"kind": "entities", "name": ""}, _ipc(pa.RecordBatch.from_arrays([pa.array(world._alive)], names=["id"]))
    for comp in world.component_types():
        t = world._tables[comp]
        yield ({"kind": "component", "name": comp.__component_name__, "schema": comp.describe(), "rows": len(t)},
               _ipc(_schema_batch(comp, {"__entity__": t.entities}, t.data)))
    for kind, mb in sorted(world.messages.inbox.items(), key=lambda kv: kv[0].__component_name__):
        yield ({"kind": "messages", "name": kind.__component_name__, "schema": kind.describe(), "rows": len(mb)},
               _ipc(_schema_batch(kind, {k: getattr(mb, k) for k in HEADER}, mb.payload)))
    for kind, obj in sorted(world._resources.items(), key=lambda kv: resource_name(kv[0])):
        if is_snapshot_resource(obj):
            recs = encode_state(obj.to_state())
            cols = {k: [r.get(k) for r in recs] for k in ("field", "kind", "dtype", "json")}
            cols["shape"] = [json.dumps(r.get("shape")) for r in recs]
            cols["bytes"] = [r.get("bytes") for r in recs]
            batch = pa.RecordBatch.from_pydict(
                cols, schema=pa.schema([("field", pa.string()), ("kind", pa.string()), ("dtype", pa.string()),
                                        ("json", pa.large_string()), ("shape", pa.string()),
                                        ("bytes", pa.large_binary())]))
            yield {"kind": "resource", "name": resource_name(kind)}, _ipc(batch)


def save(world: "World", path: str | Path) -> Path:
    """Write ``world`` to ``path`` atomically; returns the path."""
    if world._in_tick or len(world.commands) or world.messages.outbox:
        raise SnapshotError("snapshots are taken between ticks (pending commands or unsent messages found)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    manifest = {"format": "socius-snapshot", "version": FORMAT_VERSION, "seed": world.seed, "tick": world.tick,
                "next_id": world.next_id, "state_hash": state_hash(world), "sections": []}
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC)
            offset = len(MAGIC)
            for meta, blob in _sections(world):
                f.write(blob)
                meta.update(offset=offset, length=len(blob), digest=hashlib.blake2b(blob, digest_size=16).hexdigest())
                manifest["sections"].append(meta)
                offset += len(blob)
            m = json.dumps(manifest, sort_keys=True).encode()
            f.write(m)
            f.write(hashlib.blake2b(m, digest_size=16).digest())
            f.write(struct.pack("<Q", len(m)))
            f.write(END)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    for stale in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):  # left behind by a killed save
        stale.unlink(missing_ok=True)
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


# ---------------------------------------------------------------- read
def read_manifest(path: str | Path) -> tuple[dict, bytes]:
    """The manifest and the raw file bytes; raises SnapshotError on any damage."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such snapshot file") from None
    except IsADirectoryError:
        raise SnapshotError(f"{path}: is a directory, not a snapshot file") from None
    if raw[:8] != MAGIC and not MAGIC.startswith(raw):  # a few bytes of the magic: truncated, below
        raise SnapshotError(f"{path}: not a Socius snapshot (bad header)")
    if len(raw) < len(MAGIC) + TRAILER or raw[-8:] != END:
        raise SnapshotError(f"{path}: truncated snapshot (end marker missing)")
    (mlen,) = struct.unpack("<Q", raw[-16:-8])
    if mlen > len(raw) - len(MAGIC) - TRAILER:
        raise SnapshotError(f"{path}: corrupt snapshot (manifest length {mlen} out of range)")
    m = raw[-TRAILER - mlen:-TRAILER]
    if hashlib.blake2b(m, digest_size=16).digest() != raw[-TRAILER:-16]:
        raise SnapshotError(f"{path}: corrupt snapshot (manifest fails its checksum)")
    try:
        manifest = json.loads(m)
    except ValueError:
        raise SnapshotError(f"{path}: corrupt snapshot (manifest is not JSON)") from None
    if manifest.get("format") != "socius-snapshot" or manifest.get("version") != FORMAT_VERSION:
        raise SnapshotError(f"{path}: unsupported snapshot format {manifest.get('format')} v{manifest.get('version')}")
    body_end = len(raw) - TRAILER - mlen
    for s in manifest["sections"]:
        o, n = s["offset"], s["length"]
        if o < 8 or o + n > body_end or hashlib.blake2b(raw[o:o + n], digest_size=16).hexdigest() != s["digest"]:
            raise SnapshotError(f"{path}: corrupt snapshot (section {s['kind']} {s.get('name', '')} fails its checksum)")
    return manifest, raw


def _batch(raw: bytes, s: dict) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(raw[s["offset"]:s["offset"] + s["length"]])).read_all()


def _resolve(name: str, lookup: dict[str, type], what: str, path) -> type:
    if name in lookup:
        return lookup[name]
    module, _, qual = name.rpartition(".")
    while module:
        try:
            obj = importlib.import_module(module)
            for part in qual.split("."):
                obj = getattr(obj, part)
            return obj
        except (ImportError, AttributeError):
            module, _, head = module.rpartition(".")
            qual = f"{head}.{qual}"
    raise SnapshotError(f"{path}: {what} {name!r} is neither registered in the world nor importable; "
                        "pass it in types=")


def restore(world: "World", path: str | Path, types: Iterable[type] = ()) -> None:
    """Replace ``world``'s state with the snapshot at ``path`` (systems and plain resources stay).

    Types resolve from ``types``, the world's tables, resources and inboxes, what its systems
    declare, or by import. A refused snapshot leaves the world exactly as it was.
    """
    from .world import World  # noqa: F401  (type only)

    if world._in_tick:
        raise SnapshotError("cannot restore during a tick")
    manifest, raw = read_manifest(path)
    lookup: dict[str, type] = {}
    for t in types:
        lookup[getattr(t, "__component_name__", None) or resource_name(t)] = t
    for c in world.component_types():
        lookup.setdefault(c.__component_name__, c)
    for k in world._resources:
        lookup.setdefault(resource_name(k), k)
    for k in (*world.messages.inbox, *world.messages.outbox):
        lookup.setdefault(k.__component_name__, k)
    for sys_ in world.schedule.systems():  # what the systems declare: a fresh world with the same systems
        for k in (*sys_.reads, *sys_.writes, *sys_.sends, *sys_.receives):
            lookup.setdefault(k.__component_name__, k)
        for k in sys_.resources:
            lookup.setdefault(resource_name(k), k)

    tables: dict = {}
    inbox: dict = {}
    resources: dict = {}
    alive = None
    for s in manifest["sections"]:
        tab = _batch(raw, s)
        if s["kind"] == "entities":
            alive = tab.column("id").to_numpy().astype(np.int64)
            continue
        kind = _resolve(s["name"], lookup, s["kind"], path)
        if s["kind"] in ("component", "messages"):
            if kind.describe() != s["schema"]:
                raise SnapshotError(f"{path}: {s['kind']} {s['name']} was saved with schema {s['schema']!r}, "
                                    f"the code now declares {kind.describe()!r}")
            n = s["rows"]
            data = {name: _from_arrow(col, tab.column(name), n) for name, col in kind.columns().items()}
            if s["kind"] == "component":
                t = Table(kind)
                t.entities = tab.column("__entity__").to_numpy().astype(np.int64)
                t.data = data
                tables[kind] = t
            else:
                head = {k: tab.column(k).to_numpy().astype(np.int64) for k in HEADER}
                inbox[kind] = MessageBatch(kind, head, data)
        else:
            recs = tab.to_pylist()
            for r in recs:
                r["shape"] = json.loads(r["shape"]) if r["shape"] else None
            if not (isinstance(kind, type) and issubclass(kind, Resource)):
                raise SnapshotError(f"{path}: resource {s['name']} is not a Resource subclass")
            state = decode_state(recs)
            try:
                obj = kind.from_state(state)
                now = sorted(obj.to_state())
            except (TypeError, ValueError) as exc:  # its fields changed since the snapshot was saved
                now = f"no longer accepts them ({exc})"
            if now != sorted(state):
                raise SnapshotError(f"{path}: resource {s['name']} was saved with fields {sorted(state)}; "
                                    f"the code now declares {now}")
            resources[kind] = obj
    if alive is None:
        raise SnapshotError(f"{path}: corrupt snapshot (no entities section)")

    _install(world, int(manifest["seed"]), int(manifest["tick"]), int(manifest["next_id"]), alive, tables, inbox,
             resources, expect=manifest["state_hash"], path=path)


def _install(world: "World", seed: int, tick: int, next_id: int, alive: np.ndarray, tables: dict, inbox: dict,
             resources: dict, expect: str | None = None, path=None) -> None:
    """Make ``world`` hold exactly this state; with ``expect``, refuse (and undo) if its hash differs."""
    before = (world.seed, world.tick, world._allocator.next_id, world._alive, dict(world._tables),
              dict(world._names), world.messages.outbox, world.messages.inbox, world.commands._ops,
              dict(world._resources))
    world.seed, world.tick = seed, tick
    world._allocator.next_id = next_id
    world._alive = alive
    for comp in list(world._tables):
        if comp not in tables:
            t = Table(comp)
            t.version = world._tables[comp].version + 1  # views of the old table must go stale
            world._tables[comp] = t
    for comp, t in tables.items():
        old = world._tables.get(comp)
        t.version = (old.version + 1) if old is not None else 0
        world._tables[comp] = t
        world._names[comp.__component_name__] = comp
    world.messages.outbox, world.messages.inbox = {}, inbox
    world.commands._ops = []
    for k in [k for k, v in world._resources.items() if is_snapshot_resource(v)]:
        del world._resources[k]
    world._resources.update(resources)
    if expect is not None and state_hash(world) != expect:  # put the world back as it was, then refuse
        (world.seed, world.tick, world._allocator.next_id, world._alive, world._tables, world._names,
         world.messages.outbox, world.messages.inbox, world.commands._ops, world._resources) = before
        raise SnapshotError(f"{path}: restored state does not match the saved state hash")


def known_types(world: "World", types: Iterable[type] = ()) -> list[type]:
    """The component, message and resource types ``world`` knows of (tables, inboxes, systems) plus ``types``."""
    out = list(types) + list(world.component_types()) + list(world._resources)
    out += [*world.messages.inbox, *world.messages.outbox]
    for sys_ in world.schedule.systems():
        out += [*sys_.reads, *sys_.writes, *sys_.sends, *sys_.receives, *sys_.resources]
    return list(dict.fromkeys(out))


def restore_parts(world: "World", paths: Iterable[str | Path], keep_entities=None, keep_messages=None,
                  types: Iterable[type] = ()) -> None:
    """Replace ``world``'s state with rows taken from several snapshots that are parts of one world.

    ``keep_entities(ids) -> [n] bool`` picks the entities (and their component
    rows) to keep (all by default); ``keep_messages(part, kind, batch) -> [m]
    bool`` the inbox messages of part number ``part``. Snapshot-able resources,
    world-wide values, come from the first part; tick and seed must agree
    across parts, the ID allocator takes the largest. Each part is verified
    against its own hash as it is read; the caller checks the whole (e.g.
    against the hash a distributed snapshot's manifest recorded).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise SnapshotError("restore_parts: no snapshot files given")
    lookup = known_types(world, types)
    worlds = [load(p, lookup) for p in paths]
    first = worlds[0]
    for p, w in zip(paths[1:], worlds[1:]):
        if (w.tick, w.seed) != (first.tick, first.seed):
            raise SnapshotError(f"{p}: tick {w.tick} / seed {w.seed} differ from {paths[0]} "
                                f"(tick {first.tick} / seed {first.seed}) — parts of different snapshots")

    def kept(ids: np.ndarray) -> np.ndarray:
        return np.ones(ids.shape[0], bool) if keep_entities is None else np.asarray(keep_entities(ids), bool)

    alive = np.concatenate([w._alive[kept(w._alive)] for w in worlds])
    alive.sort()
    if alive.shape[0] > 1 and (alive[1:] == alive[:-1]).any():
        dup = int(alive[1:][alive[1:] == alive[:-1]][0])
        raise SnapshotError(f"restore_parts: entity {dup} is in two parts")
    tables: dict = {}
    for comp in dict.fromkeys(c for w in worlds for c in w.component_types()):
        cols = comp.columns()
        ents, data = [], {k: [] for k in cols}
        for w in worlds:
            t = w._tables.get(comp)
            if t is None or not len(t):
                continue
            rows = np.flatnonzero(kept(t.entities))
            ents.append(t.entities[rows])
            for k, col in cols.items():
                d = t.data[k]
                data[k].append(d.take(rows) if col.kind == "ragged" else d[rows])
        t = Table(comp)
        if ents:
            e = np.concatenate(ents)
            order = np.argsort(e, kind="stable")
            t.entities = e[order]
            for k, col in cols.items():
                d = col.concat(data[k])
                t.data[k] = d.take(order) if col.kind == "ragged" else d[order]
        tables[comp] = t
    inbox: dict = {}
    for kind in dict.fromkeys(k for w in worlds for k in w.messages.inbox):
        cols = kind.columns()
        chosen = []
        for i, w in enumerate(worlds):
            mb = w.messages.inbox.get(kind)
            if mb is None or not len(mb):
                continue
            keep = np.ones(len(mb), bool) if keep_messages is None else np.asarray(keep_messages(i, kind, mb), bool)
            chosen.append(mb.take(np.flatnonzero(keep)))
        if not chosen:
            inbox[kind] = MessageBatch.empty(kind)
            continue
        head = {k: np.concatenate([getattr(b, k) for b in chosen]) for k in HEADER}
        b = MessageBatch(kind, head, {k: c.concat([x.payload[k] for x in chosen]) for k, c in cols.items()})
        order = np.lexsort((b.seq, b.sender, b.tick))
        inbox[kind] = b.take(order)
    resources = {k: v for k, v in first._resources.items() if is_snapshot_resource(v)}
    _install(world, first.seed, first.tick, max(w.next_id for w in worlds), alive, tables, inbox, resources)


def load(path: str | Path, types: Iterable[type] = ()) -> "World":
    from .world import World
    w = World()
    restore(w, path, types)
    return w
