"""Streaming into the engine (``llm/stream.py``, ``llm/plan.py``): the requests, replies, response
log, stats and state of a streamed ``decide`` are those of one whole-batch call, and the engine
really starts before the rest of the batch is rendered."""
from __future__ import annotations

import glob
import os
import tempfile
import threading

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.ecs import STR, Component, Scalar, World
from socius.llm import LLM, Decision, DecisionStats, JsonReply, MockEngine, Number, Outcome, Sampling, Template, decide
from socius.llm.plan import RequestIndex
from socius.text.hashing import hash_strings

TEMPLATE = Template("Group {group}, topic {topic}. Say a number:")
COUNTS = ("requests", "completions", "prompt_tokens", "output_tokens", "retries", "ok", "extracted", "fallback",
          "failed", "failed_other")


class Score(Component):
    value = Scalar(np.float64)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """A folder the mock engine accepts as a LoRA adapter."""
    folder = tmp_path_factory.mktemp("adapter")
    (folder / "adapter_config.json").write_text("{}")
    return str(folder)


def policy(batch, seed):
    """Per completion: a number, some prose (extraction runs) and, for extraction prompts, a number or not."""
    e = batch.entities
    prompts = np.repeat(batch.prompts, batch.n)
    num = (e % 97).astype(STR)
    answer = np.where(e % 4 == 0, np.strings.add("about ", num), np.strings.add(np.strings.add('{"number": ', num), "}"))
    fixed = np.where(e % 3 == 0, "no idea", np.strings.add(np.strings.add('{"number": ', num), "}"))
    return np.where(np.strings.startswith(prompts, "Rewrite"), fixed, answer).astype(STR)


def run(ids, fields, temp, *, stream, chunk=None, dedup=True, fail=0.0, adapters=None, models=None,
        batch_size=None, folder=None):
    """One ``decide`` on a fresh world; returns (result, log tables without latency, stats row, state hash)."""
    with tempfile.TemporaryDirectory() as tmp:
        w = World(seed=5)
        w.spawn(int(ids.max()) + 1, {Score: {"value": np.zeros(int(ids.max()) + 1)}})
        engines = {m: MockEngine(policy, seed=5, fail_rate=fail) for m in ("", "m2")}
        for e in engines.values():
            e.load_adapter("a", folder)
        w.insert_resource(LLM(engines, log_dir=tmp))
        d = Decision("g", TEMPLATE, JsonReply(number=Number(0, 100)), {"number": -1.0},
                     sampling=Sampling(temperature=temp))
        res = decide(w, d, ids, fields, models=models, adapters=adapters, dedup=dedup, batch_size=batch_size,
                     stream=stream, stream_chunk=chunk)
        w.set(Score, ids, value=res.values["number"])
        w.resource(LLM).flush()
        logs = {os.path.basename(f): pq.read_table(f).drop_columns(["latency_s"])
                for f in glob.glob(os.path.join(tmp, "*.parquet"))}
        return res, logs, w.resource(DecisionStats).rows[-1], w.state_hash()


def assert_same(a, b):
    (ra, la, sa, ha), (rb, lb, sb, hb) = a, b
    np.testing.assert_array_equal(ra.values["number"], rb.values["number"])
    np.testing.assert_array_equal(ra.outcome, rb.outcome)
    assert ra.texts.equals(rb.texts)
    assert la.keys() == lb.keys() and la
    for name in la:
        assert la[name].equals(lb[name]), name
    assert {k: sa[k] for k in COUNTS} == {k: sb[k] for k in COUNTS}
    assert ha == hb


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), groups=st.integers(1, 400), chunk=st.integers(1, 70), temp=st.sampled_from([0.0, 0.8]),
       dedup=st.booleans(), fail=st.sampled_from([0.0, 0.25]), mix=st.sampled_from(["none", "adapters", "models"]),
       batch_size=st.sampled_from([None, 1, 5, 40]), seed=st.integers(0, 10 ** 6))
