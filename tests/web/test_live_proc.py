"""``live_proc.dashboard_url``: its timeout holds for a silent child, and it leaves the rest of the output."""
from __future__ import annotations

import subprocess
import sys

from .live_proc import dashboard_url


def _child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_a_silent_child_times_out_while_it_still_runs():
    proc = _child("import time; time.sleep(60)")
    try:
        url, seen = dashboard_url(proc, timeout_s=0.5)
        assert url is None and seen == [] and proc.poll() is None   # returned, the child had not ended
    finally:
        proc.kill()
        proc.wait()


def test_the_url_and_the_lines_before_it_and_the_rest_left_to_read():
    proc = _child("print('engine: mock'); print('dashboard: open http://127.0.0.1:1/?token=t', flush=True); "
                  "import time; time.sleep(0.2); print('state_hash: abc')")
    url, seen = dashboard_url(proc, timeout_s=60)
    assert url == "http://127.0.0.1:1/?token=t" and seen[0] == "engine: mock\n" and len(seen) == 2
    assert proc.stdout.read() == "state_hash: abc\n" and proc.wait(60) == 0


def test_a_child_that_ends_without_a_url():
    proc = _child("print('no dashboard')")
    assert dashboard_url(proc, timeout_s=60) == (None, ["no dashboard\n"])
    assert proc.wait(60) == 0
