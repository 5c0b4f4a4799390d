"""Decisions: what one action asks of the LLM, and what comes back.

A :class:`Decision` declares one action: its prompt :class:`~.templates.Template`,
its reply schema (:mod:`.replies`), its sampling, the fallback values used when
a reply cannot be had, and the extraction call (:data:`EXTRACT`) that gets one
more try at a reply that did not parse. :func:`~.pipeline.decide` runs it for
many agents at once and returns a :class:`DecisionResult`: one typed value per
agent per reply field, and an :class:`Outcome` code per agent::

    GUESS = Decision("guess", Template(...), JsonReply(number=Number(0, 100)),
                     fallback={"number": 50.0}, sampling=Sampling(temperature=0.7, max_tokens=24))

A schema with a constrained-decoding form puts it into both samplings unless
they carry their own (:func:`with_structured`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from socius.ecs import STR

from .engines.base import Sampling
from .templates import Template


class Outcome(IntEnum):
    OK = 0          # the reply parsed
    EXTRACTED = 1   # it did not; the extraction call's reply did
    FALLBACK = 2    # neither parsed: the declared fallback was used
    FAILED = 3      # the engine failed (answer or extraction call) after its retries: fallback used


EXTRACT = Template(
    "Rewrite the answer below in exactly this format: {format}\n"
    "Answer: {reply}\n"
    "Formatted: ",
    untrusted=("reply",),
)


@dataclass(frozen=True)
class Decision:
    name: str
    template: Template
    schema: Any                       # JsonReply / ChoiceReply
    fallback: Mapping[str, Any]
    sampling: Sampling = Sampling()
    extract: Template | None = EXTRACT
    extract_sampling: Sampling = Sampling(temperature=0.0, max_tokens=48)
    format_hint: str = ""             # shown to the extraction call; default: the schema
    cache: bool = False               # reuse replies across runs from LLM.cache (exact key, see ResponseCache)
    stream: bool | None = None        # None: the engine's default (its stream_chunk); decide(stream=) wins; see .stream

    def __post_init__(self):
        if not self.name or "/" in self.name:
            raise ValueError(f"Decision name must be non-empty without '/', got {self.name!r}")
        if self.sampling.structured is None and self.schema.structured() is not None:
            object.__setattr__(self, "sampling", with_structured(self.sampling, self.schema.structured()))
        if self.extract_sampling.structured is None and self.schema.structured() is not None:
            object.__setattr__(self, "extract_sampling",
                               with_structured(self.extract_sampling, self.schema.structured()))
        probe_cols = self.schema.parse(np.array([""], dtype=STR))[1]
        missing = set(probe_cols) - set(self.fallback)
        if missing:
            raise ValueError(f"Decision {self.name}: fallback lacks reply fields {sorted(missing)}")

    def hint(self) -> str:
        """The format shown to the extraction call: ``format_hint``, else one drawn from the schema."""
        return self.format_hint or schema_hint(self.schema)


def with_structured(s: Sampling, structured: dict | None) -> Sampling:
    """``s`` with its constrained-decoding spec replaced."""
    return Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, stop=s.stop,
                    structured=structured)


def schema_hint(schema) -> str:
    """A one-line example of a reply ``schema`` accepts: the options of a choice, a JSON object."""
    s = schema.structured()
    if "choice" in s:
        return "one of: " + ", ".join(s["choice"])
    if "json" in s:
        props = s["json"]["properties"]
        example = {k: (0 if v.get("type") in ("number", "integer") else (v.get("enum") or ["..."])[0])
                   for k, v in props.items()}
        return json.dumps(example)
    return str(s)


@dataclass
class DecisionResult:
    """Per acting agent (aligned with ``ids``): parsed values, outcome, reply text."""

    ids: np.ndarray               # [n] int64
    values: dict[str, np.ndarray]  # reply field -> [n] typed column
    outcome: np.ndarray           # [n] int8, see Outcome
    texts: pa.Array               # [n] raw reply text

    def count(self, outcome: Outcome) -> int:
        return int((self.outcome == outcome).sum())
