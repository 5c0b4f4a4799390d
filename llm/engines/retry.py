"""Retrying one HTTP call: which failures are worth another try, and how long to wait.

Timeouts, connection errors and HTTP 408/409/429/5xx are retried with exponential
backoff and full jitter (raised to a server's ``Retry-After``); anything else fails
the request at once. Works on ``openai`` exceptions without importing ``openai``.
"""
from __future__ import annotations

import asyncio
import random

#: HTTP statuses worth retrying: request timeout, conflict/lock, rate limit, server errors.
RETRY_STATUSES = frozenset({408, 409, 429})


def classify_error(exc: BaseException) -> tuple[bool, str]:
    """``(retry, kind)`` for an exception raised by one call.

    ``kind`` is ``"timeout"``, ``"connection"``, ``"http <status>"`` or the
    exception's class name. Retried: timeouts (ours or the client's),
    connection errors, HTTP 408/409/429 and 5xx. Not retried: other HTTP
    statuses (400, 401, 404, 422, ...) and anything else (a bug, a reply that
    does not parse). Works on ``openai`` exceptions without importing ``openai``
    (by status code and class names).
    """
    names = {c.__name__ for c in type(exc).__mro__}
    if "APITimeoutError" in names or isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return True, "timeout"
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return (status in RETRY_STATUSES or status >= 500), f"http {status}"
    if "APIConnectionError" in names or isinstance(exc, ConnectionError):
        return True, "connection"
    return False, type(exc).__name__


def backoff_delay(attempt: int, rng: random.Random, base_s: float = 0.5, max_s: float = 20.0,
                  retry_after_s: float | None = None) -> float:
    """Seconds to wait before retry ``attempt + 1`` (``attempt`` counts from 0).

    Exponential backoff with full jitter: uniform in ``[0, min(max_s, base_s * 2**attempt)]``;
    a server's ``Retry-After`` (seconds) raises it to at least that, capped at ``max_s``.
    """
    cap = min(max_s, base_s * (2.0 ** attempt))
    delay = rng.uniform(0.0, cap)
    if retry_after_s is not None and retry_after_s > 0:
        delay = max(delay, min(max_s, retry_after_s))
    return delay


def retry_after(exc: BaseException) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None
