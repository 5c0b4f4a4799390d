"""Reply schemas: what an action's reply must look like, and its vectorised parser.

A schema has a constrained-decoding form for engines that support it
(``{"json": ...}``, ``{"choice": [...]}``, ``{"regex": ...}``) and a parser
that turns ``[m]`` reply texts into typed columns plus an ``ok [m]`` mask —
with Arrow's RE2 kernels (C++), never a Python loop per reply::

    schema = JsonReply(number=Number(0, 100))
    ok, cols = schema.parse(texts)        # cols["number"]: float64 [m]

Field kinds: :class:`Number` (bounds; ``integer=True`` for ints),
:class:`Choice` (one of fixed strings), :class:`Text` (free string). A
:class:`ChoiceReply` is a bare choice (the whole reply is one option).

A :class:`JsonReply` reads each field as ``json.loads`` would read it from
the reply's object (prose around the object is tolerated): values follow
JSON's grammar exactly (numbers with sign, fraction and exponent; strings
with every escape, ``\\uXXXX`` and surrogate pairs included, decoded by the
C JSON decoder in one call for all the strings that hold a backslash), and a
value must be closed (``,`` or ``}`` follows), so a reply cut off mid-number
does not parse. A field is read only when its key occurs once in the
reply, at the top level of the object — a duplicated key, a key only in a
nested object or in two objects is ambiguous and does not parse (the
extraction call gets a try), rather than risk a silently wrong value. Keys
are matched as written (a key spelled with escapes is not found).
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

_WS = r"[ \t\n\r]*"                                   # JSON whitespace
NUMBER_RE = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_HEX = "[0-9a-fA-F]"
_U_ESC = (rf"\\u(?:[0-9a-cA-CefEF]{_HEX}{{3}}|[dD][0-7]{_HEX}{{2}}"        # not a surrogate
          rf"|[dD][89abAB]{_HEX}{{2}}\\u[dD][c-fC-F]{_HEX}{{2}})")          # or a high-low pair
STRING_BODY_RE = rf'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|{_U_ESC})*'       # a JSON string's inside
_ANY_STRING = r'"(?:[^"\\]|\\.)*"'                                      # lenient, for skipping strings


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
        """The value's regex, its text in group ``v``."""
        return f"(?P<v>{NUMBER_RE})"


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]

    def __init__(self, *options: str):
        object.__setattr__(self, "options", tuple(options))

    def json_schema(self) -> dict:
        return {"type": "string", "enum": list(self.options)}

    def pattern(self) -> str:
        """Any JSON string, its inside in group ``v`` (the option is checked once decoded)."""
        return f'"(?P<v>{STRING_BODY_RE})"'


@dataclass(frozen=True)
class Text:
    max_length: int | None = None

    def json_schema(self) -> dict:
        s: dict = {"type": "string"}
        if self.max_length:
            s["maxLength"] = self.max_length
        return s

    def pattern(self) -> str:
        """Any JSON string, its inside in group ``v``."""
        return f'"(?P<v>{STRING_BODY_RE})"'


def _arrow(texts) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        return texts.combine_chunks()
    if isinstance(texts, pa.Array):
        return texts
    return arrow_strings(texts)


_SEP = r"[{,\t\n\r ]"                              # what comes before a member's key in an object
# prose, one object with nothing nested, prose without quotes: every key in it is a member at the top level
_FLAT_OBJECT = rf'(?s)^[^{{}}\[\]"]*\{{(?:[^{{}}\[\]"]|{_ANY_STRING})*\}}[^"]*$'


def _key_regex(name: str) -> str:
    """The key ``"name":``."""
    return rf'"{re.escape(name)}"{_WS}:'


def _matches(arr: pa.Array, pattern: str) -> np.ndarray:
    """``[m] bool``: ``pattern`` occurs in each text (a DFA scan, no captures)."""
    return np.asarray(pc.match_substring_regex(arr, pattern=pattern).to_numpy(zero_copy_only=False), dtype=bool)


