"""Naming what to change and whom: intervention targets and ``where`` conditions.

A **target** names a component column (``"Profile.occupation"``), a field of
a resource (``"MemoryParams.decay"``) or shared state (``"state.price"``,
``"state.group/2/mood"``); :func:`resolve_target` finds it in a world. A
component or resource is named by its class name, qualified name or stored
name (an ambiguous short name is refused).

A **condition** selects entities: ``"<Component>.<column> <op> <literal>"``
with op in ``== != < <= > >= in`` (and ``not in``), the literal a Python
literal (quote strings), or a predicate ``f(world, ids) -> [m] bool`` over
whole columns. :func:`find_agents` applies a list of them (all must hold) as
whole-column comparisons, never per agent.
"""
from __future__ import annotations

import ast
import re

import numpy as np

from socius.components.profile import Profile
from socius.ecs import STR, world_of

from .environment import InterventionError


def _component_named(world, name: str):
    hits = [c for c in world.component_types()
            if name in (c.__qualname__, c.__name__, getattr(c, "__component_name__", ""))]
    if len(hits) > 1:
        raise InterventionError(f"component name {name!r} is ambiguous: "
                                f"{', '.join(c.__component_name__ for c in hits)} (use the full name)")
    return hits[0] if hits else None


def _resource_named(world, name: str):
    hits = [r for r in world.resources() if name in (r.__qualname__, r.__name__)]
    return hits[0] if len(hits) == 1 else None


def split_target(target: str) -> tuple[str, str]:
    """``(name, field)`` of ``"Name.field"``; raises :class:`InterventionError` for anything else."""
    if not isinstance(target, str) or "." not in target:
        raise InterventionError(f"target must look like 'Component.column', 'Resource.field' or 'state.key', "
                                f"got {target!r}")
    head, _, tail = target.partition(".")
    if not head or not tail:
        raise InterventionError(f"target {target!r}: expected 'Name.field'")
    return head, tail


def resolve_target(ctx, target: str):
    """``("state", key)``, ``("component", C, column)`` or ``("resource", R, field)`` for ``target``
    (name resolution only: it looks at the world's types and fetches no resource)."""
    world = world_of(ctx)
    head, tail = split_target(target)
    if head == "state":
        return ("state", tail)
    comp = _component_named(world, head)
    if comp is not None:
        if tail not in comp.columns():
            raise InterventionError(f"target {target!r}: {comp.__qualname__} has no column {tail!r} "
                                    f"(columns: {', '.join(comp.columns())})")
        return ("component", comp, tail)
    res = _resource_named(world, head)
    if res is not None:
        if not hasattr(world.resource(res), tail):
            raise InterventionError(f"target {target!r}: resource {res.__qualname__} has no field {tail!r}")
        return ("resource", res, tail)
    raise InterventionError(f"target {target!r}: no component or resource named {head!r} in this world")


_COND = re.compile(r"^\s*([A-Za-z_][\w.]*)\.(\w+)\s*(==|!=|>=|<=|>|<|not in|in)\s*(.+?)\s*$")
_OPS = {"==": np.equal, "!=": np.not_equal, ">=": np.greater_equal, "<=": np.less_equal,
        ">": np.greater, "<": np.less}


def is_condition(text) -> bool:
    """Whether ``text`` is a string condition ``"<Component>.<column> <op> <literal>"`` (syntax only)."""
    return isinstance(text, str) and _COND.match(text) is not None


def find_agents(ctx, where, ids=None) -> np.ndarray:
    """``[m] int64`` sorted IDs of the entities meeting every condition in ``where``, optionally
    within ``ids``. A condition is a string (see module doc) or a predicate ``f(world, ids) -> [m] bool``
    over whole columns (candidates: ``ids``, else the agents with a :class:`Profile`). Uses no resource."""
    world = world_of(ctx)
    conds = [where] if isinstance(where, str) or callable(where) else list(where)
    out = None if ids is None else np.unique(np.asarray(ids, dtype=np.int64))
    for cond in conds:
        if callable(cond):  # a predicate over whole columns: cond(world, ids) -> [m] bool
            cand = world.ids_of(Profile) if out is None else out
            mask = np.asarray(cond(world, cand))
            if mask.dtype != bool or mask.shape != cand.shape:
                raise InterventionError(f"where predicate must return a bool mask of shape {cand.shape}, "
                                        f"got {mask.dtype} {mask.shape}")
            out = cand[mask]
            continue
        m = _COND.match(cond) if isinstance(cond, str) else None
        if m is None:
            raise InterventionError(f"where {cond!r}: expected '<Component>.<column> <op> <literal>' "
                                    "with op in == != < <= > >= in")
        cname, col, op, lit = m.groups()
        comp = _component_named(world, cname)
        if comp is None:
            raise InterventionError(f"where {cond!r}: no component named {cname!r} in this world")
        if col not in comp.columns() or comp.column(col).kind not in ("scalar", "string"):
            raise InterventionError(f"where {cond!r}: {comp.__qualname__} has no scalar or string column {col!r}")
        try:
            value = ast.literal_eval(lit)
        except (ValueError, SyntaxError):
            raise InterventionError(f"where {cond!r}: {lit!r} is not a literal (quote strings)") from None
        holders = world.ids_of(comp)
        data = world.get(comp, col)
        try:
            if op in ("in", "not in"):
                if not isinstance(value, (list, tuple, set)):
                    raise InterventionError(f"where {cond!r}: 'in' needs a list")
                vals = np.asarray(list(value), dtype=STR if data.dtype == STR else None)
                mask = np.isin(data, vals)
                mask = ~mask if op == "not in" else mask
            else:
                mask = _OPS[op](data, np.asarray(value, dtype=STR) if data.dtype == STR else value)
        except (TypeError, np.exceptions.DTypePromotionError) as exc:  # e.g. a number against a string column
            raise InterventionError(f"where {cond!r}: cannot compare {comp.__qualname__}.{col} "
                                    f"({data.dtype}) with {value!r}: {exc}") from None
        sel = holders[np.asarray(mask, dtype=bool)]
        out = sel if out is None else np.intersect1d(out, sel, assume_unique=True)
    return np.zeros(0, np.int64) if out is None else out


__all__ = ["find_agents", "is_condition", "resolve_target", "split_target"]
