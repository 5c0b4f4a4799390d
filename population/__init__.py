"""Population generation: declared per-attribute distributions, sampled as columns.

A scenario declares one distribution per attribute (TOML/JSON ``[population.*]``
tables or the dataclasses below) and :func:`sample_population` turns them into
one column per attribute for a whole population at once::

    specs = parse_population({
        "education": {"dist": "categorical",
                      "values": ["Elementary School", "High School", "Bachelor", "Master", "Ph.D."]},
        "age": {"dist": "normal", "mean": 40, "std": 12, "low": 18, "high": 90, "dtype": "int"},
        "occupation": {"dist": "conditional", "on": "education",
                       "cases": {"Ph.D.": {"dist": "categorical", "values": ["professor", "economist"],
                                           "weights": [1, 3]}},
                       "default": {"dist": "categorical", "values": ["artist", "writer", "athlete"]}},
    })
    columns = sample_population(specs, ids, seed=7)   # {"education": [n] StringDType, "age": [n] int64, ...}

Distributions
-------------
``Categorical(values, weights=None)``  proportions over values (weights are normalised;
                                        none = equal); str values give a StringDType
                                        column, ints int64, other numbers float64
``Normal(mean, std, low=None, high=None, dtype="float")``
                                        a normal, truncated to ``[low, high]`` when bounded
``Uniform(low, high, dtype="float")``   float: ``[low, high)``; int: ``low..high`` inclusive
``Constant(value)``                     the same value for everyone
``Conditional(on, cases, default=None)``
                                        the spec of ``cases[row's on-value]``, else ``default``

In a dict, ``dist`` names the kind; a bare string or number is a ``Constant``.

Randomness and identity
-----------------------
Attribute ``a`` of entity ``e`` is drawn from ``EntityRng(seed, "population:a", 0)``
keyed by ``e`` alone: an agent gets the same attributes whether it is sampled
alone, in a shuffled subset or with the full population, on any rank. Every
distribution uses one uniform draw per agent, so the branches of a
``Conditional`` share that draw (an agent keeps its quantile when its
condition changes — common random numbers).

Proportions are sampled, not quota'd: with ``n`` agents a category of weight
``w`` gets ``n·w ± O(sqrt(n))``. Exact quotas (AgentScope shuffles exact counts)
would make one agent's attributes depend on how many others there are.

Truncated normals
-----------------
Sampled by inverse-CDF truncation, exact within the bounds and free of
rejection loops: ``u`` uniform on (0, 1) maps to
``x = mean + std * Phi^-1(Phi(a) + u * (Phi(b) - Phi(a)))``, with ``a, b`` the
standardised bounds. ``Phi`` at the two scalar bounds comes from ``math.erfc``;
``Phi^-1`` is Acklam's rational approximation (relative error < 1.2e-9), written
here in numpy (no scipy). Upper-tail probabilities are carried as
complements ``1 - p`` computed directly, so bounds many standard deviations out
on either side keep full precision. Integer normals (``dtype="int"``) are the
continuous normal truncated to ``[ceil(low) - 0.5, floor(high) + 0.5]`` and
rounded: ``P(k)`` is the normal mass of ``[k - 0.5, k + 0.5]``, renormalised.

LLM-written backgrounds
-----------------------
:func:`background_prompts` renders one meta prompt per agent (AgentScope
§3.3, App. B: sampled attributes as JSON filled into a meta prompt) with numpy
string operations; identical attribute rows give identical prompts, so a
decision pipeline can send each distinct prompt once with ``n`` = its count.
"""
from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from socius.ecs import EntityRng

STR = np.dtypes.StringDType()

__all__ = [
    "BACKGROUND_META_PROMPT", "BACKGROUND_STOP", "Categorical", "Conditional", "Constant", "Normal",
    "PopulationSpecError", "Spec", "Uniform", "attributes_json", "background_prompts", "ndtri",
    "parse_population", "parse_spec", "render_template", "resolve_order", "sample_population",
]


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


def _number(name: str, x, *, optional: bool = False) -> float | None:
    if x is None and optional:
        return None
    if not _is_number(x):
        raise PopulationSpecError(name, f"must be a number, got {x!r}")
    x = float(x)
    if math.isnan(x):
        raise PopulationSpecError(name, "must be a number, got nan")
    return x


def _dtype(x) -> str:
    if x not in ("float", "int"):
        raise PopulationSpecError("dtype", f'must be "float" or "int", got {x!r}')
    return x


def _kind_of_value(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, np.integer)):
        return "int"
    if isinstance(v, (float, np.floating)):
        return "float"
    if isinstance(v, str):
        return "str"
    return "?"


_NP_DTYPE = {"str": STR, "int": np.dtype(np.int64), "float": np.dtype(np.float64), "bool": np.dtype(np.bool_)}


