"""The ``LLM`` resource: the run's engines by model, its response log and cache; and the decision stats.

A run inserts one :class:`LLM` into the world; a decision system declares it
(``resources=(LLM,)``) and :func:`~.pipeline.decide` fetches it through the system
context. Agents name their model (a mixture of LLMs); ``engines[""]`` or ``default``
serves the rest. With ``replay`` set, every model is answered from that log
(:class:`~.engines.replay.ReplayEngine`) instead. Both resources here are plain
(engines and open files are never saved in a snapshot nor counted in the state hash).

LoRA adapters reach the engines through :meth:`LLM.load_adapter`: every engine (or the
one of a model) loads the folder under the name agents use in ``ModelChoice.adapter``;
an engine that already holds that name at that folder is left alone, and if one engine
refuses, those that had loaded it are put back as they were, so the run goes on with
the adapters it had. Under replay nothing is loaded (the log answers).

:class:`DecisionStats` collects one row per (tick, decision): agents, outcome counts,
requests, failed requests by kind and retries, tokens and seconds per pipeline stage.
:attr:`LLM.progress`, when set (by the app), hears how far each engine call has got. ``decide`` keeps it up to date
itself as part of the pipeline's own bookkeeping.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pyarrow as pa

from socius.errors import EngineSetupError

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
        #: ``progress(decision, kind, done, total)`` while an engine call runs (requests done of the
        #: call's total; ``kind``: "answer" or "extract"), or None; called from any thread
        self.progress = None

    def engine(self, model: str) -> Engine:
        if self.replay is not None:
            return self.replay
        name = model or self.default
        try:
            return self.engines[name]
        except KeyError:
            raise LookupError(f"no engine for model {name!r} (engines: {', '.join(self.engines)})") from None

    def adapters(self) -> dict[str, dict[str, str]]:
        """``{engine model name: {adapter name: folder}}`` (the replay engine under ``""`` when replaying)."""
        engines = {"": self.replay} if self.replay is not None else self.engines
        return {m: dict(e.adapters()) if hasattr(e, "adapters") else {} for m, e in engines.items()}

    def load_adapter(self, name: str, path: str | Path, model: str | None = None, reload: bool = False) -> list[str]:
        """Load adapter ``name`` from folder ``path`` into every engine (``model``: only that model's);
        returns the model names whose engine loaded it now.

        Idempotent: an engine that holds ``name`` at ``path`` already is skipped (``reload=True``
        loads it again, under a fresh id). All or nothing: when an engine refuses, the engines that
        loaded it in this call get their previous adapter of that name back (or lose the name), and
        :class:`~socius.errors.EngineSetupError` names the engine, the adapter and the reason."""
        path = str(path)
        if self.replay is not None:
            self.replay.load_adapter(name, path)
            return []
        if model is not None and model not in self.engines:
            raise EngineSetupError(f"adapter {name!r}: no engine for model {model!r} "
                                   f"(engines: {', '.join(map(repr, self.engines))})")
        targets = [model] if model is not None else list(self.engines)
        done: list[tuple[str, str | None]] = []
        for m in targets:
            eng = self.engines[m]
            if not hasattr(eng, "load_adapter"):
                self._undo(name, done)
                raise EngineSetupError(f"adapter {name!r}: engine {getattr(eng, 'name', type(eng).__name__)} "
                                       f"(model {m!r}) cannot load LoRA adapters")
            before = dict(eng.adapters()).get(name)
            if before == path and not reload:
                continue
            try:
                eng.load_adapter(name, path)
            except Exception as e:
                self._undo(name, done)
                if isinstance(e, EngineSetupError):
                    raise
                raise EngineSetupError(f"adapter {name!r} from {path}: engine {eng.name} (model {m!r}) "
                                       f"did not load it: {type(e).__name__}: {e}") from e
            done.append((m, before))
        return [m for m, _ in done]

    def _undo(self, name: str, done: list[tuple[str, str | None]]) -> None:
        """Put back, best effort, what :meth:`load_adapter` changed in the engines of ``done``."""
        for m, before in reversed(done):
            eng = self.engines[m]
            try:
                if before is not None:
                    eng.load_adapter(name, before)
                else:
                    eng.unload_adapter(name)
            except Exception:  # noqa: BLE001 - the error being raised is the one to report
                pass

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
