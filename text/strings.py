"""Strings between numpy, Arrow and fixed-width UTF-8 blocks, for whole batches at once.

* :func:`arrow_strings` — numpy strings to Arrow ``large_string`` (what the decision pipeline
  renders, hashes and logs).
* :func:`encode_fixed` / :func:`gather_fixed` — texts stored as fixed-width UTF-8 slots in a
  ``uint8`` block with a byte length per slot (long-term memory): encoded with truncation at a
  character boundary, and gathered by ``(row, slot)`` straight into an Arrow string array by a
  numba pass, with no Python object and no per-string allocation.
"""
from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from socius.ecs import STR


def arrow_strings(texts) -> pa.Array:
    """``[n]`` Arrow ``large_string`` from numpy strings (or anything numpy turns into strings), or an
    Arrow string array as ``large_string``."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if isinstance(texts, pa.Array):
        return texts if texts.type == pa.large_string() else texts.cast(pa.large_string())
    return pa.array(np.asarray(texts, dtype=STR).reshape(-1), type=pa.large_string())


def repeat_string(value: str, n: int, type=pa.large_string()) -> pa.Array:
    """``[n]`` Arrow strings, all ``value`` (built in C++, not from ``n`` Python objects)."""
    return pa.array([value], type=type).take(pa.array(np.zeros(n, np.int32)))


def buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets [n + 1] int64, data uint8)`` of a ``large_string`` array (no copies; offsets index ``data``)."""
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return offsets, data


@numba.njit(parallel=True, cache=True)
def _encode_kernel(offsets, data, width, out, lens):
    for i in numba.prange(out.shape[0]):
        a = offsets[i]
        size = offsets[i + 1] - a
        n = size if size <= width else width
        if size > width:  # cut before a UTF-8 continuation byte (10xxxxxx): whole characters only
            while n > 0 and (data[a + n] & 0xC0) == 0x80:
                n -= 1
        for b in range(n):
            out[i, b] = data[a + b]
        for b in range(n, width):
            out[i, b] = 0
        lens[i] = n


def encode_fixed(texts, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bytes [n, width] uint8, lengths [n] int32)``: the UTF-8 of each text, cut to at most
    ``width`` bytes at a character boundary (zero padded)."""
    arr = arrow_strings(texts)
    out = np.empty((len(arr), int(width)), dtype=np.uint8)
    lens = np.empty(len(arr), dtype=np.int32)
    if len(arr):
        offsets, data = buffers(arr)
        _encode_kernel(offsets, data, int(width), out, lens)
    return out, lens


@numba.njit(parallel=True, cache=True)
def _sizes_kernel(lens, rows, slots, out):
    m = slots.shape[1]
    for i in numba.prange(rows.shape[0]):
        for c in range(m):
            s = slots[i, c]
            out[i * m + c + 1] = lens[rows[i], s] if s >= 0 else 0


@numba.njit(parallel=True, cache=True)
def _gather_kernel(block, width, rows, slots, offsets, data):
    m = slots.shape[1]
    for i in numba.prange(rows.shape[0]):
        r = rows[i]
        for c in range(m):
            s = slots[i, c]
            if s < 0:
                continue
            o = offsets[i * m + c]
            n = offsets[i * m + c + 1] - o
            data[o:o + n] = block[r, s * width:s * width + n]


def gather_fixed(block: np.ndarray, lens: np.ndarray, rows: np.ndarray, slots: np.ndarray, width: int) -> pa.Array:
    """``[n * j]`` Arrow ``large_string`` (row-major): the text in slot ``slots[i, c]`` of row ``rows[i]``
    of ``block [N, k * width] uint8`` with byte lengths ``lens [N, k]``; "" where the slot is -1."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    slots = np.ascontiguousarray(slots, dtype=np.int64)
    total = slots.shape[0] * slots.shape[1]
    offsets = np.zeros(total + 1, dtype=np.int64)
    if total:
        _sizes_kernel(lens, rows, slots, offsets)
        np.cumsum(offsets, out=offsets)
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    if data.shape[0]:
        _gather_kernel(block, int(width), rows, slots, offsets, data)
    return pa.LargeStringArray.from_buffers(total, pa.py_buffer(offsets), pa.py_buffer(data))
