"""``socius correct judge RUN_DIR``: score and revise a run's replies with a rule or an LLM judge."""
from __future__ import annotations

COMMANDS: tuple = ()
