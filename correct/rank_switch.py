"""A switch decided on one rank reaches every rank at the same tick (the online loop under MPI).

The online loop (:mod:`.loop`) runs on rank 0 only: it labels, trains and
decides when an adapter is ready. The :class:`~.switch.AdapterSchedule` must
stay the same on every rank, so rank 0 does not add the switch itself; it
*queues* it (:func:`~.switch.queue_switch`, into the plain :class:`~.switch.SwitchLog`)
for the next tick. At the start of that tick, in phase ``pre``,
:func:`share_queued` (called by :func:`~.switch.apply_adapter_switches` on
every rank of a live LLM run over several ranks) hands rank 0's queued rows to
every rank in one ``allgatherv`` — a few bytes, usually none — and every rank
adds them to its schedule, so each switches the agents it holds at that tick
and the schedule, the snapshots and the state hash are those of one rank.

The same exchange carries a *flush* request: while a loop is on (rank 0 sets
``SwitchLog.flush``), every rank waits for its response log to be written
before the exchange, so when rank 0 reads the log at a later boundary, every
rank's files of the ticks before the last one are on disk (a round under MPI
labels up to the tick before its boundary; see :mod:`.loop`).

A queued row is also written to ``switches.json`` at once, so a resume from
the snapshot taken at the boundary where it was queued still applies it.
"""
from __future__ import annotations

import json

import numpy as np

__all__ = ["share_queued"]


def share_queued(log, llm, ranks) -> list[dict]:
    """Every rank: rank 0's queued rows (emptied there); when rank 0 asks, every rank then flushes its
    response log and waits for the others. One ``allgatherv`` of rank 0's JSON (the others send nothing)."""
    payload = json.dumps({"rows": log.queued, "flush": bool(log.flush)}).encode() if ranks.rank == 0 else b""
    data, counts = ranks.allgatherv(np.frombuffer(payload, dtype=np.uint8))
    got = json.loads(data[:counts[0]].tobytes().decode())
    if got["flush"]:
        if llm is not None:
            llm.flush()
        ranks.barrier()  # rank 0 reads the log after this: every rank's earlier files are written
    if ranks.rank == 0:
        log.queued = []
    return got["rows"]
