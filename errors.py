"""The error classes every layer shares (``socius.errors``).

A leaf module: it imports nothing of ours, so the kernel's neighbours, the
LLM stack, MPI and the application can all raise and catch the same types
without importing one another. The kernel's own errors (schemas, access,
snapshots) stay in :mod:`socius.ecs.errors`, because ``ecs/`` imports nothing
outside itself.

- :class:`ConfigError` — a config value, file or flag that does not fit
  (the command line reports it and exits with code 2);
- :class:`MissingExtraError` — code that needs an optional dependency group
  that is not installed; the message names the ``pip install`` to run;
- :class:`EngineSetupError` — an engine name, option or replay source that
  cannot be used (reported as a usage error).
"""
from __future__ import annotations

__all__ = ["ConfigError", "EngineSetupError", "MissingExtraError"]


class ConfigError(ValueError):
    """A config value or file that does not fit the scenario's config dataclass."""


class MissingExtraError(ImportError):
    """Raised when code needs an optional dependency group that is not installed."""

    def __init__(self, extra: str, package: str, what: str):
        super().__init__(
            f"{what} needs the '{extra}' extra ({package} is not installed): "
            f"pip install 'socius[{extra}]'")
        self.extra = extra


class EngineSetupError(ValueError):
    """An engine name, option or replay source that cannot be used (reported as a usage error)."""
