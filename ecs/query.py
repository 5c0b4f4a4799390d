"""Queries: build once, fetch each tick, read aligned columns, write back by column.

::

    q = Query(Wealth, Position, without=(Frozen,))
    v = q.fetch(world)              # ids [n] int64, sorted
    w = v[Wealth].value             # read-only array aligned with v.ids
    v.set(Wealth, value=w + 1)      # write back
    with v.write(Position) as p:    # writable arrays, written back on exit
        p.x += 1

A :class:`Query` caches its join and re-computes it only when a table it
touches changed structure. A :class:`QueryView` serves zero-copy views when
the join covers whole tables (all matched tables hold the same entities) and
gathered copies otherwise; reads are read-only either way so a write is never
silently lost, and writes go through :meth:`QueryView.set` / :meth:`write`.
A view used after its tables changed structure raises :class:`StaleViewError`.
"""
from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from .component import Component, is_component
from .errors import AccessError, StaleViewError, UnknownComponentError
from .ragged import RaggedArray
from .storage import find_rows

if TYPE_CHECKING:
    from .world import World

FULL = slice(None)


class Query:
    """A reusable query over entities that have all of ``components``.

    ``without``: components the entities must not have. ``where``: an optional
    predicate ``view -> [n] bool`` applied on every fetch.
    """

    def __init__(self, *components: type[Component], without: Iterable[type[Component]] = (),
                 where: Callable[["QueryView"], np.ndarray] | None = None):
        if not components:
            raise ValueError("Query needs at least one component")
        for c in (*components, *without):
            if not is_component(c):
                raise UnknownComponentError(f"Query: {c!r} is not a Component class")
        self.components = tuple(components)
        self.without = tuple(without)
        self.where = where
        self._cache_key: tuple | None = None
        self._cache: tuple[np.ndarray, list] | None = None
        self._cache_world: weakref.ref | None = None  # not id(world): a freed world's id can be reused

    def _join(self, world: "World") -> tuple[np.ndarray, list]:
        tables = [world._table(c) for c in self.components]
        ex_tables = [world._table(c) for c in self.without]
        key = (tuple(t.version for t in tables), tuple(t.version for t in ex_tables))
        if key == self._cache_key and self._cache_world is not None and self._cache_world() is world:
            return self._cache
        base = min(tables, key=len)
        ids = base.entities
        aligned = all(len(t) == len(base) and (t is base or np.array_equal(t.entities, ids)) for t in tables)
        if not aligned:
            mask = np.ones(ids.shape[0], dtype=bool)
            for t in tables:
                if t is not base:
                    mask &= find_rows(t.entities, ids)[1]
            ids = ids[mask]
        for t in ex_tables:
            if len(t):
                ids = ids[~find_rows(t.entities, ids)[1]]
        rows = [FULL if ids.shape[0] == len(t) else find_rows(t.entities, ids)[0] for t in tables]
        self._cache_key, self._cache, self._cache_world = key, (ids, rows), weakref.ref(world)
        return ids, rows

    def fetch(self, world: "World", writable: Iterable[type[Component]] | None = None) -> "QueryView":
        ids, rows = self._join(world)
        view = QueryView(world, ids, dict(zip(self.components, rows)), writable)
        if self.where is not None:
            view = view.filter(np.asarray(self.where(view), dtype=bool))
        return view


class ColumnSet:
    """Attribute access to the columns of one component in a view (``v[Wealth].value``)."""

    __slots__ = ("_view", "_component", "_cache")

    def __init__(self, view: "QueryView", component: type[Component]):
        self._view, self._component, self._cache = view, component, {}

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._view.get(self._component, name)

    def __getitem__(self, name: str):
        return self._view.get(self._component, name)


