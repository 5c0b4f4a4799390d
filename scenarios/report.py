"""What every scenario's metrics and report share: per-tick rows as columns, and a headless pyplot.

A scenario keeps its per-tick figures as a list of row dicts in a snapshot-able
resource (``history``); :func:`history_columns` turns them into the columns
``metrics.parquet`` is written from. :func:`pyplot` is matplotlib's pyplot on
the file-only Agg backend, or ``None`` when matplotlib (the ``plots`` extra)
is not installed — a report then skips its figure and keeps its tables.
"""
from __future__ import annotations

import numpy as np

__all__ = ["history_columns", "pyplot"]


def history_columns(history: list[dict]) -> dict[str, np.ndarray]:
    """``{column: [ticks]}`` from per-tick row dicts (the first row's keys); ``{}`` when empty."""
    if not history:
        return {}
    return {k: np.array([r[k] for r in history]) for k in history[0]}


def pyplot():
    """matplotlib.pyplot on the Agg backend, or ``None`` without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt
