"""Sampling a population: one column per attribute for a whole population at once.

Randomness and identity: attribute ``a`` of entity ``e`` is drawn from
``EntityRng(seed, "population:a", 0)`` keyed by ``e`` alone, so an agent gets
the same attributes whether it is sampled alone, in a shuffled subset or with
the full population, on any rank. Every distribution uses one uniform draw
per agent (a conditional's branches share it).

Proportions are sampled, not quota'd: with ``n`` agents a category of weight
``w`` gets ``n·w ± O(sqrt(n))``. Exact quotas (AgentScope shuffles exact counts)
would make one agent's attributes depend on how many others there are.
Truncated normals are drawn by inverse CDF (:mod:`socius.population.normal`).
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from socius.ecs import STR, EntityRng

from .conditional import Conditional, Spec
from .distributions import Categorical, Constant, Normal, PopulationSpecError, Uniform
from .normal import ndtri, normal_mass, phi, phi_c
from .parsing import parse_spec, resolve_order

_NP_DTYPE = {"str": STR, "int": np.dtype(np.int64), "float": np.dtype(np.float64), "bool": np.dtype(np.bool_)}


def _open_unit(rng: EntityRng, ids: np.ndarray) -> np.ndarray:
    """Uniforms on the open interval (0, 1): the kernel's [0, 1) draw moved by half a step."""
    return rng.random(ids) + 2.0 ** -54


def _sample_normal(spec: Normal, ids, rng) -> np.ndarray:
    a, b = Normal._standard_bounds(spec.mean, spec.std, spec.low, spec.high, spec.dtype)
    u = _open_unit(rng, ids)
    mass = normal_mass(a, b)
    # p = Phi(a) + u·mass and its complement q = 1 - p, each from the side where it is precise
    p = phi(a) + u * mass
    q = phi_c(a) - u * mass
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


__all__ = ["sample_population"]
