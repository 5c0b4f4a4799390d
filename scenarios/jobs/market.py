"""Column helpers of the job market: numbered lists in prompts and replies, groups, ragged membership.

All vectorised over whole batches (Arrow string kernels and numpy); a loop
runs over list positions (at most a dozen), never over agents.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs import STR, RaggedArray
from socius.llm import QUOTE_CLOSE, QUOTE_OPEN, defuse


def A(x) -> pa.Array:
    """numpy strings → Arrow large_string."""
    return pa.array(np.asarray(x, dtype=STR), type=pa.large_string())


def to_str(a) -> np.ndarray:
    return np.asarray(a.to_numpy(zero_copy_only=False)).astype(STR)


def cat(*parts) -> np.ndarray:
    """Element-wise concatenation of str scalars and ``[n]`` string arrays."""
    out = parts[0]
    for p in parts[1:]:
        out = np.strings.add(out, p)
    return np.asarray(out).astype(STR)


def quoted(text: np.ndarray) -> np.ndarray:
    """Untrusted text between the quote delimiters, with look-alikes defused."""
    return cat(QUOTE_OPEN, to_str(defuse(A(text))), QUOTE_CLOSE)


def money(x: np.ndarray) -> np.ndarray:
    """Thousands, one decimal at most: ``52``, ``52.5``."""
    r = np.round(np.asarray(x, dtype=np.float64) * 2) / 2
    whole = r == np.floor(r)
    return np.where(whole, np.floor(r).astype(np.int64).astype(STR), np.strings.mod("%.1f", r)).astype(STR)


def group(targets: np.ndarray, key: np.ndarray | None = None):
    """Messages grouped by target, inside each group by ``key`` descending (then message order).

    Returns ``(order [m], uniq [g], counts [g], pos [m])``: ``order`` lists the
    messages group by group; ``pos`` is each listed message's 0-based place in its group.
    """
    m = targets.shape[0]
    k = np.zeros(m) if key is None else -np.asarray(key, dtype=np.float64)
    order = np.lexsort((np.arange(m), k, targets))
    t = targets[order]
    uniq, start, counts = np.unique(t, return_index=True, return_counts=True)
    pos = np.arange(m) - np.repeat(start, counts)
    return order, uniq, counts, pos


def join_groups(values: np.ndarray, counts: np.ndarray, sep: str) -> np.ndarray:
    """``[g]``: consecutive runs of ``values`` (``counts[j]`` in run ``j``) joined with ``sep``."""
    offsets = np.zeros(counts.shape[0] + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), A(values))
    return to_str(pc.binary_join(lists, pa.scalar(sep, pa.large_string())))


def chosen_numbers(replies: np.ndarray, k: int) -> np.ndarray:
    """``[n, k] bool``: which of 1..k each reply names ("1, 3", "2 and 4"; other numbers ignored)."""
    arr = A(replies)
    out = np.zeros((len(arr), k), dtype=bool)
    for j in range(1, k + 1):  # list positions, not agents
        out[:, j - 1] = np.asarray(pc.match_substring_regex(arr, rf"(^|[^0-9]){j}([^0-9]|$)")
                                   .to_numpy(zero_copy_only=False), dtype=bool)
    return out


def in_ragged(r: RaggedArray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``[m] bool``: whether ``values[i]`` is in row ``rows[i]`` of ``r``."""
    if r.values.shape[0] == 0 or values.shape[0] == 0:
        return np.zeros(values.shape[0], dtype=bool)
    base = np.int64(max(int(r.values.max()), int(values.max()), 0) + 1)
    have = r.row_ids() * base + r.values
    return np.isin(np.asarray(rows, np.int64) * base + values, have)
