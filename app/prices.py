"""Dollar prices in an engine config: ``price_prompt_per_mtok`` and ``price_output_per_mtok``.

They are dollars per million prompt / output tokens, read by the dashboard's cost
(:mod:`socius.web.cost`) from the run's recorded engine config, never by the engines. One
check for both places: ``socius run`` refuses a bad price (exit 2) and the dashboard says why
it shows none.
"""
from __future__ import annotations

import math

__all__ = ["PRICE_KEYS", "price_error"]

PRICE_KEYS = ("price_prompt_per_mtok", "price_output_per_mtok")


def price_error(cfg: dict, key: str) -> str | None:
    """Why ``cfg[key]`` is no price (not a finite number >= 0; a bool is no number); None if it is one or absent."""
    v = cfg.get(key)
    if v is None or (not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
        return None
    return f"{key} must be a number >= 0 (dollars per million tokens), got {v!r}"
