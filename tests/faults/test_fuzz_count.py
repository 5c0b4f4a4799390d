"""``python -m socius.bench.fuzz`` counts the inputs a hypothesis suite tries, per test, and fails with it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Derandomized, and three draws in four rejected: ``gave_up`` is sure to be counted, not
# left to the luck of a handful of random draws (CI once drew 5 even numbers in a row).
SUITE = '''
from hypothesis import assume, given, settings, strategies as st

@settings(max_examples={a}, database=None, derandomize=True)
@given(st.integers())
def test_a(x):
    assert x == x

@settings(max_examples={b}, database=None, derandomize=True)
@given(st.integers(0, 10 ** 6))
def test_b_rejects_most(x):
    assume(x % 4 == 0)
    assert x % 4 == 0 and {cond}

def test_plain():
    assert True
'''


def _count(tmp_path, source: str) -> tuple[int, dict]:
    path = tmp_path / "test_suite.py"
    path.write_text(source)
    p = subprocess.run([sys.executable, "-m", "socius.bench.fuzz", str(path)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith('{"bench": "fuzz"')]
    assert lines, p.stdout[-2000:] + p.stderr[-2000:]
    return p.returncode, json.loads(lines[-1])


@pytest.mark.parametrize("a, b", [(7, 5), (23, 11)])
def test_inputs_are_counted_per_test_from_the_budgets(tmp_path, a, b):
    rc, rec = _count(tmp_path, SUITE.format(a=a, b=b, cond="x >= 0"))
    assert rc == 0 and rec["ok"] and rec["pytest_rc"] == 0
    assert rec["by_test"] == {"test_a": a, "test_b_rejects_most": b}  # the plain test tries no fuzzed input
    assert rec["tests"] == 2 and rec["inputs"] == a + b and rec["failed"] == 0
    assert rec["gave_up"] > 0  # draws not divisible by 4 were rejected by assume, not counted as inputs


def test_a_failing_input_is_counted_and_fails_the_run(tmp_path):
    rc, rec = _count(tmp_path, SUITE.format(a=5, b=5, cond="x < 10"))
    assert rc != 0 and not rec["ok"] and rec["pytest_rc"] == rc
    assert rec["failed"] > 0


def test_a_suite_without_fuzzed_inputs_is_not_ok(tmp_path):
    rc, rec = _count(tmp_path, "def test_plain():\n    assert True\n")
    assert rc == 1 and rec["inputs"] == 0 and not rec["ok"]
