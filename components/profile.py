"""Who an agent is: public and private attributes plus a background text.

``Profile`` holds typed columns; which of them a prompt shows is chosen per
prompt with :class:`ProfileFields` and rendered for all agents at once with
:func:`render_profile`::

    fields = ProfileFields({"chat": PUBLIC_ATTRIBUTES, "interview": PUBLIC_ATTRIBUTES + PRIVATE_ATTRIBUTES})
    text = render_profile(world, ids, fields["chat"])      # [n] StringDType
    # "name: Ana Ruiz; gender: female; age: 34; birthplace: Lyon; ..."

Public attributes are what other agents could know (``name``, ``gender``,
``age``, ``birthplace``, ``occupation``, ``education``); private ones are the
agent's own (``income``, ``health``, ``traits``). Unset strings are empty and
are left out of the rendered text.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from socius.ecs import STR, Component, Scalar, String

PUBLIC_ATTRIBUTES = ("name", "gender", "age", "birthplace", "occupation", "education")
PRIVATE_ATTRIBUTES = ("income", "health", "traits")


class Profile(Component):
    """An agent's attributes. ``age [n] int32``, ``income [n] float64``; the rest strings."""

    name = String()
    gender = String()
    age = Scalar(np.int32)
    birthplace = String()
    occupation = String()
    education = String()
    income = Scalar(np.float64)
    health = String()
    traits = String()
    background = String()


PROFILE_ATTRIBUTES = PUBLIC_ATTRIBUTES + PRIVATE_ATTRIBUTES + ("background",)


class ProfileFields:
    """Which profile attributes each prompt shows: ``{prompt name: (attribute, ...)}``.

    Unknown attribute names raise ``ValueError`` naming the prompt, at
    construction, not mid-run. ``fields["chat"]`` returns the tuple.
    """

    def __init__(self, prompts: Mapping[str, Sequence[str]]):
        known = set(Profile.columns())
        out = {}
        for prompt, attrs in prompts.items():
            attrs = (attrs,) if isinstance(attrs, str) else tuple(attrs)
            bad = [a for a in attrs if a not in known]
            if bad:
                raise ValueError(f"ProfileFields[{prompt!r}]: unknown attribute(s) {bad}; "
                                 f"Profile has {', '.join(Profile.columns())}")
            if not attrs:
                raise ValueError(f"ProfileFields[{prompt!r}]: no attributes")
            out[str(prompt)] = attrs
        self.prompts = out

    def __getitem__(self, prompt: str) -> tuple[str, ...]:
        try:
            return self.prompts[prompt]
        except KeyError:
            raise KeyError(f"ProfileFields: no prompt {prompt!r} (have {', '.join(self.prompts)})") from None

    def __repr__(self):
        return f"ProfileFields({self.prompts!r})"


def _text(col: np.ndarray) -> np.ndarray:
    col = np.asarray(col)
    if col.dtype == STR:
        return col
    if col.dtype.kind == "f":
        # whole numbers without ".0": 52000.0 -> "52000"
        whole = np.isfinite(col) & (col == np.round(col))
        return np.where(whole, np.where(whole, col, 0).astype(np.int64).astype(STR), col.astype(STR)).astype(STR)
    return col.astype(STR)


def describe_attributes(columns: Mapping[str, np.ndarray], attributes: Sequence[str], sep: str = "; ") -> np.ndarray:
    """``[n] StringDType``: ``"name: Ana; age: 34"`` from ``columns`` (``[n]`` each), in
    ``attributes`` order, skipping empty strings. Vectorised numpy string ops."""
    attributes = list(attributes)
    if not attributes:
        raise ValueError("describe_attributes: no attributes")
    n = len(np.asarray(columns[attributes[0]]))
    out = np.full(n, "", dtype=STR)
    for a in attributes:
        val = _text(columns[a])
        if val.shape != (n,):
            raise ValueError(f"describe_attributes: column {a!r} has shape {val.shape}, expected ({n},)")
        item = np.strings.add(f"{a}: ", val)
        present = np.strings.str_len(val) > 0
        joined = np.where(np.strings.str_len(out) > 0, np.strings.add(np.strings.add(out, sep), item), item)
        out = np.where(present, joined, out).astype(STR)
    return out


def render_profile(world, ids, attributes: Sequence[str], sep: str = "; ") -> np.ndarray:
    """``[n] StringDType`` description of agents ``ids`` from their :class:`Profile`
    (see :func:`describe_attributes`). ``world`` may also be a ``QueryView`` over
    ``Profile`` (then ``ids`` is ignored and the view's rows are used)."""
    attributes = tuple(attributes)
    if hasattr(world, "get") and hasattr(world, "ids") and not hasattr(world, "spawn"):
        cols = {a: world.get(Profile, a) for a in attributes}
    else:
        ids = np.asarray(ids, dtype=np.int64)
        cols = {a: world.get(Profile, a, ids) for a in attributes}
    return describe_attributes(cols, attributes, sep)


__all__ = ["PRIVATE_ATTRIBUTES", "PROFILE_ATTRIBUTES", "PUBLIC_ATTRIBUTES", "Profile", "ProfileFields",
           "describe_attributes", "render_profile"]
