"""Memory components: capacities are part of the schema; the embedding block reshapes without copying."""
import numpy as np
import pytest

from socius.components.memory import LongTermMemory, LongTermMemoryBase, ShortTermMemory, embedding_block
from socius.ecs import World


def test_default_capacities_and_columns():
    assert (LongTermMemory.capacity, LongTermMemory.dim, LongTermMemory.text_bytes, ShortTermMemory.capacity) == \
        (32, 384, 256, 8)
    cols = LongTermMemory.columns()
    assert cols["text"].dim == 32 * 256 and cols["text"].dtype == np.uint8 and cols["text_len"].dim == 32
    assert [f"text_{s}" for s in range(8)] == [c for c in ShortTermMemory.columns() if c.startswith("text_")]
    assert cols["embedding"].dim == 32 * 384 and cols["embedding"].dtype == np.float16


def test_custom_capacity_and_block_view():
    class Tiny(LongTermMemoryBase, capacity=3, dim=4):
        """3 memories of 4 dims."""

    w = World(seed=0)
    w.spawn(2, {Tiny: {}})
    flat = w.query(Tiny).get(Tiny, "embedding")
    block = embedding_block(flat, Tiny)
    assert block.shape == (2, 3, 4) and np.shares_memory(block, flat)
    assert np.all(w.get(Tiny, "tick") == -1)
    with pytest.raises(ValueError, match="capacity"):
        class Bad(LongTermMemoryBase, capacity=0):
            """none"""
