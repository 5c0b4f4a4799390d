"""Make an engine by name: ``mock``, ``local``, ``vllm`` or ``openai``.

Heavy engines are imported only when asked for, so ``socius run`` with the
mock never loads torch or vLLM; a missing extra raises
:class:`~.base.MissingExtraError` naming the ``pip install`` to run.
"""
from __future__ import annotations

from typing import Any, Mapping

from socius.errors import EngineSetupError

from .base import Engine
from .mock import Latency, MockEngine, Policy



ENGINES = ("mock", "local", "vllm", "openai")


def make_engine(kind: str, *, seed: int = 0, policy: Policy | None = None,
                config: Mapping[str, Any] | None = None) -> Engine:
    """An engine of ``kind``; ``config`` is the engine's options (TOML/JSON table).

    mock: ``per_request_s``, ``per_output_token_s``, ``fail_rate`` and the
    scenario's ``policy``. local: overrides of the local vLLM config. vllm:
    ``model`` plus vLLM engine args. openai: ``base_url``, ``api_key``, ``model``,
    ``concurrency``, ``timeout_s``, ``max_retries``, …
    """
    config = dict(config or {})
    if "faults" in config:  # [faults]: wrap the configured engine in the fault injector (llm/engines/faults.py)
        from .faults import make_with_faults
        return make_with_faults(make_engine, kind, seed=seed, policy=policy, config=config)
    if kind == "mock":
        if policy is None:
            raise EngineSetupError("the mock engine needs the scenario's mock policy")
        unknown = set(config) - {"per_request_s", "per_output_token_s", "fail_rate"}
        if unknown:
            raise EngineSetupError(f"unknown mock engine options {sorted(unknown)} "
                             "(known: per_request_s, per_output_token_s, fail_rate)")
        for key in ("per_request_s", "per_output_token_s", "fail_rate"):
            v = config.get(key, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
                raise EngineSetupError(f"mock engine option {key} must be a number >= 0, not {v!r}")
        return MockEngine(policy, seed=seed,
                          latency=Latency(float(config.get("per_request_s", 0.0)),
                                          float(config.get("per_output_token_s", 0.0))),
                          fail_rate=float(config.get("fail_rate", 0.0)))
    if kind == "local":
        from .local import LocalEngine
        return LocalEngine(config)
    if kind == "vllm":
        from .vllm import VLLMConfig, VLLMEngine
        return VLLMEngine(_parse(VLLMConfig, config, kind))
    if kind == "openai":
        from .openai import OpenAIConfig, OpenAIEngine
        return OpenAIEngine(_parse(OpenAIConfig, config, kind))
    raise EngineSetupError(f"unknown engine {kind!r} (choose from {', '.join(ENGINES)})")


def _parse(config_cls, config: Mapping[str, Any], kind: str):
    """``config_cls.from_mapping(config)``, its errors reported as engine-setup errors."""
    try:
        return config_cls.from_mapping(config)
    except (TypeError, ValueError) as e:
        raise EngineSetupError(f"{kind} engine config: {e}") from None
