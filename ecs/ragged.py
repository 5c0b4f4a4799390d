"""Ragged arrays: one variable-length list per row, stored as offsets + values.

``offsets`` is ``[n + 1] int64`` with ``offsets[0] == 0``; row ``i`` is
``values[offsets[i]:offsets[i + 1]]``. Every operation is vectorised (no loop
over rows), so a follow list of 1M agents is gathered or rewritten in
milliseconds.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


def gather_index(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``values`` that concatenate the given rows, and the new offsets."""
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    new_offsets = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    total = int(new_offsets[-1])
    index = np.arange(total, dtype=np.int64) + np.repeat(starts - new_offsets[:-1], lengths)
    return index, new_offsets


class RaggedArray:
    """``n`` rows of variable length over one flat ``values`` array of one dtype."""

    __slots__ = ("offsets", "values")

    def __init__(self, offsets: np.ndarray, values: np.ndarray):
        offsets = np.asarray(offsets, dtype=np.int64)
        values = np.asarray(values)
        if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets[0] != 0:
            raise ValueError("RaggedArray: offsets must be 1-D, non-empty and start at 0")
        if offsets.shape[0] > 1 and (np.diff(offsets) < 0).any():
            raise ValueError("RaggedArray: offsets must be non-decreasing")
        if values.ndim != 1 or values.shape[0] != offsets[-1]:
            raise ValueError(
                f"RaggedArray: values must be 1-D with offsets[-1] = {int(offsets[-1])} rows, "
                f"got shape {values.shape}")
        self.offsets = offsets
        self.values = values

    # construction -------------------------------------------------------
    @classmethod
    def from_lists(cls, rows: Iterable[Sequence], dtype) -> "RaggedArray":
        """Build from Python lists (set-up time only; never inside a tick)."""
        rows = [np.asarray(r, dtype=dtype).reshape(-1) for r in rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([r.shape[0] for r in rows], out=offsets[1:])
        values = np.concatenate(rows) if rows else np.zeros(0, dtype=dtype)
        return cls(offsets, values.astype(dtype, copy=False))

    @classmethod
    def empty(cls, n: int, dtype) -> "RaggedArray":
        return cls(np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=dtype))

    @classmethod
    def from_lengths(cls, lengths: np.ndarray, values: np.ndarray) -> "RaggedArray":
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(offsets, values)

    @classmethod
    def concat(cls, parts: Sequence["RaggedArray"]) -> "RaggedArray":
        if not parts:
            raise ValueError("RaggedArray.concat needs at least one part")
        lengths = np.concatenate([p.lengths for p in parts])
        values = np.concatenate([p.values for p in parts])
        return cls.from_lengths(lengths, values)

    # access ---------------------------------------------------------------
    def __len__(self) -> int:
        return self.offsets.shape[0] - 1

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    @property
    def lengths(self) -> np.ndarray:
        """``[n] int64``: number of values in each row."""
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i]:self.offsets[i + 1]]

    def row_ids(self) -> np.ndarray:
        """``[m] int64``: the row each value belongs to (for segment reductions)."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)

    def take(self, rows: np.ndarray) -> "RaggedArray":
        rows = np.asarray(rows, dtype=np.int64)
        index, offsets = gather_index(self.offsets, rows)
        return RaggedArray(offsets, self.values[index])

    def set_rows(self, rows: np.ndarray, new: "RaggedArray") -> "RaggedArray":
        """A new array with ``rows`` replaced by the rows of ``new`` (same order)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(new) != rows.shape[0]:
            raise ValueError(f"RaggedArray.set_rows: {rows.shape[0]} rows but {len(new)} replacements")
        n = len(self)
        lengths = self.lengths
        starts = self.offsets[:-1].copy()
        lengths[rows] = new.lengths
        starts[rows] = new.offsets[:-1] + self.values.shape[0]
        source = np.concatenate([self.values, new.values.astype(self.values.dtype, copy=False)])
        out_offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=out_offsets[1:])
        index = np.arange(int(out_offsets[-1]), dtype=np.int64) + np.repeat(starts - out_offsets[:-1], lengths)
        return RaggedArray(out_offsets, source[index])

    def append(self, rows: np.ndarray, values: np.ndarray) -> "RaggedArray":
        """A new array: ``values[i]`` appended to row ``rows[i]`` (``[m]`` each; in the given order within a row)."""
        rows = np.asarray(rows, dtype=np.int64)
        values = np.asarray(values, dtype=self.values.dtype)
        if rows.shape != values.shape[:1]:
            raise ValueError(f"RaggedArray.append: {rows.shape[0]} rows for {values.shape[0]} values")
        n = len(self)
        if rows.size and (int(rows.min()) < 0 or int(rows.max()) >= n):
            raise IndexError(f"RaggedArray.append: rows out of range for {n} rows")
        all_rows = np.concatenate([self.row_ids(), rows])
        order = np.argsort(all_rows, kind="stable")
        return RaggedArray.from_lengths(np.bincount(all_rows, minlength=n),
                                        np.concatenate([self.values, values])[order])

    def to_lists(self) -> list[list]:
        return [self.row(i).tolist() for i in range(len(self))]

    def equals(self, other: "RaggedArray") -> bool:
        return (isinstance(other, RaggedArray) and np.array_equal(self.offsets, other.offsets)
                and np.array_equal(self.values, other.values))

    def copy(self) -> "RaggedArray":
        return RaggedArray(self.offsets.copy(), self.values.copy())

    def __repr__(self) -> str:
        return f"RaggedArray(rows={len(self)}, values={self.values.shape[0]}, dtype={self.dtype})"
