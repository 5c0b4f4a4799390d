"""Cost so far: the tokens a run has used and, where its engine config gives a price, the dollars.

Tokens come from the decision pipeline's per-tick rows (``decisions.parquet``, or the live run's
``DecisionStats``): ``prompt_tokens`` and ``output_tokens`` summed over ticks, decisions and ranks.
Prices come from the run's recorded engine config (``run.json``'s ``engine.config``, or what the
live run will record): ``price_prompt_per_mtok`` and ``price_output_per_mtok``, in dollars per
million tokens, e.g. in an engine config TOML::

    base_url = "https://api.example.com/v1"
    model = "some-model"
    price_prompt_per_mtok = 0.15
    price_output_per_mtok = 0.60

Without a price (or with one that is not a finite number >= 0: :func:`~socius.app.prices.price_error`, the check
``socius run --engine-config`` makes too) the answer says ``usd: null`` and why. Every
token counts at the top-level price: the pipeline's rows do not split tokens by model, so a
``[models.NAME]`` mixture's own prices are not applied.
"""
from __future__ import annotations

from socius.app.prices import PRICE_KEYS, price_error

__all__ = ["PRICE_KEYS", "cost_so_far", "engine_config", "price_error"]


def engine_config(src) -> dict:
    """The engine config a run recorded (``run.json``) or will record (a live run's ``meta``); {} if none."""
    run = {}
    if hasattr(src, "run_json"):
        run = src.run_json() or {}
    if not run.get("engine") and getattr(src, "meta", None):
        run = src.meta
    cfg = (run.get("engine") or {}).get("config") or {}
    return cfg if isinstance(cfg, dict) else {}


def _price(cfg: dict, key: str):
    err = price_error(cfg, key)
    v = cfg.get(key)
    return (None if err is not None or v is None else float(v)), err


def cost_so_far(src, decisions=None) -> dict:
    """``{prompt_tokens, output_tokens, tokens, price_prompt_per_mtok, price_output_per_mtok, usd, note}``
    of the run ``src`` (a :class:`~socius.web.runs.RunSource`); ``decisions``: its per-tick table if
    already at hand."""
    table = src.decisions() if decisions is None else decisions
    sums = {}
    for k in ("prompt_tokens", "output_tokens"):
        sums[k] = int(sum(v or 0 for v in table.column(k).to_pylist())) if table is not None and \
            k in table.column_names else 0
    cfg = engine_config(src)
    (pp, e1), (po, e2) = _price(cfg, PRICE_KEYS[0]), _price(cfg, PRICE_KEYS[1])
    note = e1 or e2
    usd = None
    if note is None and (pp is not None or po is not None):
        usd = (sums["prompt_tokens"] * (pp or 0.0) + sums["output_tokens"] * (po or 0.0)) / 1e6
    elif note is None:
        note = "no price in the engine config (price_prompt_per_mtok, price_output_per_mtok)"
    return {**sums, "tokens": sums["prompt_tokens"] + sums["output_tokens"], PRICE_KEYS[0]: pp,
            PRICE_KEYS[1]: po, "usd": usd, "note": note}
