"""Memory: retrieval equals a brute-force per-agent reference, eviction keeps capacity and follows
its rule, the ring buffer keeps the newest, reflection is batched, retrieval without touch changes nothing."""
from collections import deque

import numba
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from socius.components.memory import LongTermMemory, LongTermMemoryBase, Reflection, ShortTermMemory, \
    ShortTermMemoryBase, embedding_block
from socius.components.profile import Profile
from socius.ecs import STR, World
from socius.llm import LLM, DecisionStats
from socius.text.embed import HashingEmbedder
from socius.llm import MockEngine
from socius.systems import (MemoryEmbedder, MemoryParams, due_to_reflect, eviction_slots, join_lines, memorize, memory_policy, observe, recent, reflect, relevance, relevance_top, remember, retrieval_scores, retrieve, rule_importance, score_top, slot_texts, top_slots)


class SmallMemory(LongTermMemoryBase, capacity=6, dim=12):
    """6 memories of 12 dims, for property tests."""


class WideMemory(LongTermMemoryBase, capacity=5, dim=70):
    """5 memories of 70 dims: one 64-lane vector step and a scalar tail in the dot product."""


class Ring(ShortTermMemoryBase, capacity=4):
    """4 recent observations."""


def reference_scores(tick, imp, last, emb, q, now, p):
    """Per agent, plain Python over its stored memories (float64 throughout)."""
    n, k = tick.shape
    out = np.full((n, k), -np.inf)
    for i in range(n):
        stored = [s for s in range(k) if tick[i, s] >= 0]
        if not stored:
            continue
        parts = []
        for vals in ([p.decay ** max(now - max(last[i, s], tick[i, s]), 0) for s in stored],
                     [imp[i, s] / 10.0 for s in stored],
                     [float(np.dot(emb[i, s].astype(np.float64), q[i].astype(np.float64))) for s in stored]):
            lo, hi = min(vals), max(vals)
            parts.append([(v - lo) / (hi - lo) if hi > lo else 0.5 for v in vals])
        for j, s in enumerate(stored):
            out[i, s] = p.w_recency * parts[0][j] + p.w_importance * parts[1][j] + p.w_relevance * parts[2][j]
    return out


def filled_world(seed, n, per_agent, now, memory=SmallMemory):
    rng = np.random.default_rng(seed)
    w = World(seed=seed)
    ids = w.spawn(n, {memory: {}})
    for _ in range(per_agent):
        who = ids[rng.random(n) < 0.7]
        t = int(rng.integers(0, now + 1))
        vec = rng.normal(size=(who.size, memory.dim)).astype(np.float32)
        imp = rng.integers(1, 11, size=who.size).astype(np.float32)
        remember(w, who, np.array([f"m{t}"] * who.size, dtype=STR), imp, vec, memory, now=t)
    return w, ids, rng


@given(seed=st.integers(0, 2**31), n=st.integers(1, 12), per_agent=st.integers(0, 10), k=st.integers(1, 8),
       memory=st.sampled_from([SmallMemory, WideMemory]), wr=st.sampled_from([0.0, 1.0, 0.5]),
       wi=st.sampled_from([0.0, 1.0, 2.0]), wv=st.sampled_from([0.0, 1.0, 3.0]))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_retrieval_matches_brute_force_reference(seed, n, per_agent, k, memory, wr, wi, wv):
    now = 50
    w, ids, rng = filled_world(seed, n, per_agent, now, memory)
    p = MemoryParams(w_recency=wr, w_importance=wi, w_relevance=wv, decay=0.9)
    q = rng.normal(size=(n, memory.dim)).astype(np.float32)
    tick, imp = w.get(memory, "tick"), w.get(memory, "importance")
    last = w.get(memory, "last_access")
    emb = embedding_block(w.get(memory, "embedding"), memory)
    ref = reference_scores(tick, imp, last, emb, q, now, p)
    got = retrieve(w, ids, q, k=k, memory=memory, params=p, now=now, touch=False)
    kk = min(k, memory.capacity)
    assert got.slots.shape == (n, kk)
    for i in range(n):
        stored = int((tick[i] >= 0).sum())
        best = np.sort(ref[i][np.isfinite(ref[i])])[::-1][:kk]
        taken = got.slots[i][got.slots[i] >= 0]
        assert taken.size == min(kk, stored)
        assert np.allclose(ref[i][taken], best, atol=1e-5)          # the same top-k scores
        assert np.allclose(got.scores[i][: taken.size], best, atol=1e-5)
        order = sorted(range(memory.capacity), key=lambda s: (-ref[i][s], s))[: taken.size]
        gaps = -np.diff(np.sort(ref[i][np.isfinite(ref[i])])[::-1])
        if gaps.size == 0 or gaps.min() > 1e-4:                       # no near-ties: the same slots, same order
            assert taken.tolist() == order
        texts = got.texts[i][: taken.size]
        stored_texts = slot_texts(w, ids[i:i + 1], memory)[0]
        assert all(t == stored_texts[s] for t, s in zip(texts, taken))


