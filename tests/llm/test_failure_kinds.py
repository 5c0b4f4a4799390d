"""Failed requests are counted by kind in the decision stats; engine progress reaches ``LLM.progress``."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.ecs import STR, World
from socius.llm import LLM, Decision, DecisionStats, JsonReply, Number, Outcome, Sampling, Template, decide
from socius.llm.engines.base import ERROR_KINDS, CompletionBatch, error_kinds
from socius.llm.engines.faults import FaultConfig, FaultEngine
from socius.llm.engines.mock import MockEngine, number_policy

TEMPLATE = Template("Agent {name}: pick a number.\n")
DECISION = Decision("g", TEMPLATE, JsonReply(number=Number(0, 100)), {"number": 50.0},
                    sampling=Sampling(temperature=1.0))
SAMPLES = {"timeout": "timeout after 3 attempt(s): APITimeoutError: x", "connection": "connection after 1: refused",
           "http_429": "http 429 after 4 attempt(s): RateLimitError", "http_5xx": "http 503: injected",
           "http_4xx": "http 404 after 1 attempt(s): NotFoundError", "other": "vLLM finished the request with 'abort'"}


@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(0, 40), min_size=len(ERROR_KINDS) + 1, max_size=len(ERROR_KINDS) + 1),
       seed=st.integers(0, 2 ** 31))
def test_error_kinds_counts_each_failed_request_once_by_its_prefix(counts, seed):
    texts = sum(([SAMPLES[k]] * c for k, c in zip(ERROR_KINDS, counts)), []) + [""] * counts[-1]
    errors = np.array(texts, dtype=STR)[np.random.default_rng(seed).permutation(len(texts))]
    got = error_kinds(errors)
    assert got == dict(zip(ERROR_KINDS, counts[:-1]))
    assert sum(got.values()) == int((errors != "").sum())


def test_decision_stats_count_failures_by_kind_and_agents_lose_nothing():
    w = World(seed=3)
    eng = FaultEngine(MockEngine(number_policy(0, 100), seed=3),
                      FaultConfig(rate=0.4, seed=5, kinds=("timeout", "http_5xx", "http_429", "garbage")),
                      sleep=lambda s: None)
    w.insert_resource(LLM({"": eng}))
    ids = w.spawn(3000)
    res = decide(w, DECISION, ids, {"name": ids.astype(STR)}, dedup=False)  # one request per agent
    row = w.resource(DecisionStats).rows[-1]
    assert row["extracted"] > 0                                   # garbage went through extraction
    assert row["failed_timeout"] == eng.injected["timeout"] > 0
    assert row["failed_http_5xx"] == eng.injected["http_5xx"] > 0
    assert row["failed_http_429"] == eng.injected["http_429"] > 0
    assert row["failed_connection"] == row["failed_http_4xx"] == row["failed_other"] == 0
    # every agent has exactly one outcome; a failed request (answer or extraction) is one failed agent
    assert row["ok"] + row["extracted"] + row["fallback"] + row["failed"] == 3000
    assert row["failed"] == res.count(Outcome.FAILED) == sum(row[f"failed_{k}"] for k in ERROR_KINDS)
    assert row["retries"] == 0


class _Stepping:
    """An engine that answers in steps of 10 requests and reports progress, with 2 tries per request."""

    name = "stepping"

    def __init__(self):
        self.progress = None
        self.inner = MockEngine(number_policy(0, 100))

    def generate(self, batch):
        out = self.inner.generate(batch)
        for done in range(10, len(batch), 10):
            if self.progress is not None:
                self.progress(done, len(batch))
        out.attempts = np.full(len(batch), 2, np.int32)
        return CompletionBatch(out.texts, out.prompt_tokens, out.output_tokens, out.latency_s, out.errors,
                               attempts=out.attempts)

    def close(self):
        pass


def test_engine_progress_reaches_the_llm_resource_across_parts():
    w = World(seed=1)
    eng = _Stepping()
    llm = LLM({"": eng})
    heard = []
    llm.progress = lambda decision, kind, done, total: heard.append((decision, kind, done, total))
    w.insert_resource(llm)
    ids = w.spawn(95)
    decide(w, DECISION, ids, {"name": ids.astype(STR)}, batch_size=40)
    assert eng.progress is None                                    # set for the call only
    assert {(d, k, t) for d, k, _, t in heard} == {("g", "answer", 95)}
    done = [x[2] for x in heard]
    assert done == sorted(done) and done[-1] == 95
    assert {40, 80, 95} <= set(done) and 10 in done and 50 in done  # parts' own reports, offset by the part
    assert w.resource(DecisionStats).rows[-1]["retries"] == 95      # 2 tries each: one retry per request
