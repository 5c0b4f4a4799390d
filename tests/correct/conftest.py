"""pytest-mpi skips every test marked ``mpi`` unless ``--with-mpi`` is given; here, as in tests/mpi, a
test selected with ``-m mpi`` (under ``mpiexec``) is meant to run, and one needing several ranks skips
itself on one."""
from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/correct/" in item.nodeid.replace("\\", "/"):
            item.own_markers[:] = [m for m in item.own_markers
                                   if not (m.name == "skip" and "--with-mpi" in str(m.kwargs.get("reason", "")))]
