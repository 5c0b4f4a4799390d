"""An engine lent to a run: one started engine serves many runs, as the correction experiment's.

Starting an embedded engine costs about a minute on a CPU; an experiment of tens of runs starts
one and lends it (:class:`~socius.app.engines.EngineChoice` ``instance``). Each run's LLM resource
holds a :class:`LentEngine`: every call and attribute goes to the engine, except that closing the
run's resource unloads only the adapters loaded during the loan and leaves the engine running,
so the next run starts on the plain model.
"""
from __future__ import annotations

__all__ = ["LentEngine"]


class LentEngine:
    """One started engine lent to a run: everything goes to ``engine`` except :meth:`close`, which
    unloads the adapters loaded since the loan began and leaves the engine running."""

    def __init__(self, engine):
        object.__setattr__(self, "_engine", engine)
        object.__setattr__(self, "_before", set(engine.adapters()) if hasattr(engine, "adapters") else set())

    def __getattr__(self, key):
        return getattr(self._engine, key)

    def __setattr__(self, key, value):  # the pipeline sets ``progress`` on the engine it holds
        setattr(self._engine, key, value)

    def close(self) -> None:
        if hasattr(self._engine, "adapters"):
            for name in sorted(set(self._engine.adapters()) - self._before):
                self._engine.unload_adapter(name)
