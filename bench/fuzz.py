"""How many fuzzed inputs the fuzz suite tries: it runs under pytest while a counter listens.

The suite (``tests/app/test_fuzz.py``: configs, flags, engine configs,
interventions, scenario files, corrupt response logs and snapshots) runs in this
process, with its own budgets, as ``python -m pytest`` would run it. A
hypothesis observability callback counts every test case per test, by status:
``passed`` (an input tried to its end: a clear error and exit 2, or a clean
run), ``failed``, ``gave_up`` (rejected by ``assume``/a filter before it was
tried). Observability's coverage tracing is left off (it would only slow the
run). ::

    python -m socius.bench.fuzz                        # the default run's budgets
    python -m socius.bench.fuzz tests/app/test_fuzz.py -k snapshots

One JSON line: ``{"bench": "fuzz", "tests": 8, "inputs": …, "failed": 0, "gave_up": …,
"by_test": {…}, "pytest_rc": 0, "wall_s", "peak_rss_mb", "load_avg", "ok"}``; exits with pytest's code
(1 also when no input was counted).
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from socius.bench.common import peak_rss_mb

SUITE = Path(__file__).parents[1] / "tests" / "app" / "test_fuzz.py"


class CaseCounter:
    """Test cases per hypothesis test and status, heard through hypothesis observability."""

    def __init__(self):
        self.by_test: dict[str, Counter] = defaultdict(Counter)

    def __call__(self, observation, *thread) -> None:
        if getattr(observation, "type", None) == "test_case":
            self.by_test[observation.property][observation.status] += 1

    def pytest_sessionstart(self, session) -> None:  # a pytest plugin: hypothesis is imported after pytest's own
        from hypothesis.internal import observability as obs

        self._obs, self._cover = obs, getattr(obs, "OBSERVABILITY_COLLECT_COVERAGE", None)
        obs.OBSERVABILITY_COLLECT_COVERAGE = False
        if hasattr(obs, "add_observability_callback"):
            obs.add_observability_callback(self)
        else:  # older hypothesis: a plain list of callbacks
            obs.TESTCASE_CALLBACKS.append(self)

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        obs = self._obs
        if hasattr(obs, "remove_observability_callback"):
            obs.remove_observability_callback(self)
        else:
            obs.TESTCASE_CALLBACKS.remove(self)
        if self._cover is not None:
            obs.OBSERVABILITY_COLLECT_COVERAGE = self._cover

    def totals(self) -> dict:
        total = sum(self.by_test.values(), Counter())
        return {"tests": len(self.by_test), "inputs": total["passed"] + total["failed"],
                "failed": total["failed"], "gave_up": total["gave_up"],
                "by_test": {t.rsplit("::", 1)[-1]: c["passed"] + c["failed"] for t, c in sorted(self.by_test.items())}}


def main(argv=None) -> int:
    import pytest

    args = list(sys.argv[1:] if argv is None else argv) or [str(SUITE)]
    load, t0 = [os.getloadavg()[0]], time.perf_counter()
    counter = CaseCounter()
    rc = int(pytest.main([*args, "-q", "-p", "no:cacheprovider"], plugins=[counter]))
    load.append(os.getloadavg()[0])
    rec = {"bench": "fuzz", "suite": [Path(a).name if a.endswith(".py") else a for a in args], **counter.totals(),
           "pytest_rc": rc, "wall_s": round(time.perf_counter() - t0, 1), "peak_rss_mb": peak_rss_mb(),
           "load_avg": load}
    rec["ok"] = rc == 0 and rec["inputs"] > 0
    print(json.dumps(rec), flush=True)
    return rc if rc != 0 else (0 if rec["ok"] else 1)


if __name__ == "__main__":
    sys.exit(main())
