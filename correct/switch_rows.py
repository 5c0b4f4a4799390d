"""Adapter switches as data: one :class:`AdapterSwitch` per switch, and :func:`parse_switches`, which checks
config tables (``[[adapter_switches]]``) and names the bad field. :mod:`.switch` schedules and applies them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from socius.errors import ConfigError
from socius.systems.targets import is_condition

__all__ = ["AdapterSwitch", "parse_switches"]

_FIELDS = ("tick", "adapter", "path", "where", "ids", "model")


@dataclass(frozen=True)
class AdapterSwitch:
    """One switch: at ``tick``, agents selected by ``where``/``ids`` (and ``model``) use ``adapter``."""

    tick: int
    adapter: str
    path: str = ""
    where: Any = None
    ids: tuple | None = None
    model: str | None = None

    def row(self) -> dict:
        where = self.where if self.where is None or isinstance(self.where, str) else list(self.where)
        return {"tick": self.tick, "adapter": self.adapter, "path": self.path, "where": where,
                "ids": None if self.ids is None else [int(i) for i in self.ids], "model": self.model, "status": ""}


def parse_switches(raw, where: str = "adapter_switches") -> list[AdapterSwitch]:
    """Switches from config tables (``[[adapter_switches]]``: ``tick``, ``adapter``, ``path``, optional
    ``where``, ``ids``, ``model``) or :class:`AdapterSwitch` values; errors raise ``ConfigError``
    naming ``<where>[i].<field>``."""
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        raise ConfigError(f"{where}: expected a list of tables, got {type(raw).__name__}")
    out = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if isinstance(item, AdapterSwitch):
            item = {k: getattr(item, k) for k in _FIELDS}
        if not isinstance(item, Mapping):
            raise ConfigError(f"{at}: expected a table with tick, adapter, path")
        unknown = set(item) - {*_FIELDS, "status"}
        if unknown:
            raise ConfigError(f"{at}.{sorted(unknown)[0]}: unknown field (use {', '.join(_FIELDS)})")
        tick, adapter, path = item.get("tick"), item.get("adapter"), item.get("path") or ""
        if isinstance(tick, bool) or not isinstance(tick, int) or tick < 0:
            raise ConfigError(f"{at}.tick: must be an int >= 0, got {tick!r}")
        if not isinstance(adapter, str) or adapter != adapter.strip():
            raise ConfigError(f"{at}.adapter: must be an adapter name (\"\" = the base model), got {adapter!r}")
        if not isinstance(path, (str, os.PathLike)) or bool(adapter) != bool(str(path)):
            raise ConfigError(f"{at}.path: an adapter needs its folder (and the base model, \"\", none), "
                              f"got adapter {adapter!r} with path {path!r}")
        w = item.get("where")
        conds = [w] if isinstance(w, str) else w
        if w is not None and (not isinstance(conds, (list, tuple)) or not all(is_condition(c) for c in conds)):
            raise ConfigError(f"{at}.where: expected '<Component>.<column> <op> <literal>' or a list of them, "
                              f"got {w!r}")
        ids = item.get("ids")
        if ids is not None and (not isinstance(ids, (list, tuple)) or
                                not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in ids)):
            raise ConfigError(f"{at}.ids: expected a list of entity IDs, got {ids!r}")
        model = item.get("model")
        if model is not None and not isinstance(model, str):
            raise ConfigError(f"{at}.model: expected a model name, got {model!r}")
        out.append(AdapterSwitch(tick, adapter, str(path), w if w is None or isinstance(w, str) else tuple(w),
                                 None if ids is None else tuple(int(x) for x in ids), model))
    return out
