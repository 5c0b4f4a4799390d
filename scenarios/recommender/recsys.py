"""The recommender algorithms, as pure functions over arrays.

Every function ranks the catalogue for a block of users at once and leaves
out what each user already watched (``watched``: a :class:`RaggedArray` of
item indices, one row per user). Results are ``[n, N] int64`` item indices,
best first, ``-1`` where fewer than ``N`` items are left. A user's page
depends only on that user's row and the shared model, never on which other
users are in the block, so it is the same on any rank.

* :func:`popularity_pages` — the most-watched items (ties: smaller index).
* :func:`content_pages` — faiss (:class:`~socius.text.vector_index.VectorIndex`)
  over item embeddings of "title. genres"; the user's query is the mean
  embedding of the items they liked (rated >= ``liked``), or, before they
  liked anything, their genre taste mixed over genre-name embeddings.
* matrix factorisation — :func:`fit_als` fits ``rating ≈ mu + p_u · q_i`` by
  alternating least squares (numpy, deterministic: fixed initialisation,
  batched solves, sums by ``bincount``); :func:`fit_als_jax` is the same
  algorithm under ``jax.jit`` (the ``jax`` extra), equal within float
  tolerance; :func:`mf_pages` ranks by the prediction.
"""
from __future__ import annotations

import numpy as np

from socius.ecs.ragged import RaggedArray

CHUNK = 4096  # users per block of the [block, M] score matrix


def _exclude_codes(watched: RaggedArray, lo: int, hi: int, m: int) -> np.ndarray:
    """Sorted ``row * m + item`` codes of the watched items of rows ``lo..hi-1`` (rows relative to lo)."""
    part = watched.take(np.arange(lo, hi))
    return np.sort(part.row_ids() * m + part.values.astype(np.int64))


