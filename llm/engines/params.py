"""Engine request parameters from a batch's :class:`~.base.Sampling`, in-process or served.

vLLM takes the batch-wide part as ``SamplingParams`` keyword arguments
(:func:`sampling_kwargs`; ``n`` and ``seed`` are added per request), with the
constrained-decoding spec (:func:`structured_spec`) wrapped in
``StructuredOutputsParams``. An OpenAI-compatible server takes the same spec
in the request's ``extra_body`` (:func:`structured_extra_body`), in vLLM's
current form or the older ``guided_*`` fields. Pure functions: they import no
engine, and the unit tests exercise them without one.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from .base import Sampling

STRUCTURED_MODES = ("vllm", "guided", "none")
STRUCTURED_KINDS = ("choice", "json", "regex")


def structured_spec(structured: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Validate ``Sampling.structured``; return ``{kind: value}`` or ``None``.

    ``kind`` is one of ``choice`` (non-empty list of str), ``json`` (a JSON
    schema as dict or str) or ``regex`` (str). The returned dict is exactly the
    keyword arguments of vLLM's ``StructuredOutputsParams`` and the body of the
    ``structured_outputs`` field of vLLM's OpenAI-compatible server.
    Raises ``ValueError`` for anything else (a misuse, not a failed request).
    """
    if structured is None:
        return None
    if not isinstance(structured, Mapping) or len(structured) != 1:
        raise ValueError(
            f"Sampling.structured must be None or one of {{'choice'|'json'|'regex': ...}}, "
            f"got {structured!r}")
    (kind, value), = structured.items()
    if kind == "choice":
        if isinstance(value, str) or not value or not all(isinstance(c, str) for c in value):
            raise ValueError(f"structured choice must be a non-empty list of str, got {value!r}")
        return {"choice": list(value)}
    if kind == "json":
        if not isinstance(value, (dict, str)):
            raise ValueError(f"structured json must be a JSON schema (dict or str), got {type(value)}")
        return {"json": value}
    if kind == "regex":
        if not isinstance(value, str) or not value:
            raise ValueError(f"structured regex must be a non-empty str, got {value!r}")
        return {"regex": value}
    raise ValueError(f"unknown structured kind {kind!r}; expected one of {STRUCTURED_KINDS}")


def sampling_kwargs(sampling: Sampling) -> dict[str, Any]:
    """The batch-wide keyword arguments of ``vllm.SamplingParams`` for ``sampling``.

    Returns ``temperature``, ``top_p``, ``max_tokens``, ``stop`` (a list, or
    ``None`` when empty) and ``structured_outputs`` (the dict of
    :func:`structured_spec`, or ``None``; the engine wraps it in
    ``StructuredOutputsParams``). ``n`` and ``seed`` are per request and added
    by the engine. Raises ``ValueError`` for out-of-range values.
    """
    if not (sampling.temperature >= 0.0 and math.isfinite(sampling.temperature)):
        raise ValueError(f"temperature must be finite and >= 0, got {sampling.temperature}")
    if not (0.0 < sampling.top_p <= 1.0):
        raise ValueError(f"top_p must be in (0, 1], got {sampling.top_p}")
    if int(sampling.max_tokens) < 1:
        raise ValueError(f"max_tokens must be >= 1, got {sampling.max_tokens}")
    stop = [sampling.stop] if isinstance(sampling.stop, str) else list(sampling.stop)
    return {
        "temperature": float(sampling.temperature),
        "top_p": float(sampling.top_p),
        "max_tokens": int(sampling.max_tokens),
        "stop": stop or None,
        "structured_outputs": structured_spec(sampling.structured),
    }


def structured_extra_body(sampling: Sampling, mode: str = "vllm") -> dict[str, Any]:
    """The ``extra_body`` fields that ask the server for ``sampling.structured``.

    ``mode="vllm"``: ``{"structured_outputs": {kind: value}}`` (vLLM >= 0.12);
    ``"guided"``: ``{"guided_<kind>": value}`` (older vLLM); ``"none"``: ``{}``.
    Compact JSON (no free whitespace, which small models otherwise emit until
    ``max_tokens``) is a server setting in vLLM 0.32, not a request field:
    start it with ``--structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}'``.
    """
    if mode not in STRUCTURED_MODES:
        raise ValueError(f"structured_mode must be one of {STRUCTURED_MODES}, got {mode!r}")
    spec = sampling_kwargs(sampling)["structured_outputs"]
    if spec is None or mode == "none":
        return {}
    if mode == "guided":
        (kind, value), = spec.items()
        return {f"guided_{kind}": value}
    return {"structured_outputs": spec}
