"""Request order and deduplication at realistic sizes (``llm/pipeline.py``).

Thousands of agents, handed over in a shuffled storage order, with groups of
identical prompts far larger than the 16 rows from which numpy's default sort
is no longer stable: distinct prompts must go to the engine in the order of
their first (lowest-ID) agent, identical ones merged, the agents of a sampled
request in ID order, and the engine's batch must be the same whatever the
order of storage.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.ecs import STR, World
from socius.llm import LLM, Decision, DecisionStats, JsonReply, MockEngine, Number, Sampling, Template, decide
from socius.llm.engines.base import RequestBatch
from socius.text.hashing import hash_strings

TEMPLATE = Template("Agent group {group}, topic {topic}. Say a number:")
SCHEMA = JsonReply(number=Number(0, 1e9))


class Recording:
    """An engine that keeps every batch it is sent and answers with the mock's ``policy``."""

    def __init__(self, policy, seed=1):
        self.inner = MockEngine(policy, seed=seed)
        self.name = "recording"
        self.batches = []

    def generate(self, batch):
        self.batches.append(batch)
        return self.inner.generate(batch)

    def close(self):
        pass


def entity_policy(batch, seed):
    """Each completion answers with the entity it was generated for (greedy: the prompt's key)."""
    return np.strings.add(np.strings.add('{"number": ', (batch.entities % 10**9).astype(STR)), "}")


def run(ids, fields, temp, dedup=True, policy=entity_policy):
    w = World(seed=7)
    w.spawn(int(ids.max()) + 1)
    eng = Recording(policy)
    w.insert_resource(LLM({"": eng}))
    d = Decision("g", TEMPLATE, SCHEMA, {"number": -1.0}, sampling=Sampling(temperature=temp), extract=None)
    res = decide(w, d, ids, fields, dedup=dedup)
    assert len(eng.batches) == 1
    return res, eng.batches[0], w.resource(DecisionStats).rows[-1]


def population(n, groups, seed):
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64)
    group = rng.integers(0, groups, n)          # groups of ~n/groups agents, scattered over the IDs
    return ids, {"group": group, "topic": "rates"}, group


def shuffled(ids, fields, perm):
    return ids[perm], {k: (v[perm] if isinstance(v, np.ndarray) else v) for k, v in fields.items()}


@pytest.mark.parametrize("temp", [0.0, 0.9])
def test_thousands_of_agents_in_shuffled_order(temp):
    n, groups = 6000, 150
    ids, fields, group = population(n, groups, 1)
    perm = np.random.default_rng(2).permutation(n)
    sids, sfields = shuffled(ids, fields, perm)
    res, batch, row = run(sids, sfields, temp)
    # identical prompts merged: one request per distinct prompt
    present = np.unique(group)
    assert len(batch) == row["requests"] == present.shape[0]
    # requests in the order of their first (lowest-ID) agent
    first_id = np.array([ids[group == g].min() for g in present])
    order = np.argsort(first_id)
    want_prompts = TEMPLATE.render({"group": present[order], "topic": "rates"}, present.shape[0])
    assert batch.prompts.tolist() == want_prompts.tolist()
    firsts = batch.entities[batch.offsets[:-1]]
    assert (np.diff(firsts) > 0).all()
    assert firsts.tolist() == first_id[order].tolist()
    if temp > 0:  # one completion per agent, the request's agents in ID order
        assert batch.n.tolist() == [int((group == g).sum()) for g in present[order]]
        for i in range(len(batch)):
            ents = batch.entities[batch.offsets[i]:batch.offsets[i + 1]]
            assert ents.tolist() == np.sort(ids[group == present[order][i]]).tolist()
        # every agent took its own completion: the one generated for its ID
        np.testing.assert_array_equal(res.values["number"], sids.astype(np.float64))
    else:
        assert (batch.n == 1).all()
        # every agent got its prompt's one reply
        key = (hash_strings(batch.prompts) >> np.uint64(2)).astype(np.int64) % 10**9
        reply_of_group = dict(zip(present[order].tolist(), key.tolist()))
        np.testing.assert_array_equal(res.values["number"], [reply_of_group[g] for g in group[perm]])


