"""Training a LoRA adapter from a run's labels, in a child process.

:func:`start_training` builds the training set (:mod:`.datasets`), finds the
base weights, checks them against the run's model, writes a job folder and
starts ``python -m socius.correct.trainer_main JOB.json``; it returns a
:class:`Training` handle at once, so a simulation keeps ticking while the
child trains. The child (TRL + PEFT, the ``train`` extra) logs one JSON line
per logging step to ``train.log``, writes the adapter into a temporary folder
and publishes it as ``adapters/<name>-vN`` only when complete
(:func:`~socius.correct.adapters.publish`); a crash leaves no adapter, and
``result.json`` (or the log's tail, if the child died) says why.

Job folder: ``RUN_DIR/adapters/.jobs/<name>-<time>-<pid>/`` with ``job.json``
(everything the child needs), ``train.log``, ``result.json`` and, while
training, ``out/`` (the adapter being written).

The base weights (:func:`resolve_base`): ``--base PATH`` if given, else the
model of the run's engine (``run.json``): for ``local``, the converted Gemma
3 270M folder (:func:`~socius.llm.engines.local.prepare_local_model`); for
``vllm``, its ``model`` folder. A ``--base`` that is not the run's model
(another folder whose weights hash differs, or another model name) is refused.

Hyperparameters (:data:`DEFAULTS`) suit a small model on a CPU (a few hundred
labels in minutes) and a 7–8B model on a GPU unchanged: LoRA rank 16 on the
attention projections, AdamW, lr 2e-4 (SFT) / 5e-6 (KTO, DPO), bf16 on a GPU
that has it, float32 on a CPU.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from socius.errors import ConfigError, MissingExtraError

from .adapters import AdapterError, adapters_dir, check_name, load_manifest, weights_hash, write_json
from .datasets import METHODS, TrainingSet, build_training_set
from .labels import LabelStore

__all__ = ["AdapterError", "DEFAULTS", "TrainError", "Training", "check_train_extra", "finish", "resolve_base",
           "start_training", "train_adapter"]

DEFAULTS = dict(epochs=3.0, lr=None, rank=16, alpha=None, dropout=0.0, max_steps=-1, batch_size=4, grad_accum=1,
                max_length=512, seed=0, beta=0.1, target_modules=("q_proj", "k_proj", "v_proj", "o_proj"))
#: the child's environment: no hub, no progress bars, tokenizers without their own threads
CHILD_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}
LR = {"sft": 2e-4, "kto": 5e-6, "dpo": 5e-6}


class TrainError(RuntimeError):
    """The training child failed (the message has its error and the job folder)."""


def check_train_extra() -> None:
    """Raise :class:`MissingExtraError` unless trl, peft, torch and transformers are importable."""
    for module, package in (("torch", "torch"), ("transformers", "transformers"), ("peft", "peft"), ("trl", "trl"),
                            ("datasets", "datasets")):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError("train", package, "Training adapters")


def _run_model(run_dir: Path, model: str) -> tuple[str, str | None]:
    """``(engine kind, model folder or name or None)`` of the run's engine (``model``: a ``models`` entry)."""
    info_path = run_dir / "run.json"
    try:
        info = json.loads(info_path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{run_dir}: not a run directory (no run.json); pass --base PATH") from None
    except ValueError as e:
        raise ConfigError(f"{info_path}: corrupt ({e})") from None
    engine = info.get("engine") or {}
    kind, config = engine.get("kind"), dict(engine.get("config") or {})
    if engine.get("replay"):
        return "replay", None
    if model:
        mconf = dict((config.get("models") or {}).get(model) or {})
        if not mconf:
            raise ConfigError(f"{info_path}: the engine has no model {model!r}")
        kind, config = mconf.pop("kind", kind), mconf
    if kind == "local":
        if config.get("model"):
            return kind, str(config["model"])
        from socius.llm.engines.local import prepare_local_model
        try:
            return kind, str(prepare_local_model())
        except ImportError as e:
            raise MissingExtraError("local", "transformers/gguf", "Converting the local engine's model") from e
    return kind, (str(config["model"]) if config.get("model") else None)


def resolve_base(run_dir: str | Path, base: str | Path | None = None, model: str = "") -> Path:
    """The base model folder to train on for the run ``run_dir`` (see the module docstring)."""
    run_dir = Path(run_dir)
    kind, run_model = _run_model(run_dir, model) if (base is None or (run_dir / "run.json").is_file()) \
        else (None, None)
    if base is None:
        if run_model is None or not Path(run_model).is_dir():
            what = {"mock": "the mock engine (no model)", "replay": "a replay (no model)",
                    "openai": "an OpenAI-compatible server (no local weights)"}.get(kind, f"engine {kind!r}")
            raise ConfigError(f"{run_dir}: the run used {what}"
                              + (f", model {run_model!r} is not a folder here" if run_model else "")
                              + "; pass --base PATH (a transformers model folder)")
        return Path(run_model)
    base = Path(base)
    if not (base / "config.json").is_file():
        raise ConfigError(f"--base {base}: not a transformers model folder (no config.json)")
    if run_model is not None and kind not in ("mock", "replay"):
        same = Path(run_model).resolve() == base.resolve()
        if not same and Path(run_model).is_dir():
            same = weights_hash(run_model) == weights_hash(base)
        elif not same:  # a model name (hub id) or a folder of another machine: compare by name
            same = Path(run_model).name == base.name
        if not same:
            raise ConfigError(f"--base {base}: does not match the run's model {run_model} "
                              f"({run_dir / 'run.json'}); an adapter only fits the weights it was trained on")
    return base


@dataclass
class Training:
    """A training child: ``job_dir`` (``job.json``, ``train.log``, ``result.json``), ``log`` and ``proc``."""

    job_dir: Path
    proc: subprocess.Popen

    @property
    def log(self) -> Path:
        return self.job_dir / "train.log"

    def poll(self) -> bool:
        """True once the child has exited."""
        return self.proc.poll() is not None

    def wait(self, timeout: float | None = None) -> dict:
        """Wait for the child; return the published adapter's manifest, or raise :class:`TrainError`."""
        rc = self.proc.wait(timeout)
        return finish(self.job_dir, rc)


def finish(job_dir: Path, rc: int | None = None) -> dict:
    """The outcome of the job in ``job_dir``: the adapter's manifest, or :class:`TrainError` with the cause."""
    try:
        result = json.loads((job_dir / "result.json").read_text())
    except (OSError, ValueError):
        result = None
    if result and result.get("ok"):
        return load_manifest(result["adapter"])
    if result:
        raise TrainError(f"training failed: {result.get('error')} (log: {job_dir / 'train.log'})")
    tail = ""
    try:
        tail = "".join((job_dir / "train.log").read_text().splitlines(keepends=True)[-10:])
    except OSError:
        pass
    raise TrainError(f"the training process exited with code {rc} without a result "
                     f"(job: {job_dir}); last log lines:\n{tail}")


def start_training(run_dir: str | Path, name: str, method: str, *, labels=None, base: str | Path | None = None,
                   model: str = "", band: tuple[int, int] = (3, 4), min_rows: int = 1, chat: bool | None = None,
                   env: dict | None = None, **hparams) -> Training:
    """Start training adapter ``name`` with ``method`` from the run's labels; returns at once.

    ``labels``: a label table (default: ``LabelStore(run_dir).read(latest=True)``);
    ``base``: the model folder (default: the run's, :func:`resolve_base`);
    ``hparams``: overrides of :data:`DEFAULTS` (unknown names raise :class:`ConfigError`).
    Raises :class:`MissingExtraError`, :class:`LabelError` or :class:`ConfigError` before starting.
    """
    run_dir = Path(run_dir)
    check_name(name)
    if method not in METHODS:
        raise ConfigError(f"--method {method!r}: choose from {', '.join(METHODS)}")
    unknown = set(hparams) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown training settings {sorted(unknown)} (known: {', '.join(DEFAULTS)})")
    store = LabelStore(run_dir)
    labels = store.read(latest=True) if labels is None else labels
    tset: TrainingSet = build_training_set(labels, method, band=band, min_rows=min_rows)
    check_train_extra()
    base_dir = resolve_base(run_dir, base, model)
    hp = {**DEFAULTS, **{k: v for k, v in hparams.items() if v is not None}}
    hp["lr"] = hp["lr"] or LR[method]
    hp["alpha"] = hp["alpha"] or 2 * hp["rank"]
    hp["target_modules"] = list(hp["target_modules"])
    if method == "kto":
        hp["desirable_weight"], hp["undesirable_weight"] = tset.desirable_weight, tset.undesirable_weight
    if chat is None:
        chat = _run_chat(run_dir, model)

    jobs = adapters_dir(run_dir) / ".jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    job_dir = jobs / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.time_ns() % 10**6:06d}"
    (job_dir / "out").mkdir(parents=True)
    tset.write(job_dir / "out" / "dataset.parquet")
    job = {"run_dir": str(run_dir.resolve()), "name": name, "method": method, "chat": bool(chat),
           "base": {"path": str(base_dir.resolve()), "hash": weights_hash(base_dir)},
           "hyperparameters": hp,
           "labels": {"fingerprint": store.fingerprint(tset.labels), "size": tset.labels.num_rows,
                      "rows": len(tset)}}
    write_json(job_dir / "job.json", job)
    log = open(job_dir / "train.log", "ab")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "socius.correct.trainer_main", str(job_dir / "job.json")],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **CHILD_ENV, **(env or {})}, start_new_session=True)
    finally:
        log.close()
    return Training(job_dir, proc)


def _run_chat(run_dir: Path, model: str) -> bool:
    """Whether the run's engine wrapped prompts in the chat template (``chat = true``)."""
    try:
        engine = json.loads((run_dir / "run.json").read_text()).get("engine") or {}
    except (OSError, ValueError):
        return False
    config = dict(engine.get("config") or {})
    if model:
        config = dict((config.get("models") or {}).get(model) or {})
    return bool(config.get("chat", False))


def train_adapter(run_dir: str | Path, name: str, method: str, timeout: float | None = None, **kwargs) -> dict:
    """:func:`start_training` and wait: the published adapter's manifest (``path`` is its folder)."""
    return start_training(run_dir, name, method, **kwargs).wait(timeout)