@given(seed=st.integers(0, 2**31), rows=st.integers(1, 20), d=st.sampled_from([3, 19, 64, 150]))
@settings(max_examples=25, deadline=None)
def test_relevance_kernel_matches_float64_dot(seed, rows, d):
    rng = np.random.default_rng(seed)
    k = 3  # d below, at and above the 64 vector lanes, with and without a scalar tail
    block = (rng.normal(size=(rows, k * d)) * rng.choice([1e-6, 1e-3, 1.0], size=(rows, k * d))).astype(np.float16)
    q = rng.normal(size=(rows, d)).astype(np.float32)
    pick = rng.permutation(rows)
    got = relevance(block, pick, q, k, d)
    ref = np.einsum("nkd,nd->nk", block.reshape(rows, k, d)[pick].astype(np.float64), q.astype(np.float64))
    assert np.allclose(got, ref, atol=1e-4, rtol=1e-5)


def _random_columns(rng, n, cap, d):
    block = rng.normal(size=(n, cap * d)).astype(np.float16)
    tick = np.where(rng.random((n, cap)) < 0.3, -1, rng.integers(0, 20, (n, cap)))
    last = np.where(tick >= 0, tick + rng.integers(0, 5, (n, cap)), -1)
    imp = rng.integers(1, 11, (n, cap)).astype(np.float32)
    return block, tick, imp, last


@given(seed=st.integers(0, 2**31), n=st.integers(1, 40), k=st.integers(1, 8), d=st.sampled_from([7, 64, 150]),
       now=st.sampled_from([0, 25, 5000]))
@settings(max_examples=30, deadline=None)
def test_fused_pass_equals_relevance_then_scoring(seed, n, k, d, now):
    """relevance_top (one pass, trailing empty slots skipped) == relevance then score_top, bit for bit."""
    rng = np.random.default_rng(seed)
    cap = 6
    block, tick, imp, last = _random_columns(rng, n + 3, cap, d)
    rows = rng.permutation(n + 3)[:n]
    q = rng.normal(size=(n, d)).astype(np.float32)
    p = MemoryParams(decay=0.999, w_recency=0.5, w_importance=2.0)  # now=5000: ages past the decay table
    slots, scores = relevance_top(block, rows, q, tick, imp, last, now, p, k, cap, d)
    ref_slots, ref_scores = score_top(relevance(block, rows, q, cap, d), rows, tick, imp, last, now, p, k)
    assert np.array_equal(slots, ref_slots)
    assert np.array_equal(scores, ref_scores)


@given(seed=st.integers(0, 2**31), n=st.integers(2, 12), per_agent=st.integers(0, 10))
@settings(max_examples=20, deadline=None)
def test_retrieval_of_any_subset_and_order_matches_the_whole_batch(seed, n, per_agent):
    """A whole tick's agents (texts copied by slot masks) and any subset or order (gathered)
    retrieve the same memories and texts per agent."""
    w, ids, rng = filled_world(seed, n, per_agent, 50, WideMemory)
    q = rng.normal(size=(n, WideMemory.dim)).astype(np.float32)
    whole = retrieve(w, ids, q, k=4, memory=WideMemory, now=50, touch=False)
    pick = rng.permutation(n)[: int(rng.integers(1, n + 1))]
    part = retrieve(w, ids[pick], q[pick], k=4, memory=WideMemory, now=50, touch=False)
    assert np.array_equal(part.slots, whole.slots[pick])
    assert np.array_equal(part.texts, whole.texts[pick])
    stored = whole.slots >= 0
    assert np.array_equal(np.strings.str_len(whole.texts) > 0, stored)


def test_fused_pass_does_not_depend_on_thread_count():
    rng = np.random.default_rng(7)
    n, cap, d = 1000, 8, 70
    block, tick, imp, last = _random_columns(rng, n, cap, d)
    rows = rng.permutation(n)
    q = rng.normal(size=(n, d)).astype(np.float32)
    before = numba.get_num_threads()
    try:
        runs = []
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            runs.append(relevance_top(block, rows, q, tick, imp, last, 30, MemoryParams(), 5, cap, d))
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(a, b) for run in runs for a, b in zip(run, runs[0]))
    assert (runs[0][0] >= 0).any()


@given(seed=st.integers(0, 2**31), steps=st.integers(1, 30), decay=st.sampled_from([1.0, 0.9, 0.5]))
@settings(max_examples=40, deadline=None)
def test_eviction_keeps_capacity_and_evicts_lowest_retention(seed, steps, decay):
    rng = np.random.default_rng(seed)
    w = World(seed=0)
    ids = w.spawn(5, {SmallMemory: {}})
    w.insert_resource(MemoryParams(decay=decay))
    added = np.zeros(5, dtype=int)
    for t in range(steps):
        who = ids[rng.random(5) < 0.6]
        tick0, imp0, last0 = (w.get(SmallMemory, c, who) for c in ("tick", "importance", "last_access"))
        imp = rng.integers(1, 11, size=who.size).astype(np.float32)
        slots = remember(w, who, np.array([f"t{t}"] * who.size, dtype=STR), imp,
                         rng.normal(size=(who.size, SmallMemory.dim)), SmallMemory, now=t)
        for j in range(who.size):  # the stated rule, agent by agent
            empty = np.flatnonzero(tick0[j] < 0)
            if empty.size:
                assert slots[j] == empty[0]
            else:
                ret = [imp0[j, s] * decay ** (t - max(last0[j, s], tick0[j, s])) for s in range(SmallMemory.capacity)]
                assert slots[j] == int(np.argmin(ret))
        added[np.searchsorted(ids, who)] += 1
        tick = w.get(SmallMemory, "tick")
        assert tick.shape == (5, SmallMemory.capacity)
        assert np.array_equal((tick >= 0).sum(axis=1), np.minimum(added, SmallMemory.capacity))
    assert w.get(SmallMemory, "embedding").shape == (5, SmallMemory.capacity * SmallMemory.dim)


def test_eviction_slots_rule_directly():
    tick = np.array([[0, 1, -1], [0, 1, 2], [5, 5, 5]])
    imp = np.array([[9, 9, 0], [9, 2, 9], [3, 3, 3]], dtype=np.float32)
    last = tick.copy()
    assert eviction_slots(tick, imp, last, 3, 0.9).tolist() == [2, 1, 0]


def test_repeated_ids_store_in_order():
    w = World(seed=0)
    ids = w.spawn(2, {SmallMemory: {}})
    who = np.array([ids[0], ids[1], ids[0], ids[0]])
    slots = remember(w, who, ["a", "b", "c", "d"], 5.0, np.ones((4, SmallMemory.dim)), SmallMemory)
    assert slots.tolist() == [0, 0, 1, 2]
    assert slot_texts(w, ids[:1], SmallMemory)[0, :3].tolist() == ["a", "c", "d"]


@given(st.lists(st.tuples(st.integers(0, 2), st.text(alphabet="xyz", min_size=1, max_size=3)), max_size=30))
@settings(max_examples=40, deadline=None)
def test_ring_buffer_keeps_newest_first(events):
    w = World(seed=0)
    ids = w.spawn(3, {Ring: {}})
    ref = [deque(maxlen=Ring.capacity) for _ in range(3)]
    for who, text in events:
        observe(w, ids[who:who + 1], [text], 2.0, Ring)
        ref[who].append(text)
    got = recent(w, ids, memory=Ring)
    for i in range(3):
        want = list(reversed(ref[i])) + [""] * (Ring.capacity - len(ref[i]))
        assert got[i].tolist() == want


