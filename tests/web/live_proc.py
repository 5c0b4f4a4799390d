"""A ``socius run --ui`` child process, as the live-dashboard tests and the screenshot script start it."""
from __future__ import annotations

import signal
import subprocess
import time


def dashboard_url(proc: subprocess.Popen, timeout_s: float = 120) -> tuple[str | None, list[str]]:
    """The URL the run prints (``dashboard: open URL``) or None if it ends or ``timeout_s`` passes first,
    and the lines read until then."""
    seen: list[str] = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if line.startswith("dashboard: open "):
            return line.split("open ", 1)[1].strip(), seen
    return None, seen


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C the run (it stops serving), killed if it has not ended after 30 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
