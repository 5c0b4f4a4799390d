"""The distributions an attribute can be drawn from, as frozen, validated specs.

``Categorical(values, weights=None)``  proportions over values (weights are normalised;
                                        none = equal); str values give a StringDType
                                        column, ints int64, other numbers float64
``Normal(mean, std, low=None, high=None, dtype="float")``
                                        a normal, truncated to ``[low, high]`` when bounded
``Uniform(low, high, dtype="float")``   float: ``[low, high)``; int: ``low..high`` inclusive
``Constant(value)``                     the same value for everyone

Integer normals (``dtype="int"``) are the continuous normal truncated to
``[ceil(low) - 0.5, floor(high) + 0.5]`` and rounded: ``P(k)`` is the normal
mass of ``[k - 0.5, k + 0.5]``, renormalised. A spec's ``kind`` ("str",
"int", "float", "bool") is the kind of column it gives. Conditionals are in
:mod:`socius.population.conditional`. A bad spec raises
:class:`PopulationSpecError` naming the field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .normal import MIN_MASS, normal_mass


class PopulationSpecError(ValueError):
    """A population spec that cannot be sampled; ``path`` names attribute and field,
    e.g. ``population.age.std: must be > 0, got -3``."""

    def __init__(self, path: str, problem: str):
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}" if path else problem)

    def under(self, prefix: str) -> "PopulationSpecError":
        """The same error with ``prefix.`` put in front of its path."""
        return PopulationSpecError(f"{prefix}.{self.path}" if self.path else prefix, self.problem)


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def number(name: str, x, *, optional: bool = False) -> float | None:
    """``x`` as a float (``None`` passes when ``optional``); raises naming ``name`` otherwise."""
    if x is None and optional:
        return None
    if not _is_number(x):
        raise PopulationSpecError(name, f"must be a number, got {x!r}")
    x = float(x)
    if math.isnan(x):
        raise PopulationSpecError(name, "must be a number, got nan")
    return x


def dtype_name(x) -> str:
    """``x`` if it is ``"float"`` or ``"int"``; raises naming ``dtype`` otherwise."""
    if x not in ("float", "int"):
        raise PopulationSpecError("dtype", f'must be "float" or "int", got {x!r}')
    return x


def kind_of_value(v) -> str:
    """The kind of a plain value: ``"bool"``, ``"int"``, ``"float"``, ``"str"``, or ``"?"``."""
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, np.integer)):
        return "int"
    if isinstance(v, (float, np.floating)):
        return "float"
    if isinstance(v, str):
        return "str"
    return "?"


@dataclass(frozen=True)
class Categorical:
    """Proportions over ``values``; ``weights`` (normalised on construction) default to equal."""

    values: tuple
    weights: tuple | None = None

    def __post_init__(self):
        if isinstance(self.values, (str, bytes)) or not isinstance(self.values, (list, tuple, np.ndarray)):
            raise PopulationSpecError("values", f"must be a non-empty list, got {self.values!r}")
        values = tuple(v.item() if isinstance(v, np.generic) else v for v in self.values)
        if not values:
            raise PopulationSpecError("values", "must be a non-empty list")
        kinds = {kind_of_value(v) for v in values}
        if "?" in kinds:
            bad = next(v for v in values if kind_of_value(v) == "?")
            raise PopulationSpecError("values", f"must be strings, numbers or booleans, got {bad!r}")
        if len(kinds) > 1 and kinds != {"int", "float"}:
            raise PopulationSpecError("values", f"mixes kinds ({', '.join(sorted(kinds))}); use one kind")
        if "float" in kinds and any(math.isnan(float(v)) for v in values):
            raise PopulationSpecError("values", "must not hold nan")
        if len(set(values)) != len(values):
            dup = next(v for i, v in enumerate(values) if v in values[:i])
            raise PopulationSpecError("values", f"holds {dup!r} twice")
        if self.weights is None:
            weights = (1.0 / len(values),) * len(values)
        else:
            if isinstance(self.weights, (str, bytes)) or not isinstance(self.weights, (list, tuple, np.ndarray)):
                raise PopulationSpecError("weights", f"must be a list of numbers, got {self.weights!r}")
            w = list(self.weights)
            if len(w) != len(values):
                raise PopulationSpecError("weights", f"has {len(w)} entries for {len(values)} values")
            w = [number(f"weights[{i}]", x) for i, x in enumerate(w)]
            if any(x < 0 or math.isinf(x) for x in w):
                raise PopulationSpecError("weights", f"must be finite and >= 0, got {self.weights!r}")
            total = math.fsum(w)
            if total <= 0:
                raise PopulationSpecError("weights", "must not all be 0")
            weights = tuple(x / total for x in w)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "weights", weights)

    @property
    def kind(self) -> str:
        kinds = {kind_of_value(v) for v in self.values}
        return "float" if "float" in kinds else kinds.pop()


@dataclass(frozen=True)
class Normal:
    """A normal ``N(mean, std²)``, truncated to ``[low, high]`` where given; ``dtype`` "float" or "int"."""

    mean: float
    std: float
    low: float | None = None
    high: float | None = None
    dtype: str = "float"

    def __post_init__(self):
        mean, std = number("mean", self.mean), number("std", self.std)
        low, high = number("low", self.low, optional=True), number("high", self.high, optional=True)
        if math.isinf(mean):
            raise PopulationSpecError("mean", f"must be finite, got {self.mean!r}")
        if low is not None and math.isinf(low):
            if low > 0:
                raise PopulationSpecError("low", "must not be +inf")
            low = None
        if high is not None and math.isinf(high):
            if high < 0:
                raise PopulationSpecError("high", "must not be -inf")
            high = None
        if not (std > 0) or math.isinf(std):
            raise PopulationSpecError("std", f"must be > 0 and finite, got {self.std!r}")
        dtype = dtype_name(self.dtype)
        if low is not None and high is not None and not low < high:
            raise PopulationSpecError("high", f"must be > low ({low:g}), got {high:g}")
        if dtype == "int":
            if low is not None and high is not None and math.ceil(low) > math.floor(high):
                raise PopulationSpecError("high", f"no integer lies in [{low:g}, {high:g}]")
        a, b = self._standard_bounds(mean, std, low, high, dtype)
        if normal_mass(a, b) < MIN_MASS:
            raise PopulationSpecError("low" if a > 0 else "high",
                                      f"the bounds [{low}, {high}] hold (almost) no probability mass of "
                                      f"N({mean:g}, {std:g}²) in double precision")
        for k, v in (("mean", mean), ("std", std), ("low", low), ("high", high), ("dtype", dtype)):
            object.__setattr__(self, k, v)

    @staticmethod
    def _standard_bounds(mean, std, low, high, dtype):
        if dtype == "int":
            low = None if low is None else math.ceil(low) - 0.5
            high = None if high is None else math.floor(high) + 0.5
        a = -math.inf if low is None else (low - mean) / std
        b = math.inf if high is None else (high - mean) / std
        return a, b

    @property
    def kind(self) -> str:
        return self.dtype


@dataclass(frozen=True)
class Uniform:
    """Uniform on ``[low, high)`` (float) or on the integers ``low..high`` inclusive (int)."""

    low: float
    high: float
    dtype: str = "float"

    def __post_init__(self):
        low, high, dtype = number("low", self.low), number("high", self.high), dtype_name(self.dtype)
        if math.isinf(low) or math.isinf(high):
            raise PopulationSpecError("low" if math.isinf(low) else "high", "must be finite")
        if dtype == "int":
            for k, v in (("low", low), ("high", high)):
                if v != int(v):
                    raise PopulationSpecError(k, f'must be an integer when dtype = "int", got {v:g}')
            if high < low:
                raise PopulationSpecError("high", f"must be >= low ({low:g}), got {high:g}")
            low, high = int(low), int(high)
        elif not high > low:
            raise PopulationSpecError("high", f"must be > low ({low:g}), got {high:g}")
        for k, v in (("low", low), ("high", high), ("dtype", dtype)):
            object.__setattr__(self, k, v)

    @property
    def kind(self) -> str:
        return self.dtype


@dataclass(frozen=True)
class Constant:
    """The same ``value`` (str, int, float or bool) for every agent."""

    value: Any

    def __post_init__(self):
        v = self.value.item() if isinstance(self.value, np.generic) else self.value
        if kind_of_value(v) == "?":
            raise PopulationSpecError("value", f"must be a string, number or boolean, got {self.value!r}")
        object.__setattr__(self, "value", v)

    @property
    def kind(self) -> str:
        return kind_of_value(self.value)


__all__ = ["Categorical", "Constant", "Normal", "PopulationSpecError", "Uniform", "kind_of_value"]
