"""``socius fork RUN_DIR --at TICK --out DIR``: a new run branching from a snapshot tick."""
from __future__ import annotations

COMMANDS: tuple = ()
