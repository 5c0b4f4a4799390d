"""Many prompts per HTTP request: which prompts share a request, and whose reply is whose.

The completions endpoint of an OpenAI-compatible server takes ``prompt`` as a list;
vLLM's server runs every prompt of the list as its own engine request with the
request's one set of sampling parameters (``to_sampling_params`` per prompt, so
each prompt's generator is seeded with the request's ``seed``) and answers with
``choices`` in prompt order: prompt ``p``'s ``j``-th completion has
``index == p * n + j``. Usage is summed over the list.

So a request may only hold prompts that would have been sent with the same
fields one by one: the same model (LoRA adapter name), the same ``n`` and — when
sampling — the same ``seed`` (greedy decoding ignores the seed, so a greedy
batch groups by model and ``n`` only). :func:`plan_chunks` groups by that key and
cuts each group into chunks of at most ``max_prompts`` prompts and
``max_chars`` characters (one prompt longer than ``max_chars`` gets a chunk of
its own), aiming at about ``spread`` chunks so that they travel in parallel
rather than as one slow request. :func:`map_choices` puts one list reply back
in per-prompt order. Pure numpy: no HTTP, no ``openai``.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def plan_chunks(adapters: np.ndarray, n: np.ndarray, seeds: np.ndarray | None, chars: np.ndarray,
                max_prompts: int, max_chars: int, spread: int = 1,
                min_prompts: int = 16) -> list[np.ndarray]:
    """Chunks of request rows (``[k] int64`` each, ascending) that can share one HTTP request.

    ``adapters [r]`` (StringDType), ``n [r]`` (completions asked per prompt), ``seeds [r]`` (``None``
    when greedy: seeds do not matter), ``chars [r]`` (prompt length). Every row is in exactly one
    chunk; a chunk's rows agree on adapter, ``n`` and seed. Chunk size within a group is
    ``min(max_prompts, max(min_prompts, ceil(group / ceil(spread * group / r))))`` — about
    ``spread`` chunks over the whole batch (so they travel in parallel), none needlessly small — and
    a chunk closes early once its prompts pass ``max_chars`` characters.
    """
    r = int(n.shape[0])
    if r == 0:
        return []
    if max_prompts < 1 or max_chars < 1:
        raise ValueError("max_prompts and max_chars must be >= 1")
    _, code = np.unique(adapters, return_inverse=True)
    group_keys = [code.reshape(-1), n.astype(np.int64)]
    if seeds is not None:
        group_keys.append(seeds.astype(np.int64))
    order = np.lexsort((np.arange(r), *group_keys[::-1]))   # primary: adapter, then n, seed, row
    cols = [k[order] for k in group_keys]
    new_group = np.zeros(r, dtype=bool)
    new_group[0] = True
    for c in cols:
        new_group[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], r)
    csum = np.cumsum(chars[order].astype(np.int64))
    out: list[np.ndarray] = []
    for g0, g1 in zip(starts.tolist(), ends.tolist()):
        size = g1 - g0
        pieces = max(1, -(-spread * size // r))
        step = max(1, min(max_prompts, max(min_prompts, -(-size // pieces))))
        lo = g0
        while lo < g1:
            hi = min(g1, lo + step)
            base = csum[lo - 1] if lo else 0
            # the longest prefix of lo:hi within max_chars (at least one prompt)
            fit = int(np.searchsorted(csum[lo:hi] - base, max_chars, side="right"))
            hi = lo + max(1, fit)
            out.append(np.sort(order[lo:hi]))
            lo = hi
    return out


def split_count(total: int, weights: np.ndarray) -> np.ndarray:
    """``[k] int32``: ``total`` spread over ``k`` rows in proportion to ``weights`` (largest
    remainder; keeps the sum; equal split when all weights are 0)."""
    w = np.asarray(weights, dtype=np.float64)
    k = w.shape[0]
    if k == 0:
        return np.zeros(0, dtype=np.int32)
    if w.sum() <= 0:
        w = np.ones(k)
    exact = total * w / w.sum()
    out = np.floor(exact).astype(np.int64)
    rest = int(total) - int(out.sum())
    if rest > 0:
        out[np.argsort(-(exact - out), kind="stable")[:rest]] += 1
    return out.astype(np.int32)


class ListReplyError(ValueError):
    """A well-formed reply whose choices do not fit the list sent (a server that ignored the list)."""


def map_choices(data: Any, k: int, n: int, chat: bool = False) -> list[str]:
    """The ``k * n`` completion texts of a list reply, prompt-major (prompt ``p``'s are at
    ``p*n : (p+1)*n``), placed by each choice's ``index``.

    Raises :class:`ListReplyError` naming what is wrong when the reply does not hold exactly one
    choice for every index ``0 .. k*n-1`` (a server that ignored the list), ``ValueError`` when it
    has no choices at all.
    """
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise ValueError(f"reply has no choices list: {str(data)[:200]}")
    choices = data["choices"]
    want = k * n
    if len(choices) != want:
        raise ListReplyError(f"server returned {len(choices)} choices for {k} prompts x n={n} (want {want})")
    texts: list[Any] = [None] * want
    for c in choices:
        i = c.get("index") if isinstance(c, dict) else None
        if not isinstance(i, int) or not 0 <= i < want or texts[i] is not None:
            raise ListReplyError(f"choice index {i!r} out of range or repeated (want 0..{want - 1})")
        t = (c.get("message") or {}).get("content") if chat else c.get("text")
        texts[i] = t or ""
    return texts
