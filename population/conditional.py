"""Conditional attributes: a different distribution for each value of another attribute.

``Conditional(on, cases, default=None)`` draws from the spec of
``cases[row's on-value]``, else ``default``. Every distribution uses one
uniform draw per agent, so the branches of a conditional share that draw (an
agent keeps its quantile when its condition changes — common random numbers).
``Spec`` is any spec, conditional or not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .distributions import Categorical, Constant, Normal, PopulationSpecError, Uniform, kind_of_value


@dataclass(frozen=True)
class Conditional:
    """The spec of ``cases[value of attribute on]`` per agent, else ``default``.

    ``cases`` may be given as a dict; it is stored as a tuple of ``(value, spec)``
    pairs (frozen and hashable). Keys are matched against the ``on`` column:
    a string key ``"3"`` matches the int 3 (TOML table keys are always strings).
    Without a ``default`` an unmatched value is an error at sampling time.
    """

    on: str
    cases: Any
    default: Any = None

    def __post_init__(self):
        if not isinstance(self.on, str) or not self.on:
            raise PopulationSpecError("on", f"must name an attribute, got {self.on!r}")
        cases = self.cases
        if isinstance(cases, Mapping):
            cases = tuple(cases.items())
        if not isinstance(cases, tuple) or not cases or not all(isinstance(c, tuple) and len(c) == 2 for c in cases):
            raise PopulationSpecError("cases", f"must be a non-empty table of value = spec, got {self.cases!r}")
        for key, spec in cases:
            if kind_of_value(key) == "?":
                raise PopulationSpecError("cases", f"keys must be strings, numbers or booleans, got {key!r}")
            if not isinstance(spec, SPEC_TYPES):
                raise PopulationSpecError(f"cases.{key}", f"must be a distribution spec, got {spec!r}")
        if self.default is not None and not isinstance(self.default, SPEC_TYPES):
            raise PopulationSpecError("default", f"must be a distribution spec, got {self.default!r}")
        object.__setattr__(self, "cases", cases)
        self.kind  # raises when the branches mix strings and numbers

    @property
    def case_map(self) -> dict:
        return dict(self.cases)

    @property
    def kind(self) -> str:
        branches = [(f"cases.{k}", s) for k, s in self.cases]
        if self.default is not None:
            branches.append(("default", self.default))
        kinds = {s.kind for _, s in branches}
        if len(kinds) == 1:
            return kinds.pop()
        if kinds == {"int", "float"}:
            return "float"
        first = branches[0]
        other = next(b for b in branches if b[1].kind != first[1].kind)
        raise PopulationSpecError(other[0], f"gives {other[1].kind} values but {first[0]} gives "
                                            f"{first[1].kind}; all branches must give one kind")

    def branches(self):
        yield from (s for _, s in self.cases)
        if self.default is not None:
            yield self.default


Spec = Categorical | Normal | Uniform | Constant | Conditional
SPEC_TYPES = (Categorical, Normal, Uniform, Constant, Conditional)


__all__ = ["Conditional", "SPEC_TYPES", "Spec"]
