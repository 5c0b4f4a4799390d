"""Stable 64-bit hashes of many strings at once: XXH64 (seed 0) of their UTF-8 bytes, in numba.

Used for prompt hashes in the response log, request deduplication and the
mock engine's keys: the same text gives the same hash in every process and
on every machine (bytes are read as little-endian words whatever the CPU).

The hash is XXH64 with seed 0 (the same values as ``xxhash.xxh64_intdigest(text.encode())``),
not a cryptographic hash: callers that must be exact (deduplication) compare
the texts of equal hashes. Many bytes are hashed on all threads.
"""
from __future__ import annotations

import sys

import numba
import numpy as np
import pyarrow as pa
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .strings import arrow_strings, buffers

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)


@numba.njit(inline="always")
def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@numba.njit(inline="always")
def _round(acc, w):
    return _rotl(acc + w * _P2, 31) * _P1


@intrinsic
def _word(typingctx, data, p):
    """Little-endian uint64 from ``data[p:p+8]`` (uint8 array): one unaligned load, byte-swapped on a
    big-endian CPU."""
    if not (isinstance(data, types.Array) and data.dtype == types.uint8 and isinstance(p, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        i8, i64 = ir.IntType(8), ir.IntType(64)
        ptr = builder.gep(arr.data, [args[1]], source_etype=i8)
        w = builder.load(builder.bitcast(ptr, i64.as_pointer()), typ=i64, align=1)
        if sys.byteorder == "big":
            w = builder.bswap(w)
        return w

    return types.uint64(data, p), codegen


@numba.njit(inline="always")
def _merge(acc, v):
    return (acc ^ _round(np.uint64(0), v)) * _P1 + _P4


@numba.njit(inline="always")
def _one(offsets, data, i):
    """XXH64 (seed 0) of ``data[offsets[i]:offsets[i + 1]]``."""
    a, b = offsets[i], offsets[i + 1]
    p = a
    if b - a >= 32:
        v1, v2, v3, v4 = _P1 + _P2, _P2, np.uint64(0), np.uint64(0) - _P1
        while p + 32 <= b:  # four independent lanes of 8 bytes
            v1 = _round(v1, _word(data, p))
            v2 = _round(v2, _word(data, p + 8))
            v3 = _round(v3, _word(data, p + 16))
            v4 = _round(v4, _word(data, p + 24))
            p += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge(_merge(_merge(_merge(h, v1), v2), v3), v4)
    else:
        h = _P5
    h += np.uint64(b - a)
    while p + 8 <= b:
        h = _rotl(h ^ _round(np.uint64(0), _word(data, p)), 27) * _P1 + _P4
        p += 8
    if p + 4 <= b:
        w = (np.uint64(data[p]) | (np.uint64(data[p + 1]) << np.uint64(8)) | (np.uint64(data[p + 2]) << np.uint64(16))
             | (np.uint64(data[p + 3]) << np.uint64(24)))
        h = _rotl(h ^ (w * _P1), 23) * _P2 + _P3
        p += 4
    while p < b:
        h = _rotl(h ^ (np.uint64(data[p]) * _P5), 11) * _P1
        p += 1
    h ^= h >> np.uint64(33)
    h *= _P2
    h ^= h >> np.uint64(29)
    h *= _P3
    h ^= h >> np.uint64(32)
    return h


@numba.njit(parallel=True, cache=True)
def _hash_par(offsets, data, out):
    for i in numba.prange(out.shape[0]):
        out[i] = _one(offsets, data, i)


@numba.njit(cache=True)
def _hash_seq(offsets, data, out):
    for i in range(out.shape[0]):
        out[i] = _one(offsets, data, i)


@numba.njit(parallel=True, cache=True)
def _equal_pairs(offsets, data, a, b, out):
    for i in numba.prange(a.shape[0]):
        x0, y0 = offsets[a[i]], offsets[b[i]]
        m = offsets[a[i] + 1] - x0
        same = m == offsets[b[i] + 1] - y0
        if same and x0 != y0:
            j = 0
            while same and j + 8 <= m:  # 8 bytes at a time, then the rest
                same = _word(data, x0 + j) == _word(data, y0 + j)
                j += 8
            while same and j < m:
                same = data[x0 + j] == data[y0 + j]
                j += 1
        out[i] = same


def strings_equal(texts: pa.Array, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[m] bool``: whether ``texts[a[i]] == texts[b[i]]`` (bytes compared in place, no copies)."""
    arr = arrow_strings(texts)
    a = np.ascontiguousarray(a, dtype=np.int64)
    b = np.ascontiguousarray(b, dtype=np.int64)
    out = np.empty(a.shape[0], dtype=np.bool_)
    if a.shape[0]:
        offsets, data = buffers(arr)
        _equal_pairs(offsets, data, a, b, out)
    return out


def hash_strings(texts) -> np.ndarray:
    """``[n] uint64`` hashes of the UTF-8 bytes of each string (an Arrow string array or anything
    numpy turns into strings)."""
    arr = arrow_strings(texts)
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets, data = buffers(arr)
    out = np.empty(len(arr), dtype=np.uint64)
    # threads pay off only for many bytes; small batches (most tests, extraction calls) stay on one
    (_hash_par if offsets[-1] - offsets[0] > 1 << 20 else _hash_seq)(offsets, data, out)
    return out
