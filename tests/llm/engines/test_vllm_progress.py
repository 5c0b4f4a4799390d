"""The vLLM engine reports finished requests while one ``LLM.generate`` runs (``llm/engines/vllm_progress.py``).

A stand-in ``LLM`` drives the ``use_tqdm`` factory the way ``vllm.entrypoints`` 0.32
does (a rendering pass over the prompts, then ``update(n_outputs)`` per finished
request); the real engine is covered in ``test_local_engine.py`` (marked ``llm``).
"""
from __future__ import annotations

import contextlib
from types import SimpleNamespace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from socius.llm import RequestBatch, Sampling
from socius.llm.engines.vllm import VLLMConfig, VLLMEngine
from socius.llm.engines.vllm_progress import request_counter


class FakeLLM:
    """``generate`` as vLLM 0.32's offline entry point drives its progress bar; records the calls."""

    def __init__(self, outputs_per_request: int = 1):
        self.k = outputs_per_request
        self.calls = []

    def generate(self, prompts, params, *, lora_request=None, use_tqdm=True, tokenization_kwargs=None):
        self.calls.append(len(prompts))
        rendered = list(use_tqdm(prompts, desc="Rendering prompts")) if callable(use_tqdm) else list(prompts)
        assert rendered == list(prompts)
        bar = use_tqdm(total=len(prompts), desc="Processed prompts", dynamic_ncols=True, postfix="") \
            if use_tqdm else None
        results = []
        for i in reversed(range(len(prompts))):          # requests finish in any order
            outs = [SimpleNamespace(index=j, text=f"r{i}", token_ids=[1, 2], finish_reason="stop")
                    for j in range(self.k)]
            results.append(SimpleNamespace(request_id=str(i), prompt_token_ids=[0] * 3, outputs=outs))
            if bar is not None:
                assert bar.format_dict["elapsed"] > 0    # vLLM divides by it
                bar.postfix = "est. speed"
                bar.update(len(outs))
                if bar.n == len(prompts):
                    bar.refresh()
        if bar is not None:
            bar.close()
        return sorted(results, key=lambda r: int(r.request_id))


def fake_engine(llm: FakeLLM) -> VLLMEngine:
    eng = object.__new__(VLLMEngine)
    eng.config = VLLMConfig(model="fake")
    eng._llm = llm
    eng._vllm = SimpleNamespace(SamplingParams=lambda **kw: kw)
    eng._structured_cls = dict
    eng._lora = {}
    eng.progress = None
    eng.around_call = contextlib.nullcontext
    eng._tqdm = False
    return eng


def batch(r: int) -> RequestBatch:
    return RequestBatch([f"p{i}" for i in range(r)], Sampling(max_tokens=4), "fake", n=np.ones(r), seeds=np.arange(r),
                        entities=np.arange(r))


@given(st.integers(1, 40), st.integers(1, 3))
def test_counter_counts_requests_not_outputs(r, k):
    seen = []
    FakeLLM(k).generate([f"p{i}" for i in range(r)], [None] * r, use_tqdm=request_counter(seen.append))
    assert seen == list(range(1, r + 1))


@given(st.integers(1, 30))
def test_generate_reports_start_and_each_finished_request(r):
    eng, seen = fake_engine(FakeLLM()), []
    eng.progress = lambda done, total: seen.append((done, total))
    out = eng.generate(batch(r))
    assert (out.errors == "").all()
    assert seen[0] == (0, r) and seen[-1] == (r, r)
    assert [d for d, _ in seen] == list(range(r + 1))     # one report per request, in order
    assert eng._llm.calls == [r]                           # one vLLM call: the batch is not split


def test_no_progress_no_bar():
    llm = FakeLLM()
    eng = fake_engine(llm)
    calls = []
    real = llm.generate
    llm.generate = lambda *a, **kw: calls.append(kw["use_tqdm"]) or real(*a, **kw)
    eng.generate(batch(5))
    assert calls == [False]


def test_every_call_runs_inside_around_call():
    eng, events = fake_engine(FakeLLM()), []

    @contextlib.contextmanager
    def around():
        events.append("enter")
        yield
        events.append("exit")
    eng.around_call = around
    real = eng._llm.generate
    eng._llm.generate = lambda *a, **kw: events.append("generate") or real(*a, **kw)
    eng.generate(batch(3))
    assert events == ["enter", "generate", "exit"]