def top_n_scores(scores: np.ndarray, exclude_codes: np.ndarray, n: int) -> np.ndarray:
    """``[c, n]`` best columns of ``scores [c, M]`` (ties: smaller column), skipping excluded (row, col) codes."""
    c, m = scores.shape
    s = np.array(scores, dtype=np.float64, order="C", copy=True)
    if exclude_codes.shape[0]:
        s[exclude_codes // m, exclude_codes % m] = -np.inf
    k = min(n, m)
    if k == 0:
        return np.full((c, n), -1, np.int64)
    # the k best of each row: all above the k-th best value, then the first columns equal to it (O(M) per row)
    kth = -np.partition(-s, k - 1, axis=1)[:, k - 1]
    above = s > kth[:, None]
    eq = s == kth[:, None]
    need = k - above.sum(axis=1)
    chosen = above | (eq & (np.cumsum(eq, axis=1) <= need[:, None]))
    cols = np.nonzero(chosen)[1].reshape(c, k)                  # row-major: column order within each row
    vals = np.take_along_axis(s, cols, axis=1)
    order = np.take_along_axis(cols, np.lexsort((cols, -vals), axis=-1), axis=1)
    best = np.take_along_axis(s, order, axis=1)
    out = np.where(np.isfinite(best), order, -1).astype(np.int64)
    if k < n:
        out = np.concatenate([out, np.full((c, n - k), -1, np.int64)], axis=1)
    return out


def popularity_pages(counts: np.ndarray, watched: RaggedArray, n: int) -> np.ndarray:
    """Top-``n`` by ``counts [M]`` (watch counts so far) for every row of ``watched``."""
    u, m = len(watched), counts.shape[0]
    out = np.empty((u, n), np.int64)
    base = np.asarray(counts, dtype=np.float64)
    for lo in range(0, u, CHUNK):  # blocks of users, not single users
        hi = min(u, lo + CHUNK)
        out[lo:hi] = top_n_scores(np.broadcast_to(base, (hi - lo, m)), _exclude_codes(watched, lo, hi, m), n)
    return out


def liked_mean(item_vecs: np.ndarray, items: RaggedArray, ratings: RaggedArray, liked: float) -> np.ndarray:
    """``[u, d] float32``: mean vector of the items each row rated >= ``liked`` (zero rows when none)."""
    u, d = len(items), item_vecs.shape[1]
    keep = np.asarray(ratings.values, dtype=np.float64) >= liked
    rows = items.row_ids()[keep]
    vals = items.values[keep].astype(np.int64)
    acc = np.zeros((u, d), np.float64)
    np.add.at(acc, rows, item_vecs[vals].astype(np.float64))
    cnt = np.bincount(rows, minlength=u)
    return (acc / np.maximum(cnt, 1)[:, None]).astype(np.float32)


def content_pages(index, item_vecs: np.ndarray, genre_vecs: np.ndarray, taste: np.ndarray, items: RaggedArray,
                  ratings: RaggedArray, n: int, liked: float = 4.0) -> np.ndarray:
    """Top-``n`` by cosine between the user's query and item embeddings, via ``index`` (a VectorIndex)."""
    u, m = len(items), item_vecs.shape[0]
    q = liked_mean(item_vecs, items, ratings, liked)
    cold = ~np.any(q != 0, axis=1)
    if cold.any():
        q[cold] = (np.asarray(taste, np.float64)[cold] @ genre_vecs.astype(np.float64)).astype(np.float32)
    out = np.full((u, n), -1, np.int64)
    lengths = items.lengths
    for lo in range(0, u, CHUNK):
        hi = min(u, lo + CHUNK)
        k = min(m, n + int(lengths[lo:hi].max(initial=0)))
        ids, _ = index.search(q[lo:hi], k)
        codes = np.arange(hi - lo)[:, None] * m + np.where(ids < 0, 0, ids)
        excl = _exclude_codes(items, lo, hi, m)
        bad = (ids < 0) | np.isin(codes, excl)
        rank = np.cumsum(~bad, axis=1)
        take = ~bad & (rank <= n)
        r, c = np.nonzero(take)
        out[lo + r, rank[r, c] - 1] = ids[r, c]
    return out


# ---------------------------------------------------------------- matrix factorisation
def _gram(idx: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """``[n, k, k]``: sum of outer products ``x_j x_j^T`` grouped by ``idx`` (one bincount per entry)."""
    k = x.shape[1]
    g = np.zeros((n, k, k))
    for a in range(k):  # k(k+1)/2 bincounts over the ratings, not a loop over users
        for b in range(a, k):
            s = np.bincount(idx, weights=x[:, a] * x[:, b], minlength=n)
            g[:, a, b] = s
            g[:, b, a] = s
    return g


def _solve_side(idx: np.ndarray, other: np.ndarray, resid: np.ndarray, n: int, reg: float) -> np.ndarray:
    k = other.shape[1]
    a = _gram(idx, other, n) + reg * np.eye(k)[None]
    b = np.stack([np.bincount(idx, weights=other[:, j] * resid, minlength=n) for j in range(k)], axis=1)
    return np.linalg.solve(a, b[:, :, None])[:, :, 0]


def init_factors(n_items: int, k: int, seed: int) -> np.ndarray:
    """``[M, k]`` initial item factors: a fixed Philox stream of ``seed`` (same on every rank)."""
    rng = np.random.Generator(np.random.Philox(key=np.array([seed & ((1 << 64) - 1), 0x4D46], np.uint64)))
    return rng.normal(0.0, 0.1, (n_items, k))


def fit_als(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int, k: int = 16,
            reg: float = 0.1, iters: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """ALS for ``rating ≈ mu + P[u] · Q[i]``: returns ``(P [U, k], Q [M, k], mu)`` (float64).

    ``users``/``items`` ``[R]`` int, ``ratings`` ``[R]``. Users or items
    without ratings get zero factors (prediction ``mu``). Deterministic.
    """
    users = np.asarray(users, np.int64)
    items = np.asarray(items, np.int64)
    r = np.asarray(ratings, np.float64)
    mu = float(np.sort(r).sum() / r.shape[0]) if r.shape[0] else 0.0
    resid = r - mu
    q = init_factors(n_items, k, seed)
    p = np.zeros((n_users, k))
    for _ in range(int(iters)):
        p = _solve_side(users, q[items], resid, n_users, reg)
        q = _solve_side(items, p[users], resid, n_items, reg)
    return p, q, mu


def fit_als_jax(users, items, ratings, n_users: int, n_items: int, k: int = 16, reg: float = 0.1,
                iters: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`fit_als` under ``jax.jit`` (segment sums and batched solves; float32 unless jax x64 is on)."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        from socius.errors import MissingExtraError
        raise MissingExtraError("jax", "jax", "The jax matrix factorisation") from None
    users = np.asarray(users, np.int64)
    items = np.asarray(items, np.int64)
    r = np.asarray(ratings, np.float64)
    mu = float(np.sort(r).sum() / r.shape[0]) if r.shape[0] else 0.0

    def side(idx, other, resid, n):
        a = jax.ops.segment_sum(other[:, :, None] * other[:, None, :], idx, num_segments=n)
        a = a + reg * jnp.eye(k)[None]
        b = jax.ops.segment_sum(other * resid[:, None], idx, num_segments=n)
        return jnp.linalg.solve(a, b[:, :, None])[:, :, 0]

    @jax.jit
    def run(users, items, resid, q):
        p = jnp.zeros((n_users, k), q.dtype)

        def body(_, pq):
            p, q = pq
            p = side(users, q[items], resid, n_users)
            q = side(items, p[users], resid, n_items)
            return p, q
        return jax.lax.fori_loop(0, int(iters), body, (p, q))

    q0 = jnp.asarray(init_factors(n_items, k, seed))
    p, q = run(jnp.asarray(users), jnp.asarray(items), jnp.asarray(r - mu, dtype=q0.dtype), q0)
    return np.asarray(p, np.float64), np.asarray(q, np.float64), mu


def rmse(p: np.ndarray, q: np.ndarray, mu: float, users, items, ratings) -> float:
    """Root mean squared error of the model on the given ratings."""
    pred = mu + np.einsum("ij,ij->i", p[np.asarray(users)], q[np.asarray(items)])
    return float(np.sqrt(np.mean((pred - np.asarray(ratings, np.float64)) ** 2)))


def mf_pages(p: np.ndarray, q: np.ndarray, mu: float, counts: np.ndarray, watched: RaggedArray,
             n: int) -> np.ndarray:
    """Top-``n`` by predicted rating ``mu + p_u · q_i`` (``p``: the block's users' rows); popularity
    breaks near-ties (``1e-6 · log1p(count)``), so a user the model knows nothing of sees the popular items."""
    u, m = len(watched), q.shape[0]
    out = np.empty((u, n), np.int64)
    tie = 1e-6 * np.log1p(np.asarray(counts, np.float64))
    for lo in range(0, u, CHUNK):
        hi = min(u, lo + CHUNK)
        s = mu + p[lo:hi] @ q.T + tie[None, :]
        out[lo:hi] = top_n_scores(s, _exclude_codes(watched, lo, hi, m), n)
    return out
