"""Which model and LoRA adapter each decision goes to: the :class:`ModelChoice` columns of the askers.

A decision system passes them to :func:`~socius.llm.decide`, so a mixture of
models and an adapter switch (:mod:`socius.correct.switch`, which sets
``ModelChoice.adapter``) reach every scenario's decisions::

    @system(reads=(Profile, ModelChoice), resources=(LLM,))
    def ask(ctx):
        v = ctx.query(Profile)
        models, adapters = model_choice(ctx, v.ids)
        res = decide(ctx, ASK, v.ids, {...}, models=models, adapters=adapters)

The askers need not all hold a ``ModelChoice`` (the switch gives one to the
agents it moves, a room or an opening never has one): those without it get
``""`` (the default engine, the base model). A column nobody asking has a
non-empty value in comes back as ``None``, so ``decide`` keeps its fast path
and a world without ``ModelChoice`` runs exactly as before. One sorted
lookup (:func:`~socius.ecs.storage.find_rows`) over the component's table,
no per-agent work.
"""
from __future__ import annotations

import numpy as np

from socius.components import ModelChoice
from socius.ecs import STR
from socius.ecs.storage import find_rows

__all__ = ["model_choice"]


def model_choice(ctx, ids) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(models, adapters)`` for the agents ``ids`` (``[n] int64``, any order, repeats allowed): each
    ``[n] StringDType`` — the agent's ``ModelChoice.model`` / ``.adapter``, ``""`` where it has no
    ``ModelChoice`` — or ``None`` when every value would be ``""``.

    ``ctx``: the calling system's context (it declares ``reads=(ModelChoice, …)``) or, outside a
    tick, the world. Under MPI each rank looks up the agents it holds (the ones it asks for)."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    v = ctx.query(ModelChoice)
    if not len(v) or not ids.shape[0]:
        return None, None
    rows, here = find_rows(v.ids, ids)
    out = []
    for col in (v[ModelChoice].model, v[ModelChoice].adapter):
        if not (col != "").any():  # nobody holds a value: no gather at all
            out.append(None)
            continue
        got = np.where(here, col[rows], "").astype(STR)
        out.append(got if (got != "").any() else None)
    return out[0], out[1]
