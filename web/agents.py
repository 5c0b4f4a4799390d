"""Agents at scale: filter, search, sort, page and histogram one restored world, server-side.

An :class:`AgentTable` wraps one read-only world (a restored snapshot). Its
rows are the *base* entities, ``B [n] int64`` sorted IDs: the holders of a
component named ``Profile`` when the world has one, else every live entity.
Its columns are every scalar and string column of every component, named
``Component.column``; an entity without that component has no value there
(``null``; sorted last).

A request is one boolean mask over ``B``: the ``where`` conditions
(:func:`socius.systems.find_agents`, joined by ``and``) and a case-blind
substring search over the string columns (profiles, short-term memories).
Sorting uses an order over ``B`` computed once per column and cached
(stable, so ties stay in ID order); a page is then that order gathered
through the mask and sliced — O(n) per request, never a sort, and only the
page's rows leave the server. Histograms count the masked values of one
numeric column. At 10⁶ agents a filtered, sorted page takes tens of
milliseconds once the column's order is cached (``bench/dashboard.py``). The
last :data:`ANSWERS` pages and histograms are kept (a table's world never
changes), so a page polling the same query costs a lookup.
"""
from __future__ import annotations

import re
import threading
from collections import OrderedDict

import numpy as np

from socius.ecs import STR

__all__ = ["AgentTable", "QueryError", "split_where"]

MAX_LIMIT = 500
ANSWERS = 64  # pages and histograms kept per table: a polling page costs a lookup
_AND = re.compile(r"""\s+and\s+(?=(?:[^'"]*(?:'[^']*'|"[^"]*"))*[^'"]*$)""")


class QueryError(ValueError):
    """A bad agents query (unknown column, bad expression, bad paging); the API answers 400 with it."""


def split_where(expr: str) -> list[str]:
    """The conditions of ``"A.x >= 1 and B.y == 'p and q'"`` (``and`` inside quotes is kept)."""
    return [c.strip() for c in _AND.split(expr.strip()) if c.strip()]


