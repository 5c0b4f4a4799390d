"""Finished requests of one ``vllm.LLM.generate`` call, reported as they finish.

``LLM.generate(use_tqdm=factory)`` builds its progress bar with ``factory``:
once as ``factory(prompts, desc=...)`` around the prompts it renders (an
iterable must come back) and once as ``factory(total=n, ...)`` for the run,
on which it calls ``update(k)`` as each request finishes (``k``: its outputs),
reads ``n`` and ``format_dict["elapsed"]``, sets ``postfix`` and calls
``refresh`` / ``close``. :func:`request_counter` returns such a factory whose
bar counts finished *requests* (one ``update`` call each, whatever ``k``) and
hands ``report(done)`` the running count. The batch is not split: this is the
same single call, observed. It costs one Python call per finished request.
"""
from __future__ import annotations

import time
from typing import Any, Callable


class _Counter:
    """The tqdm-like object vLLM drives (only what ``vllm.entrypoints`` 0.32 uses)."""

    def __init__(self, report: Callable[[int], None], total: int | None = None):
        self._report, self.total = report, total
        self.n = 0                 # tqdm's count: outputs (vLLM compares it with the request count)
        self.requests = 0          # finished requests: one update() each
        self.postfix = ""
        self._t0 = time.perf_counter()

    @property
    def format_dict(self) -> dict[str, Any]:
        return {"elapsed": max(time.perf_counter() - self._t0, 1e-9), "n": self.n, "total": self.total}

    def update(self, k: int = 1) -> None:
        self.n += int(k)
        self.requests += 1
        self._report(self.requests)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


def request_counter(report: Callable[[int], None]) -> Callable[..., Any]:
    """A ``use_tqdm`` factory for ``LLM.generate``: ``report(done)`` after each finished request
    (``done`` counts this call's finished requests from 1)."""
    def factory(iterable=None, *args: Any, **kwargs: Any):
        if iterable is not None:          # the prompt-rendering pass: hand the prompts through
            return iterable
        return _Counter(report, kwargs.get("total"))
    return factory
