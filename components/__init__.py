"""Standard component schemas shared by scenarios (profile, memory, social graph, model choice, …)."""
from .model import ModelChoice

__all__ = ["ModelChoice"]
