"""Standard component schemas shared by scenarios (profile, memory, social graph, model choice, …)."""
from .memory import LongTermMemory, LongTermMemoryBase, Reflection, ShortTermMemory, ShortTermMemoryBase
from .model import ModelChoice
from .profile import PRIVATE_ATTRIBUTES, PUBLIC_ATTRIBUTES, Profile, ProfileFields, render_profile

__all__ = ["LongTermMemory", "LongTermMemoryBase", "ModelChoice", "PRIVATE_ATTRIBUTES", "PUBLIC_ATTRIBUTES", "Profile",
           "ProfileFields", "Reflection", "ShortTermMemory", "ShortTermMemoryBase", "render_profile"]
