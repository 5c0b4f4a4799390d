"""Building blocks for sequential numba kernels (order-dependent systems).

Most systems are numpy over whole columns. When an update is inherently
one-after-another (agents acting in a random order, each seeing the effects
of those before it), a numba loop over the columns is the tool. Such loops
are usually bound by memory latency, not arithmetic; these helpers address
that:

* :func:`prefetch` — a non-blocking hint to bring ``arr[index]``'s cache line
  in now, for an element a loop will touch a few iterations later
  (LLVM's ``llvm.prefetch``; a no-op if the target ignores it).
* :func:`draw_uniform` — the counter-based RNG draw, callable inline (see
  :mod:`socius.ecs.rng`).
* :func:`aligned_empty` — arrays whose rows start on 64-byte cache lines.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .rng import draw_uniform

__all__ = ["aligned_empty", "draw_uniform", "prefetch"]


@intrinsic
def prefetch(typingctx, arr, index):
    """``prefetch(arr, flat_index)``: hint that ``arr.flat[flat_index]`` will be read or written soon."""
    if not isinstance(arr, types.Array) or not isinstance(index, types.Integer):
        return None
    sig = types.void(arr, index)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        byte_ptr_t = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr_t, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # (address, rw = 1 write, locality = 3 keep in all caches, cache type = 1 data)
        builder.call(fn, [builder.bitcast(ptr, byte_ptr_t), ir.Constant(i32, 1), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


def aligned_empty(shape, dtype, align: int = 64) -> np.ndarray:
    """A zero-filled array whose data (and, for rows of ``align`` bytes, each row) starts on an ``align`` boundary."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    raw = np.zeros(n * dtype.itemsize + align, dtype=np.uint8)
    skip = -raw.ctypes.data % align
    return raw[skip: skip + n * dtype.itemsize].view(dtype).reshape(shape)
