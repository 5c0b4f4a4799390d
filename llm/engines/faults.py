"""Fault injection: any engine, wrapped so a seeded share of its requests go wrong.

:class:`FaultEngine` wraps an engine and, per request, draws whether it fails
and how, keyed by (fault seed, tick, the request's sampling seed) through the
kernel's counter-based RNG — so the same fault seed injects the same faults
whatever the batch order, size or slicing, and a rerun reaches the same
``state_hash``. The kinds (:data:`FAULT_KINDS`):

=============  ====================================================================
``timeout``    the request is not answered: error ``"timeout: injected"``
``http_5xx``   error ``"http 503: injected"`` (a server error after its retries)
``http_429``   error ``"http 429: injected"`` (rate limited after its retries)
``garbage``    answered, but the text is junk that no reply schema parses
``truncated``  answered, but the text is cut in half (JSON missing its end)
``slow``       answered correctly after ``slow_s`` more seconds
=============  ====================================================================

Transport faults (the first three) never reach the wrapped engine and end in
the pipeline's ``failed`` outcome; ``garbage`` and ``truncated`` go through
extraction, then ``extracted`` or ``fallback``; ``slow`` changes no value.
:attr:`FaultEngine.injected` counts requests per kind.

Selected from an engine config by a ``[faults]`` table beside the engine's
own options (``rate``, ``seed``, ``kinds``, ``slow_s``, ``timeout_s``)::

    [faults]
    rate = 0.3
    seed = 7
    kinds = ["timeout", "http_5xx", "http_429", "garbage", "truncated", "slow"]

:func:`make_with_faults` is the factory hook: it pops that table and wraps
what ``make`` builds from the rest.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

import numpy as np

from socius.ecs import STR
from socius.ecs.rng import EntityRng
from socius.errors import EngineSetupError

from .base import CompletionBatch, Engine, RequestBatch

FAULT_KINDS = ("timeout", "http_5xx", "http_429", "garbage", "truncated", "slow")
TRANSPORT = ("timeout", "http_5xx", "http_429")
ERRORS = {"timeout": "timeout: injected", "http_5xx": "http 503: injected", "http_429": "http 429: injected"}
#: junk replies a garbage fault picks from (none parses as a reply of any schema)
GARBAGE = ("<html><body>502 Bad Gateway</body></html>", "\ufffd\ufffd\x00\x01", "{{{{", "null", "]]]")


@dataclass(frozen=True)
class FaultConfig:
    """A ``[faults]`` table: ``rate`` in [0, 1] of requests fail, as one of ``kinds`` (uniformly)."""

    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    slow_s: float = 0.01     # extra seconds a slow request takes
    timeout_s: float = 0.0   # seconds a timed-out request waits before it is given up

    @classmethod
    def from_mapping(cls, table: Any) -> "FaultConfig":
        """Validated ``FaultConfig``; a bad table raises :class:`EngineSetupError` naming ``faults.<field>``."""
        if not isinstance(table, Mapping):
            raise EngineSetupError(f"engine config: 'faults' must be a table, not {type(table).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(table) - set(names))
        if unknown:
            raise EngineSetupError(f"engine config: unknown faults options {unknown} (known: {', '.join(names)})")
        out = {}
        for key in ("rate", "slow_s", "timeout_s"):
            if key in table:
                v = table[key]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                    raise EngineSetupError(f"engine config: faults.{key} must be a number >= 0, not {v!r}")
                out[key] = float(v)
        if out.get("rate", 0.0) > 1:
            raise EngineSetupError(f"engine config: faults.rate must be in [0, 1], not {out['rate']!r}")
        if "seed" in table:
            v = table["seed"]
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2 ** 63:
                raise EngineSetupError(f"engine config: faults.seed must be an integer in [0, 2**63), not {v!r}")
            out["seed"] = int(v)
        if "kinds" in table:
            kinds = table["kinds"]
            if isinstance(kinds, str) or not isinstance(kinds, (list, tuple)) or not kinds \
                    or any(k not in FAULT_KINDS for k in kinds):
                raise EngineSetupError(f"engine config: faults.kinds must be a non-empty list of "
                                       f"{', '.join(FAULT_KINDS)}; got {kinds!r}")
            out["kinds"] = tuple(dict.fromkeys(kinds))
        return cls(**out)


class FaultEngine:
    """``inner`` with faults injected as ``config`` says (see the module docstring)."""

    def __init__(self, inner: Engine, config: FaultConfig, sleep: Callable[[float], None] = time.sleep):
        self.inner, self.config, self._sleep = inner, config, sleep
        self.name = f"faults({getattr(inner, 'name', type(inner).__name__)})"
        self.injected = {k: 0 for k in FAULT_KINDS}

    def __getattr__(self, attr):  # adapters, calls, … of the wrapped engine
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def draw(self, batch: RequestBatch) -> np.ndarray:
        """``[r] int8``: each request's fault, an index into ``config.kinds``, or -1 for none."""
        cfg, r = self.config, len(batch)
        if r == 0 or cfg.rate <= 0:
            return np.full(r, -1, np.int8)
        hit = EntityRng(cfg.seed, "faults:hit", batch.tick).random(batch.seeds) < cfg.rate
        kind = EntityRng(cfg.seed, "faults:kind", batch.tick).choice(batch.seeds, np.ones(len(cfg.kinds)))
        return np.where(hit, kind, -1).astype(np.int8)

    def generate(self, batch: RequestBatch) -> CompletionBatch:
        t0 = time.perf_counter()
        kinds = np.array(self.config.kinds, dtype=STR)
        fault = self.draw(batch)
        name = np.where(fault >= 0, kinds[np.maximum(fault, 0)], "")
        for k in self.config.kinds:
            self.injected[k] += int((name == k).sum())
        transport = np.isin(name, np.array(TRANSPORT, dtype=STR))
        out = CompletionBatch.empty_for(batch)
        send = np.flatnonzero(~transport)
        if send.shape[0]:
            sub = batch if send.shape[0] == len(batch) else batch.take(send)
            out.put(batch, send, self.inner.generate(sub))
        for k in TRANSPORT:
            out.errors[name == k] = ERRORS[k]
        per_comp = np.repeat(name, batch.n)
        junk = np.array(GARBAGE, dtype=STR)
        pick = EntityRng(self.config.seed, "faults:garbage", batch.tick).integers(
            np.repeat(batch.seeds, batch.n), 0, junk.shape[0])
        ok = np.repeat(out.errors == "", batch.n)
        out.texts = np.where(ok & (per_comp == "garbage"), junk[pick], out.texts).astype(STR)
        half = np.strings.str_len(out.texts) // 2
        out.texts = np.where(ok & (per_comp == "truncated"), np.strings.slice(out.texts, half), out.texts).astype(STR)
        wait = max(self.config.slow_s if (name == "slow").any() else 0.0,
                   self.config.timeout_s if (name == "timeout").any() else 0.0)
        if wait > 0:
            self._sleep(wait)
        out.latency_s[name != ""] = time.perf_counter() - t0
        return out

    def close(self) -> None:
        self.inner.close()


def make_with_faults(make: Callable[..., Engine], kind: str, *, config: Mapping[str, Any] | None = None,
                     **kwargs) -> Engine:
    """``make(kind, config=<config without faults>, **kwargs)``, wrapped in a :class:`FaultEngine` when
    ``config`` has a ``faults`` table (the factory's hook; see the module docstring)."""
    config = dict(config or {})
    table = config.pop("faults", None)
    engine = make(kind, config=config, **kwargs)
    if table is None:
        return engine
    return FaultEngine(engine, FaultConfig.from_mapping(table))
