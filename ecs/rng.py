"""Counter-based randomness keyed by ``(seed, stream, tick, entity)``.

The value entity ``e`` draws at tick ``t`` in stream ``s`` is a pure function
of ``(seed, s, t, e, k)`` where ``k`` counts draws within that call — so it
is the same whether ``e`` is processed alone, in a shuffled subset, in the
full population, or on another MPI rank. There is no hidden generator state
to save: a snapshot only needs the seed and the tick.

The mixing function is SplitMix64's finaliser (Stafford's "Mix13") applied
in a chain over the key words; each output is one more mix of the chained
key plus ``(k + 1) * golden_ratio``. The 53 high bits make a float in [0, 1).

Streams are named by strings (hashed with BLAKE2b, stable across processes
and Python versions) or ints. Vectorised with numba (a few ns per draw on one core). Sequential numba
kernels call :func:`draw_uniform` inline and get exactly the value
``EntityRng.random(ids, size)[:, j]`` would give.

For draws that belong to no entity (a world event, a sampled parameter),
:func:`world_generator` returns a ``numpy.random.Generator`` on Philox whose
key is derived from ``(seed, stream, tick)`` in the same way.
"""
from __future__ import annotations

import hashlib

import numba
import numpy as np


def _fix_llvmlite_lib_wrapper() -> None:
    """Make ``llvmlite.binding.ffi.lib`` answer dunder lookups like a normal object.

    Its ``__getattr__`` forwards *every* name to the ctypes library, even
    ``__dict__``, so ``vars(lib)`` returns a function wrapper instead of a
    dict. vLLM's CPU worker scans every loaded module with ``vars(...)`` and
    dies on it (``'_lib_fn_wrapper' object has no attribute 'get'``) whenever
    numba is loaded — which it always is with Socius. Idempotent.
    """
    try:
        from llvmlite.binding import ffi
    except Exception:  # pragma: no cover - numba without llvmlite cannot happen
        return
    cls = getattr(ffi, "_lib_wrapper", None)
    original = getattr(cls, "__getattr__", None)
    if original is None or getattr(original, "_socius_fixed", False):
        return

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return original(self, name)

    __getattr__._socius_fixed = True
    cls.__getattr__ = __getattr__


_fix_llvmlite_lib_wrapper()

_MASK = (1 << 64) - 1


def mix64_py(z: int) -> int:
    """:func:`mix64` on a Python int (for keys built outside numba)."""
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def stream_id(stream: str | int) -> int:
    """Stable 64-bit id of a stream name."""
    if isinstance(stream, (int, np.integer)):
        return int(stream) & _MASK
    if not isinstance(stream, str) or not stream:
        raise ValueError(f"rng stream must be a non-empty str or an int, got {stream!r}")
    return int.from_bytes(hashlib.blake2b(stream.encode(), digest_size=8).digest(), "little")


def base_key(seed: int, stream: str | int, tick: int) -> int:
    """The chained key of ``(seed, stream, tick)``; entity and draw index are mixed in per draw."""
    h = mix64_py(int(seed) & _MASK)
    h = mix64_py(h ^ stream_id(stream))
    h = mix64_py(h ^ (int(tick) & _MASK))
    return h


@numba.njit(cache=True, inline="always")
def fmix64(x):
    """SplitMix64's finaliser (Stafford's Mix13) of a ``uint64``: the one counter hash of the code base.

    Numba-callable (inlined); :func:`mix64` adds the golden-ratio increment
    first, :func:`fmix64_array` applies it to a whole array in numpy.
    """
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def mix64(z):
    """One SplitMix64 output for counter ``z`` (``uint64``): ``fmix64(z + golden)``. Numba-callable."""
    return fmix64(z + np.uint64(0x9E3779B97F4A7C15))


def fmix64_array(x: np.ndarray) -> np.ndarray:
    """:func:`fmix64` of every element of a ``uint64`` array (a new array; wraps modulo 2**64)."""
    x = np.asarray(x, dtype=np.uint64) ^ (np.asarray(x, dtype=np.uint64) >> np.uint64(30))
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@numba.njit(cache=True, inline="always")
def draw_uniform(key, entity, j):
    """Draw ``j`` (0-based) of ``entity`` under ``key``: a float64 in [0, 1). Numba-callable."""
    h = mix64(key ^ np.uint64(entity))
    z = mix64(h + np.uint64(j + 1) * np.uint64(0x9E3779B97F4A7C15))
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True)
def _uniform(key, ids, k, out):
    scale = 1.0 / 9007199254740992.0  # 2**-53
    n = ids.shape[0]
    for i in range(n):
        h = mix64(key ^ np.uint64(ids[i]))
        for j in range(k):
            z = mix64(h + np.uint64(j + 1) * np.uint64(0x9E3779B97F4A7C15))
            out[i, j] = np.float64(z >> np.uint64(11)) * scale


