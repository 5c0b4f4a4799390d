"""Entity IDs: global int64 values handed out in a deterministic order.

An ID is never reused: the allocator only counts up, so an entity keeps its
ID for life, in snapshots and on whichever MPI rank holds it, and a stale ID
can never alias a newer entity (there is no index/generation pair to get
wrong). Spawning ``n`` entities is one ``arange``.
"""
from __future__ import annotations

import numpy as np


class EntityAllocator:
    """Hands out consecutive IDs starting at ``next_id``."""

    __slots__ = ("next_id",)

    def __init__(self, next_id: int = 0):
        self.next_id = int(next_id)

    def allocate(self, n: int) -> np.ndarray:
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += int(n)
        return ids
