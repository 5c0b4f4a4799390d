"""Which LLM each agent uses (mixture of models) and which LoRA adapter, if any."""
from __future__ import annotations

from socius.ecs import Component, String


class ModelChoice(Component):
    """``model``: a key of the run's engines (``""`` = the default); ``adapter``: a LoRA name (``""`` = none)."""

    model = String()
    adapter = String()
