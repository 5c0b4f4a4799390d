"""Vectorised string templates: attribute columns rendered into one text per agent.

:func:`render_template` fills a ``str.format``-style template row by row from
columns with numpy string additions (never per-row Python formatting);
:func:`attributes_json` writes each row's attributes as a one-line JSON
object. Both are pure functions of a row's values.
"""
from __future__ import annotations

import string
from typing import Any, Mapping

import numpy as np

from socius.ecs import STR


def as_str(col: np.ndarray) -> np.ndarray:
    """``col`` as a ``StringDType`` array (object columns must hold str)."""
    col = np.asarray(col)
    if col.dtype == STR:
        return col
    if col.dtype.kind == "O" and not all(isinstance(v, str) for v in col.tolist()):
        raise TypeError("object columns must hold str")
    return col.astype(STR)


def _json_value(col: np.ndarray) -> np.ndarray:
    col = np.asarray(col)
    if col.dtype == STR or col.dtype.kind in "UTO":
        s = as_str(col)
        for a, b in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
            s = np.strings.replace(s, a, b)
        return np.strings.add(np.strings.add('"', s), '"')
    if col.dtype.kind == "b":
        return np.where(col, "true", "false").astype(STR)
    s = col.astype(STR)
    if col.dtype.kind == "f":
        s = np.where(np.isfinite(col), s, "null").astype(STR)
    return s


def attributes_json(columns: Mapping[str, np.ndarray], names=None) -> np.ndarray:
    """``[n] StringDType``: each row's attributes as a one-line JSON object,
    ``{"age": 34, "education": "Ph.D."}`` (keys in ``names`` order, default: all)."""
    names = list(columns) if names is None else list(names)
    if not names:
        raise ValueError("attributes_json: no attributes")
    n = common_length({k: columns[k] for k in names})
    out = np.full(n, "{", dtype=STR)
    for i, k in enumerate(names):
        out = np.strings.add(out, f'{", " if i else ""}"{k}": ')
        out = np.strings.add(out, _json_value(columns[k]))
    return np.strings.add(out, "}")


def common_length(cols: Mapping[str, Any]) -> int:
    """The row count shared by the 1-D columns of ``cols`` (scalars are skipped); raises if they differ."""
    n = None
    for k, v in cols.items():
        if np.ndim(v) == 0:
            continue
        if np.ndim(v) != 1:
            raise ValueError(f"template field {k!r}: expected a 1-D column, got shape {np.shape(v)}")
        if n is None:
            n = len(v)
        elif len(v) != n:
            raise ValueError(f"template field {k!r}: has {len(v)} rows, other columns have {n}")
    if n is None:
        raise ValueError("template: no column gives the number of rows")
    return n


def render_template(template: str, fields: Mapping[str, Any], n: int | None = None) -> np.ndarray:
    """``[n] StringDType``: ``template`` (``str.format`` syntax, literal braces doubled)
    filled row by row from ``fields`` — 1-D columns, or scalars shared by every row —
    with numpy string additions, never per-row Python formatting.

    Numbers are written as ``ndarray.astype(StringDType)`` writes them (``34``, ``35.5``).
    Format specs, conversions and ``{a.b}`` / ``{a[0]}`` lookups are refused.
    """
    parts = []
    for literal, name, spec, conv in string.Formatter().parse(template):
        if name is not None:
            if name == "" or not name.isidentifier():
                raise ValueError(f"template field {{{name}}}: only named fields like {{age}} are supported")
            if spec or conv:
                raise ValueError(f"template field {{{name}}}: format specs and conversions are not supported; "
                                 "round or format the column before rendering")
            if name not in fields:
                raise KeyError(f"template field {{{name}}}: no such column (columns: {', '.join(fields)})")
        parts.append((literal, name))
    used = {nm: fields[nm] for _, nm in parts if nm is not None}
    if n is None:
        n = common_length(used) if any(np.ndim(v) for v in used.values()) else None
        if n is None:
            raise ValueError("render_template: pass n when every field is a scalar")
    out = np.full(n, "", dtype=STR)
    for literal, name in parts:
        if literal:
            out = np.strings.add(out, literal)
        if name is not None:
            v = fields[name]
            if np.ndim(v) == 0:
                out = np.strings.add(out, str(v.item() if isinstance(v, np.generic) else v))
            else:
                if len(v) != n:
                    raise ValueError(f"template field {{{name}}}: has {len(v)} rows, expected {n}")
                out = np.strings.add(out, as_str(v))
    return out


__all__ = ["attributes_json", "common_length", "render_template"]
