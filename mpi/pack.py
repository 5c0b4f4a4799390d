"""Packing rows of several columns into one byte buffer per destination rank.

Halo exchange and message routing both send "these rows of these columns to
that rank". :func:`pack` lays the selected rows out **column-wise inside one
contiguous block per destination** — the layout ``Alltoallv`` needs — and
:func:`unpack` turns the received bytes back into columns, sources in rank
order. Block layout for a destination that gets ``k`` rows::

    int64 [1 + V]      k, then the value-byte length of each of the V variable-width columns
    per column, each segment padded to 8 bytes:
      fixed  (scalar / vector / bool): k rows of the column's dtype
      string (StringDType):            int64 [k] UTF-8 lengths, then the bytes
      ragged (RaggedArray):            int64 [k] row lengths, then the values

Columns are described by the kernel's column specs (:class:`~socius.ecs.Scalar`,
``Vector``, ``String``, ``Ragged``) or by :class:`Fixed` for a plain dtype.
Rows are gathered straight into the send buffer with ``np.take(..., out=)``;
the Python-level loops run over destinations × columns, never over rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from socius.ecs.component import STR, Column
from socius.ecs.ragged import RaggedArray, gather_index

__all__ = ["Fixed", "Aligned", "pack", "unpack", "column_kind"]


@dataclass(frozen=True)
class Fixed:
    """A fixed-width column spec for plain arrays: ``[n, *shape] dtype``."""

    dtype: np.dtype
    shape: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.dtype.kind in "OUSTV":
            raise TypeError(f"Fixed: need a numeric or bool dtype, got {self.dtype}")


class Aligned:
    """Wraps a fixed-width column that is already aligned with the packed rows
    (``[m, ...]``, row ``i`` goes with ``rows[i]``) instead of indexed by them."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = np.asarray(array)


def column_kind(spec) -> tuple[str, np.dtype, tuple]:
    """``(kind, dtype, row_shape)`` with kind ``"fixed"``, ``"string"`` or ``"ragged"``."""
    if isinstance(spec, Fixed):
        return "fixed", spec.dtype, spec.shape
    if isinstance(spec, Column):
        if spec.kind == "scalar":
            return "fixed", spec.dtype, ()
        if spec.kind == "vector":
            return "fixed", spec.dtype, (spec.dim,)
        if spec.kind == "string":
            return "string", STR, ()
        if spec.kind == "ragged":
            return "ragged", spec.dtype, ()
    if isinstance(spec, (np.dtype, type, str)):
        return "fixed", np.dtype(spec), ()
    raise TypeError(f"pack: unsupported column spec {spec!r}")


def _pad8(x):
    return (x + 7) & ~7 if isinstance(x, int) else (x + 7) // 8 * 8


def _row_bytes(dtype: np.dtype, shape: tuple) -> int:
    return int(dtype.itemsize * int(np.prod(shape, dtype=np.int64)))