@numba.njit(cache=True)
def _bits(key, ids, k, out):
    n = ids.shape[0]
    for i in range(n):
        h = mix64(key ^ np.uint64(ids[i]))
        for j in range(k):
            out[i, j] = mix64(h + np.uint64(j + 1) * np.uint64(0x9E3779B97F4A7C15))


class EntityRng:
    """Per-entity draws for one ``(seed, stream, tick)``.

    Every method takes ``ids [n] int64`` and returns one row per id; ``size=k``
    gives ``[n, k]``. Calling the same method twice with the same ids returns
    the same values: use a different stream name for independent draws.
    """

    __slots__ = ("seed", "stream", "tick", "key")

    def __init__(self, seed: int, stream: str | int, tick: int):
        self.seed, self.stream, self.tick = int(seed), stream, int(tick)
        self.key = np.uint64(base_key(seed, stream, tick))

    def _ids(self, ids) -> np.ndarray:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.ndim != 1:
            raise ValueError(f"rng: ids must be 1-D, got shape {ids.shape}")
        return ids

    def random(self, ids, size: int | None = None) -> np.ndarray:
        """Uniform floats in [0, 1): ``[n]`` or ``[n, size]`` float64."""
        ids = self._ids(ids)
        k = 1 if size is None else int(size)
        out = np.empty((ids.shape[0], k), dtype=np.float64)
        _uniform(self.key, ids, k, out)
        return out[:, 0] if size is None else out

    def bits(self, ids, size: int | None = None) -> np.ndarray:
        """Raw 64-bit words: ``[n]`` or ``[n, size]`` uint64."""
        ids = self._ids(ids)
        k = 1 if size is None else int(size)
        out = np.empty((ids.shape[0], k), dtype=np.uint64)
        _bits(self.key, ids, k, out)
        return out[:, 0] if size is None else out

    def integers(self, ids, low, high=None, size: int | None = None) -> np.ndarray:
        """Integers in ``[low, high)`` (numpy convention; ``high`` may be per-id)."""
        if high is None:
            low, high = 0, low
        u = self.random(ids, size)
        low = np.asarray(low, dtype=np.int64)
        span = np.asarray(high, dtype=np.int64) - low
        if size is not None:
            span = span[..., None] if span.ndim else span
            low = low[..., None] if low.ndim else low
        if (np.asarray(span) <= 0).any():
            raise ValueError("rng.integers: need high > low")
        return low + np.minimum((u * span).astype(np.int64), span - 1)

    def normal(self, ids, loc=0.0, scale=1.0, size: int | None = None) -> np.ndarray:
        """Normal draws by Box–Muller over two uniforms per value."""
        k = 1 if size is None else int(size)
        u = self.random(ids, 2 * k)
        z = np.sqrt(-2.0 * np.log1p(-u[:, :k])) * np.cos(2.0 * np.pi * u[:, k:])
        if size is None:
            return loc + scale * z[:, 0]
        loc, scale = np.asarray(loc, dtype=np.float64), np.asarray(scale, dtype=np.float64)
        return (loc[:, None] if loc.ndim else loc) + (scale[:, None] if scale.ndim else scale) * z

    def bernoulli(self, ids, p) -> np.ndarray:
        """``[n] bool``: True with probability ``p`` (scalar or per-id)."""
        return self.random(ids) < np.asarray(p)

    def choice(self, ids, weights: np.ndarray) -> np.ndarray:
        """Index of one category per id, drawn from ``weights [m]`` (shared)."""
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or w.shape[0] == 0 or (w < 0).any() or w.sum() <= 0:
            raise ValueError("rng.choice: weights must be a non-empty 1-D array of non-negative numbers")
        cdf = np.cumsum(w / w.sum())
        cdf[-1] = 1.0
        return np.searchsorted(cdf, self.random(ids), side="right").astype(np.int64)

    def permutation(self, ids) -> np.ndarray:
        """``ids`` in a random order that depends only on the ids (not their order)."""
        ids = self._ids(ids)
        keys = self.bits(ids)
        order = np.lexsort((ids, keys))
        return ids[order]


def world_generator(seed: int, stream: str | int, tick: int) -> np.random.Generator:
    """A numpy Generator for non-entity draws, keyed like :class:`EntityRng`."""
    k = base_key(seed, stream, tick)
    return np.random.Generator(np.random.Philox(key=np.array([k, mix64_py(k ^ 0x5EED)], dtype=np.uint64)))
