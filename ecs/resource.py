"""Resources: typed singletons in the world (parameters, environment state, engines).

Any object can be a resource; it is keyed by its type::

    world.insert_resource(Params(p=2/3))
    world.resource(Params).p          # raises ResourceError if absent
    world.get_resource(Params)        # None if absent

A resource is saved in snapshots and counted in the state hash only if it
says so: subclass :class:`Resource` (a dataclass base whose fields may be
bool/int/float/str, lists/dicts of those, or numpy arrays). Engines, caches
and open files are plain resources and are never saved.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import numpy as np

from .component import STR
from .errors import SnapshotError


class Resource:
    """Base for snapshot-able resources. Subclasses are made dataclasses automatically."""

    __snapshot__: ClassVar[bool] = True
    __resource_name__: ClassVar[str]

    def __init_subclass__(cls, name: str | None = None, **kw):
        super().__init_subclass__(**kw)
        if name is not None:
            cls.__resource_name__ = name
        if "__resource_name__" not in vars(cls):
            cls.__resource_name__ = f"{cls.__module__}.{cls.__qualname__}"
        if not dataclasses.is_dataclass(cls) or "__dataclass_fields__" not in vars(cls):
            dataclasses.dataclass(cls)

    def to_state(self) -> dict[str, Any]:
        """``{field: value}`` for the snapshot; arrays stay arrays."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Resource":
        return cls(**state)


def resource_name(kind: type) -> str:
    return getattr(kind, "__resource_name__", f"{kind.__module__}.{kind.__qualname__}")


def is_snapshot_resource(obj) -> bool:
    return isinstance(obj, Resource) and type(obj).__snapshot__


def _json_safe(v) -> bool:
    """True if ``v`` comes back from JSON as the same types (None, bool, int, float, str, list, str-keyed dict)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if type(v) is list:
        return all(_json_safe(x) for x in v)
    if type(v) is dict:
        return all(type(k) is str and _json_safe(x) for k, x in v.items())
    return False


def encode_state(state: dict[str, Any]) -> list[dict]:
    """Canonical field records: arrays as little-endian bytes + dtype + shape, the rest as JSON."""
    out = []
    for name in sorted(state):
        v = state[name]
        if isinstance(v, np.ndarray):
            if v.dtype.kind in "OTU":
                out.append({"field": name, "kind": "strarray", "json": json.dumps(v.astype(object).tolist()),
                            "shape": list(v.shape)})
                continue
            le = np.ascontiguousarray(v.astype(v.dtype.newbyteorder("<"), copy=False))
            out.append({"field": name, "kind": "array", "dtype": le.dtype.str, "shape": list(v.shape),
                        "bytes": le.tobytes()})
        else:
            if isinstance(v, np.generic):
                v = v.item()
            try:
                if not _json_safe(v):  # tuples, non-str dict keys, sets: would come back different
                    raise TypeError
                out.append({"field": name, "kind": "json", "json": json.dumps(v, sort_keys=True)})
            except (TypeError, ValueError):
                raise SnapshotError(f"resource field {name!r} of type {type(v).__name__} cannot be saved; "
                                    "use numbers, strings, lists, str-keyed dicts or numpy arrays (a value must "
                                    "survive a JSON round trip unchanged, so no tuples or non-str keys)") from None
    return out


def decode_state(records: list[dict]) -> dict[str, Any]:
    state = {}
    for r in records:
        if r["kind"] == "array":
            state[r["field"]] = np.frombuffer(r["bytes"], dtype=np.dtype(r["dtype"])).reshape(r["shape"]).copy()
        elif r["kind"] == "strarray":
            state[r["field"]] = np.array(json.loads(r["json"]), dtype=STR).reshape(r["shape"])
        else:
            state[r["field"]] = json.loads(r["json"])
    return state
