"""The ``openai`` engine's batched path (many prompts per completions request) against the bench's
local dummy server (``socius.bench.dummy_server``, no model), and the chunk planning it rests on."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.bench.dummy_server import reply_number
from socius.ecs import STR
from socius.llm import RequestBatch, Sampling
from socius.llm.engines.http_chunks import map_choices, plan_chunks, split_count


# -- chunk planning (pure) -------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "a1", "a2"]), st.integers(1, 3), st.integers(0, 2),
                          st.integers(0, 50)), min_size=1, max_size=60),
       st.integers(1, 9), st.integers(1, 120), st.integers(1, 8), st.booleans())
def test_plan_chunks_partitions_rows_by_key_and_limits(rows, max_prompts, max_chars, spread, sampled):
    adapters = np.array([r[0] for r in rows], dtype=STR)
    n = np.array([r[1] for r in rows], dtype=np.int32)
    seeds = np.array([r[2] for r in rows], dtype=np.int64)
    chars = np.array([r[3] for r in rows], dtype=np.int64)
    chunks = plan_chunks(adapters, n, seeds if sampled else None, chars, max_prompts, max_chars, spread)
    allrows = np.concatenate(chunks)
    assert sorted(allrows.tolist()) == list(range(len(rows)))           # every row exactly once
    for c in chunks:
        assert 1 <= len(c) <= max_prompts
        assert (np.diff(c) > 0).all()                                   # ascending: reply order is row order
        assert len(set(adapters[c].tolist())) == 1 and len(set(n[c].tolist())) == 1
        if sampled:
            assert len(set(seeds[c].tolist())) == 1
        assert len(c) == 1 or chars[c].sum() <= max_chars               # an oversized prompt travels alone


def test_plan_chunks_spreads_one_group_over_about_spread_chunks():
    r = 1000
    chunks = plan_chunks(np.full(r, "", dtype=STR), np.ones(r, np.int32), None, np.full(r, 10), 256, 10 ** 9, 8)
    assert [len(c) for c in chunks] == [125] * 8
    chunks = plan_chunks(np.full(r, "", dtype=STR), np.ones(r, np.int32), None, np.full(r, 10), 100, 10 ** 9, 2)
    assert [len(c) for c in chunks] == [100] * 10                        # the count limit wins
    chunks = plan_chunks(np.full(r, "", dtype=STR), np.ones(r, np.int32), None, np.full(r, 10), 256, 95, 1)
    assert {len(c) for c in chunks} <= {9, 1} and sum(map(len, chunks)) == r   # the size limit cuts


def test_map_choices_places_by_index_with_n():
    k, n = 3, 2
    choices = [{"index": i, "text": f"t{i}"} for i in range(k * n)][::-1]   # any order on the wire
    assert map_choices({"choices": choices}, k, n) == [f"t{i}" for i in range(6)]
    with pytest.raises(ValueError, match="5 choices for 3 prompts x n=2"):
        map_choices({"choices": choices[:5]}, k, n)
    with pytest.raises(ValueError, match="repeated"):
        map_choices({"choices": choices[:5] + [choices[0]]}, k, n)
    chat = [{"index": 0, "message": {"content": "x"}}]
    assert map_choices({"choices": chat}, 1, 1, chat=True) == ["x"]


@given(st.integers(0, 10 ** 6), st.lists(st.integers(0, 1000), min_size=1, max_size=50))
def test_split_count_keeps_the_sum(total, weights):
    out = split_count(total, np.array(weights))
    assert out.sum() == total and (out >= 0).all() and out.dtype == np.int32


# -- against the dummy server ----------------------------------------------------

def _start(*flags: str, delay: float = 0.05):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "socius.bench.dummy_server", "--port", str(port),
                             "--delay", str(delay), *flags])
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("dummy server did not start")


@pytest.fixture
def server(request):
    pytest.importorskip("openai")
    flags = getattr(request, "param", ())
    proc, url = _start(*flags)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def _stats(url: str) -> dict:
    with urllib.request.urlopen(url + "/stats", timeout=5) as r:
        return json.loads(r.read())


def _engine(url: str, **kw):
    from socius.llm.engines.openai import OpenAIEngine
    return OpenAIEngine({"base_url": url, "model": "dummy", "backoff_base_s": 0.001, "timeout_s": 10, **kw})


def _batch(k: int = 12, temperature: float = 0.0, n=None, adapters=None, prompts=None):
    prompts = prompts or [f"person {i} guesses" for i in range(k)]
    k = len(prompts)
    n = n or [1 + i % 3 for i in range(k)]
    seeds = [100 + i % 4 for i in range(k)]
    return RequestBatch(prompts, Sampling(temperature=temperature, max_tokens=8), "m", n=n, seeds=seeds,
                        entities=np.arange(sum(n)), adapters=adapters)


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_batched_and_per_request_paths_give_identical_completions(server, temperature):
    adapters = ["", "a1", "", "a2"] * 3
    batch = _batch(temperature=temperature, adapters=adapters)
    with _engine(server, prompt_lists="off") as one, _engine(server, prompt_lists="auto",
                                                             max_batch_prompts=3) as many:
        a, b = one.generate(batch), many.generate(batch)
        assert one.http_path == "per-request" and many.http_path == "batched"
        assert many.stats["list_calls"] >= 2 and one.stats["list_calls"] == 0
    assert (a.errors == "").all() and (b.errors == "").all()
    assert a.texts.tolist() == b.texts.tolist()
    # and both are what the server means for each (prompt, model, seed, choice)
    want = []
    for i, p in enumerate(batch.prompts.tolist()):
        model = adapters[i] or "dummy"
        for j in range(int(batch.n[i])):
            sampled = temperature > 0
            num = reply_number(p, model, int(batch.seeds[i]), j if sampled else 0, sampled)
            want.append('{"number": %d}' % num)
    assert b.texts.tolist() == want
    assert b.output_tokens.sum() > 0 and b.prompt_tokens.sum() == 10 * len(batch)   # usage sums kept


def test_chunks_respect_count_and_size_limits(server):
    prompts = [("x" * 40) + str(i) for i in range(20)]
    with _engine(server, max_batch_prompts=4, max_batch_chars=10 ** 6) as eng:
        out = eng.generate(_batch(prompts=prompts, n=[1] * 20))
        assert eng.stats["list_calls"] == 5 and (out.errors == "").all()
    with _engine(server, max_batch_prompts=100, max_batch_chars=100) as eng:   # two 42-char prompts fit
        out = eng.generate(_batch(prompts=prompts, n=[1] * 20))
        assert eng.stats["list_calls"] == 10 and (out.errors == "").all()
    assert _stats(server)["prompts"] == 40


def test_a_chunk_failing_as_a_whole_falls_back_prompt_by_prompt(server):
    prompts = [f"p{i}" for i in range(8)]
    prompts[5] = "a BAD prompt"
    with _engine(server, max_batch_prompts=8, max_retries=1) as eng:
        out = eng.generate(_batch(prompts=prompts, n=[1] * 8))
        assert eng.stats["list_fallbacks"] == 1
        assert eng.last_attempts.tolist() == [2] * 5 + [2] + [2] * 2      # the list once, then alone once
        assert eng.http_path == "unknown"          # one bad prompt says nothing about lists
    assert out.errors[5].startswith("http 400 after 2 attempt(s)")
    assert (np.delete(out.errors, 5) == "").all()
    assert out.texts[0] == '{"number": %d}' % reply_number("p0", "dummy")


@pytest.mark.parametrize("server", [("--flaky-lists", "1")], indirect=True)
def test_a_flaky_chunk_is_retried_as_a_whole(server):
    with _engine(server, max_batch_prompts=50, max_retries=2) as eng:
        out = eng.generate(_batch(k=6, n=[1] * 6))
        assert (out.errors == "").all() and eng.last_attempts.tolist() == [2] * 6
        assert eng.stats["list_calls"] == 2 and eng.stats["retries"] == 6 and eng.http_path == "batched"


@pytest.mark.parametrize("server", [("--refuse-lists",)], indirect=True)
def test_a_server_that_refuses_lists_is_detected_once(server, caplog):
    with _engine(server, max_batch_prompts=4, concurrency=1) as eng:
        with caplog.at_level("WARNING", logger="socius.llm.openai"):
            first = eng.generate(_batch(k=12))
        assert eng.http_path == "per-request"
        assert "refused a prompt list" in caplog.text
        lists_after_first = _stats(server)["list_requests"]
        assert 1 <= lists_after_first <= 3        # later chunks saw the verdict before sending
        second = eng.generate(_batch(k=12))
    assert _stats(server)["list_requests"] == lists_after_first
    assert (first.errors == "").all() and first.texts.tolist() == second.texts.tolist()


@pytest.mark.parametrize("server", [("--first-only",)], indirect=True)
def test_a_server_that_answers_only_the_first_prompt_is_detected(server):
    with _engine(server) as eng:
        out = eng.generate(_batch(k=5, n=[1] * 5))
        assert eng.http_path == "per-request" and eng.stats["list_fallbacks"] == 1
    assert (out.errors == "").all()
    assert out.texts.tolist() == ['{"number": %d}' % reply_number(f"person {i} guesses", "dummy") for i in range(5)]


def test_adapters_route_by_model_on_the_batched_path(server):
    adapters = ["a1", "", "a1", "a2", ""]
    with _engine(server) as eng:
        out = eng.generate(_batch(k=5, n=[1] * 5, adapters=adapters))
        assert eng.stats["list_calls"] == 3                               # one list per model
    assert _stats(server)["models"] == {"a1": 2, "dummy": 2, "a2": 1}
    assert out.texts[3] == '{"number": %d}' % reply_number("person 3 guesses", "a2")


def test_refused_connections_are_reported_per_prompt_after_chunk_retries():
    pytest.importorskip("openai")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with _engine(f"http://127.0.0.1:{port}/v1", max_retries=2, timeout_s=5) as eng:
        out = eng.generate(_batch(k=3, n=[1, 2, 1]))
        assert eng.last_attempts.tolist() == [4, 4, 4]       # 3 as a list, then 1 alone each
    assert out.failed.all() and all(e.startswith("connection after 4 attempt(s)") for e in out.errors.tolist())