def _str_buffers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets [k+1] int64, utf8 [offsets[-1]] uint8)`` of a StringDType array."""
    arr = pa.array(values, type=pa.large_string())
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    offsets = offsets - offsets[0]
    data = np.zeros(0, np.uint8) if bufs[2] is None else np.frombuffer(bufs[2], dtype=np.uint8)
    start = int(np.frombuffer(bufs[1], dtype=np.int64, count=1, offset=arr.offset * 8)[0])
    return offsets, data[start:start + int(offsets[-1])]


def _str_from(lengths: np.ndarray, data: np.ndarray) -> np.ndarray:
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    arr = pa.LargeStringArray.from_buffers(lengths.shape[0], pa.py_buffer(offsets), pa.py_buffer(data))
    return arr.to_numpy(zero_copy_only=False).astype(STR)


def pack(specs, columns, rows: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One byte buffer holding, per destination, the chosen rows of every column.

    ``specs``: column specs; ``columns``: the matching arrays (``[n, ...]``,
    StringDType ``[n]`` or :class:`RaggedArray` of ``n`` rows); ``rows [m]
    int64``: the rows to send, grouped by destination; ``counts [size]
    int64``: how many of ``rows`` go to each destination (``counts.sum() == m``).
    Returns ``(buffer [B] uint8, bytes_per_destination [size] int64)``.
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    size = counts.shape[0]
    kinds = [column_kind(s) for s in specs]
    n_var = sum(k != "fixed" for k, _, _ in kinds)
    starts = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    # per column: what goes into each destination's segment
    seg_bytes = np.zeros((len(kinds), size), dtype=np.int64)
    var_bytes = np.zeros((size, n_var), dtype=np.int64)
    prepared = []
    vi = 0
    for ci, ((kind, dtype, shape), col) in enumerate(zip(kinds, columns)):
        if kind == "fixed":
            col = col.array if isinstance(col, Aligned) else np.asarray(col)
            if col.dtype != dtype or col.shape[1:] != shape:
                raise TypeError(f"pack: column {ci} is {col.dtype}{list(col.shape[1:])}, "
                                f"its spec says {dtype}{list(shape)}")
            seg_bytes[ci] = _pad8(counts * _row_bytes(dtype, shape))
            prepared.append(None)
            continue
        if kind == "string":
            offsets, data = _str_buffers(np.asarray(col)[rows])
            lengths = np.diff(offsets)
            item = 1
        else:
            idx, offsets = gather_index(col.offsets, rows)
            data = col.values[idx].astype(dtype, copy=False)
            lengths = np.diff(offsets)
            item = dtype.itemsize
        vb = (offsets[starts[1:]] - offsets[starts[:-1]]) * item
        var_bytes[:, vi] = vb
        seg_bytes[ci] = 8 * counts + _pad8(vb)
        prepared.append((offsets, lengths, np.ascontiguousarray(data)))
        vi += 1
    head = 8 * (1 + n_var)
    block = np.where(counts > 0, head + seg_bytes.sum(axis=0), 0)
    buf = np.zeros(int(block.sum()), dtype=np.uint8)
    pos = 0
    for d in range(size):
        k = int(counts[d])
        if k == 0:
            continue
        lo, hi = int(starts[d]), int(starts[d + 1])
        h = buf[pos:pos + head].view(np.int64)
        h[0] = k
        h[1:] = var_bytes[d]
        p = pos + head
        for ci, ((kind, dtype, shape), col) in enumerate(zip(kinds, columns)):
            if kind == "fixed":
                nb = k * _row_bytes(dtype, shape)
                out = buf[p:p + nb].view(dtype).reshape((k,) + shape)
                if isinstance(col, Aligned):
                    out[...] = col.array[lo:hi]
                else:
                    # mode="clip": rows come from the caller's index; "raise" would buffer the copy
                    np.take(col, rows[lo:hi], axis=0, out=out, mode="clip")
            else:
                offsets, lengths, data = prepared[ci]
                buf[p:p + 8 * k].view(np.int64)[:] = lengths[lo:hi]
                vb = data.view(np.uint8)[int(offsets[lo]) * data.itemsize:int(offsets[hi]) * data.itemsize]
                buf[p + 8 * k:p + 8 * k + vb.shape[0]] = vb
            p += int(seg_bytes[ci, d])
        pos = p
    return buf, block


def unpack(specs, buf: np.ndarray, nbytes: np.ndarray) -> tuple[list, np.ndarray]:
    """Columns from the blocks of ``buf`` (``nbytes [size]`` bytes per source, in rank order).

    Returns ``(columns, rows_per_source [size] int64)``; each column holds the
    rows of source 0, then source 1, …, in the order they were packed.
    """
    kinds = [column_kind(s) for s in specs]
    n_var = sum(k != "fixed" for k, _, _ in kinds)
    head = 8 * (1 + n_var)
    nbytes = np.asarray(nbytes, dtype=np.int64)
    parts: list[list] = [[] for _ in kinds]
    rows_per = np.zeros(nbytes.shape[0], dtype=np.int64)
    pos = 0
    for s, nb_s in enumerate(nbytes.tolist()):
        if nb_s == 0:
            continue
        h = buf[pos:pos + head].view(np.int64)
        k = int(h[0])
        rows_per[s] = k
        p = pos + head
        vi = 0
        end = pos + nb_s

        def short(need: int) -> ValueError:
            return ValueError(f"unpack: block from rank {s} is {nb_s} bytes, its header describes at least "
                              f"{need - pos} (column specs differ between sender and receiver?)")

        for ci, (kind, dtype, shape) in enumerate(kinds):
            if kind == "fixed":
                nb = k * _row_bytes(dtype, shape)
                if p + nb > end:
                    raise short(p + nb)
                parts[ci].append(buf[p:p + nb].view(dtype).reshape((k,) + shape))
                p += _pad8(nb)
            else:
                vb = int(h[1 + vi]) if 1 + vi < h.shape[0] else 0
                vi += 1
                if p + 8 * k + vb > end:
                    raise short(p + 8 * k + vb)
                lengths = buf[p:p + 8 * k].view(np.int64)
                data = buf[p + 8 * k:p + 8 * k + vb]
                parts[ci].append((lengths, data if kind == "string" else data.view(dtype)))
                p += 8 * k + _pad8(vb)
        if p - pos != nb_s:
            raise ValueError(f"unpack: block from rank {s} is {nb_s} bytes, its header describes {p - pos}")
        pos = p
    out = []
    for (kind, dtype, shape), ps in zip(kinds, parts):
        if kind == "fixed":
            out.append(np.concatenate(ps) if ps else np.zeros((0,) + shape, dtype=dtype))
        elif kind == "string":
            if not ps:
                out.append(np.zeros(0, dtype=STR))
            else:
                out.append(_str_from(np.concatenate([p[0] for p in ps]), np.concatenate([p[1] for p in ps])))
        else:
            if not ps:
                out.append(RaggedArray.empty(0, dtype))
            else:
                lengths = np.concatenate([p[0] for p in ps])
                offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
                np.cumsum(lengths, out=offsets[1:])
                out.append(RaggedArray(offsets, np.concatenate([p[1] for p in ps]).astype(dtype, copy=False)))
    return out, rows_per
