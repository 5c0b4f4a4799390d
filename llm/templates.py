"""Prompt templates rendered for all agents at once.

A template is text with ``{field}`` or ``{field:fmt}`` slots::

    t = Template("You are {name}, {age} years old. Last round's winner: {winner:.1f}.",
                 untrusted=("post",))
    prompts = t.render({"name": names, "age": ages, "winner": 31.4}, n)   # [n] StringDType

Each field is a column (``[n]`` array: strings or numbers) or one value for
everyone. Rendering is one Arrow C++ concatenation over whole columns
(``render_arrow``; ``render`` converts to numpy StringDType) — no Python
loop over agents. ``fmt`` is a printf-style spec
(``.1f``, ``d``, ``5d``, ``-8s``; as after ``%`` in ``"%.1f" % x``) applied
with ``np.strings.mod``.

Fields listed in ``untrusted`` hold text written by other agents (posts,
messages): they are wrapped in ``<<<quote>>>`` … ``<<<end quote>>>`` and
any delimiter look-alikes inside them are defused, so such text cannot pose
as instructions.
"""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socius.ecs import STR
from socius.text.strings import arrow_strings

QUOTE_OPEN, QUOTE_CLOSE = "<<<quote>>>", "<<<end quote>>>"


class TemplateError(ValueError):
    """A template that does not parse or fields that do not fit it."""


def _LS(text: str) -> pa.Scalar:
    return pa.scalar(text, type=pa.large_string())


def _scalar_text(value: Any, fmt: str) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if not fmt:
        return str(value)
    spec = fmt if fmt[-1] in "dfgesxXo" else fmt + "s"
    try:
        return ("%" + spec) % value
    except (TypeError, ValueError) as e:
        raise TemplateError(f"format {fmt!r} does not fit value {value!r}: {e}") from None


def _column_text(value: Any, fmt: str, n: int, where: str) -> pa.Array | str:
    """A field as Arrow text: ``[n]`` large_string, or one str for all rows."""
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        if len(value) != n:
            raise TemplateError(f"template field {where!r}: expected {n} values, got {len(value)}")
        return pc.cast(value, pa.large_string()) if not fmt else _column_text(value.to_numpy(zero_copy_only=False), fmt, n, where)
    if isinstance(value, str) or np.ndim(value) == 0:
        return _scalar_text(np.asarray(value).item() if not isinstance(value, str) else value, fmt)
    arr = np.asarray(value)
    if arr.shape != (n,):
        raise TemplateError(f"template field {where!r}: expected {n} values, got shape {arr.shape}")
    if fmt:
        spec = fmt if fmt[-1] in "dfgesxXo" else fmt + "s"
        src = arr.astype(STR) if spec[-1] == "s" and arr.dtype.kind != "T" else arr
        try:
            arr = np.strings.mod(f"%{spec}", src).astype(STR)
        except (TypeError, ValueError) as e:
            raise TemplateError(f"template field {where!r}: format {fmt!r} does not fit: {e}") from None
    if arr.dtype.kind in "TUO":
        return arrow_strings(arr)
    return pc.cast(pa.array(arr), pa.large_string())


def defuse(text: pa.Array) -> pa.Array:
    """Break delimiter look-alikes inside untrusted text: every run of three ``<`` (or ``>``) — ASCII, or
    the fullwidth and small forms that NFKC folds to them (``＜﹤``, ``＞﹥``) — becomes ``‹‹‹`` (``›››``);
    lengths are kept."""
    return pc.replace_substring_regex(pc.replace_substring_regex(text, "[<＜﹤]{3}", "‹‹‹"), "[>＞﹥]{3}", "›››")


@dataclass(frozen=True)
class Template:
    text: str
    untrusted: tuple[str, ...] = ()
    parts: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        try:
            parsed = list(string.Formatter().parse(self.text))
        except ValueError as e:
            raise TemplateError(f"template does not parse: {e}: {self.text[:60]!r}") from None
        parts = []
        for literal, name, spec, conv in parsed:
            if conv:
                raise TemplateError(f"template field {name!r}: conversions (!r, !s) are not supported")
            parts.append((literal, name, spec or ""))
        object.__setattr__(self, "parts", tuple(parts))
        unknown = set(self.untrusted) - set(self.fields)
        if unknown:
            raise TemplateError(f"untrusted fields {sorted(unknown)} do not appear in the template")

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for _, name, _ in self.parts if name))

    def render_arrow(self, values: Mapping[str, Any], n: int) -> pa.Array:
        """``[n]`` Arrow large_string prompts; every template field must be in ``values``."""
        missing = [f for f in self.fields if f not in values]
        if missing:
            raise TemplateError(f"template fields without values: {', '.join(missing)}")
        pieces: list = []
        pending = ""  # literal text and scalar fields merged into one piece
        for literal, name, spec in self.parts:
            pending += literal
            if not name:
                continue
            val = _column_text(values[name], spec, n, name)
            if name in self.untrusted:
                if isinstance(val, str):
                    val = QUOTE_OPEN + defuse(pa.array([val]))[0].as_py() + QUOTE_CLOSE
                else:
                    val = pc.binary_join_element_wise(_LS(QUOTE_OPEN), defuse(val), _LS(QUOTE_CLOSE), _LS(""))
            if isinstance(val, str):
                pending += val
                continue
            if pending:
                pieces.append(pending)
                pending = ""
            pieces.append(val)
        if pending:
            pieces.append(pending)
        if not any(isinstance(p, (pa.Array, pa.ChunkedArray)) for p in pieces):
            return pa.array(["".join(pieces)] * n, type=pa.large_string())
        out = pc.binary_join_element_wise(*(_LS(p) if isinstance(p, str) else p for p in pieces), _LS(""))
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    def render(self, values: Mapping[str, Any], n: int) -> np.ndarray:
        """``[n]`` StringDType prompts (see :meth:`render_arrow`)."""
        return self.render_arrow(values, n).to_numpy(zero_copy_only=False).astype(STR)