class AgentTable:
    """Queries over one world's agents (see the module docstring). Thread-safe; the world is never written."""

    def __init__(self, world):
        self.world = world
        self.tick = int(world.tick)
        comps = world.component_types()
        base = [c for c in comps if c.__name__ == "Profile"]
        self.base = world.ids_of(base[0]) if base else np.sort(world.entities())
        self.n = int(self.base.shape[0])
        self._cols: dict[str, tuple] = {}
        for c in comps:
            for name, col in c.columns().items():
                if col.kind in ("scalar", "string"):
                    self._cols[f"{c.__name__}.{name}"] = (c, name, col.kind)
        self._cache: dict = {}
        self._answers: OrderedDict = OrderedDict()  # the last ANSWERS pages and histograms (a world never changes)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ columns
    def columns(self) -> list[dict]:
        """``[{name, kind, dtype, numeric}]`` of every filterable, sortable column."""
        out = []
        for name, (c, col, kind) in self._cols.items():
            dtype = "string" if kind == "string" else str(c.column(col).dtype)
            out.append({"name": name, "kind": kind, "dtype": dtype, "numeric": kind == "scalar"})
        return out

    def _memo(self, key, make):
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = make()
        with self._lock:
            return self._cache.setdefault(key, value)

    def _answer(self, key, make):
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
        value = make()
        with self._lock:
            self._answers[key] = value
            while len(self._answers) > ANSWERS:
                self._answers.popitem(last=False)
        return value

    def _spec(self, name: str):
        if name not in self._cols:
            raise QueryError(f"no column {name!r} (columns: {', '.join(self._cols)})")
        return self._cols[name]

    def column(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(values [n], present [n] bool)`` of column ``name`` aligned with ``B`` (cached)."""
        def make():
            comp, col, kind = self._spec(name)
            view = self.world.query(comp)  # read-only, zero-copy views: this table's world is never written
            holders, data = view.ids, view[comp][col]
            if holders.shape == self.base.shape and np.array_equal(holders, self.base):
                return data, np.ones(self.n, bool)
            pos = np.searchsorted(holders, self.base)
            pos_c = np.minimum(pos, max(holders.shape[0] - 1, 0))
            present = (pos < holders.shape[0]) & (holders[pos_c] == self.base) if holders.shape[0] else \
                np.zeros(self.n, bool)
            out = np.zeros(self.n, STR if kind == "string" else data.dtype)  # "" for strings
            out[present] = data[pos_c[present]]
            return out, present
        return self._memo(("col", name), make)

    def _lower(self, name: str) -> np.ndarray:
        return self._memo(("lower", name), lambda: np.strings.lower(self.column(name)[0]))

    def _order(self, name: str, desc: bool = False) -> np.ndarray:
        """``[n] int64`` positions of ``B`` by value (ascending or ``desc``), missing last, ties in ID
        order (cached per column and direction)."""
        def make():
            values, present = self.column(name)
            if np.issubdtype(values.dtype, np.floating):
                present = present & ~np.isnan(values)
            if desc:
                _, rank = np.unique(values, return_inverse=True)
                order = np.lexsort((np.arange(self.n), -rank.reshape(-1)))
            else:
                order = np.argsort(values, kind="stable")
            return np.concatenate([order[present[order]], order[~present[order]]])
        return self._memo(("order", name, desc), make)

    # ------------------------------------------------------------------ selection
    def mask(self, where: str = "", q: str = "") -> np.ndarray:
        """``[n] bool`` over ``B``: the rows meeting ``where`` and containing ``q`` in a string column."""
        from socius.systems import InterventionError, find_agents

        mask = np.ones(self.n, bool)
        if where and where.strip():
            conds = split_where(where)
            try:
                ids = find_agents(self.world, conds)
            except InterventionError as e:
                raise QueryError(str(e)) from None
            mask = np.zeros(self.n, bool)
            pos = np.searchsorted(self.base, ids)
            ok = pos < self.n
            ok[ok] = self.base[pos[ok]] == ids[ok]
            mask[pos[ok]] = True
        if q and q.strip():
            needle = q.strip().lower()
            hit = np.zeros(self.n, bool)
            for name, (_, _, kind) in self._cols.items():
                if kind == "string":
                    hit |= np.strings.find(self._lower(name), needle) >= 0
            mask &= hit
        return mask

    def page(self, where: str = "", q: str = "", sort: str | None = None, desc: bool = False, offset: int = 0,
             limit: int = 50, columns: list[str] | None = None) -> dict:
        """``{total, offset, limit, ids, columns: {name: [values]}}``: one page of the selected rows."""
        if not (0 <= offset) or not (1 <= limit <= MAX_LIMIT):
            raise QueryError(f"offset must be >= 0 and limit 1..{MAX_LIMIT}, got offset={offset} limit={limit}")
        names = list(columns) if columns else self.default_columns()
        for c in names:
            self._spec(c)
        return self._answer(("page", where, q, sort, bool(desc), offset, limit, tuple(names)),
                            lambda: self._page(where, q, sort, desc, offset, limit, names))

    def _page(self, where, q, sort, desc, offset, limit, names) -> dict:
        mask = self.mask(where, q)
        total = int(mask.sum())
        if sort:
            order = self._order(sort, bool(desc))
            rows = order[mask[order]][offset:offset + limit]
        else:
            rows = np.flatnonzero(mask)[offset:offset + limit]
        out = {}
        for c in names:
            values, present = self.column(c)
            out[c] = _jsonable(values[rows], present[rows])
        return {"total": total, "offset": offset, "limit": limit, "tick": self.tick,
                "ids": self.base[rows].tolist(), "columns": out}

    def default_columns(self, k: int = 8) -> list[str]:
        prof = [n for n, (c, _, _) in self._cols.items() if c.__name__ == "Profile"]
        rest = [n for n in self._cols if n not in prof and not re.search(r"\.text_\d+$", n)]
        return (prof + rest)[:k]

    def histogram(self, column: str, where: str = "", q: str = "", bins: int = 20) -> dict:
        """``{column, edges [b+1], counts [b], total, missing}`` of a numeric column over the selection."""
        comp, col, kind = self._spec(column)
        if kind != "scalar":
            raise QueryError(f"histogram: {column} is not a numeric column")
        if not 1 <= bins <= 200:
            raise QueryError(f"histogram: bins must be 1..200, got {bins}")
        return self._answer(("hist", column, where, q, bins), lambda: self._histogram(column, where, q, bins))

    def _histogram(self, column: str, where: str, q: str, bins: int) -> dict:
        values, present = self.column(column)
        mask = self.mask(where, q)
        v = values[mask & present].astype(np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return {"column": column, "edges": [], "counts": [], "total": 0, "missing": int(mask.sum())}
        lo, hi = float(v.min()), float(v.max())
        if np.issubdtype(values.dtype, np.integer) or values.dtype == bool:
            if hi - lo + 1 <= bins:  # one bin per integer value
                edges = np.arange(lo, hi + 2) - 0.5
            else:
                edges = np.histogram_bin_edges(v, bins)
        else:
            edges = np.histogram_bin_edges(v, bins) if hi > lo else np.array([lo - 0.5, lo + 0.5])
        counts, edges = np.histogram(v, edges)
        return {"column": column, "edges": edges.tolist(), "counts": counts.tolist(), "total": int(v.size),
                "missing": int(mask.sum()) - int(v.size)}

    # ------------------------------------------------------------------ one agent
    def agent(self, entity: int) -> dict:
        """Every component's columns for ``entity`` (memories as texts), and messages in the snapshot's inbox."""
        from .agent_page import agent_view
        return agent_view(self.world, entity)


def _jsonable(values: np.ndarray, present: np.ndarray) -> list:
    if values.dtype == STR:
        out = values.astype(object).tolist()
    elif np.issubdtype(values.dtype, np.floating):
        out = [None if not np.isfinite(x) else x for x in values.astype(np.float64).tolist()]
    else:
        out = values.tolist()
    if not present.all():
        out = [x if p else None for x, p in zip(out, present.tolist())]
    return out
