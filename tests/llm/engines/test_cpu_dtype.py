"""The local engine's dtype from the CPU's flags (``llm/engines/cpu.py``): pure functions, no engine."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socius.llm.engines.cpu import (BF16_FLAGS, DTYPES, RELEVANT_FLAGS, capped_flags, choose_dtype, isa_level,
                                    read_cpu_flags, relevant_flags)

EPYC_ZEN3 = "fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi1 bmi2 sha_ni vaes vpclmulqdq"
SPR_NO_AMX = "sse4_2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 avx_vnni"
SPR = SPR_NO_AMX + " amx_bf16 amx_tile amx_int8"
SKYLAKE = "sse4_2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512cd"
GRAVITON3 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid bf16 i8mm sve"

ANY_FLAGS = st.sets(st.sampled_from(sorted({*RELEVANT_FLAGS, "sse4_2", "avx", "avx512bw", "amx_int8", "sve"})))


def cpuinfo(flags: str, key: str = "flags") -> str:
    return f"processor\t: 0\nvendor_id\t: X\n{key}\t\t: {flags}\nbogomips\t: 4000\n\nprocessor\t: 1\n{key}\t: avx512_bf16\n"


@pytest.mark.parametrize("flags,dtype,why", [
    (EPYC_ZEN3, "float32", "AVX2 only"),
    (SKYLAKE, "float32", "AVX-512 without BF16"),
    (SPR_NO_AMX, "bfloat16", "avx512_bf16"),
    (SPR, "bfloat16", "avx512_bf16"),
    ("", "float32", "CPU flags unknown"),
])
def test_dtype_follows_native_bf16(flags, dtype, why):
    choice = choose_dtype(read_cpu_flags(cpuinfo(flags)))
    assert choice.dtype == dtype and choice.source == "cpu"
    assert choice.reason.startswith(f"{dtype}: ") and why in choice.reason


def test_the_reasons_read_as_documented():
    assert choose_dtype(read_cpu_flags(cpuinfo(SPR_NO_AMX))).reason == "bfloat16: CPU has avx512_bf16"
    assert choose_dtype(read_cpu_flags(cpuinfo(EPYC_ZEN3))).reason == (
        "float32: CPU lacks avx512_bf16/amx_bf16 (AVX2 only): bf16 would fall back to slow kernels")


def test_arm_features_line():
    flags = read_cpu_flags(cpuinfo(GRAVITON3, key="Features"))
    assert "bf16" in flags and choose_dtype(flags).dtype == "bfloat16"
    assert choose_dtype(flags - {"bf16"}).dtype == "float32"


def test_only_the_first_flags_line_counts():
    # the second processor in cpuinfo() claims avx512_bf16; the first line is what is read
    assert "avx512_bf16" not in read_cpu_flags(cpuinfo(EPYC_ZEN3))


def test_no_cpuinfo_means_no_flags():
    assert read_cpu_flags("model name : something\n") == frozenset()


@given(ANY_FLAGS)
def test_bf16_exactly_when_a_native_flag_is_there(flags):
    choice = choose_dtype(flags)
    assert (choice.dtype == "bfloat16") == bool(set(flags) & set(BF16_FLAGS))
    assert choice.dtype in ("bfloat16", "float32")


@given(ANY_FLAGS, st.sampled_from(DTYPES))
def test_the_config_wins_and_says_so(flags, dtype):
    choice = choose_dtype(flags, dtype)
    assert choice.dtype == dtype and choice.source == "config"
    assert choice.reason.startswith(f"{dtype}: set by the engine config")


def test_a_bad_config_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype must be one of"):
        choose_dtype({"avx2"}, "bfloat17")


@pytest.mark.parametrize("cap,gone,kept", [
    ("AVX2", {"avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni"}, {"avx2", "fma", "avx_vnni"}),
    ("avx2", {"avx512_bf16"}, {"avx2"}),
    ("AVX512_CORE", {"avx512_bf16", "amx_bf16"}, {"avx512f", "avx512_vnni"}),
    ("AVX512_CORE_BF16", {"amx_bf16", "amx_tile"}, {"avx512_bf16"}),
    ("ALL", set(), {"avx512_bf16", "amx_bf16"}),
    ("", set(), {"avx512_bf16"}),
])
def test_an_isa_cap_removes_the_flags_above_it(cap, gone, kept):
    flags = read_cpu_flags(cpuinfo(SPR))
    capped = capped_flags(flags, {"ONEDNN_MAX_CPU_ISA": cap})
    assert not capped & gone and kept <= capped
    assert capped <= flags


def test_a_capped_avx512_bf16_cpu_chooses_float32():
    capped = capped_flags(read_cpu_flags(cpuinfo(SPR)), {"ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert choose_dtype(capped).dtype == "float32" and "AVX2 only" in choose_dtype(capped).reason


@given(ANY_FLAGS)
def test_relevant_flags_keep_the_documented_order(flags):
    out = relevant_flags(flags)
    assert set(out) == set(flags) & set(RELEVANT_FLAGS)
    assert out == sorted(out, key=RELEVANT_FLAGS.index)


def test_isa_levels():
    assert isa_level(read_cpu_flags(cpuinfo(SPR))) == "AMX"
    assert isa_level(read_cpu_flags(cpuinfo(SKYLAKE))) == "AVX-512 without BF16"
    assert isa_level({"sse4_2"}) == "no AVX2"