def memory_world(n=6, **params):
    w = World(seed=7)
    ids = w.spawn(n, {Profile: {"name": np.array([f"P{i}" for i in range(n)], dtype=STR)},
                      LongTermMemory: {}, ShortTermMemory: {}, Reflection: {}})
    w.insert_resource(MemoryParams(**params))
    w.insert_resource(MemoryEmbedder(HashingEmbedder(dim=LongTermMemory.dim)))
    engine = MockEngine(memory_policy, seed=1)
    w.insert_resource(LLM({"mock": engine}))
    return w, ids, engine


def test_retrieve_without_touch_leaves_state_and_with_touch_updates_access():
    w, ids, _ = memory_world()
    for t in range(5):
        memorize(w, ids, np.array([f"went to the market on day {t}"] * ids.size, dtype=STR))
        w.step(1)
    h = w.state_hash()
    a = retrieve(w, ids, np.array(["market"] * ids.size, dtype=STR), k=3, touch=False)
    assert w.state_hash() == h and a.texts.shape == (ids.size, 3)
    b = retrieve(w, ids, np.array(["market"] * ids.size, dtype=STR), k=3)
    assert w.state_hash() != h
    last = w.get(LongTermMemory, "last_access")
    assert np.all(np.take_along_axis(last, b.slots, axis=1) == w.tick)


def test_relevance_picks_the_matching_memory():
    w, ids, _ = memory_world(n=2, w_recency=0.0, w_importance=0.0)
    for text in ["bought apples at the market", "my sister got married in june", "the train was late again"]:
        memorize(w, ids, np.array([text, text], dtype=STR), importance=5.0)
    rec = retrieve(w, ids, np.array(["who got married", "train late"], dtype=STR), k=1)
    assert rec.texts[:, 0].tolist() == ["my sister got married in june", "the train was late again"]
    assert "- my sister got married in june" == rec.joined()[0]


def test_reflection_by_threshold_is_one_batched_call_and_stores_an_insight():
    w, ids, engine = memory_world(reflect_threshold=10.0, importance="llm")
    memorize(w, ids[:3], np.array(["my father died in the hospital"] * 3, dtype=STR))
    memorize(w, ids[3:], np.array(["ate toast"] * 3, dtype=STR))
    imp = w.get(Reflection, "pending")
    assert np.all((imp >= 1) & (imp <= 10))
    memorize(w, ids[:3], np.array(["I lost my job and had an accident"] * 3, dtype=STR))
    due = due_to_reflect(w)
    assert np.array_equal(due, ids[:3])  # two poignant memories pass 10; toast stays below
    calls = engine.calls
    did = reflect(w)
    assert np.array_equal(did, due) and engine.calls == calls + 1
    assert np.all(w.get(Reflection, "pending", did) == 0) and np.all(w.get(Reflection, "count", did) == 1)
    newest = recent(w, did, 3, LongTermMemory)  # the insight shares its tick with the last observation
    assert all(any(t.startswith("I keep coming back to this:") for t in row) for row in newest.tolist())
    assert np.all((w.get(LongTermMemory, "importance", did) == 8.0).sum(axis=1) == 1)
    stats = w.resource(DecisionStats).table().to_pylist()
    assert {r["decision"] for r in stats} == {"memory_importance", "memory_reflect"}


def test_reflection_every_r_ticks():
    w, ids, _ = memory_world(reflect_every=3)
    memorize(w, ids, np.array(["walked the dog"] * ids.size, dtype=STR))
    seen = []
    for _ in range(7):
        seen.append(reflect(w).size)
        w.step(1)
    assert seen == [0, 0, 0, ids.size, 0, 0, ids.size]


def test_rule_importance_and_join_lines():
    imp = rule_importance(np.array(["ate lunch", "my dog died and I was fired", ""], dtype=STR))
    assert imp[1] > imp[0] >= 1 and imp.max() <= 10 and imp.dtype == np.float32
    j = join_lines(np.array([["a", "", "b"], ["", "", ""]], dtype=STR))
    assert j.tolist() == ["- a\n- b", "(nothing yet)"]