def _top_level(arr: pa.Array, key: str, rows: np.ndarray) -> np.ndarray:
    """``[len(rows)] bool``: the (only) ``key`` of texts ``arr[rows]`` is a member of the outermost
    object — the text before it leaves exactly one object or array open, strings skipped. The
    exact, slower test, for the few texts the flat pattern does not settle."""
    found = pc.extract_regex(arr.take(pa.array(rows)), pattern=f"(?s)^(?P<pre>.*?{_SEP}){_WS}{key}")
    bare = pc.replace_substring_regex(pc.if_else(found.is_valid(), found.field("pre"), "}"),
                                      pattern="(?s)" + _ANY_STRING, replacement="")

    def count(chars: str) -> np.ndarray:
        return sum(pc.count_substring(bare, c).to_numpy(zero_copy_only=False).astype(np.int64) for c in chars)
    return count("{[") - count("}]") == 1


def decode_strings(inner: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """JSON string insides (valid, as :data:`STRING_BODY_RE` matches) decoded: ``[m]`` StringDType, and
    the rows that held a backslash (``[k] int64``). Those without one are taken as they are; the others go
    to the C JSON decoder as one array literal, in one call."""
    out = inner.to_numpy(zero_copy_only=False).astype(STR)
    esc = np.flatnonzero(np.asarray(pc.match_substring(inner, "\\").to_numpy(zero_copy_only=False), dtype=bool))
    if esc.shape[0]:
        q = pa.scalar('"', inner.type)
        quoted = pc.binary_join_element_wise(q, inner.take(pa.array(esc)), q, pa.scalar("", inner.type))
        joined = pc.binary_join(pa.LargeListArray.from_arrays(pa.array([0, esc.shape[0]], pa.int64()), quoted),
                                pa.scalar(",", inner.type))
        out[esc] = np.array(json.loads("[" + joined[0].as_py() + "]"), dtype=STR)
    return out, esc


@dataclass(frozen=True)
class JsonReply:
    """A JSON object reply with the given fields (extra text around it is tolerated; see the module
    docstring for what parses)."""

    fields: dict = field(default_factory=dict)

    def __init__(self, **fields):
        object.__setattr__(self, "fields", dict(fields))

    def structured(self) -> dict:
        return {"json": {"type": "object", "properties": {k: v.json_schema() for k, v in self.fields.items()},
                         "required": list(self.fields), "additionalProperties": False}}

    def parse(self, texts: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``ok [m] bool`` and one ``[m]`` column per field (float64 for numbers, StringDType else;
        a row that is not ok holds no meaningful values)."""
        arr = _arrow(texts)
        keys = {name: _key_regex(name) for name in self.fields}
        # RE2 passes over the texts: one per field for its value, one (DFA only) for a key given twice, one
        # (DFA only) for a flat object; the exact depth test only for the texts that are not flat
        ok = ~_matches(arr, "(?s)" + "|".join(f"{k}.*{k}" for k in keys.values())) if keys else \
            np.ones(len(arr), dtype=bool)
        deep = np.flatnonzero(ok & ~_matches(arr, _FLAT_OBJECT))
        cols: dict[str, np.ndarray] = {}
        for name, kind in self.fields.items():
            found = pc.extract_regex(arr, pattern=f"(?s){_SEP}{_WS}{keys[name]}{_WS}{kind.pattern()}{_WS}[,}}]")
            raw = pc.if_else(found.is_valid(), found.field("v"), "")
            good = ok & np.asarray(found.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            if deep.shape[0]:
                good[deep] &= _top_level(arr, keys[name], deep)
            if isinstance(kind, Number):
                vals = pc.cast(pc.if_else(good, raw, "nan"), pa.float64()).to_numpy(zero_copy_only=False)
                good &= np.isfinite(vals)
                if kind.low is not None:
                    good &= vals >= kind.low
                if kind.high is not None:
                    good &= vals <= kind.high
                if kind.integer:
                    good &= vals == np.round(vals)
                cols[name] = vals
            else:
                raw = pc.if_else(good, raw, "")
                s, esc = decode_strings(raw)
                if isinstance(kind, Choice):
                    member = np.asarray(pc.is_in(raw, value_set=pa.array(kind.options, raw.type))
                                        .to_numpy(zero_copy_only=False), dtype=bool)
                    member[esc] = np.isin(s[esc], np.array(kind.options, dtype=STR))
                    good &= member
                    s = np.where(good, s, "").astype(STR)
                cols[name] = s
            ok &= good
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
