"""The standard systems and the library calls they are made of: memory and the environment.

Tick logic sits here, beside the schemas it runs over in
:mod:`socius.components`. Scenario code imports from the package::

    from socius.systems import memorize, retrieve, intervene, environment_systems
"""
from socius.systems.environment import (INTERVIEW, Group, Intervention, InterventionError, InterventionSchedule,
                                        InterviewResult, SharedState, StateChanged, Watching, apply_interventions,
                                        ensure_environment, environment_policy, environment_systems, find_agents,
                                        get_state, group_key, group_values, intervene, interview, notify_watchers,
                                        parse_interventions, resolve_target, schedule_interventions, search_agents,
                                        set_state, watch)
from socius.systems.memory import (IMPORTANCE, IMPORTANCE_MODES, REFLECT, MemoryEmbedder, MemoryParams, Recall,
                                   due_to_reflect, eviction_slots, join_lines, memorize, memory_policy, observe, recent,
                                   reflect, reflect_system, relevance, relevance_top, remember, retrieval_scores,
                                   retrieve, rule_importance, score_importance, score_top, slot_texts, top_slots)

__all__ = ["Group", "IMPORTANCE", "IMPORTANCE_MODES", "INTERVIEW", "Intervention", "InterventionError",
           "InterventionSchedule", "InterviewResult", "MemoryEmbedder", "MemoryParams", "REFLECT", "Recall",
           "SharedState", "StateChanged", "Watching", "apply_interventions", "due_to_reflect", "ensure_environment",
           "environment_policy", "environment_systems", "eviction_slots", "find_agents", "get_state", "group_key",
           "group_values", "intervene", "interview", "join_lines", "memorize", "memory_policy", "notify_watchers",
           "observe", "parse_interventions", "recent", "reflect", "reflect_system", "relevance", "relevance_top",
           "remember", "resolve_target", "retrieval_scores", "retrieve", "rule_importance", "schedule_interventions",
           "score_importance", "score_top", "search_agents", "set_state", "slot_texts", "top_slots", "watch"]
