"""A ``socius run --ui`` child process, as the live-dashboard tests and the screenshot script start it."""
from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time

URL_LINE = "dashboard: open "


def dashboard_url(proc: subprocess.Popen, timeout_s: float = 120) -> tuple[str | None, list[str]]:
    """The URL the run prints (``dashboard: open URL``) or None if it ends or ``timeout_s`` passes first,
    and the lines read until then.

    The lines are read on a daemon thread (a ``readline`` blocks while the child is silent, so the
    timeout holds however quiet it is); the thread stops at the URL line, so the rest of the output
    is still the caller's to read from ``proc.stdout``."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in iter(proc.stdout.readline, ""):
            lines.put(line)
            if line.startswith(URL_LINE):
                return
        lines.put(None)  # the output ended

    threading.Thread(target=read, name="dashboard-url", daemon=True).start()
    seen: list[str] = []
    end = time.monotonic() + timeout_s
    while (left := end - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if line.startswith(URL_LINE):
            return line.split("open ", 1)[1].strip(), seen
    return None, seen


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C the run (it stops serving), killed if it has not ended after 30 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