# ---------------------------------------------------------------------------------------------
# specs


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
        kinds = {_kind_of_value(v) for v in values}
        if "?" in kinds:
            bad = next(v for v in values if _kind_of_value(v) == "?")
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
            w = [_number(f"weights[{i}]", x) for i, x in enumerate(w)]
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
        kinds = {_kind_of_value(v) for v in self.values}
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
        mean, std = _number("mean", self.mean), _number("std", self.std)
        low, high = _number("low", self.low, optional=True), _number("high", self.high, optional=True)
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
        dtype = _dtype(self.dtype)
        if low is not None and high is not None and not low < high:
            raise PopulationSpecError("high", f"must be > low ({low:g}), got {high:g}")
        if dtype == "int":
            if low is not None and high is not None and math.ceil(low) > math.floor(high):
                raise PopulationSpecError("high", f"no integer lies in [{low:g}, {high:g}]")
        a, b = self._standard_bounds(mean, std, low, high, dtype)
        if _mass(a, b) < _MIN_MASS:
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
        low, high, dtype = _number("low", self.low), _number("high", self.high), _dtype(self.dtype)
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
        if _kind_of_value(v) == "?":
            raise PopulationSpecError("value", f"must be a string, number or boolean, got {self.value!r}")
        object.__setattr__(self, "value", v)

    @property
    def kind(self) -> str:
        return _kind_of_value(self.value)


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
            if _kind_of_value(key) == "?":
                raise PopulationSpecError("cases", f"keys must be strings, numbers or booleans, got {key!r}")
            if not isinstance(spec, _SPEC_TYPES):
                raise PopulationSpecError(f"cases.{key}", f"must be a distribution spec, got {spec!r}")
        if self.default is not None and not isinstance(self.default, _SPEC_TYPES):
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
_SPEC_TYPES = (Categorical, Normal, Uniform, Constant, Conditional)


# ---------------------------------------------------------------------------------------------
# parsing plain dicts (TOML / JSON)

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
    if isinstance(d, _SPEC_TYPES):
        return d
    if _kind_of_value(d) != "?":
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
        if not isinstance(spec, _SPEC_TYPES):
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


# ---------------------------------------------------------------------------------------------
# sampling

# Acklam's rational approximation of the standard normal quantile.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)
_P_LOW = 0.02425
#: Bounds holding less normal mass than this are refused (keeps every probability > 0 in double).
_MIN_MASS = 1e-280


