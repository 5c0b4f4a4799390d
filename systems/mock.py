"""Mock-engine policies for the standard decisions (memory importance, reflection, interviews).

A policy maps a :class:`~socius.llm.RequestBatch` to one reply per request,
computed from the prompts alone with numpy string operations and keyed by
entity and tick, so mock runs are deterministic. For tests and overhead runs
only: ``MockEngine(environment_policy)`` answers every prompt this package
sends.
"""
from __future__ import annotations

import numpy as np

from socius.ecs import STR
from socius.ecs.rng import EntityRng
from socius.llm import RequestBatch

from .importance import rule_importance


def memory_policy(batch: RequestBatch, seed: int) -> np.ndarray:
    """Mock-engine policy for the memory decisions: ratings by :func:`rule_importance` of the quoted
    memory (±1, keyed by entity and tick), reflections as a sentence quoting the newest memory.
    Other prompts get ``""``. For tests and overhead runs only."""
    prompts = np.repeat(batch.prompts, batch.n)
    rng = EntityRng(seed, "mock:memory", batch.tick)
    u = rng.random(batch.entities)
    is_rating = np.strings.find(prompts, "rate the likely poignancy") >= 0
    is_reflect = np.strings.find(prompts, "high-level insight") >= 0
    mem = _between(prompts, "Memory: <<<quote>>>", "<<<end quote>>>\nAnswer as JSON")
    rating = np.clip(np.round(rule_importance(mem) + np.floor(u * 3) - 1), 1, 10).astype(np.int64)
    rating_reply = np.strings.add(np.strings.add('{"rating": ', rating.astype(STR)), "}")
    first = _between(prompts, "Recent memories:\n<<<quote>>>- ", "\n")
    first = np.strings.replace(first, "<<<end quote>>>", "")
    reflect_reply = np.strings.add("I keep coming back to this: ", first)
    out = np.where(is_rating, rating_reply, np.where(is_reflect, reflect_reply, ""))
    return out.astype(STR)


def _between(texts: np.ndarray, start: str, end: str) -> np.ndarray:
    i = np.strings.find(texts, start)
    tail = np.where(i >= 0, np.strings.slice(texts, np.maximum(i, 0) + len(start), None), "").astype(STR)
    j = np.strings.find(tail, end)
    return np.where(j >= 0, np.strings.slice(tail, 0, np.maximum(j, 0)), tail).astype(STR)



def environment_policy(batch: RequestBatch, seed: int) -> np.ndarray:
    """Mock-engine policy for interviews (a first-person line naming the agent and its best memory),
    falling back to :func:`memory_policy` for the memory prompts."""
    out = np.asarray(memory_policy(batch, seed), dtype=STR)
    prompts = np.repeat(batch.prompts, batch.n)
    is_iv = np.strings.find(prompts, "You are being interviewed.") >= 0
    if not is_iv.any():
        return out
    name = _between(prompts, "About you: name: ", ";")
    best = np.strings.replace(_between(prompts, "What you remember:\n<<<quote>>>- ", "\n"), "<<<end quote>>>", "")
    line = np.strings.add(np.strings.add("I am ", np.where(np.strings.str_len(name) > 0, name, "someone")), ".")
    line = np.where(np.strings.str_len(best) > 0,
                    np.strings.add(np.strings.add(line, " What comes to mind: "), best), line)
    return np.where(is_iv, line, out).astype(STR)


__all__ = ["environment_policy", "memory_policy"]
