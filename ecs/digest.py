"""The state hash, built so that it does not depend on how the rows are split.

A world's state hash must be the same whether one process holds every
entity or N processes each hold a part (:mod:`socius.mpi`), and whatever the
storage order. So the hash is not a stream digest over whole tables but is
assembled from *parts* that add up:

* every row — a live ID; an entity's row of one component; one inbox
  message — gets a 128-bit digest (two 64-bit lanes) of its key (the entity
  ID, or a message's ``(tick, sender, seq)``) and the exact bytes of each of
  its columns, mixed word by word with the splitmix64 finaliser (numba);
* a section (the live IDs, a component, a message type) is the row count
  and the lane-wise sum of its rows' digests modulo 2**64 — commutative, so
  any split into parts sums to the same section;
* resources are world-wide values (every rank holds the same copy), hashed
  whole with BLAKE2b;
* :func:`finish` feeds tick, the ID allocator's next ID, every non-empty
  section (in name order) and every resource digest to BLAKE2b.

:func:`parts` gives one process's parts, :func:`merge` adds several
processes' parts, :func:`finish` makes the hex digest. One process:
``finish(parts(world))``.
"""
from __future__ import annotations

import hashlib
import json
import struct
from typing import TYPE_CHECKING, Callable

import numba
import numpy as np
import pyarrow as pa

from .message import HEADER
from .resource import encode_state, is_snapshot_resource, resource_name
from .rng import fmix64

if TYPE_CHECKING:
    from .world import World

__all__ = ["parts", "merge", "finish", "row_digests"]

_M = np.uint64(0xFFFFFFFFFFFFFFFF)
_K0 = np.uint64(0x9E3779B97F4A7C15)
_K1 = np.uint64(0xC2B2AE3D27D4EB4F)


@numba.njit(cache=True)
def _absorb_fixed(state, words):
    """``state [n, 2] uint64`` absorbs ``words [n, w] uint64`` row by row."""
    n, w = words.shape
    for i in range(n):
        a, b = state[i, 0], state[i, 1]
        for j in range(w):
            v = words[i, j]
            a = fmix64(a ^ v) + np.uint64(0x9E3779B97F4A7C15)
            b = fmix64(b + (v ^ np.uint64(0xC2B2AE3D27D4EB4F)))
        a = fmix64(a ^ np.uint64(w))
        b = fmix64(b + np.uint64(w))
        state[i, 0], state[i, 1] = a, b


@numba.njit(cache=True)
def _absorb_var(state, offsets, data):
    """``state [n, 2]`` absorbs the byte ranges ``data[offsets[i]:offsets[i+1]]`` (a string or a list per row)."""
    n = state.shape[0]
    for i in range(n):
        a, b = state[i, 0], state[i, 1]
        lo, hi = offsets[i], offsets[i + 1]
        k = lo
        while k < hi:
            v = np.uint64(0)
            m = min(8, hi - k)
            for t in range(m):
                v |= np.uint64(data[k + t]) << np.uint64(8 * t)
            a = fmix64(a ^ v) + np.uint64(0x9E3779B97F4A7C15)
            b = fmix64(b + (v ^ np.uint64(0xC2B2AE3D27D4EB4F)))
            k += 8
        a = fmix64(a ^ np.uint64(hi - lo))
        b = fmix64(b + np.uint64(hi - lo))
        state[i, 0], state[i, 1] = a, b


def _seed(keys: list[np.ndarray]) -> np.ndarray:
    """``[n, 2] uint64`` start states from one or more int64 key columns."""
    n = keys[0].shape[0]
    state = np.zeros((n, 2), dtype=np.uint64)
    state[:, 0], state[:, 1] = _K0, _K1
    words = np.stack([np.ascontiguousarray(k, dtype=np.int64).view(np.uint64) for k in keys], axis=1)
    _absorb_fixed(state, words)
    return state


def _fixed_words(a: np.ndarray) -> np.ndarray:
    """``[n, w] uint64``: each row's little-endian bytes, zero-padded to whole words."""
    n = a.shape[0]
    le = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False)).reshape(n, -1).view(np.uint8)
    rb = le.shape[1]
    w = (rb + 7) // 8
    if rb == 8 * w:
        return le.view(np.uint64).reshape(n, w)
    out = np.zeros((n, 8 * w), dtype=np.uint8)
    out[:, :rb] = le
    return out.view(np.uint64).reshape(n, w)


def _absorb_column(state: np.ndarray, kind: str, data) -> None:
    n = state.shape[0]
    if kind == "string":
        arr = pa.array(data, type=pa.large_string())
        offsets = np.frombuffer(arr.buffers()[1], dtype="<i8")[arr.offset: arr.offset + n + 1]
        buf = arr.buffers()[2]
        raw = np.zeros(0, np.uint8) if buf is None else np.frombuffer(buf, dtype=np.uint8)
        _absorb_var(state, np.ascontiguousarray(offsets, dtype=np.int64), raw)
    elif kind == "ragged":
        vals = np.ascontiguousarray(data.values.astype(data.values.dtype.newbyteorder("<"), copy=False))
        size = vals.dtype.itemsize * (int(np.prod(vals.shape[1:])) if vals.ndim > 1 else 1)
        _absorb_var(state, np.asarray(data.offsets, dtype=np.int64) * size, vals.reshape(-1).view(np.uint8))
    else:
        if n:
            _absorb_fixed(state, _fixed_words(np.asarray(data)))


