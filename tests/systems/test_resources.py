"""Library calls fetch their resources through the system context: a system must declare them."""
import numpy as np
import pytest

from socius.components import LongTermMemory, MemoryParams, SharedState, ShortTermMemory
from socius.ecs import AccessError, World, system
from socius.llm import LLM, MockEngine
from socius.systems import (MemoryEmbedder, environment_policy, get_state, interview, intervene, memorize, recent,
                            reflect, retrieve, set_state)
from socius.text.embed import HashingEmbedder


def memory_world():
    w = World(seed=3)
    ids = w.spawn(3, {LongTermMemory: {}, ShortTermMemory: {}})
    w.insert_resource(MemoryParams(reflect_every=1))
    w.insert_resource(MemoryEmbedder(HashingEmbedder(384)))
    w.insert_resource(LLM({"mock": MockEngine(environment_policy, seed=2)}))
    return w, ids


def run_once(w, *systems):
    w.add_systems(*systems)
    w.step()


def test_undeclared_resources_are_refused_as_undeclared_columns_are():
    w, ids = memory_world()

    @system(writes=(LongTermMemory, ShortTermMemory))
    def store(ctx):
        memorize(ctx, ids, ["a storm", "a film", "a dinner"], 3.0)

    with pytest.raises(AccessError, match="MemoryEmbedder"):
        run_once(w, store)

    w, ids = memory_world()

    @system(writes=(LongTermMemory,), resources=(MemoryEmbedder,))
    def recall(ctx):
        retrieve(ctx, ids, ["storm"] * 3)

    with pytest.raises(AccessError, match="MemoryParams"):
        run_once(w, recall)

    w, ids = memory_world()

    @system()
    def steer(ctx):
        intervene(ctx, "MemoryParams.decay", 0.5)

    with pytest.raises(AccessError, match="MemoryParams"):
        run_once(w, steer)


def test_declared_resources_run_and_match_the_world_calls():
    texts = ["I lost my job", "a film about the sea", "dinner with a friend"]
    w, ids = memory_world()
    seen = {}

    @system(writes=(LongTermMemory, ShortTermMemory), resources=(MemoryParams, MemoryEmbedder, LLM, SharedState))
    def everything(ctx):
        memorize(ctx, ids, texts)
        seen["recall"] = retrieve(ctx, ids, ["job"] * 3).texts
        seen["recent"] = recent(ctx, ids)
        seen["reflected"] = reflect(ctx, ids)
        seen["answers"] = interview(ctx, ids, "How are you?").answers
        set_state(ctx, "price", 2.0)
        intervene(ctx, "MemoryParams.decay", 0.5)

    run_once(w, everything)
    ref, rids = memory_world()
    memorize(ref, rids, texts)
    assert np.array_equal(seen["recall"], retrieve(ref, rids, ["job"] * 3).texts)
    assert np.array_equal(seen["recent"], recent(ref, rids))
    assert np.array_equal(seen["reflected"], reflect(ref, rids))
    assert np.array_equal(seen["answers"], interview(ref, rids, "How are you?").answers)
    assert get_state(w, "price") == 2.0 and w.resource(MemoryParams).decay == 0.5
