"""Stable 64-bit hashes of many strings at once (FNV-1a over UTF-8, in numba).

Used for prompt hashes in the response log and per-request seeds: the same
text gives the same hash in every process and on every machine.
"""
from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

STR = np.dtypes.StringDType()


@numba.njit(cache=True)
def _fnv1a(offsets, data, out):
    for i in range(out.shape[0]):
        h = np.uint64(0xCBF29CE484222325)
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * np.uint64(0x100000001B3)
        out[i] = h


def hash_strings(texts: np.ndarray) -> np.ndarray:
    """``[n] uint64`` FNV-1a hashes of the UTF-8 bytes of each string."""
    arr = texts if isinstance(texts, pa.Array) else pa.array(np.asarray(texts, dtype=STR), type=pa.large_string())
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    out = np.empty(len(arr), dtype=np.uint64)
    _fnv1a(offsets, data, out)
    return out