def test_bad_input_is_named():
    w, ids, _ = memory_world(n=2)
    with pytest.raises(ValueError, match="importance"):
        remember(w, ids, ["a", "b"], 11.0, np.ones((2, 384)))
    with pytest.raises(ValueError, match="embeddings"):
        remember(w, ids, ["a", "b"], 5.0, np.ones((2, 3)))
    with pytest.raises(ValueError, match="decay"):
        MemoryParams(decay=0)
    with pytest.raises(ValueError, match="importance"):
        MemoryParams(importance="vibes")
    other = w.spawn(1)
    with pytest.raises(Exception, match="has no LongTermMemory"):
        retrieve(w, other, ["x"])


@given(seed=st.integers(0, 2**31), n=st.integers(1, 30), k=st.integers(1, 8))
@settings(max_examples=30, deadline=None)
def test_fused_scoring_equals_numpy_scoring(seed, n, k):
    rng = np.random.default_rng(seed)
    cap = 6
    tick = np.where(rng.random((n, cap)) < 0.3, -1, rng.integers(0, 20, (n, cap)))
    last = np.where(tick >= 0, tick + rng.integers(0, 5, (n, cap)), -1)
    imp = rng.integers(1, 11, (n, cap)).astype(np.float32)
    rel = rng.choice([0.1, 0.5, rng.normal()], size=(n, cap)).astype(np.float32)  # ties included
    rows = rng.permutation(n)
    p = MemoryParams(decay=0.8, w_recency=0.5, w_importance=2.0)
    slots, scores = score_top(rel, rows, tick, imp, last, 25, p, k)
    ref = retrieval_scores(rel, tick[rows], imp[rows], last[rows], 25, p)
    ref_slots = top_slots(ref, k)
    assert np.array_equal(slots, ref_slots)
    assert np.allclose(np.where(slots >= 0, scores, 0), np.where(ref_slots >= 0, np.take_along_axis(
        ref, np.maximum(ref_slots, 0), axis=1), 0), atol=1e-12)


def test_empty_batches_and_agents_without_memories():
    w, ids, _ = memory_world(n=3)
    none = np.zeros(0, dtype=np.int64)
    assert retrieve(w, none, []).texts.shape == (0, 5)
    assert memorize(w, none, []).shape == (0,)
    rec = retrieve(w, ids, ["anything"] * 3)
    assert np.all(rec.slots == -1) and rec.joined().tolist() == ["(nothing yet)"] * 3
    assert reflect(w, ids).size == 0  # nothing to reflect on


def test_long_texts_are_stored_cut_at_the_slot_width_on_a_character_boundary():
    class Narrow(LongTermMemoryBase, capacity=2, dim=4, text_bytes=8):
        """Texts of at most 8 bytes."""

    w = World(seed=0)
    ids = w.spawn(1, {Narrow: {}})
    remember(w, np.repeat(ids, 2), ["déjà vu again", "short"], 5.0, np.ones((2, 4)), Narrow)
    assert slot_texts(w, ids, Narrow)[0].tolist() == ["déjà v", "short"]   # "déjà v" is 8 bytes
    rec = retrieve(w, ids, np.ones((1, 4)), k=2, memory=Narrow)
    assert sorted(rec.texts[0].tolist()) == ["déjà v", "short"] and rec.texts_arrow.type == pa.large_string()


@given(texts=st.lists(st.sampled_from(["", "a", "rain in june", "héllo\nthere"]), min_size=0, max_size=24),
       j=st.integers(1, 4), bullet=st.sampled_from(["- ", "* "]), empty=st.sampled_from(["(nothing yet)", ""]))
@settings(max_examples=40, deadline=None)
def test_join_lines_writes_one_bullet_line_per_non_empty_text(texts, j, bullet, empty):
    from socius.systems.retrieval import join_lines_arrow
    n = len(texts) // j
    grid = np.array(texts[: n * j], dtype=STR).reshape(n, j)
    want = ["\n".join(bullet + t for t in row if t) or empty for row in grid.tolist()]
    flat = pa.array(grid.reshape(-1).tolist(), type=pa.large_string())
    assert join_lines_arrow(flat, (n, j), bullet, empty).to_pylist() == want
    assert join_lines(grid, bullet, empty).tolist() == want