@pytest.mark.parametrize("temp", [0.0, 0.9])
def test_the_batch_does_not_depend_on_the_order_of_storage(temp):
    n = 5000
    ids, fields, _ = population(n, 97, 3)
    a_res, a, _ = run(ids, fields, temp)
    for seed in (4, 5):
        perm = np.random.default_rng(seed).permutation(n)
        b_res, b, _ = run(*shuffled(ids, fields, perm), temp)
        assert a.prompts.tolist() == b.prompts.tolist()
        for col in ("n", "seeds", "entities", "offsets"):
            np.testing.assert_array_equal(getattr(a, col), getattr(b, col), err_msg=col)
        np.testing.assert_array_equal(a_res.values["number"][perm], b_res.values["number"])


def test_distinct_prompts_go_in_id_order_from_any_storage_order():
    """Every prompt distinct, IDs sparse and shuffled: the requests follow the IDs."""
    rng = np.random.default_rng(6)
    ids = np.sort(rng.choice(50_000, 4000, replace=False)).astype(np.int64)
    fields = {"group": ids * 3, "topic": "x"}
    perm = rng.permutation(ids.shape[0])
    res, batch, row = run(*shuffled(ids, fields, perm), 0.9)
    assert len(batch) == 4000 and (batch.n == 1).all()
    np.testing.assert_array_equal(batch.entities, ids)
    assert batch.prompts.tolist() == TEMPLATE.render({"group": ids * 3, "topic": "x"}, 4000).tolist()
    np.testing.assert_array_equal(res.values["number"], ids[perm].astype(np.float64))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(17, 1500), groups=st.integers(1, 40), seed=st.integers(0, 10**6), temp=st.sampled_from([0.0, 0.9]))
def test_dedup_then_fan_out_is_undeduplicated_for_every_agent(n, groups, seed, temp):
    """Sampled: each agent's completion is keyed by its own ID, deduplicated or not; greedy: each agent
    gets its prompt's reply — in any storage order."""
    ids, fields, group = population(n, groups, seed)
    perm = np.random.default_rng(seed + 1).permutation(n)
    sids, sfields = shuffled(ids, fields, perm)
    a, batch, row = run(sids, sfields, temp)
    b, _, _ = run(sids, sfields, temp, dedup=False)
    np.testing.assert_array_equal(a.values["number"], b.values["number"])
    assert row["requests"] == np.unique(group).shape[0]
    assert (np.diff(batch.entities[batch.offsets[:-1]]) > 0).all()


@pytest.mark.parametrize("temp", [0.0, 0.9])
def test_streamed_calls_are_the_whole_batch_cut_in_order(temp):
    """Thousands of agents in shuffled order, streamed in calls of 500 requests (greedy: planned chunk
    by chunk while rendering): the calls, end to end, are exactly the whole-batch call."""
    n, groups = 6000, 900
    ids, fields, _ = population(n, groups, 7)
    perm = np.random.default_rng(8).permutation(n)
    sids, sfields = shuffled(ids, fields, perm)
    whole_res, whole, _ = run(sids, sfields, temp)
    w = World(seed=7)
    w.spawn(n)
    eng = Recording(entity_policy)
    w.insert_resource(LLM({"": eng}))
    d = Decision("g", TEMPLATE, SCHEMA, {"number": -1.0}, sampling=Sampling(temperature=temp), extract=None)
    res = decide(w, d, sids, sfields, stream_chunk=500)
    assert len(eng.batches) > 1 and all(0 < len(b) <= 500 for b in eng.batches)
    joined = RequestBatch.concat(eng.batches, eng.batches[0])
    assert joined.prompts.tolist() == whole.prompts.tolist()
    for col in ("n", "seeds", "entities", "offsets", "adapters"):
        np.testing.assert_array_equal(getattr(joined, col), getattr(whole, col), err_msg=col)
    np.testing.assert_array_equal(res.values["number"], whole_res.values["number"])