def test_streaming_changes_nothing_but_the_timing(adapter, n, groups, chunk, temp, dedup, fail, mix, batch_size,
                                                 seed):
    """Values, outcomes, texts, every response-log row, the counts and the state hash, streamed or not:
    any batch size, chunk size, share of identical prompts, sampling, failures, adapters or models."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.sort(rng.choice(3 * n, n, replace=False))).astype(np.int64)  # sparse, shuffled
    fields = {"group": ids % groups, "topic": "rates"}
    kw = dict(dedup=dedup, fail=fail, batch_size=batch_size, folder=adapter)
    if mix == "adapters":   # "zz" is not loaded: its requests fail alone
        kw["adapters"] = np.array(["", "a", "zz"], dtype=STR)[rng.integers(0, 3, n)]
    elif mix == "models":
        kw["models"] = np.array(["", "m2"], dtype=STR)[rng.integers(0, 2, n)]
    whole = run(ids, fields, temp, stream=False, **kw)
    streamed = run(ids, fields, temp, stream=True, chunk=chunk, **kw)
    assert_same(whole, streamed)
    assert whole[2]["stream_calls"] == 0 and streamed[2]["stream_calls"] >= 1


@pytest.mark.parametrize("temp", [0.0, 0.8])
@pytest.mark.parametrize("chunk", [1, 3, 50])
def test_streamed_dedup_is_exact_when_hashes_collide(monkeypatch, adapter, temp, chunk):
    """With hashes folded onto 3 values, prompts are still grouped by text, across chunks too."""
    import socius.llm.pipeline as pipeline
    import socius.llm.stream as stream
    ids = np.arange(120, dtype=np.int64)
    fields = {"group": ids % 17, "topic": "x"}
    for module in (pipeline, stream):   # the whole-batch path hashes in the pipeline, the streamed one in stream
        monkeypatch.setattr(module, "hash_strings", lambda t: hash_strings(t) % np.uint64(3))
    whole = run(ids, fields, temp, stream=False, folder=adapter)
    streamed = run(ids, fields, temp, stream=True, chunk=chunk, folder=adapter)
    assert_same(whole, streamed)
    assert streamed[1]["tick-00000000-g-answer.parquet"].num_rows == 17


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 200), kinds=st.integers(1, 6), seed=st.integers(0, 10 ** 6), arrow=st.booleans(),
       subset=st.booleans())
def test_prompts_rendered_once_per_field_combination_are_every_agents_prompt(n, kinds, seed, arrow, subset):
    """``Prompts.distinct``: the distinct prompts, taken by ``inverse``, are exactly the agents' own
    prompts — for repeated strings (nulls too), ints, floats (-0.0 and 0.0 render apart, NaN),
    format specs that map different values to one text, and any subset of agents."""
    import pyarrow as pa
    from socius.llm.plan import Prompts
    rng = np.random.default_rng(seed)
    words = np.array(["a", "b", "", "ü", "a b"], dtype=object)[rng.integers(0, 5, n) % kinds]
    floats = np.array([0.0, -0.0, 0.04, 0.01, np.nan, 1e300])[rng.integers(0, 6, n) % kinds]
    ints = rng.integers(0, kinds, n) * 10 ** 12
    text = pa.array(words.tolist(), pa.large_string()) if arrow else words.astype(STR)
    if arrow and n > 1:
        text = pa.array([None if i % 7 == 0 else w for i, w in enumerate(words.tolist())], pa.large_string())
    t = Template("w={w} f={f} g={f:.1f} i={i} c={c}.")
    fields = {"w": text, "f": floats, "i": ints, "c": "const"}
    rows = np.sort(rng.choice(n, max(1, n // 2), replace=False)) if subset else np.arange(n)
    want = t.render_arrow({k: (v.take(pa.array(rows)) if isinstance(v, pa.Array) else
                               v[rows] if isinstance(v, np.ndarray) else v) for k, v in fields.items()}, len(rows))
    prompts, inverse = Prompts(t, fields, n).distinct(rows)
    got = prompts if inverse is None else prompts.take(pa.array(inverse))
    assert got.equals(want)
    if inverse is not None:
        assert len(prompts) <= len(rows) / 2


def test_request_index_keeps_colliding_texts_apart():
    import pyarrow as pa
    idx = RequestIndex()
    texts = pa.array(["a", "b", "c"], pa.large_string())
    same = np.zeros(3, np.uint64)                       # every text on one hash
    idx.add(texts, same, np.zeros(3, np.int64))
    probe = pa.array(["c", "d", "a", "b", "a"], pa.large_string())
    assert idx.lookup(probe, np.zeros(5, np.uint64), np.zeros(5, np.int64)).tolist() == [2, -1, 0, 1, 0]
    # the adapter is part of the key
    assert idx.lookup(probe, np.zeros(5, np.uint64), np.ones(5, np.int64)).tolist() == [-1] * 5


def test_the_engine_starts_before_the_last_chunk_is_rendered():
    """A greedy decision in 4 chunks: from its second chunk on, rendering waits (at most 30 s) for the
    engine's first call, and the engine notes how many chunks had been rendered when it was called."""
    called = threading.Event()
    seen: list[int] = []

    class Watched(Template):
        def render_arrow(self, values, n):
            renders = self.__dict__.setdefault("renders", [])
            if renders:
                called.wait(timeout=30)
            renders.append(called.is_set())
            return super().render_arrow(values, n)

    class Recording(MockEngine):
        def generate(self, batch):
            seen.append(len(template.__dict__.get("renders", [])))
            called.set()
            return super().generate(batch)

    template = Watched("Agent {i}. Say a number:")
    w = World(seed=1)
    ids = w.spawn(40)
    w.insert_resource(LLM({"": Recording(policy, seed=1)}))
    d = Decision("g", template, JsonReply(number=Number(0, 100)), {"number": -1.0}, extract=None)
    res = decide(w, d, ids, {"i": ids}, stream_chunk=10)
    assert seen[0] == 1                                   # called with one chunk of four rendered
    assert template.renders == [False, True, True, True]  # rendering went on while the engine worked
    assert len(seen) == 4 and res.count(Outcome.OK) + res.count(Outcome.FALLBACK) == 40


