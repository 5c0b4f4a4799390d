"""How much a memory matters: importance 1–10, by rule or by the LLM.

:func:`rule_importance` is deterministic and cheap (2 + 2 per poignant
keyword + 1 per 20 words, capped); with ``MemoryParams.importance == "llm"``
:func:`score_importance` asks the LLM instead, in one batched
:data:`IMPORTANCE` decision (the Generative Agents poignancy prompt).
"""
from __future__ import annotations

import numpy as np

from socius.components.memory import MemoryParams
from socius.ecs import STR
from socius.llm import Decision, JsonReply, Number, Sampling, Template, decide

IMPORTANCE = Decision(
    "memory_importance",
    Template(
        "On the scale of 1 to 10, where 1 is purely mundane (e.g., brushing teeth, making bed) and 10 is "
        "extremely poignant (e.g., a break up, college acceptance), rate the likely poignancy of the "
        "following piece of memory.\n"
        "Memory: {memory}\n"
        'Answer as JSON like {{"rating": 4}}.\n'
        "Answer:",
        untrusted=("memory",)),
    JsonReply(rating=Number(1, 10)),
    fallback={"rating": 3.0},
    sampling=Sampling(temperature=0.0, max_tokens=16),
)


_POIGNANT = ("died", "death", "dead", "married", "divorce", "fired", "lost", "hired", "won", "accident",
             "sick", "hospital", "born", "promoted", "broke", "love", "hate", "angry", "afraid", "crisis",
             "moved", "graduated", "arrested", "betrayed", "argument", "fight")


def rule_importance(texts) -> np.ndarray:
    """``[n] float32`` importance in [1, 10] by rule: 2 + 2 per poignant keyword + 1 per 20 words, capped.

    Deterministic and cheap; used when ``MemoryParams.importance == "rule"``.
    """
    t = np.strings.lower(np.asarray(texts, dtype=STR))
    padded = np.strings.add(np.strings.add(" ", t), " ")
    hits = np.zeros(t.shape[0], dtype=np.float32)
    for w in _POIGNANT:
        hits += (np.strings.find(padded, w) >= 0)
    words = np.strings.count(np.strings.strip(t), " ") + (np.strings.str_len(np.strings.strip(t)) > 0)
    return np.clip(2.0 + 2.0 * hits + words // 20, 1.0, 10.0).astype(np.float32)


def score_importance(ctx, ids, texts, params: MemoryParams | None = None) -> np.ndarray:
    """``[n] float32`` importance in [1, 10] by ``params.importance``: the rule, or the LLM via ``decide``.

    Resources: :class:`~socius.components.memory.MemoryParams` (unless ``params`` is given; the
    defaults when the world has none) and, for ``"llm"``, the :class:`~socius.llm.LLM`."""
    params = params or ctx.get_resource(MemoryParams) or MemoryParams()
    texts = np.asarray(texts, dtype=STR).reshape(-1)
    if params.importance == "rule":
        return rule_importance(texts)
    res = decide(ctx, IMPORTANCE, np.asarray(ids, dtype=np.int64), {"memory": texts})
    return np.clip(res.values["rating"], 1, 10).astype(np.float32)


__all__ = ["IMPORTANCE", "rule_importance", "score_importance"]
