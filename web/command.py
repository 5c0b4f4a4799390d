"""``socius serve RUN_DIR...``: the dashboard for finished and running runs."""
from __future__ import annotations

COMMANDS: tuple = ()