def test_progress_reports_stay_below_the_total_until_the_end():
    reports = []
    w = World(seed=1)
    ids = w.spawn(500)
    w.insert_resource(LLM({"": MockEngine(policy, seed=1)}))
    w.resource(LLM).progress = lambda dec, kind, done, total: reports.append((kind, done, total))
    d = Decision("g", TEMPLATE, JsonReply(number=Number(0, 100)), {"number": -1.0}, extract=None)
    decide(w, d, ids, {"group": ids % 300, "topic": "x"}, stream_chunk=64)
    requests = w.resource(DecisionStats).rows[-1]["requests"]
    assert reports[-1] == ("answer", requests, requests)
    assert all(done < total for _, done, total in reports[:-1])
    assert [d for _, d, _ in reports] == sorted(d for _, d, _ in reports)


def test_who_streams():
    """Calls stream into an engine that declares ``stream_chunk`` (the mock does not unless given one)
    or when a decision asks (``stream=True``, ``stream_chunk``); ``stream=False`` and cached
    decisions never do; ``stream_chunk`` sets the calls' size."""
    from socius.llm import ResponseCache
    from socius.llm.engines.mock import Latency
    w = World(seed=1)
    ids = w.spawn(50)
    slow = MockEngine(policy, seed=1, latency=Latency(0.5), sleep=lambda s: None)
    assert slow.stream_chunk == 0
    with tempfile.TemporaryDirectory() as tmp:
        w.insert_resource(LLM({"": MockEngine(policy, seed=1), "five": MockEngine(policy, seed=1, stream_chunk=5),
                               "slow": slow}, cache=ResponseCache(tmp)))
        greedy = Decision("g", TEMPLATE, JsonReply(number=Number(0, 100)), {"number": -1.0}, extract=None)
        sampled = Decision("s", TEMPLATE, JsonReply(number=Number(0, 100)), {"number": -1.0}, extract=None,
                           sampling=Sampling(temperature=0.7))
        cached = Decision("c", TEMPLATE, JsonReply(number=Number(0, 100)), {"number": -1.0}, extract=None,
                          cache=True)
        f = {"group": ids % 10, "topic": "x"}
        on = {m: {"models": np.full(50, m, dtype=STR)} for m in ("five", "slow")}
        calls = []
        for dec, kw in ((greedy, {}), (greedy, {"stream": True}), (greedy, {"stream_chunk": 7}),
                        (greedy, {"stream_chunk": 7, "stream": False}), (cached, {"stream": True}),
                        (greedy, on["five"]), (greedy, {**on["five"], "stream": False}), (sampled, on["five"]),
                        (sampled, {**on["five"], "dedup": False}), (sampled, {**on["five"], "stream": True}),
                        (greedy, on["slow"])):
            decide(w, dec, ids, f, **kw)
            calls.append(w.resource(DecisionStats).rows[-1]["stream_calls"])
    assert calls == [0, 1, 2, 0, 0, 2, 0, 2, 10, 2, 0]
    with pytest.raises(ValueError, match="stream_chunk"):
        decide(w, greedy, ids, f, stream=True, stream_chunk=-1)


def test_an_engine_error_in_a_streamed_call_reaches_the_caller():
    class Broken(MockEngine):
        def generate(self, batch):
            if self.calls >= 1:
                raise RuntimeError("engine went away")
            return super().generate(batch)

    w = World(seed=1)
    ids = w.spawn(100)
    w.insert_resource(LLM({"": Broken(policy, seed=1, concurrent_calls=1)}))
    d = Decision("g", TEMPLATE, JsonReply(number=Number(0, 100)), {"number": -1.0}, extract=None)
    with pytest.raises(RuntimeError, match="went away"):
        decide(w, d, ids, {"group": ids, "topic": "x"}, stream_chunk=10)


@pytest.mark.parametrize("own_chunk", [0, 7])
def test_decision_stream_is_the_default_of_decide(own_chunk):
    """``Decision(stream=…)`` switches streaming when ``decide`` is given no ``stream``; ``decide``'s own wins."""
    ids = np.arange(40, dtype=np.int64)

    def calls(d_stream, stream=None):
        w = World(seed=5)
        w.spawn(40)
        w.insert_resource(LLM({"": MockEngine(policy, seed=5, stream_chunk=own_chunk)}))
        d = Decision("g", TEMPLATE, JsonReply(number=Number(0, 100)), {"number": -1.0}, stream=d_stream)
        decide(w, d, ids, {"group": ids % 9, "topic": "x"}, stream=stream, stream_chunk=None if own_chunk else 4)
        return w.resource(DecisionStats).rows[-1]["stream_calls"]

    assert calls(True) >= 1 and calls(False) == 0
    assert calls(True, stream=False) == 0 and calls(False, stream=True) >= 1
