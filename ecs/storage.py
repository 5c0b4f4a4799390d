"""Columnar storage: one ID-sorted table per component.

Design choice: **sparse sets kept in entity-ID order** (one table per
component type), not archetype tables.

* Social simulations put most agents in one or two component sets, so the
  archetype advantage (no join) is small, while moving every row between
  archetype tables on each add/remove is costly for the per-agent state that
  scenarios toggle (an agent gets ``Employed``, loses ``Seeking``).
* Keeping every table sorted by entity ID makes storage order canonical:
  a query's rows, a snapshot and the state hash are the same whatever the
  history of spawns and despawns, and the same IDs on any MPI rank stay in
  the same relative order. New IDs are always larger than live ones, so a
  spawn is an append; despawns and late adds are merges done once per sync
  point, never per agent.
* A query over several components joins sorted ID arrays once (``searchsorted``)
  and caches the result until a table's structure changes; when all tables
  hold the same entities (the common case) the join is a no-op and columns
  are served as zero-copy views.

Rows are found with ``np.searchsorted`` on the sorted IDs — no dense
``id -> row`` map, so global 64-bit IDs spread over many ranks cost nothing.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .component import Component
from .errors import MissingComponentError
from .ragged import RaggedArray


def find_rows(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``ids`` in ``sorted_ids`` and a mask of which ids are present."""
    rows = np.searchsorted(sorted_ids, ids)
    rows_c = np.minimum(rows, max(sorted_ids.shape[0] - 1, 0))
    present = (rows < sorted_ids.shape[0]) & (sorted_ids[rows_c] == ids) if sorted_ids.shape[0] else np.zeros(ids.shape, bool)
    return rows_c, present


class Table:
    """All rows of one component: ``entities [n] int64`` (sorted) + one array per column."""

    __slots__ = ("component", "entities", "data", "version")

    def __init__(self, component: type[Component]):
        self.component = component
        self.entities = np.zeros(0, dtype=np.int64)
        self.data: dict[str, Any] = {k: c.empty(0) for k, c in component.columns().items()}
        self.version = 0  # bumped on every structural change (rows added or removed)

    def __len__(self) -> int:
        return self.entities.shape[0]

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Rows of ``ids``; raises naming the first entity without this component."""
        rows, present = find_rows(self.entities, ids)
        if not present.all():
            bad = ids[~present][0]
            raise MissingComponentError(
                f"entity {int(bad)} does not have component {self.component.__qualname__}")
        return rows

    def contains(self, ids: np.ndarray) -> np.ndarray:
        return find_rows(self.entities, ids)[1]

    def insert(self, ids: np.ndarray, values: dict[str, Any]) -> None:
        """Add rows for ``ids`` (not yet in the table) with coerced ``values``."""
        if ids.shape[0] == 0:
            return
        cols = self.component.columns()
        order = None
        if ids.shape[0] > 1 and (np.diff(ids) <= 0).any():
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
            values = {k: cols[k].take(v, order) for k, v in values.items()}
        fresh = getattr(values, "fresh", ())
        if self.entities.shape[0] == 0 or ids[0] > self.entities[-1]:
            empty = self.entities.shape[0] == 0
            self.entities = np.concatenate([self.entities, ids])
            for k, c in cols.items():  # an empty table adopts arrays built for it (no copy: one block, not two)
                self.data[k] = values[k] if empty and k in fresh else c.concat([self.data[k], values[k]])
        else:
            merged = np.concatenate([self.entities, ids])
            perm = np.argsort(merged, kind="stable")
            self.entities = merged[perm]
            for k, c in cols.items():
                self.data[k] = c.take(c.concat([self.data[k], values[k]]), perm)
        self.version += 1

    def remove(self, ids: np.ndarray) -> None:
        """Drop the rows of those ``ids`` that are present (others are ignored)."""
        if ids.shape[0] == 0 or self.entities.shape[0] == 0:
            return
        rows, present = find_rows(self.entities, ids)
        if not present.any():
            return
        keep = np.ones(self.entities.shape[0], dtype=bool)
        keep[rows[present]] = False
        idx = np.flatnonzero(keep)
        self.entities = self.entities[idx]
        for k, c in self.component.columns().items():
            self.data[k] = c.take(self.data[k], idx)
        self.version += 1

    def write(self, rows, name: str, value) -> None:
        """Write already-coerced ``value`` to ``rows`` (a slice or an index array)."""
        col = self.component.column(name)
        if col.kind == "ragged":
            if isinstance(rows, slice):
                self.data[name] = value
            else:
                self.data[name] = self.data[name].set_rows(rows, value)
        else:
            self.data[name][rows] = value

    def n_bytes(self) -> int:
        total = self.entities.nbytes
        for v in self.data.values():
            if isinstance(v, RaggedArray):
                total += v.offsets.nbytes + v.values.nbytes
            elif v.dtype.kind == "T":
                total += int(np.strings.str_len(v).sum()) + 16 * v.shape[0]
            else:
                total += v.nbytes
        return total