def _tail(p):
    """Acklam's tail branch: the quantile of lower-tail probability ``p`` (0 < p < _P_LOW)."""
    q = np.sqrt(-2.0 * np.log(p))
    num = ((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]
    den = (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0
    return num / den


def ndtri(p, q=None) -> np.ndarray:
    """The standard normal quantile ``Phi^-1(p)``, vectorised (Acklam; relative error < 1.2e-9).

    ``q`` is ``1 - p`` when the caller has it more precisely than ``1 - p`` would be
    (upper tail); omitted, it is computed. ``p`` = 0 / 1 give -inf / +inf.
    """
    p = np.asarray(p, dtype=np.float64)
    q = 1.0 - p if q is None else np.asarray(q, dtype=np.float64)
    out = np.empty(np.broadcast(p, q).shape)
    p, q = np.broadcast_to(p, out.shape), np.broadcast_to(q, out.shape)
    lo, hi = p < _P_LOW, q < _P_LOW
    mid = ~(lo | hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[lo] = _tail(p[lo])
        out[hi & ~lo] = -_tail(q[hi & ~lo])
    out[p <= 0] = -np.inf
    out[q <= 0] = np.inf
    r0 = p[mid] - 0.5
    r = r0 * r0
    out[mid] = ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * r0
                / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))
    return out


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _phi_c(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _mass(a: float, b: float) -> float:
    return _phi_c(a) - _phi_c(b) if a > 0 else _phi(b) - _phi(a)


def _open_unit(rng: EntityRng, ids: np.ndarray) -> np.ndarray:
    """Uniforms on the open interval (0, 1): the kernel's [0, 1) draw moved by half a step."""
    return rng.random(ids) + 2.0 ** -54


def _sample_normal(spec: Normal, ids, rng) -> np.ndarray:
    a, b = Normal._standard_bounds(spec.mean, spec.std, spec.low, spec.high, spec.dtype)
    u = _open_unit(rng, ids)
    mass = _mass(a, b)
    # p = Phi(a) + u·mass and its complement q = 1 - p, each from the side where it is precise
    p = _phi(a) + u * mass
    q = _phi_c(a) - u * mass
    z = ndtri(p, q)
    x = spec.mean + spec.std * z
    if spec.dtype == "int":
        x = np.rint(x)
        if spec.low is not None:
            x = np.maximum(x, math.ceil(spec.low))
        if spec.high is not None:
            x = np.minimum(x, math.floor(spec.high))
        return x.astype(np.int64)
    if spec.low is not None or spec.high is not None:
        x = np.clip(x, spec.low if spec.low is not None else -np.inf, spec.high if spec.high is not None else np.inf)
    return x


def _sample_leaf(spec, ids, rng) -> np.ndarray:
    n = ids.shape[0]
    if isinstance(spec, Constant):
        return np.full(n, spec.value, dtype=_NP_DTYPE[spec.kind])
    if isinstance(spec, Categorical):
        w = np.asarray(spec.weights, dtype=np.float64)
        cdf = np.cumsum(w)
        cdf[np.flatnonzero(w > 0)[-1]:] = 1.0  # rounding must not leak mass into zero-weight tail values
        idx = np.searchsorted(cdf, rng.random(ids), side="right")
        return np.asarray(spec.values, dtype=_NP_DTYPE[spec.kind])[idx]
    if isinstance(spec, Uniform):
        u = rng.random(ids)
        if spec.dtype == "int":
            span = spec.high - spec.low + 1
            return spec.low + np.minimum((u * span).astype(np.int64), span - 1)
        return spec.low + u * (spec.high - spec.low)
    if isinstance(spec, Normal):
        return _sample_normal(spec, ids, rng)
    raise TypeError(f"not a distribution spec: {spec!r}")


def _case_key(key, col: np.ndarray, where: str):
    """A case key converted to the conditioning column's kind (TOML keys are strings)."""
    kind = col.dtype.kind
    if col.dtype == STR or kind in "UT":
        return str(key)
    try:
        if kind == "b":
            if isinstance(key, (bool, np.bool_)):
                return bool(key)
            if str(key).lower() in ("true", "false"):
                return str(key).lower() == "true"
            raise ValueError
        if kind in "iu":
            if isinstance(key, str):
                return int(key.strip())
            if float(key) != int(key):
                raise ValueError
            return int(key)
        if kind == "f":
            return float(key)
    except (TypeError, ValueError):
        pass
    raise PopulationSpecError(f"{where}.cases.{key}", f"key {key!r} cannot match the {col.dtype} values "
                                                      "of the attribute it is conditional on")


def _sample(spec, rows: np.ndarray, ids: np.ndarray, columns: Mapping[str, np.ndarray], rng, out, where):
    """Fill ``out[rows]`` with draws of ``spec`` for ``ids[rows]``."""
    if not isinstance(spec, Conditional):
        out[rows] = _sample_leaf(spec, ids[rows], rng)
        return
    col = columns[spec.on][rows]
    left = np.ones(rows.shape[0], dtype=bool)
    for key, sub in spec.cases:
        hit = left & (col == _case_key(key, col, where))
        if hit.any():
            _sample(sub, rows[hit], ids, columns, rng, out, f"{where}.cases.{key}")
            left &= ~hit
    if left.any():
        if spec.default is None:
            missing = np.unique(col[left])[:5].tolist()
            raise PopulationSpecError(f"{where}.default",
                                      f"missing: {spec.on} = {', '.join(map(repr, missing))} matches no case")
        _sample(spec.default, rows[left], ids, columns, rng, out, f"{where}.default")


def sample_population(specs: Mapping[str, Spec | Mapping], ids, seed: int,
                      given: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """One column per attribute for the entities ``ids [n] int64``.

    ``specs`` maps attribute names to specs (or to plain dicts, parsed with
    :func:`parse_spec`). ``given`` holds columns ``[n]`` that exist already (a
    group, a model) which conditionals may be ``on``; they are not returned.

    Returns ``{attribute: [n] column}`` in the declared order: strings as
    StringDType, integers int64, reals float64, booleans bool. Row ``i`` belongs
    to ``ids[i]`` and depends only on ``(seed, attribute, ids[i])`` and the
    attributes it is conditional on.
    """
    specs = {k: parse_spec(v, f"population.{k}") for k, v in specs.items()}
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if ids.ndim != 1:
        raise ValueError(f"sample_population: ids must be 1-D, got shape {ids.shape}")
    n = ids.shape[0]
    given = dict(given or {})
    for k, v in given.items():
        if np.shape(v) != (n,):
            raise ValueError(f"sample_population: given column {k!r} has shape {np.shape(v)}, expected ({n},)")
        if k in specs:
            raise ValueError(f"sample_population: {k!r} is both given and declared")
    order = resolve_order(specs, given)
    columns: dict[str, np.ndarray] = {k: np.asarray(v) for k, v in given.items()}
    rows = np.arange(n)
    for name in order:
        spec = specs[name]
        out = np.empty(n, dtype=_NP_DTYPE[spec.kind])
        if n:
            _sample(spec, rows, ids, columns, EntityRng(seed, f"population:{name}", 0), out, f"population.{name}")
        columns[name] = out
    return {name: columns[name] for name in specs}


# ---------------------------------------------------------------------------------------------
# vectorised templates and background prompts

def _as_str(col: np.ndarray) -> np.ndarray:
    col = np.asarray(col)
    if col.dtype == STR:
        return col
    if col.dtype.kind == "O" and not all(isinstance(v, str) for v in col.tolist()):
        raise TypeError("object columns must hold str")
    return col.astype(STR)


def _json_value(col: np.ndarray) -> np.ndarray:
    col = np.asarray(col)
    if col.dtype == STR or col.dtype.kind in "UTO":
        s = _as_str(col)
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
    n = _common_length({k: columns[k] for k in names})
    out = np.full(n, "{", dtype=STR)
    for i, k in enumerate(names):
        out = np.strings.add(out, f'{", " if i else ""}"{k}": ')
        out = np.strings.add(out, _json_value(columns[k]))
    return np.strings.add(out, "}")


def _common_length(cols: Mapping[str, Any]) -> int:
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
        n = _common_length(used) if any(np.ndim(v) for v in used.values()) else None
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
                out = np.strings.add(out, _as_str(v))
    return out


#: Stop string of a background reply (the meta prompt ends inside an open persona block).
BACKGROUND_STOP = "[PERSONA END]"

#: Meta prompt for LLM-written backgrounds (AgentScope §3.3 and App. B): the sampled
#: attributes go in as JSON, a detailed character comes out. It is a few-shot
#: completion prompt — it also works for base models — whose only per-agent part,
#: ``{attributes}``, comes last so that every agent's prompt shares the long prefix.
#: Use diverse sampling (temperature ~1, per-request seeds) for varied backgrounds.
BACKGROUND_META_PROMPT = (
    "You write character backgrounds for the people of a social simulation. Each person is given as a "
    "JSON object of attributes (such as age, gender, education and occupation). Expand it into a short, "
    "concrete and believable character: keep every given attribute exactly as given, invent a fitting name "
    "if none is given, and add personality, habits, life experience and how this person usually makes "
    "decisions. Write in the third person, at most 80 words, in the format below, and end with "
    "[PERSONA END].\n"
    "\n"
    'Attributes: {{"gender": "Female", "age": 46, "education": "Master\'s Degree", "occupation": "Pharmacist"}}\n'
    "[PERSONA BEGIN]\n"
    "- Name: Helen Okafor\n"
    "- Gender: Female\n"
    "- Age: 46 years old\n"
    "- Personality: Careful and methodical, Helen double-checks everything, from prescriptions to her "
    "family's budget. She earned her master's degree while working night shifts and trusts numbers more "
    "than rumours. She is patient with people but dislikes taking risks, and prefers to think a problem "
    "through before she answers.\n"
    "[PERSONA END]\n"
    "\n"
    'Attributes: {{"gender": "Male", "age": 23, "education": "High School", "occupation": "Athlete"}}\n'
    "[PERSONA BEGIN]\n"
    "- Name: Diego Santos\n"
    "- Gender: Male\n"
    "- Age: 23 years old\n"
    "- Personality: A competitive semi-professional footballer who trusts his instincts. Diego left school "
    "to train full time, loves quick decisions and friendly rivalry, and would rather act fast than "
    "overthink. Outgoing and optimistic, he learns best by trying things out.\n"
    "[PERSONA END]\n"
    "\n"
    "Attributes: {attributes}\n"
    "[PERSONA BEGIN]\n"
)


def background_prompts(columns: Mapping[str, np.ndarray], meta_template: str = BACKGROUND_META_PROMPT,
                       attributes: list[str] | None = None) -> np.ndarray:
    """``[n] StringDType``: one background-generation prompt per agent.

    ``meta_template`` uses ``{column}`` fields (``str.format`` syntax) filled from
    ``columns``; the field ``{attributes}`` (when no column has that name) is the
    row's attributes as JSON (:func:`attributes_json` over ``attributes``,
    default: every column). Rendering is vectorised and a pure function of the
    row's values, so identical attribute combinations give identical prompts:
    ``np.unique(prompts, return_inverse=True)`` gives one request per distinct
    combination (ask for ``n`` = its count completions to vary them).
    """
    if not columns:
        raise ValueError("background_prompts: no columns")
    fields: dict[str, Any] = dict(columns)
    names = {nm for _, nm, _, _ in string.Formatter().parse(meta_template) if nm}
    if "attributes" in names and "attributes" not in columns:
        fields["attributes"] = attributes_json(columns, attributes)
    return render_template(meta_template, fields, n=_common_length(columns))
