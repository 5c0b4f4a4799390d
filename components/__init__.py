"""Standard component schemas shared by scenarios (profile, memory, environment, model choice, …).

Components, messages and the resources that are state; the tick logic over
them is in :mod:`socius.systems`, module for module (``memory``, ``environment``).
"""
from .environment import Group, InterventionSchedule, SharedState, StateChanged, Watching
from .memory import (IMPORTANCE_MODES, LongTermMemory, LongTermMemoryBase, MemoryParams, Reflection, ShortTermMemory,
                     ShortTermMemoryBase)
from .model import ModelChoice
from .profile import PRIVATE_ATTRIBUTES, PUBLIC_ATTRIBUTES, Profile, ProfileFields, render_profile

__all__ = ["Group", "IMPORTANCE_MODES", "InterventionSchedule", "LongTermMemory", "LongTermMemoryBase", "MemoryParams",
           "ModelChoice", "PRIVATE_ATTRIBUTES", "PUBLIC_ATTRIBUTES", "Profile", "ProfileFields", "Reflection",
           "SharedState", "ShortTermMemory", "ShortTermMemoryBase", "StateChanged", "Watching", "render_profile"]
