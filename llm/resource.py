"""The ``LLM`` resource: the run's engines by model, its response log and cache; and the decision stats.

A run inserts one :class:`LLM` into the world; a decision system declares it
(``resources=(LLM,)``) and :func:`~.pipeline.decide` fetches it through the system
context. Agents name their model (a mixture of LLMs); ``engines[""]`` or ``default``
serves the rest. With ``replay`` set, every model is answered from that log
(:class:`~.engines.replay.ReplayEngine`) instead. Both resources here are plain
(engines and open files are never saved in a snapshot nor counted in the state hash).

:class:`DecisionStats` collects one row per (tick, decision): agents, outcome counts,
requests, tokens and seconds per pipeline stage. ``decide`` keeps it up to date
itself as part of the pipeline's own bookkeeping.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pyarrow as pa

from .cache import ResponseCache
from .engines.base import Engine
from .engines.replay import ReplayEngine
from .log import ResponseLog


@dataclass
class DecisionStats:
    """Per tick and decision: counts, tokens and time per stage (a plain resource: not saved)."""

    rows: list = field(default_factory=list)

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows) if self.rows else pa.table({})


class LLM:
    """The run's engines by model name, plus the response log (a plain resource: not saved).

    ``engines[""]`` (or ``default``) serves agents without a model choice.
    With ``replay`` set, every model is answered from that log instead.
    """

    def __init__(self, engines: Mapping[str, Engine], default: str | None = None,
                 log_dir: str | Path | None = None, replay: ReplayEngine | None = None,
                 cache: ResponseCache | None = None):
        if not engines and replay is None:
            raise ValueError("LLM: need at least one engine")
        self.engines = dict(engines)
        self.default = default if default is not None else (next(iter(self.engines)) if self.engines else "")
        self.log = ResponseLog(log_dir) if log_dir is not None else None
        self.replay = replay
        self.cache = cache

    def engine(self, model: str) -> Engine:
        if self.replay is not None:
            return self.replay
        name = model or self.default
        try:
            return self.engines[name]
        except KeyError:
            raise LookupError(f"no engine for model {name!r} (engines: {', '.join(self.engines)})") from None

    def flush(self) -> None:
        """Wait until the response log has written every call so far (before a snapshot)."""
        if self.log is not None:
            self.log.flush()

    def close(self) -> None:
        """Flush and close the response log, then close every engine (each even if one fails)."""
        try:
            if self.log is not None:
                self.log.close()
        finally:
            for e in self.engines.values():
                e.close()
