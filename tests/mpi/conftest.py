"""Fixtures for tests/mpi.

Multi-rank tests (``@pytest.mark.mpi``) run under
``timeout 120 mpiexec -n N python -m mpi4py -m pytest -x -m mpi tests/mpi``
(``.ci/mpi``). Two rules keep ranks in step:

* hypothesis draws the same examples on every rank (``derandomize=True``,
  no database, no deadline);
* a multi-rank example runs inside ``run_example`` (``abort_on_error``): an
  exception on any rank — a failed ``agree`` check or an unexpected error —
  prints ``rank R: <traceback>`` with the example attached and aborts the job
  at once, so ranks never diverge into mismatched collectives (which is what
  letting hypothesis shrink on one rank alone would do);
* a test failing outside an example is reported and aborted the same way
  (the report hook below).
"""
from __future__ import annotations

import sys
import time

import pytest

from socius.mpi.abort import FORWARD_GRACE_S


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Undo pytest-mpi's "need --with-mpi" skips here.

    pytest-mpi (in the ``test`` extra) skips every item whose *keywords*
    contain ``mpi`` unless ``--with-mpi`` is given — and the folder name
    ``tests/mpi`` is such a keyword, so it would silently skip this folder's
    single-process tests in the default run. Multi-rank tests are already
    kept out of the default run by the ``-m 'not mpi'`` in pyproject, so a
    selected test here is meant to run.
    """
    for item in items:
        if "tests/mpi/" not in item.nodeid.replace("\\", "/"):
            continue
        item.own_markers[:] = [m for m in item.own_markers
                               if not (m.name == "skip" and "--with-mpi" in str(m.kwargs.get("reason", "")))]


def _world():
    mod = sys.modules.get("mpi4py.MPI")  # never import mpi4py here: plain pytest runs without it
    return None if mod is None else mod.COMM_WORLD


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    comm = _world()
    if rep.failed and comm is not None and comm.Get_size() > 1:
        r = comm.Get_rank()
        body = "".join(f"rank {r}: {line}\n" for line in str(rep.longrepr).splitlines())
        sys.stderr.write(f"\nrank {r}: FAILED {item.nodeid} ({rep.when})\n{body}rank {r}: aborting all ranks\n")
        sys.stderr.flush()
        time.sleep(FORWARD_GRACE_S)  # let the launcher forward this before the abort
        comm.Abort(1)


@pytest.fixture(scope="session")
def ctx():
    """This process's rank context (one rank without mpiexec)."""
    from socius.mpi import rank_context
    return rank_context()


@pytest.fixture(scope="session")
def run_example(ctx, pytestconfig):
    """``run_example(fn, *args, **example)``: ``fn(*args, **example)``; on more than one rank,
    any error prints ``rank R: <traceback>`` (past pytest's output capture) and aborts every rank."""
    from socius.mpi.abort import report_and_abort
    capman = pytestconfig.pluginmanager.getplugin("capturemanager")

    def run(fn, *args, **example):
        try:
            return fn(*args, **example)
        except BaseException as e:
            e.add_note(f"example: {example}")
            if ctx.size > 1:
                with capman.global_and_fixture_disabled():
                    report_and_abort(ctx, type(e), e, e.__traceback__)
            raise
    return run


@pytest.fixture(scope="session")
def agree(ctx):
    """``agree(ok, message)``: assert that ``ok`` holds on every rank (all ranks fail together)."""
    def check(ok: bool, message: str = "") -> None:
        everywhere = ctx.all_true(bool(ok))
        if not ok:
            raise AssertionError(f"rank {ctx.rank}: {message}")
        assert everywhere, f"rank {ctx.rank}: the check failed on another rank"
    return check
