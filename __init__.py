"""Socius: social simulation with LLM-driven agents on a columnar ECS kernel.

The repository root is this package: each top-level folder imports as
``socius.<folder>`` (``socius.ecs``, ``socius.llm``, …). This module is the
prelude — everything a scenario author needs, under one import::

    import socius as so
    from socius import World, Component, Scalar, system, Decision, decide, Scenario

Names resolve lazily (PEP 562), so ``import socius.ecs`` never pulls in the
LLM stack, MPI or the application. ``PRELUDE`` maps each name to the module
that defines it; the modules are the place to read the docs.
"""
from __future__ import annotations

import importlib

#: name -> defining module
PRELUDE = {
    **dict.fromkeys(("World", "Component", "Scalar", "Vector", "String", "Ragged", "RaggedArray", "Message",
                     "MessageBatch", "Resource", "system", "SystemContext", "EntityRng", "STR", "world_of",
                     "world_generator"), "socius.ecs"),
    **dict.fromkeys(("LLM", "Decision", "DecisionResult", "decide", "Template", "JsonReply", "Number", "Text",
                     "TextReply", "Choice", "ChoiceReply", "Sampling", "RequestBatch", "MockEngine", "choice_policy",
                     "defuse"), "socius.llm"),
    **dict.fromkeys(("Profile", "ProfileFields", "ModelChoice", "LongTermMemory", "ShortTermMemory", "Reflection",
                     "render_profile"), "socius.components"),
    **dict.fromkeys(("memorize", "retrieve", "recent", "reflect_system", "MemoryParams", "MemoryEmbedder", "Group",
                     "environment_systems", "ensure_environment", "intervene", "interview", "find_agents",
                     "search_agents", "schedule_interventions", "parse_interventions", "apply_interventions"),
                    "socius.systems"),
    **dict.fromkeys(("sample_population", "parse_population"), "socius.population"),
    **dict.fromkeys(("int_sum", "exact_sum", "exact_mean", "bincount", "histogram", "gather_ordered",
                     "owned_block", "world_ranks"), "socius.mpi"),
    **dict.fromkeys(("Scenario", "Command"), "socius.app.registry"),
    **dict.fromkeys(("history_columns", "is_lead", "pyplot", "gather_table", "write_table"), "socius.app.report"),
    **dict.fromkeys(("ConfigError", "MissingExtraError", "EngineSetupError"), "socius.errors"),
}

__all__ = sorted(PRELUDE)


def __getattr__(name: str):
    module = PRELUDE.get(name)
    if module is None:
        raise AttributeError(f"module 'socius' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(PRELUDE))
