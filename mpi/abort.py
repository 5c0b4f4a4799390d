"""Never hang: an error on any rank ends every rank within seconds.

With a plain ``mpiexec -n N python job.py``, a rank that dies of an uncaught
exception leaves the others blocked in their next collective for ever. The
hook installed here (by :func:`socius.mpi.rank_context` whenever the job has
more than one rank) prints the traceback with every line prefixed
``rank R: `` to stderr, flushes, and calls ``MPI_Abort`` — the launcher then
kills every rank and exits non-zero::

    rank 1: Traceback (most recent call last):
    rank 1:   File "job.py", line 9, in <module>
    rank 1: ValueError: bad input on this rank

``sys.excepthook`` does not see ``SystemExit``: wrap a job's body in
:func:`abort_on_error` to also abort when one rank calls ``sys.exit(code)``
with a non-zero code (the others would otherwise wait for it).
"""
from __future__ import annotations

import contextlib
import sys
import time
import traceback
from typing import Protocol

__all__ = ["Abortable", "install_abort_hook", "abort_on_error", "report_and_abort", "format_rank_error"]


class Abortable(Protocol):
    """What aborting needs of a rank context (:class:`~socius.mpi.RankContext` is one).

    Structural, so this module needs nothing of ``context`` (which imports it).
    """

    rank: int
    size: int

    def abort(self, code: int) -> None: ...


def format_rank_error(rank: int, exc_type, exc, tb) -> str:
    """The traceback of ``exc`` with every line prefixed ``rank R: ``."""
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    return "".join(f"rank {rank}: {line}\n" for line in text.rstrip("\n").split("\n"))


# The launcher forwards each rank's stderr through its own process; MPI_Abort
# can end the job before that forwarding catches up, losing the one message
# that says what went wrong. A short pause after the flush lets it through.
FORWARD_GRACE_S = 0.3


def report_and_abort(ctx: Abortable, exc_type, exc, tb, code: int = 1) -> None:
    """Print the rank-prefixed traceback and abort every rank with ``code``."""
    try:
        sys.stderr.write(format_rank_error(ctx.rank, exc_type, exc, tb))
        sys.stderr.write(f"rank {ctx.rank}: aborting all {ctx.size} ranks\n")
        sys.stderr.flush()
        if ctx.size > 1:
            time.sleep(FORWARD_GRACE_S)
    finally:
        ctx.abort(code)


def install_abort_hook(ctx: Abortable) -> None:
    """Make an uncaught exception on this rank abort the whole job (idempotent)."""
    hook = sys.excepthook
    if getattr(hook, "__socius_abort__", False):
        return

    def socius_abort_hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt) and ctx.size <= 1:
            return hook(exc_type, exc, tb)
        report_and_abort(ctx, exc_type, exc, tb)

    socius_abort_hook.__socius_abort__ = True
    socius_abort_hook.__wrapped__ = hook
    sys.excepthook = socius_abort_hook


@contextlib.contextmanager
def abort_on_error(ctx: Abortable):
    """Run a block; any exception, or ``sys.exit`` with a non-zero code, aborts every rank.

    A no-op wrapper when ``ctx.size == 1`` (the exception propagates as usual).
    """
    try:
        yield
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if code != 0 and ctx.size > 1:
            sys.stderr.write(f"rank {ctx.rank}: exit with status {code}; aborting all {ctx.size} ranks\n")
            sys.stderr.flush()
            time.sleep(FORWARD_GRACE_S)
            ctx.abort(code)
        raise
    except BaseException:
        if ctx.size <= 1:
            raise
        report_and_abort(ctx, *sys.exc_info())
