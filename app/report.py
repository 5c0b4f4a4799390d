"""What every scenario's metrics and report share: per-tick rows as columns, and a headless pyplot.

A scenario keeps its per-tick figures as a list of row dicts in a snapshot-able
resource (``history``); :func:`history_columns` turns them into the columns
``metrics.parquet`` is written from. :func:`pyplot` is matplotlib's pyplot on
the file-only Agg backend, or ``None`` when matplotlib (the ``plots`` extra)
is not installed — a report then skips its figure and keeps its tables.

Under MPI the runner calls a scenario's ``report(world, out)`` on every rank.
World-wide values (resources) are the same everywhere, so a report built
from them writes only where :func:`is_lead`; a table of per-agent rows is
first collected with :func:`gather_table` (collective: every rank calls it),
which returns the whole table on rank 0 and ``None`` elsewhere.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["history_columns", "pyplot", "is_lead", "gather_table", "write_table"]


def is_lead(world) -> bool:
    """True on the rank that writes a run's files (rank 0; the only rank without MPI)."""
    from socius.mpi import world_ranks
    return world_ranks(world).rank == 0


def gather_table(world, table: pa.Table, sort_by: list[str]) -> pa.Table | None:
    """Collective: every rank's rows of ``table`` on rank 0, sorted by ``sort_by``; ``None`` elsewhere."""
    from socius.mpi import world_ranks
    ctx = world_ranks(world)
    if ctx.size > 1:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        data, counts = ctx.allgatherv(np.frombuffer(sink.getvalue(), dtype=np.uint8))
        if ctx.rank != 0:
            return None
        bounds = np.concatenate([[0], np.cumsum(counts)])
        table = pa.concat_tables([pa.ipc.open_stream(pa.py_buffer(data[bounds[i]:bounds[i + 1]].tobytes()))
                                  .read_all() for i in range(ctx.size)])
    return table.sort_by([(k, "ascending") for k in sort_by]) if table.num_rows else table


def write_table(table: pa.Table | None, path: Path) -> None:
    """Write ``table`` atomically (nothing for ``None``, i.e. on a rank that is not the lead)."""
    if table is None:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


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
