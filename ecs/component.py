"""Component schemas: small declared sets of typed columns, keyed by type.

A component is a class whose attributes are column specs::

    class Wealth(Component):
        value = Scalar(np.int64)

    class Memory(Component):
        embedding = Vector(np.float16, 384)   # [n, 384] per table
        text = String()                        # numpy StringDType
        follows = Ragged(np.int64)             # offsets + values

The class itself is the key (``world.query(Wealth)``), never its name as a
string. Its stable name, used in snapshots and hashes, is ``module.QualName``
unless the class names itself: ``class Guess(Component, name="socius.scenarios.guess.Guess")``
keeps snapshots readable and state hashes equal when the class moves to
another module (the same keyword works for ``Message`` and ``Resource``).

Column kinds and the value each accepts (``n`` rows):

========  =====================  =========================================
kind      stored as              accepts
========  =====================  =========================================
Scalar    ``[n]`` dtype          same-kind numbers, or one value broadcast
Vector    ``[n, d]`` dtype       ``[n, d]`` or ``[d]`` broadcast
String    ``[n]`` StringDType    str arrays/lists, or one str broadcast
Ragged    ``RaggedArray``        ``RaggedArray`` or a list of lists
========  =====================  =========================================

Assigning a value of the wrong kind (a float to an int column, a number to a
string column) or shape raises :class:`ColumnTypeError` /
:class:`ColumnShapeError` naming ``Component.column``. Narrowing within a kind
(int64 -> int32, float64 -> float32) is allowed, as in numpy's ``same_kind``.
"""
from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np

from .errors import ColumnShapeError, ColumnTypeError, SchemaError
from .ragged import RaggedArray

STR = np.dtypes.StringDType()


class Column:
    """Base of the column specs. ``name`` and ``owner`` are set by the schema."""

    kind: ClassVar[str] = "column"
    name: str = "?"
    owner: str = "?"

    def __set_name__(self, owner, name):
        self.name = name

    @property
    def where(self) -> str:
        return f"{self.owner}.{self.name}"

    def empty(self, n: int):
        raise NotImplementedError

    def coerce(self, value: Any, n: int):
        """Validate ``value`` for ``n`` rows and return it in storage form."""
        raise NotImplementedError

    def take(self, data, rows):
        return data[rows]

    def concat(self, parts):
        return np.concatenate(parts)

    def describe(self) -> str:
        raise NotImplementedError


def _kind_ok(src: np.dtype, dst: np.dtype) -> bool:
    if src == dst:
        return True
    if src.kind in "OUST" or dst.kind in "OUST":
        return False
    return bool(np.can_cast(src, dst, casting="same_kind"))


def _untyped_empty(value) -> bool:
    """``[]``/``()``: numpy makes it float64, but it holds no value of a wrong kind."""
    return isinstance(value, (list, tuple)) and len(value) == 0


class Scalar(Column):
    """One value of a numpy dtype per row: ``[n] dtype``."""

    kind = "scalar"

    def __init__(self, dtype, default=0):
        self.dtype = np.dtype(dtype)
        if self.dtype.kind in "OUSTV":
            raise SchemaError(f"Scalar column needs a numeric or bool dtype, got {self.dtype} (use String())")
        self.default = default

    def empty(self, n):
        return np.full(n, self.default, dtype=self.dtype)

    def coerce(self, value, n):
        arr = np.asarray(value)
        if not _kind_ok(arr.dtype, self.dtype) and not _untyped_empty(value):
            raise ColumnTypeError(f"{self.where}: expected {self.dtype} values, got {arr.dtype}")
        if arr.ndim == 0:
            return np.full(n, arr, dtype=self.dtype)
        if arr.shape != (n,):
            raise ColumnShapeError(f"{self.where}: expected shape ({n},), got {arr.shape}")
        return arr.astype(self.dtype, copy=False)

    def describe(self):
        return f"scalar:{self.dtype.str}"


class Vector(Column):
    """A fixed-width vector per row: ``[n, dim] dtype`` (e.g. an embedding)."""

    kind = "vector"

    def __init__(self, dtype, dim: int, default=0):
        self.dtype = np.dtype(dtype)
        if self.dtype.kind in "OUSTV":
            raise SchemaError(f"Vector column needs a numeric dtype, got {self.dtype}")
        if int(dim) < 1:
            raise SchemaError(f"Vector column needs dim >= 1, got {dim}")
        self.dim = int(dim)
        self.default = default

    def empty(self, n):
        return np.full((n, self.dim), self.default, dtype=self.dtype)

    def coerce(self, value, n):
        arr = np.asarray(value)
        if not _kind_ok(arr.dtype, self.dtype):
            raise ColumnTypeError(f"{self.where}: expected {self.dtype} vectors, got {arr.dtype}")
        if arr.shape == (self.dim,):
            return np.broadcast_to(arr.astype(self.dtype), (n, self.dim)).copy()
        if arr.ndim == 0:
            return np.full((n, self.dim), arr, dtype=self.dtype)
        if arr.shape != (n, self.dim):
            raise ColumnShapeError(f"{self.where}: expected shape ({n}, {self.dim}), got {arr.shape}")
        return arr.astype(self.dtype, copy=False)

    def describe(self):
        return f"vector:{self.dtype.str}:{self.dim}"


class String(Column):
    """A UTF-8 string per row: ``[n]`` numpy ``StringDType``."""

    kind = "string"

    def __init__(self, default: str = ""):
        self.dtype = STR
        self.default = default

    # str values go straight to StringDType: numpy's fixed-width 'U' strips trailing NULs ("a\x00" -> "a")
    def empty(self, n):
        return np.full(n, np.array(self.default, dtype=STR), dtype=STR)

    def coerce(self, value, n):
        if isinstance(value, str):
            return np.full(n, np.array(value, dtype=STR), dtype=STR)
        if isinstance(value, (list, tuple)):
            if not all(isinstance(v, str) for v in value):
                raise ColumnTypeError(f"{self.where}: expected strings, got a list holding non-str values")
            value = np.array(value, dtype=STR)
        arr = np.asarray(value)
        if arr.dtype.kind == "O":
            if arr.ndim == 1 and not all(isinstance(v, str) for v in arr.tolist()):
                raise ColumnTypeError(f"{self.where}: expected strings, got non-str objects")
        elif arr.dtype.kind not in "UT":
            raise ColumnTypeError(f"{self.where}: expected strings, got {arr.dtype}")
        if arr.ndim == 0:
            return np.full(n, str(arr), dtype=STR)
        if arr.shape != (n,):
            raise ColumnShapeError(f"{self.where}: expected shape ({n},), got {arr.shape}")
        return arr.astype(STR, copy=False)

    def describe(self):
        return "string"


class Ragged(Column):
    """A variable-length list of one dtype per row, as a :class:`RaggedArray`."""

    kind = "ragged"

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        if self.dtype.kind in "OUSTV":
            raise SchemaError(f"Ragged column needs a numeric dtype, got {self.dtype}")

    def empty(self, n):
        return RaggedArray.empty(n, self.dtype)

    def coerce(self, value, n):
        if isinstance(value, RaggedArray):
            if not _kind_ok(value.dtype, self.dtype):
                raise ColumnTypeError(f"{self.where}: expected {self.dtype} values, got {value.dtype}")
            if len(value) != n:
                raise ColumnShapeError(f"{self.where}: expected {n} rows, got {len(value)}")
            # copied: a whole-column write stores this array, which must not alias the caller's
            return RaggedArray(value.offsets.copy(), value.values.astype(self.dtype, copy=True))
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ColumnShapeError(f"{self.where}: expected {n} rows, got {len(value)}")
            try:
                probe = [np.asarray(r) for r in value]
            except Exception as exc:  # ragged nested junk
                raise ColumnTypeError(f"{self.where}: rows must be lists of numbers ({exc})") from None
            for r in probe:
                if r.size and not _kind_ok(r.dtype, self.dtype):
                    raise ColumnTypeError(f"{self.where}: expected {self.dtype} values, got {r.dtype}")
            return RaggedArray.from_lists(probe, self.dtype)
        raise ColumnTypeError(f"{self.where}: expected a RaggedArray or a list of lists, got {type(value).__name__}")

    def take(self, data, rows):
        return data.take(rows)

    def concat(self, parts):
        return RaggedArray.concat(parts)

    def describe(self):
        return f"ragged:{self.dtype.str}"


class Schema:
    """Base of :class:`Component` and ``Message``: collects the declared columns."""

    __columns__: ClassVar[dict[str, Column]] = {}
    __component_name__: ClassVar[str]

    def __init_subclass__(cls, name: str | None = None, **kw):
        super().__init_subclass__(**kw)
        if name is not None:
            cls.__component_name__ = name
        cols: dict[str, Column] = {}
        for base in reversed(cls.__mro__[1:]):
            cols.update(getattr(base, "__columns__", {}))
        # inherited columns get a copy per subclass: the owner below must not rename the base's columns
        cols = {k: copy.copy(c) for k, c in cols.items()}
        for key, val in list(vars(cls).items()):
            if isinstance(val, Column):
                if key.startswith("_"):
                    raise SchemaError(f"{cls.__qualname__}.{key}: column names may not start with '_'")
                cols[key] = val
        if "__component_name__" not in vars(cls):
            cls.__component_name__ = f"{cls.__module__}.{cls.__qualname__}"
        for c in cols.values():
            c.owner = cls.__qualname__
        cls.__columns__ = cols

    def __init__(self, *a, **k):
        raise TypeError(f"{type(self).__name__} is a schema, not a per-agent object: "
                        "pass column values to world.spawn / add_component instead")

    @classmethod
    def columns(cls) -> dict[str, Column]:
        return cls.__columns__

    @classmethod
    def column(cls, name: str) -> Column:
        try:
            return cls.__columns__[name]
        except KeyError:
            from .errors import UnknownComponentError
            raise UnknownComponentError(
                f"{cls.__qualname__} has no column {name!r} (columns: {', '.join(cls.__columns__) or 'none'})"
            ) from None

    @classmethod
    def coerce_values(cls, values: dict[str, Any] | None, n: int) -> dict[str, Any]:
        """Validate a ``{column: value}`` dict for ``n`` rows; missing columns get defaults.

        The result's ``fresh`` set names the columns built here (the defaults): storage may adopt
        those arrays as they are, while a value given by the caller is copied into storage."""
        values = dict(values or {})
        out = Coerced()
        for name, col in cls.__columns__.items():
            if name in values:
                out[name] = col.coerce(values.pop(name), n)
            else:
                out[name] = col.empty(n)
                out.fresh.add(name)
        if values:
            cls.column(next(iter(values)))  # raises naming the bad column
        return out

    @classmethod
    def describe(cls) -> str:
        return ";".join(f"{k}={c.describe()}" for k, c in cls.__columns__.items())


class Coerced(dict):
    """Column values in storage form; ``fresh``: the columns whose arrays nobody else holds."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.fresh: set[str] = set()


class Component(Schema):
    """Base class of every component schema (see module docstring)."""


def is_component(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, Component) and obj is not Component