def row_digests(keys: list[np.ndarray], columns: list[tuple[str, object]]) -> np.ndarray:
    """``[n, 2] uint64``: one digest per row of ``keys`` (int64 columns) and ``(kind, data)`` columns."""
    state = _seed(keys)
    for i, (kind, data) in enumerate(columns):
        state[:, 0] ^= np.uint64(i + 1)
        _absorb_column(state, kind, data)
    return state


def _section(digests: np.ndarray) -> list[int]:
    """``[count, lane0_sum, lane1_sum]`` (sums modulo 2**64) of a section's row digests."""
    with np.errstate(over="ignore"):
        s = digests.sum(axis=0, dtype=np.uint64) if digests.shape[0] else np.zeros(2, np.uint64)
    return [int(digests.shape[0]), int(s[0]), int(s[1])]


def parts(world: "World", message_filter: Callable | None = None) -> dict:
    """This process's share of the state hash (see the module docstring); JSON-safe.

    ``message_filter(kind, batch) -> [m] bool`` picks the inbox messages this
    process counts (all by default) — a distributed world counts each message
    on exactly one rank.
    """
    sections: dict[str, list] = {}
    alive = world._alive
    sections["entities"] = ["", *_section(row_digests([alive], []))]
    for comp in world.component_types():
        t = world._tables[comp]
        if not len(t):
            continue
        cols = comp.columns()
        d = row_digests([t.entities], [(col.kind, t.data[name]) for name, col in cols.items()])
        sections["component:" + comp.__component_name__] = [comp.describe(), *_section(d)]
    for kind, mb in world.messages.inbox.items():
        if not len(mb):
            continue
        keep = np.ones(len(mb), bool) if message_filter is None else np.asarray(message_filter(kind, mb), bool)
        if not keep.any():
            continue
        idx = np.flatnonzero(keep)
        keys = [np.asarray(getattr(mb, k))[idx] for k in ("tick", "sender", "seq")]
        extra = [k for k in HEADER if k not in ("tick", "sender", "seq")]
        cols = [("fixed", np.asarray(getattr(mb, k))[idx]) for k in extra]
        for name, col in kind.columns().items():
            data = mb.payload[name]
            cols.append((col.kind, data.take(idx) if col.kind == "ragged" else np.asarray(data)[idx]))
        sections["messages:" + kind.__component_name__] = [kind.describe(), *_section(row_digests(keys, cols))]
    resources = {}
    for kind, obj in world._resources.items():
        if is_snapshot_resource(obj):
            h = hashlib.blake2b(digest_size=16)
            for r in encode_state(obj.to_state()):
                for p in (r["field"].encode(), r["kind"].encode(), r.get("dtype", "").encode(),
                          json.dumps(r.get("shape", [])).encode(), r.get("bytes", b"") or r.get("json", "").encode()):
                    h.update(struct.pack("<Q", len(p)))
                    h.update(p)
            resources[resource_name(kind)] = h.hexdigest()
    return {"tick": int(world.tick), "next_id": int(world.next_id), "sections": sections, "resources": resources}


def merge(all_parts: list[dict]) -> dict:
    """Add several processes' parts (one world split over ranks) into one.

    Raises ``ValueError`` if they disagree on the tick, on a section's schema,
    or on a resource (a world-wide value must be the same on every rank).
    """
    first = all_parts[0]
    out = {"tick": first["tick"], "next_id": max(p["next_id"] for p in all_parts), "sections": {},
           "resources": dict(first["resources"])}
    for r, p in enumerate(all_parts):
        if p["tick"] != first["tick"]:
            raise ValueError(f"state hash: rank {r} is at tick {p['tick']}, rank 0 at {first['tick']}")
        for name, (schema, n, a, b) in p["sections"].items():
            cur = out["sections"].get(name)
            if cur is None:
                out["sections"][name] = [schema, n, a, b]
                continue
            if cur[0] != schema:
                raise ValueError(f"state hash: {name} has a different schema on rank {r}")
            cur[1] += n
            cur[2] = (cur[2] + a) & 0xFFFFFFFFFFFFFFFF
            cur[3] = (cur[3] + b) & 0xFFFFFFFFFFFFFFFF
        if set(p["resources"]) != set(first["resources"]):
            diff = sorted(set(p["resources"]) ^ set(first["resources"]))
            raise ValueError(f"state hash: resource {diff[0]} exists on some ranks only (rank {r} vs rank 0)")
        for name, d in p["resources"].items():
            if d != first["resources"][name]:
                raise ValueError(f"state hash: resource {name} differs between rank {r} and rank 0 — a world-wide "
                                 "value was computed from one rank's agents; use socius.mpi.reduce")
    return out


def finish(p: dict) -> str:
    """The hex state hash of (merged) parts."""
    h = hashlib.blake2b(digest_size=16)

    def feed(*xs: bytes) -> None:
        for x in xs:
            h.update(struct.pack("<Q", len(x)))
            h.update(x)

    feed(b"socius-state-v2", struct.pack("<qq", p["tick"], p["next_id"]))
    for name in sorted(p["sections"]):
        schema, n, a, b = p["sections"][name]
        if n == 0 and name != "entities":
            continue
        feed(name.encode(), schema.encode(), struct.pack("<qQQ", n, a, b))
    for name in sorted(p["resources"]):
        feed(b"res:" + name.encode(), p["resources"][name].encode())
    return h.hexdigest()
