"""kill -9 anywhere, the short version: a few SIGKILLs of runs on one and two ranks, each resumed to
the uninterrupted run's final hash; the long one (>= 50 kills) is ``python -m socius.bench.kill``."""
from __future__ import annotations

import io

import pytest

from socius.bench.kill import campaign, mpiexec


@pytest.mark.slow
def test_a_few_kills_resume_to_the_same_hash(tmp_path):
    ranks = [1, 2] if mpiexec() is not None and _has_mpi4py() else [1]
    conf = tmp_path / "engine.toml"
    conf.write_text("per_request_s = 0.3\n")
    args = ["guess", "--agents", "300", "--steps", "8", "--seed", "1", "--engine", "mock", "--engine-config", str(conf)]
    counts = campaign(4, ranks, args, tmp_path, seed=3, log=io.StringIO())
    assert counts["kills"] >= 4, counts
    assert counts["unreadable_snapshots"] == 0, counts
    assert counts["resume_failed"] == 0 and counts["hash_differs"] == 0, counts
    assert counts["resumed_same_hash"] == counts["kills"] + counts["finished_before_kill"], counts


def _has_mpi4py() -> bool:
    try:
        import mpi4py  # noqa: F401
        return True
    except ImportError:
        return False
