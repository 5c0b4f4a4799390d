"""``socius label RUN_DIR`` (label replies in the terminal) and ``socius correct import`` (labels from CSV/Parquet)."""
from __future__ import annotations

COMMANDS: tuple = ()
