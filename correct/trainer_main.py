"""The training child: ``python -m socius.correct.trainer_main JOB.json``.

Started by :func:`socius.correct.train.start_training`, never imported by the
simulation: it loads torch, transformers, PEFT and TRL, trains one LoRA
adapter as ``job.json`` says, and ends by writing ``result.json`` beside it
(``{"ok": true, "adapter": PATH}`` or ``{"ok": false, "error": TEXT}``).

Steps: read ``out/dataset.parquet`` (the rows of :mod:`.datasets`); load the
base model (float32 on a CPU, bf16 on a GPU that supports it) and its
tokenizer; wrap prompts as one user message when the run's engine used the
chat template (``chat``), so the adapter learns the text the engine saw; train
with ``SFTTrainer`` / ``KTOTrainer`` / ``DPOTrainer`` and a PEFT
``LoraConfig`` (KTO and DPO use the base with the adapter switched off as the
reference model); write PEFT's files, the log and ``manifest.json`` into
``out/``, then publish ``out/`` as ``adapters/<name>-vN``. Each logging step
is one JSON line in ``train.log`` (``{"step", "epoch", "loss", ...}``).
"""
from __future__ import annotations

import json
import shutil
import sys
import time
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path

from .adapters import MANIFEST, PEFT_FILES, file_hashes, publish, write_json


def _log(job_dir: Path, record: dict) -> None:
    with open(job_dir / "train.log", "a") as f:
        f.write(json.dumps(record, default=str) + "\n")


def _dataset(job: dict, out: Path):
    import pyarrow.parquet as pq
    from datasets import Dataset

    rows = pq.read_table(out / "dataset.parquet").to_pydict()
    if job["chat"]:  # conversational rows: TRL applies the tokenizer's chat template as the engine did
        user = [[{"role": "user", "content": p}] for p in rows["prompt"]]
        rows["prompt"] = user
        for col in ("completion", "chosen", "rejected"):
            if col in rows:
                rows[col] = [[{"role": "assistant", "content": c}] for c in rows[col]]
    return Dataset.from_dict(rows)


def train(job_path: Path) -> Path:
    import peft
    import torch
    import transformers
    import trl
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    job_dir = job_path.parent
    job = json.loads(job_path.read_text())
    out = job_dir / "out"
    hp, method = job["hyperparameters"], job["method"]
    t0 = time.perf_counter()
    torch.manual_seed(hp["seed"])
    cuda = torch.cuda.is_available()
    bf16 = bool(cuda and torch.cuda.is_bf16_supported())
    base = job["base"]["path"]
    tok = AutoTokenizer.from_pretrained(base)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    cfg = transformers.AutoConfig.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(
        base, dtype=torch.bfloat16 if bf16 else torch.float32,
        # Gemma 3 is trained with eager attention (its soft-capping); sdpa elsewhere
        attn_implementation="eager" if cfg.model_type.startswith("gemma") else None)
    lora = LoraConfig(r=int(hp["rank"]), lora_alpha=int(hp["alpha"]), lora_dropout=float(hp["dropout"]),
                      target_modules=list(hp["target_modules"]), task_type="CAUSAL_LM", bias="none")
    common = dict(output_dir=str(job_dir / "checkpoints"), num_train_epochs=float(hp["epochs"]),
                  max_steps=int(hp["max_steps"]), learning_rate=float(hp["lr"]),
                  per_device_train_batch_size=int(hp["batch_size"]),
                  gradient_accumulation_steps=int(hp["grad_accum"]), seed=int(hp["seed"]),
                  data_seed=int(hp["seed"]), logging_steps=1, save_strategy="no", report_to="none",
                  bf16=bf16, fp16=False, use_cpu=not cuda, gradient_checkpointing=False, disable_tqdm=True,
                  dataloader_num_workers=0, max_length=int(hp["max_length"]), lr_scheduler_type="constant")
    data = _dataset(job, out)

    class LogLines(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            _log(job_dir, {"step": state.global_step, "max_steps": state.max_steps,
                           "elapsed_s": round(time.perf_counter() - t0, 1), **(logs or {})})

    if method == "sft":
        args = trl.SFTConfig(**common, completion_only_loss=True)
        trainer = trl.SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                                 peft_config=lora, callbacks=[LogLines()])
    elif method == "kto":
        args = trl.KTOConfig(**common, beta=float(hp["beta"]), desirable_weight=float(hp["desirable_weight"]),
                             undesirable_weight=float(hp["undesirable_weight"]))
        trainer = trl.KTOTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                                 peft_config=lora, callbacks=[LogLines()])
    else:
        args = trl.DPOConfig(**common, beta=float(hp["beta"]))
        trainer = trl.DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                                 peft_config=lora, callbacks=[LogLines()])
    trainer.remove_callback(transformers.PrinterCallback)  # our LogLines writes the same as JSON
    _log(job_dir, {"event": "start", "method": method, "rows": len(data), "device": "cuda" if cuda else "cpu",
                   "base": base})
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    trainer.model.save_pretrained(str(out))
    wall = time.perf_counter() - t0
    _log(job_dir, {"event": "done", "steps": trainer.state.global_step, "wall_s": round(wall, 1)})
    shutil.copy2(job_dir / "train.log", out / "train.log")
    write_json(out / MANIFEST, {
        "name": job["name"], "method": method, "base": job["base"], "hyperparameters": hp,
        "labels": job["labels"], "steps": trainer.state.global_step, "chat": job["chat"],
        "loss": {"final": losses[-1] if losses else None, "first": losses[0] if losses else None,
                 "mean": float(result.training_loss)},
        "wall_s": round(wall, 2),
        "versions": {"trl": trl.__version__, "peft": peft.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__},
        "files": file_hashes(out, PEFT_FILES),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    return publish(out, job["run_dir"], job["name"])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m socius.correct.trainer_main JOB.json", file=sys.stderr)
        return 2
    job_path = Path(argv[0])
    try:
        adapter = train(job_path)
    except BaseException as e:  # noqa: BLE001 - every failure is reported in result.json
        traceback.print_exc()
        write_json(job_path.parent / "result.json", {"ok": False, "error": f"{type(e).__name__}: {e}"})
        shutil.rmtree(job_path.parent / "out", ignore_errors=True)
        return 1
    finally:
        shutil.rmtree(job_path.parent / "checkpoints", ignore_errors=True)
    write_json(job_path.parent / "result.json", {"ok": True, "adapter": str(adapter)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
