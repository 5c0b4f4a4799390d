"""``socius correct train RUN_DIR``: train a LoRA adapter from a run's labels (TRL + PEFT)."""
from __future__ import annotations

COMMANDS: tuple = ()
