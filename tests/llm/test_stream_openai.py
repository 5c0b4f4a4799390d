"""Streaming into the ``openai`` engine (its ``submit``: several calls out at once on its own event
loop) against the bench's dummy server: the same replies and log as whole-batch calls, and one
``concurrency`` bound over all the calls."""
from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import pyarrow.parquet as pq
import pytest

from socius.ecs import World
from socius.llm import LLM, Decision, DecisionStats, JsonReply, Number, Sampling, Template, decide


def _start():
    pytest.importorskip("openai")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "socius.bench.dummy_server", "--port", str(port),
                             "--delay", "0.05"])
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def server():
    proc, url = _start()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def _max_in_flight(url: str) -> int:
    with urllib.request.urlopen(url + "/stats", timeout=5) as r:
        return json.loads(r.read())["max_in_flight"]


def run(url, temp, stream, **cfg):
    from socius.llm.engines.openai import OpenAIEngine
    with tempfile.TemporaryDirectory() as tmp:
        w = World(seed=4)
        ids = w.spawn(300)
        eng = OpenAIEngine({"base_url": url, "model": "dummy", "timeout_s": 10, "list_seeds": "group", **cfg})
        w.insert_resource(LLM({"": eng}, log_dir=tmp))
        d = Decision("g", Template("Agent {i} of group {g}. Say a number:"), JsonReply(number=Number(0, 100)),
                     {"number": -1.0}, sampling=Sampling(temperature=temp, max_tokens=8), extract=None)
        res = decide(w, d, ids[::-1], {"i": ids[::-1] % 120, "g": ids[::-1] % 7}, stream=stream, stream_chunk=16)
        w.resource(LLM).close()
        logs = {os.path.basename(f): pq.read_table(f).drop_columns(["latency_s", "prompt_tokens", "output_tokens"])
                for f in glob.glob(os.path.join(tmp, "*.parquet"))}
        return res, logs, w.resource(DecisionStats).rows[-1]


@pytest.mark.parametrize("temp", [0.0, 0.7])
def test_streamed_calls_give_the_whole_batch_replies(server, temp):
    a, la, ra = run(server, temp, False)
    b, lb, rb = run(server, temp, True)
    np.testing.assert_array_equal(a.values["number"], b.values["number"])
    np.testing.assert_array_equal(a.outcome, b.outcome)
    assert la.keys() == lb.keys() and all(la[k].equals(lb[k]) for k in la)
    assert ra["requests"] == rb["requests"] and rb["stream_calls"] > 1 and ra["stream_calls"] == 0
    assert (a.outcome == 0).all()


def test_one_concurrency_bound_over_streamed_calls(server):
    _, _, row = run(server, 0.0, True, concurrency=2, max_batch_prompts=4)
    assert row["stream_calls"] > 1 and row["failed"] == 0
    assert 1 <= _max_in_flight(server) <= 2
