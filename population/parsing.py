"""Population specs from plain dicts (TOML / JSON ``[population.*]`` tables), checked as a whole.

In a dict, ``dist`` names the kind (``categorical``, ``normal``, ``uniform``,
``constant``, ``conditional``); a bare string or number is a ``Constant``.
:func:`parse_population` parses every attribute and checks references and
cycles (:func:`resolve_order`); errors are
:class:`~socius.population.distributions.PopulationSpecError` naming
``population.<attribute>.<field>``.
"""
from __future__ import annotations

from typing import Any, Mapping

from .conditional import SPEC_TYPES, Conditional, Spec
from .distributions import Categorical, Constant, Normal, PopulationSpecError, Uniform, kind_of_value

_FIELDS = {
    "categorical": (Categorical, {"values"}, {"weights"}),
    "normal": (Normal, {"mean", "std"}, {"low", "high", "dtype"}),
    "uniform": (Uniform, {"low", "high"}, {"dtype"}),
    "constant": (Constant, {"value"}, set()),
    "conditional": (Conditional, {"on", "cases"}, {"default"}),
}


def parse_spec(d: Any, where: str = "population.?") -> Spec:
    """One distribution spec from a plain dict (``{"dist": "normal", "mean": 40, ...}``).

    A bare str/number/bool is a :class:`Constant`; an existing spec is returned as is.
    Errors are :class:`PopulationSpecError` naming ``where.field``.
    """
    if isinstance(d, SPEC_TYPES):
        return d
    if kind_of_value(d) != "?":
        return Constant(d)
    if not isinstance(d, Mapping):
        raise PopulationSpecError(where, f"must be a table with a 'dist' field, got {d!r}")
    kind = d.get("dist")
    if kind is None:
        raise PopulationSpecError(f"{where}.dist", f"missing (one of: {', '.join(_FIELDS)})")
    if kind not in _FIELDS:
        raise PopulationSpecError(f"{where}.dist", f"unknown distribution {kind!r} (one of: {', '.join(_FIELDS)})")
    cls, required, optional = _FIELDS[kind]
    extra = [k for k in d if k != "dist" and k not in required | optional]
    if extra:
        raise PopulationSpecError(f"{where}.{extra[0]}", f"unknown field for {kind} "
                                  f"(fields: {', '.join(sorted(required))}"
                                  f"{', ' + ', '.join(sorted(optional)) if optional else ''})")
    missing = sorted(required - set(d))
    if missing:
        raise PopulationSpecError(f"{where}.{missing[0]}", f"missing (required by {kind})")
    kw = {k: d[k] for k in required | optional if k in d}
    if kind == "conditional":
        cases = kw["cases"]
        if not isinstance(cases, Mapping) or not cases:
            raise PopulationSpecError(f"{where}.cases", f"must be a non-empty table of value = spec, got {cases!r}")
        kw["cases"] = {k: parse_spec(v, f"{where}.cases.{k}") for k, v in cases.items()}
        if kw.get("default") is not None:
            kw["default"] = parse_spec(kw["default"], f"{where}.default")
    try:
        return cls(**kw)
    except PopulationSpecError as e:
        raise e.under(where) from None


def parse_population(table: Mapping[str, Any], where: str = "population") -> dict[str, Spec]:
    """Every attribute's spec from a ``{attribute: spec-dict}`` table, checked as a whole
    (references and cycles, see :func:`resolve_order`). Keeps the declared order."""
    if not isinstance(table, Mapping):
        raise PopulationSpecError(where, f"must be a table of attribute = distribution, got {table!r}")
    specs = {}
    for name, d in table.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise PopulationSpecError(f"{where}.{name}", "attribute names must be identifiers (letters, digits, _)")
        specs[name] = parse_spec(d, f"{where}.{name}")
    resolve_order(specs, where=where)
    return specs


def _deps(spec) -> list[str]:
    if isinstance(spec, Conditional):
        out = [spec.on]
        for s in spec.branches():
            out += _deps(s)
        return out
    return []


def resolve_order(specs: Mapping[str, Spec], given: Mapping[str, Any] | None = None,
                  where: str = "population") -> list[str]:
    """Attribute names in an order where every ``Conditional`` comes after what it is on.

    Ties keep the declared order. An ``on`` naming neither an attribute nor a
    ``given`` column, or a cycle (``a`` on ``b`` on ``a``), raises naming them.
    """
    given = given or {}
    deps = {}
    for name, spec in specs.items():
        if not isinstance(spec, SPEC_TYPES):
            raise PopulationSpecError(f"{where}.{name}", f"must be a distribution spec, got {spec!r}")
        ds = []
        for d in _deps(spec):
            if d == name:
                raise PopulationSpecError(f"{where}.{name}.on", "an attribute cannot be conditional on itself")
            if d not in specs and d not in given:
                known = ", ".join(list(specs) + list(given))
                raise PopulationSpecError(f"{where}.{name}.on", f"unknown attribute {d!r} (attributes: {known})")
            if d in specs and d not in ds:
                ds.append(d)
        deps[name] = ds
    order, done, remaining = [], set(), list(specs)
    while remaining:
        ready = next((n for n in remaining if all(d in done for d in deps[n])), None)
        if ready is None:  # every remaining attribute waits on another: walk to a cycle
            path = [remaining[0]]
            while True:
                nxt = next(d for d in deps[path[-1]] if d not in done)
                if nxt in path:
                    cyc = path[path.index(nxt):] + [nxt]
                    raise PopulationSpecError(where, "conditional attributes form a cycle: " + " -> ".join(cyc))
                path.append(nxt)
        order.append(ready)
        done.add(ready)
        remaining.remove(ready)
    return order


__all__ = ["parse_population", "parse_spec", "resolve_order"]
