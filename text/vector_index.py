"""A searchable catalogue of vectors keyed by int64 IDs, over faiss.

::

    index = VectorIndex.build(item_ids, item_vecs)          # exact, inner product
    ids, scores = index.search(user_vecs, k=10)             # [q, 10] int64, [q, 10] float32
    index.add(new_ids, new_vecs); index.remove(old_ids)

Scores are inner products; with ``normalize=True`` (the default) vectors and
queries are L2-normalised first, so scores are cosine similarities. Each
result row is ordered by score, highest first, and **ties are broken by the
smaller ID**, whatever the insertion order or index kind — results depend only
on the set of (ID, vector) pairs, which keeps simulations deterministic.
Rows with fewer than ``k`` candidates are padded with ID ``-1`` and score
``-inf``.

Kinds (``kind=``):

* ``"flat"`` (default): exact search (``IndexFlatIP``).
* ``"ivf"``: ``IndexIVFFlat`` with ``nlist`` clusters, ``nprobe`` of them
  searched; trained on the first vectors added (at least ``nlist``).
  Approximate; for catalogues of millions.
* ``"hnsw"``: ``IndexHNSWFlat`` with ``hnsw_m`` links and ``ef_search``.
  Approximate; removing vectors rebuilds the graph (O(n log n)).

With the GPU build of faiss (``faiss-gpu``) and a visible GPU, ``"flat"`` and
``"ivf"`` indexes run on the GPU (``device="auto"``, or ``"cuda"``); with
``faiss-cpu`` everything runs on the CPU. faiss is in the ``embeddings`` extra
(and the ``test`` extra).
"""
from __future__ import annotations

import numpy as np

from socius.errors import MissingExtraError

INDEX_KINDS = ("flat", "ivf", "hnsw")


def _faiss():
    try:
        import faiss
    except ImportError as exc:
        raise MissingExtraError("embeddings", "faiss-cpu", "VectorIndex") from exc
    return faiss


def _gpu_count(faiss) -> int:
    try:
        return int(faiss.get_num_gpus()) if hasattr(faiss, "StandardGpuResources") else 0
    except Exception:  # pragma: no cover - broken GPU runtime
        return 0


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """A float32 copy of ``x`` ``[n, d]`` with unit L2 rows (zero rows stay zero)."""
    out = np.array(x, dtype=np.float32, copy=True, order="C")
    norm = np.sqrt(np.einsum("ij,ij->i", out, out, dtype=np.float64)).astype(np.float32)
    np.divide(out, norm[:, None], out=out, where=norm[:, None] > 0)
    return out


