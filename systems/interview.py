"""Asking agents and finding them: interviews and search by text.

::

    answers = interview(world, ids[:3], "How was your week?")   # state unchanged
    who = find_agents(world, "Profile.occupation == 'nurse'")   # by attribute (socius.systems.targets)
    ids, scores = search_agents(world, "retired teacher who likes films", k=10)

**Interviews** ask agents a question answered from their profile and their
retrieved memories through one batched :func:`~socius.llm.decide` call;
retrieval does not touch ``last_access``, so the world's state hash is
unchanged unless ``store=True`` writes the exchange back as a memory.

**Search** finds agents by text (:func:`search_agents`: embedding similarity
of rendered profiles, exact faiss search).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from socius.components.memory import LongTermMemory, LongTermMemoryBase
from socius.components.profile import PRIVATE_ATTRIBUTES, PUBLIC_ATTRIBUTES, Profile, render_profile
from socius.ecs import STR, world_of
from socius.llm import Decision, Sampling, Template, TextReply, decide
from socius.text.embed import HashingEmbedder
from socius.text.vector_index import VectorIndex

from .memory import MemoryEmbedder, memorize
from .retrieval import retrieve

INTERVIEW = Decision(
    "interview",
    Template(
        "You are being interviewed. Answer as the person described, in the first person, in one or two "
        "sentences.\n"
        "About you: {profile}\n"
        "What you remember:\n{memories}\n"
        "Interviewer: {question}\n"
        "You:",
        untrusted=("memories", "question")),
    TextReply(),
    fallback={"text": ""},
    sampling=Sampling(temperature=0.0, max_tokens=80),
)


@dataclass
class InterviewResult:
    """Per interviewed agent: ``answers [n] StringDType`` ("" when no reply could be had), ``outcome [n] int8``."""

    ids: np.ndarray
    answers: np.ndarray
    outcome: np.ndarray


def interview(ctx, ids, question, attributes: Sequence[str] = PUBLIC_ATTRIBUTES + PRIVATE_ATTRIBUTES + ("background",),
              k: int = 5, memory: type[LongTermMemoryBase] = LongTermMemory, store: bool = False) -> InterviewResult:
    """Ask agents ``ids`` ``question`` (one str, or ``[n]``) in one batched LLM call. Answers come from
    the chosen profile ``attributes`` and the ``k`` memories most relevant to the question (retrieved
    without touching them). State is unchanged unless ``store=True``, which memorizes the exchange.

    Resources: the :class:`~socius.llm.LLM`, the :class:`~socius.systems.memory.MemoryEmbedder`
    (when an agent has ``memory``; without one, no memories are recalled) and, to retrieve and to
    store, :class:`~socius.components.memory.MemoryParams` (optional)."""
    world = world_of(ctx)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    n = ids.shape[0]
    q = np.broadcast_to(np.asarray(question, dtype=STR), (n,)).copy() if np.ndim(question) == 0 else \
        np.asarray(question, dtype=STR).reshape(-1)
    if q.shape != (n,):
        raise ValueError(f"interview: {q.shape[0]} questions for {n} agents")
    profile = np.full(n, "", dtype=STR)
    has = world.has(ids, Profile) if n else np.zeros(0, bool)
    if has.any():
        profile[has] = render_profile(world, ids[has], attributes)
    memories = np.full(n, "(nothing yet)", dtype=STR)
    has_mem = world.has(ids, memory) if n else np.zeros(0, bool)
    if has_mem.any() and ctx.get_resource(MemoryEmbedder) is not None:
        rec = retrieve(ctx, ids[has_mem], q[has_mem], k=k, memory=memory, touch=False)
        memories[has_mem] = rec.joined()
    res = decide(ctx, INTERVIEW, ids, {"profile": profile, "memories": memories, "question": q})
    answers = np.asarray(res.values["text"], dtype=STR)
    if store and n:
        ok = np.strings.str_len(answers) > 0
        text = np.strings.add(np.strings.add(np.strings.add("I was asked: ", q), " I answered: "), answers)
        memorize(ctx, ids[ok], text[ok])
    return InterviewResult(ids, answers, res.outcome)


def search_agents(ctx, text, k: int = 10, attributes: Sequence[str] = ("occupation", "education", "background"),
                  embedder=None, ids=None) -> tuple[np.ndarray, np.ndarray]:
    """Agents whose rendered profile ``attributes`` are most similar to ``text``.

    ``text`` is one str (returns ``ids [m]``, ``scores [m]``, ``m = min(k, agents)``) or a list
    (returns ``[q, k]`` arrays padded with -1 / -inf). ``embedder`` defaults to the world's
    :class:`MemoryEmbedder`, else a 384-dim :class:`HashingEmbedder`. ``ids`` limits the candidates.

    Resources: the :class:`~socius.systems.memory.MemoryEmbedder` (optional; only without ``embedder``).
    """
    world = world_of(ctx)
    if embedder is None:
        res = ctx.get_resource(MemoryEmbedder)
        embedder = res.embedder if res is not None else HashingEmbedder(384)
    cand = world.ids_of(Profile) if ids is None else np.unique(np.asarray(ids, dtype=np.int64))
    single = isinstance(text, str)
    queries = np.asarray([text] if single else list(text), dtype=STR)
    docs = render_profile(world, cand, attributes)
    index = VectorIndex.build(cand, embedder.embed(docs))
    found, scores = index.search(embedder.embed(queries), k)
    if single:
        keep = found[0] >= 0
        return found[0][keep], scores[0][keep]
    return found, scores


__all__ = ["INTERVIEW", "InterviewResult", "interview", "search_agents"]
