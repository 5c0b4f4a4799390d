"""Reply schemas: what an action's reply must look like, and its vectorised parser.

A schema has a constrained-decoding form for engines that support it
(``{"json": ...}``, ``{"choice": [...]}``, ``{"regex": ...}``) and a parser
that turns ``[m]`` reply texts into typed columns plus an ``ok [m]`` mask —
with ``pyarrow.compute.extract_regex`` (C++), never a Python loop per reply::

    schema = JsonReply(number=Number(0, 100))
    ok, cols = schema.parse(texts)        # cols["number"]: float64 [m]

Field kinds: :class:`Number` (bounds; ``integer=True`` for ints),
:class:`Choice` (one of fixed strings), :class:`Text` (free string). A
:class:`ChoiceReply` is a bare choice (the whole reply is one option).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs import STR
from socius.text.strings import arrow_strings

_NUM = r"-?\d+(?:\.\d+)?"


@dataclass(frozen=True)
class Number:
    low: float | None = None
    high: float | None = None
    integer: bool = False

    def json_schema(self) -> dict:
        s: dict = {"type": "integer" if self.integer else "number"}
        if self.low is not None:
            s["minimum"] = self.low
        if self.high is not None:
            s["maximum"] = self.high
        return s

    def pattern(self) -> str:
        return _NUM


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]

    def __init__(self, *options: str):
        object.__setattr__(self, "options", tuple(options))

    def json_schema(self) -> dict:
        return {"type": "string", "enum": list(self.options)}

    def pattern(self) -> str:
        return '"(' + "|".join(re.escape(o) for o in self.options) + ')"'


@dataclass(frozen=True)
class Text:
    max_length: int | None = None

    def json_schema(self) -> dict:
        s: dict = {"type": "string"}
        if self.max_length:
            s["maxLength"] = self.max_length
        return s

    def pattern(self) -> str:
        return r'"((?:[^"\\]|\\.)*)"'


def _arrow(texts) -> pa.Array:
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        return texts
    return arrow_strings(texts)


def _field_regex(name: str, kind) -> str:
    inner = kind.pattern()
    if isinstance(kind, Number):
        inner = f"({_NUM})"
    return rf'"{re.escape(name)}"\s*:\s*' + inner


@dataclass(frozen=True)
class JsonReply:
    """A JSON object reply with the given fields (extra text around it is tolerated)."""

    fields: dict = field(default_factory=dict)

    def __init__(self, **fields):
        object.__setattr__(self, "fields", dict(fields))

    def structured(self) -> dict:
        return {"json": {"type": "object", "properties": {k: v.json_schema() for k, v in self.fields.items()},
                         "required": list(self.fields), "additionalProperties": False}}

    def parse(self, texts: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        arr = _arrow(texts)
        m = len(arr)
        ok = np.ones(m, dtype=bool)
        cols: dict[str, np.ndarray] = {}
        for name, kind in self.fields.items():
            pat = "(?s)" + _field_regex(name, kind).replace("(", "(?P<v>", 1)
            found = pc.extract_regex(arr, pattern=pat)
            valid = np.asarray(found.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            raw = found.field("v")
            if isinstance(kind, Number):
                vals = pc.cast(pc.if_else(found.is_valid(), raw, "nan"), pa.float64()).to_numpy(zero_copy_only=False)
                good = valid & np.isfinite(vals)
                if kind.low is not None:
                    good &= vals >= kind.low
                if kind.high is not None:
                    good &= vals <= kind.high
                if kind.integer:
                    good &= vals == np.round(vals)
                cols[name] = vals
                ok &= good
            else:
                s = pc.if_else(found.is_valid(), raw, "").to_numpy(zero_copy_only=False).astype(STR)
                if isinstance(kind, Text):
                    s = np.strings.replace(np.strings.replace(s, '\\"', '"'), "\\n", "\n")
                cols[name] = s
                ok &= valid
        return ok, cols

    def describe(self) -> str:
        return json.dumps(self.structured(), sort_keys=True)


@dataclass(frozen=True)
class ChoiceReply:
    """The whole reply is one of ``options`` (surrounding whitespace ignored); column ``choice``."""

    options: tuple[str, ...]

    def __init__(self, *options: str):
        object.__setattr__(self, "options", tuple(options))

    def structured(self) -> dict:
        return {"choice": list(self.options)}

    def parse(self, texts: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if isinstance(texts, (pa.Array, pa.ChunkedArray)):
            texts = texts.to_numpy(zero_copy_only=False)
        t = np.strings.strip(np.asarray(texts, dtype=STR))
        ok = np.isin(t, np.array(self.options, dtype=STR))
        return ok, {"choice": np.where(ok, t, "").astype(STR)}

    def describe(self) -> str:
        return json.dumps(self.structured(), sort_keys=True)


def fill_fallback(schema, cols: dict[str, np.ndarray], mask: np.ndarray, fallback: dict) -> None:
    """Write the declared fallback values into ``cols`` where ``mask``."""
    for k in cols:
        if k not in fallback:
            raise ValueError(f"fallback has no value for reply field {k!r}")
        cols[k] = np.where(mask, np.asarray(fallback[k]).astype(cols[k].dtype), cols[k]).astype(cols[k].dtype)


@dataclass(frozen=True)
class TextReply:
    """Free text (e.g. a written background): ok when non-empty after trimming; column ``text``."""

    max_chars: int | None = None

    def structured(self) -> None:
        return None

    def parse(self, texts) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if isinstance(texts, (pa.Array, pa.ChunkedArray)):
            texts = texts.to_numpy(zero_copy_only=False)
        t = np.strings.strip(np.asarray(texts, dtype=STR))
        if self.max_chars:
            t = np.strings.slice(t, 0, self.max_chars) if hasattr(np.strings, "slice") else t
        return np.strings.str_len(t) > 0, {"text": t}

    def describe(self) -> str:
        return "text"
