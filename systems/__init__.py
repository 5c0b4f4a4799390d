"""The standard systems and the library calls they are made of: memory and the environment.

Tick logic sits here, beside the schemas it runs over in
:mod:`socius.components`; one module per concept:

* memory — ``memory`` (store, evict, read back; mirrors ``components/memory.py``),
  ``importance`` (rating memories), ``relevance`` (fp16 dot-product kernels),
  ``scoring`` (scores and top-k), ``retrieval`` (retrieve, Recall, prompt lines),
  ``reflection`` (reflect and its system);
* environment — ``environment`` (shared state and listeners; mirrors
  ``components/environment.py``), ``targets`` (what an intervention names and
  ``where`` conditions), ``interventions`` (intervene, schedule, apply),
  ``interview`` (interviews and search);
* decisions — ``models`` (each asker's model and adapter for ``decide``);
* ``mock`` — mock-engine policies for the decisions above.

Library calls take the system context (outside a tick, the world) and fetch
the resources they use through it, so a system calling them declares them;
each call's docstring names its resources. Scenario code imports from the
package::

    from socius.systems import memorize, retrieve, intervene, environment_systems
"""
from socius.components.environment import Group, InterventionSchedule, SharedState, StateChanged, Watching
from socius.components.memory import IMPORTANCE_MODES, MemoryParams
from socius.systems.environment import (InterventionError, ensure_environment, get_state, group_key, group_values,
                                        notify_watchers, set_state, watch)
from socius.systems.importance import IMPORTANCE, rule_importance, score_importance
from socius.systems.interventions import (Intervention, apply_interventions, environment_systems, intervene,
                                          parse_interventions, schedule_interventions)
from socius.systems.interview import INTERVIEW, InterviewResult, interview, search_agents
from socius.systems.memory import MemoryEmbedder, eviction_slots, memorize, observe, recent, remember, slot_texts
from socius.systems.mock import environment_policy, memory_policy
from socius.systems.models import model_choice
from socius.systems.reflection import REFLECT, due_to_reflect, reflect, reflect_system
from socius.systems.relevance import relevance
from socius.systems.retrieval import Recall, join_lines, retrieve
from socius.systems.scoring import relevance_top, retrieval_scores, score_top, top_slots
from socius.systems.targets import find_agents, resolve_target

__all__ = ["Group", "IMPORTANCE", "IMPORTANCE_MODES", "INTERVIEW", "Intervention", "InterventionError",
           "InterventionSchedule", "InterviewResult", "MemoryEmbedder", "MemoryParams", "REFLECT", "Recall",
           "SharedState", "StateChanged", "Watching", "apply_interventions", "due_to_reflect", "ensure_environment",
           "environment_policy", "environment_systems", "eviction_slots", "find_agents", "get_state", "group_key",
           "group_values", "intervene", "interview", "join_lines", "memorize", "memory_policy", "model_choice",
           "notify_watchers", "observe", "parse_interventions", "recent", "reflect", "reflect_system", "relevance",
           "relevance_top", "remember", "resolve_target", "retrieval_scores", "retrieve", "rule_importance",
           "schedule_interventions", "score_importance", "score_top", "search_agents", "set_state", "slot_texts",
           "top_slots", "watch"]