class VectorIndex:
    """IDs + vectors ``[n, dim]`` searchable by inner product (see module doc)."""

    def __init__(self, dim: int, kind: str = "flat", *, normalize: bool = True, nlist: int = 256,
                 nprobe: int = 16, hnsw_m: int = 32, ef_search: int = 64, device: str = "auto"):
        if int(dim) < 1:
            raise ValueError(f"VectorIndex: dim must be >= 1, got {dim}")
        if kind not in INDEX_KINDS:
            raise ValueError(f"VectorIndex: unknown kind {kind!r}; choose one of {', '.join(INDEX_KINDS)}")
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"VectorIndex: device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        for name, v in (("nlist", nlist), ("nprobe", nprobe), ("hnsw_m", hnsw_m), ("ef_search", ef_search)):
            if int(v) < 1:
                raise ValueError(f"VectorIndex: {name} must be >= 1, got {v}")
        self._faiss = _faiss()
        self.dim = int(dim)
        self.kind = kind
        self.normalize = bool(normalize)
        self.nlist, self.nprobe = int(nlist), int(nprobe)
        self.hnsw_m, self.ef_search = int(hnsw_m), int(ef_search)
        gpus = _gpu_count(self._faiss)
        if device == "cuda" and gpus == 0:
            raise ValueError("VectorIndex: device='cuda' needs faiss-gpu and a visible GPU "
                             "(pip install 'socius[embeddings-gpu]')")
        self.device = "cuda" if gpus > 0 and device != "cpu" and kind != "hnsw" else "cpu"
        self._ids = np.zeros(0, dtype=np.int64)  # sorted
        self._index = self._new_index()
        self._gpu_res = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, ids, vectors, kind: str = "flat", **kwargs) -> "VectorIndex":
        """An index holding ``vectors`` ``[n, dim]`` under ``ids`` ``[n]`` (unique int64)."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise ValueError(f"VectorIndex.build: vectors must be [n, dim], got shape {vectors.shape}")
        index = cls(vectors.shape[1], kind, **kwargs)
        index.add(ids, vectors)
        return index

    def _new_index(self):
        faiss = self._faiss
        if self.kind == "flat":
            inner = faiss.IndexFlatIP(self.dim)
        elif self.kind == "ivf":
            self._quantizer = faiss.IndexFlatIP(self.dim)
            inner = faiss.IndexIVFFlat(self._quantizer, self.dim, self.nlist, faiss.METRIC_INNER_PRODUCT)
            inner.nprobe = self.nprobe
            return self._to_device(inner)
        else:
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efSearch = self.ef_search
        self._inner = inner
        return faiss.IndexIDMap2(self._to_device(inner))

    def _to_device(self, index):
        if self.device != "cuda":
            return index
        faiss = self._faiss
        if self._gpu_res is None:
            self._gpu_res = faiss.StandardGpuResources()
        return faiss.index_cpu_to_gpu(self._gpu_res, 0, index)

    # ------------------------------------------------------------------ contents
    def __len__(self) -> int:
        return int(self._ids.shape[0])

    @property
    def ids(self) -> np.ndarray:
        """``[n] int64`` IDs held, sorted."""
        return self._ids.copy()

    def __contains__(self, item) -> bool:
        i = np.searchsorted(self._ids, item)
        return bool(i < len(self._ids) and self._ids[i] == item)

    def _prepare(self, vectors, what: str) -> np.ndarray:
        arr = np.asarray(vectors)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"VectorIndex.{what}: expected shape [n, {self.dim}], got {arr.shape}")
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"VectorIndex.{what}: expected numeric vectors, got {arr.dtype}")
        arr = normalize_rows(arr) if self.normalize else np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ValueError(f"VectorIndex.{what}: vectors contain NaN or inf")
        return arr

    def add(self, ids, vectors) -> None:
        """Add ``vectors`` ``[n, dim]`` under new, unique ``ids`` ``[n]``."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise TypeError(f"VectorIndex.add: ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
        ids = ids.astype(np.int64)
        vecs = self._prepare(vectors, "add")
        if vecs.shape[0] != ids.shape[0]:
            raise ValueError(f"VectorIndex.add: {ids.shape[0]} ids for {vecs.shape[0]} vectors")
        if ids.size == 0:
            return
        if (ids < 0).any():
            raise ValueError("VectorIndex.add: ids must be >= 0 (-1 marks an empty result slot)")
        uniq = np.unique(ids)
        if uniq.size != ids.size:
            raise ValueError("VectorIndex.add: duplicate ids in one call")
        dup = np.isin(uniq, self._ids, assume_unique=True)
        if dup.any():
            raise ValueError(f"VectorIndex.add: ids already present, e.g. {int(uniq[dup][0])}")
        if self.kind == "ivf" and not self._index.is_trained:
            if vecs.shape[0] < self.nlist:
                raise ValueError(f"VectorIndex(kind='ivf'): the first add trains {self.nlist} clusters and needs "
                                 f"at least nlist={self.nlist} vectors, got {vecs.shape[0]}")
            self._index.train(vecs)
        self._index.add_with_ids(vecs, ids)
        self._ids = np.union1d(self._ids, uniq)

    def remove(self, ids) -> None:
        """Remove the vectors under ``ids``; unknown IDs raise ``KeyError``."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        missing = ~np.isin(ids, self._ids, assume_unique=True)
        if missing.any():
            raise KeyError(f"VectorIndex.remove: id {int(ids[missing][0])} is not in the index")
        if ids.size == 0:
            return
        if self.kind == "hnsw":  # HNSW graphs cannot delete: rebuild from the kept vectors
            keep = np.setdiff1d(self._ids, ids, assume_unique=True)
            vecs = self.vectors(keep)
            self._index = self._new_index()
            self._index.add_with_ids(vecs, keep)
            self._ids = keep
            return
        index = self._faiss.index_gpu_to_cpu(self._index) if self.device == "cuda" else self._index
        removed = index.remove_ids(self._faiss.IDSelectorBatch(ids))
        assert removed == ids.size, (removed, ids.size)
        if self.device == "cuda":
            self._index = self._to_device(index)
        self._ids = np.setdiff1d(self._ids, ids, assume_unique=True)

    def vectors(self, ids) -> np.ndarray:
        """``[m, dim] float32`` stored (normalised) vectors of ``ids``."""
        ids = np.asarray(ids, dtype=np.int64)
        missing = ~np.isin(ids, self._ids)
        if missing.any():
            raise KeyError(f"VectorIndex.vectors: id {int(ids[missing][0])} is not in the index")
        index = self._faiss.index_gpu_to_cpu(self._index) if self.device == "cuda" else self._index
        if self.kind == "ivf":
            index.set_direct_map_type(self._faiss.DirectMap.Hashtable)
        if ids.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(index.reconstruct_batch(np.ascontiguousarray(ids)), dtype=np.float32)

    # ------------------------------------------------------------------ search
    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` per query: ``(ids [q, k] int64, scores [q, k] float32)``.

        Ordered by score descending, ties by ID ascending; short rows padded
        with ``-1`` / ``-inf``.
        """
        k = int(k)
        if k < 0:
            raise ValueError(f"VectorIndex.search: k must be >= 0, got {k}")
        q = self._prepare(queries, "search")
        nq, n = q.shape[0], len(self)
        ids = np.full((nq, k), -1, dtype=np.int64)
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        if nq == 0 or k == 0 or n == 0:
            return ids, scores
        kk = min(n, k + max(k, 8))
        rows = np.arange(nq)
        while rows.size:
            d, i = self._index.search(q[rows], kk)
            d = np.where(i < 0, -np.inf, d).astype(np.float32)
            order = np.lexsort((np.where(i < 0, np.iinfo(np.int64).max, i), -d), axis=-1)
            d = np.take_along_axis(d, order, axis=1)
            i = np.take_along_axis(i, order, axis=1)
            kw = min(k, kk)
            # a tie at the k-th score that reaches the last fetched slot may hide smaller IDs: fetch more
            more = (kk < n) & (kw == k) & np.isfinite(d[:, kw - 1]) & (d[:, kk - 1] == d[:, kw - 1])
            done = ~more
            ids[rows[done], :kw] = i[done, :kw]
            scores[rows[done], :kw] = d[done, :kw]
            rows = rows[more]
            kk = min(n, 2 * kk)
        return ids, scores

    def __repr__(self):
        return f"VectorIndex(kind={self.kind!r}, dim={self.dim}, n={len(self)}, device={self.device!r})"


def brute_force_top_k(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int):
    """Reference exact top-k by inner product with ties by ID (numpy only; for tests)."""
    ids = np.asarray(ids, dtype=np.int64)
    s = np.asarray(queries, dtype=np.float32) @ np.asarray(vectors, dtype=np.float32).T
    order = np.lexsort((np.broadcast_to(ids, s.shape), -s), axis=-1)[:, :k]
    out_ids = np.full((s.shape[0], k), -1, dtype=np.int64)
    out_s = np.full((s.shape[0], k), -np.inf, dtype=np.float32)
    m = order.shape[1]
    out_ids[:, :m] = ids[order]
    out_s[:, :m] = np.take_along_axis(s, order, axis=1)
    return out_ids, out_s


__all__ = ["INDEX_KINDS", "VectorIndex", "brute_force_top_k", "normalize_rows"]