class QueryView:
    """The matched entities of one fetch: ``ids [n] int64`` and aligned columns."""

    __slots__ = ("world", "ids", "_rows", "_versions", "_writable")

    def __init__(self, world: "World", ids: np.ndarray, rows: dict, writable=None):
        self.world = world
        self.ids = ids.view()
        self.ids.flags.writeable = False
        self._rows = rows
        self._versions = {c: world._table(c).version for c in rows}
        self._writable = None if writable is None else frozenset(writable)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def __getitem__(self, component: type[Component]) -> ColumnSet:
        self._check(component)
        return ColumnSet(self, component)

    def _check(self, component) -> None:
        if component not in self._rows:
            raise UnknownComponentError(
                f"{getattr(component, '__qualname__', component)} is not part of this query "
                f"({', '.join(c.__qualname__ for c in self._rows)})")
        if self.world._table(component).version != self._versions[component]:
            raise StaleViewError(
                f"view of {component.__qualname__} is stale: entities were added or removed since it "
                "was fetched; fetch the query again")

    def get(self, component: type[Component], name: str):
        """Column ``name`` of ``component`` for the view's rows (read-only)."""
        self._check(component)
        col = component.column(name)
        data = self.world._table(component).data[name]
        rows = self._rows[component]
        if col.kind == "ragged":
            return _read_only(data if rows is FULL else data.take(rows))
        out = data[rows] if rows is not FULL else data.view()
        out.flags.writeable = False
        return out

    def set(self, component: type[Component], /, rows=None, **columns: Any) -> None:
        """Write columns for the view's rows: ``v.set(Wealth, value=arr)``.

        With ``rows`` (``[m]`` positions in this view, or an ``[n] bool``
        mask) only those rows are written and each value has ``m`` rows —
        a scatter, without copying the whole column first::

            v.set(Wealth, rows=np.flatnonzero(rich), value=w[rich] - 1)
        """
        self._check(component)
        if self._writable is not None and component not in self._writable:
            raise AccessError(f"this system did not declare writes=({component.__qualname__},)")
        table = self.world._table(component)
        target = self._rows[component]
        if rows is not None:
            rows = np.asarray(rows)
            if rows.dtype == bool:
                if rows.shape != (len(self),):
                    raise ValueError(f"QueryView.set: a rows mask needs shape ({len(self)},), got {rows.shape}")
                rows = np.flatnonzero(rows)
            elif rows.ndim != 1 or rows.dtype.kind not in "iu":
                raise ValueError(f"QueryView.set: rows must be [m] integer positions or a bool mask, "
                                 f"got {rows.dtype} {rows.shape}")
            elif rows.size and (int(rows.min()) < -len(self) or int(rows.max()) >= len(self)):
                raise IndexError(f"QueryView.set: rows out of range for a view of {len(self)} entities")
            rows = rows.astype(np.int64, copy=False) % max(len(self), 1)
            target = rows if target is FULL else target[rows]
        n = len(self) if rows is None else rows.shape[0]
        for name, value in columns.items():
            col = component.column(name)
            table.write(target, name, col.coerce(value, n))

    @contextmanager
    def write(self, component: type[Component], *names: str):
        """Writable columns (all, or ``names``) for the view's rows, written back on exit.

        When the view covers the whole table the arrays *are* the storage
        (zero-copy, for numba kernels that update in place); otherwise they are
        gathered copies scattered back on exit. Rebinding an attribute
        (``p.x = other``) also writes back. Ragged columns are always copies.
        """
        self._check(component)
        if self._writable is not None and component not in self._writable:
            raise AccessError(f"this system did not declare writes=({component.__qualname__},)")
        cols = component.columns()
        names = names or tuple(cols)
        table = self.world._table(component)
        full = self._rows[component] is FULL
        arrays = {}
        for name in names:
            col = component.column(name)
            if full and col.kind != "ragged":
                arrays[name] = table.data[name]
            else:
                v = self.get(component, name)
                arrays[name] = v.copy() if isinstance(v, RaggedArray) else np.array(v)
        ns = _Namespace(arrays)
        yield ns
        self._check(component)
        changed = {k: v for k, v in ns.__dict__.items() if not (k in arrays and v is arrays[k] and full
                                                                  and cols[k].kind != "ragged")}
        if changed:
            self.set(component, **changed)

    def filter(self, mask: np.ndarray) -> "QueryView":
        """The subset of rows where ``mask [n] bool`` holds."""
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (len(self),):
            raise ValueError(f"QueryView.filter: need a bool mask of shape ({len(self)},), got {mask.dtype} {mask.shape}")
        idx = np.flatnonzero(mask)
        rows = {c: (idx if r is FULL else r[idx]) for c, r in self._rows.items()}
        v = QueryView.__new__(QueryView)
        v.world, v._rows, v._versions, v._writable = self.world, rows, self._versions, self._writable
        v.ids = self.ids[idx]
        v.ids.flags.writeable = False
        return v

    def rows_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``ids`` in this view and a mask of which were found."""
        return find_rows(self.ids, np.asarray(ids, dtype=np.int64))


def _read_only(r: RaggedArray) -> RaggedArray:
    """Read-only views of a ragged column (never the stored arrays themselves)."""
    out = RaggedArray.__new__(RaggedArray)
    out.offsets, out.values = r.offsets.view(), r.values.view()
    out.offsets.flags.writeable = out.values.flags.writeable = False
    return out


class _Namespace:
    def __init__(self, d):
        self.__dict__.update(d)
