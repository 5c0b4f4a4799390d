"""Two-thread hand-off for the Boltzmann step kernel: atomic flags callable from numba.

The step runs on two threads that meet at fixed points (the end of a phase,
each agent whose move crosses between the two halves of the grid). They
meet through ``int64`` counters that only grow: a thread publishes
"I have reached point k" with :func:`store_release` and waits for the other
with :func:`load_acquire` in a :func:`spin_until` loop — acquire/release
make everything written before the store visible after the load. Each
counter sits on its own 64-byte line (``flags[slot * 8]``).
"""
from __future__ import annotations

import platform

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
LINE = 8  # int64 slots per 64-byte cache line


def _slot_ptr(context, builder, arr_type, arr, index):
    ary = context.make_array(arr_type)(context, builder, arr)
    return builder.gep(ary.data, [index])


@intrinsic
def load_acquire(typingctx, arr, index):
    """``arr[index]`` (int64 array) read with acquire ordering."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        ptr = _slot_ptr(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(arr, index), codegen


@intrinsic
def store_release(typingctx, arr, index, value):
    """``arr[index] = value`` (int64 array) written with release ordering."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and isinstance(index, types.Integer)
            and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        ptr = _slot_ptr(context, builder, signature.args[0], args[0], args[1])
        val = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(val, ptr, "release", 8)
        return context.get_dummy_value()

    return types.void(arr, index, value), codegen


@intrinsic
def cpu_relax(typingctx):
    """The x86 ``pause`` hint inside a spin loop (nothing on other machines)."""
    def codegen(context, builder, signature, args):
        if _X86:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def sched_yield(typingctx):
    """Give the core away (libc ``sched_yield``) — for a spin that has waited long."""
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def cycle_counter(typingctx):
    """The CPU's cycle counter (``llvm.readcyclecounter``; 0 where there is none)."""
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), []),
                                            "llvm.readcyclecounter")
        return builder.call(fn, [])

    return types.int64(), codegen


TIMEOUT_CYCLES = 10_000_000_000  # a few seconds: the other thread is not coming


@numba.njit(cache=True, nogil=True)
def spin_until(flags, slot, target, abort_slot):
    """Wait until ``flags[slot] >= target``; False if ``flags[abort_slot]`` became non-zero first,
    or after ``TIMEOUT_CYCLES`` (then it sets ``flags[abort_slot]`` itself so the other side stops too)."""
    spins = 0
    start = cycle_counter()
    while load_acquire(flags, slot) < target:
        if load_acquire(flags, abort_slot) != 0:
            return False
        spins += 1
        if spins < 2000:
            cpu_relax()
        else:
            sched_yield()
            if spins % 1024 == 0 and cycle_counter() - start > TIMEOUT_CYCLES:
                store_release(flags, abort_slot, 1)
                return False
    return True


def new_flags(slots: int) -> np.ndarray:
    """Zeroed counters, one 64-byte line each (``slots * 8`` int64)."""
    from socius.ecs.kernels import aligned_empty
    return aligned_empty((slots * LINE,), np.int64)
