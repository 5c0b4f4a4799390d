"""Relevance: inner products of queries with stored fp16 embeddings, bit-reproducible.

A long-term memory block is ``[N, k * dim]`` float16 (one row per agent, ``k``
slots of ``dim`` values). :func:`relevance` gives ``[n, k] float32``
``<fp32(embedding), query>`` for the ``n`` acting agents in one parallel numba
pass over the block, read in place. Each slot's dot product is explicit
``LANES``-wide vector code (:func:`dot`): fp16 -> fp32 is exact (in hardware
where the CPU has it, else bit shifts and one exact scaling) and the lanes are
summed in a fixed order, so results are the same on every machine and for any
``NUMBA_NUM_THREADS``. The fused retrieval pass (:mod:`socius.systems.scoring`)
uses the same :func:`dot`.
"""
from __future__ import annotations

import platform

from llvmlite import binding as llvm_binding, ir
import numba
from numba.core import cgutils, types
from numba.extending import intrinsic
import numpy as np

LANES = 64  # fp32 lanes of the dot product (4 AVX-512 / 8 AVX2 registers): fixes the summation order


def _hardware_fp16() -> bool:
    """Whether numba's target converts fp16 -> fp32 in hardware (x86 needs F16C; other CPUs have it)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    feats = numba.core.config.CPU_FEATURES
    if feats is None:
        feats = "" if numba.core.config.CPU_NAME else llvm_binding.get_host_cpu_features().flatten()
    return "+f16c" in feats


_HW_FP16 = _hardware_fp16()


@intrinsic
def _dot_f16(typingctx, e, base, q, n):
    """``sum(fp32(e[base:base+n]) * q[:n])`` for ``n`` a multiple of :data:`LANES`, as explicit
    ``LANES``-wide vector code: lane ``t`` sums elements ``t, t + LANES, ...`` in order, then the lanes
    add as a fixed pairwise tree. fp16 -> fp32 is exact: the hardware conversion where the CPU has
    one, else bit shifts and one exact scaling (the same values for all finite inputs). The vector
    width is part of the IR, so the result does not depend on the CPU's SIMD width."""
    if not (isinstance(e, types.Array) and e.dtype == types.uint16 and isinstance(q, types.Array)
            and q.dtype == types.float32 and e.layout == "C" and q.layout == "C"):
        return None
    sig = types.float32(e, types.intp, q, types.intp)

    def codegen(context, builder, signature, args):
        ea = context.make_array(signature.args[0])(context, builder, args[0])
        qa = context.make_array(signature.args[2])(context, builder, args[2])
        i16, i32, f32 = ir.IntType(16), ir.IntType(32), ir.FloatType()
        vi16, vi32, vf = ir.VectorType(i16, LANES), ir.VectorType(i32, LANES), ir.VectorType(f32, LANES)
        vh = ir.VectorType(ir.HalfType(), LANES)
        start = builder.gep(ea.data, [args[1]], source_etype=i16)
        acc = cgutils.alloca_once_value(builder, ir.Constant(vf, None))
        nvec = builder.sdiv(args[3], ir.Constant(args[3].type, LANES))
        with cgutils.for_range(builder, nvec) as loop:
            off = builder.mul(loop.index, ir.Constant(loop.index.type, LANES))
            raw = builder.load(builder.gep(start, [off], source_etype=i16), typ=vi16, align=2)
            if _HW_FP16:
                x = builder.fpext(builder.bitcast(raw, vh), vf)
            else:
                h = builder.zext(raw, vi32)
                sign = builder.shl(builder.and_(h, ir.Constant(vi32, [0x8000] * LANES)),
                                   ir.Constant(vi32, [16] * LANES))
                mag = builder.shl(builder.and_(h, ir.Constant(vi32, [0x7FFF] * LANES)), ir.Constant(vi32, [13] * LANES))
                x = builder.fmul(builder.bitcast(builder.or_(sign, mag), vf), ir.Constant(vf, [2.0 ** 112] * LANES))
            y = builder.load(builder.gep(qa.data, [off], source_etype=f32), typ=vf, align=4)
            builder.store(builder.fadd(builder.load(acc, typ=vf), builder.fmul(x, y)), acc)
        v = builder.load(acc, typ=vf)
        width = LANES
        while width > 1:
            half = width // 2
            lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, half), list(range(half))))
            hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, half), list(range(half, width))))
            v = builder.fadd(lo, hi)
            width = half
        return builder.extract_element(v, ir.Constant(i32, 0))

    return sig, codegen


@intrinsic
def _f16_bits_to_f32(typingctx, h):
    """fp32 value of fp16 bits ``h`` (uint16): the same bit shifts and exact scaling as :func:`_dot_f16`."""
    if not (isinstance(h, types.Integer) and h.bitwidth == 16):
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        z = builder.zext(args[0], i32)
        sign = builder.shl(builder.and_(z, ir.Constant(i32, 0x8000)), ir.Constant(i32, 16))
        mag = builder.shl(builder.and_(z, ir.Constant(i32, 0x7FFF)), ir.Constant(i32, 13))
        f32 = ir.FloatType()
        return builder.fmul(builder.bitcast(builder.or_(sign, mag), f32), ir.Constant(f32, 2.0 ** 112))

    return types.float32(h), codegen


@numba.njit(cache=True)
def dot(row, base, q, d):
    """``<fp32(row[base:base+d]), q>`` (row: fp16 bits as uint16): :func:`_dot_f16` plus a scalar tail."""
    dv = d - d % LANES
    acc = _dot_f16(row, base, q, dv)
    tail = np.float32(0)
    for j in range(dv, d):
        tail += _f16_bits_to_f32(row[base + j]) * q[j]
    return acc + tail


CHUNK = 64  # agents per parallel work item (scratch is allocated once per item)


@numba.njit(parallel=True, cache=True)
def _relevance_kernel(e16, rows, q, k, d, out):
    """``out[i, s] = <fp32(e16[rows[i], s*d:(s+1)*d]), q[i]>``."""
    n = rows.shape[0]
    for c in numba.prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            row = e16[rows[i]]
            qi = q[i]
            for s in range(k):
                out[i, s] = dot(row, s * d, qi, d)


def relevance(block: np.ndarray, rows: np.ndarray, queries: np.ndarray, capacity: int, dim: int) -> np.ndarray:
    """``[n, k] float32`` inner products of ``queries [n, dim]`` with the stored
    embeddings of rows ``rows [n]`` of ``block [N, k * dim] float16`` (read in place, no copy)."""
    block, q, rows = check_block(block, rows, queries, capacity, dim, "relevance")
    out = np.empty((rows.shape[0], capacity), dtype=np.float32)
    if rows.shape[0]:
        _relevance_kernel(block.view(np.uint16), rows, q, capacity, dim, out)
    return out


def check_block(block, rows, queries, capacity, dim, who):
    """``(block, queries [n, dim] float32, rows [n] int64)``, contiguous, after checking the shapes."""
    block = np.ascontiguousarray(block)
    if block.dtype != np.float16 or block.ndim != 2 or block.shape[1] != capacity * dim:
        raise ValueError(f"{who}: block must be [N, {capacity * dim}] float16, got {block.dtype} {block.shape}")
    q = np.ascontiguousarray(queries, dtype=np.float32)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if q.shape != (rows.shape[0], dim):
        raise ValueError(f"{who}: queries must be [{rows.shape[0]}, {dim}], got {q.shape}")
    return block, q, rows


__all__ = ["CHUNK", "LANES", "check_block", "dot", "relevance"]
