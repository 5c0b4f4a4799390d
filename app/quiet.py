"""Third-party output of an in-process engine goes to a log file, not the terminal.

vLLM, torch, Triton and transformers write warnings and logs from the run's
own process and from the engine's child processes (which inherit its standard
streams): a wall of text on the terminal. :class:`EngineOutput` sends them to
one file — ``<run dir>/engine.log``, or a temporary file when the run has no
``--out`` — and leaves the terminal to the run's own lines:

* before the engine starts it points vLLM's logger at standard error
  (``VLLM_LOGGING_STREAM``; vLLM logs to standard *output* by default) and lets
  it log at INFO into the file (``VLLM_LOGGING_LEVEL``), unless the user set them;
* :meth:`EngineOutput.redirect` points file descriptor 2 at the log file for
  the duration of a block (at the OS level, so C++ warnings and child processes
  started inside it write there too) and puts the terminal back afterwards. The
  application wraps engine start-up, every engine call and the shutdown in it;
  the children keep the log as their standard error for their whole life.
  Inside the block ``sys.stderr`` is the process's own standard error
  (``sys.__stderr__``): a live ``rich`` display replaces ``sys.stderr`` with a
  proxy that prints to the terminal, and Python warnings and the loggers that
  vLLM and transformers set up during start-up would otherwise write there.

Our own lines go to standard output (the ``rich`` console) and are never
redirected. Nested and concurrent ``redirect`` blocks share one redirection
(a count under a lock). ``socius run --verbose`` makes no :class:`EngineOutput`:
everything reaches the terminal as before.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterator, MutableMapping

__all__ = ["EngineOutput", "quiet_env"]

#: environment a quiet run sets for the engine (only where the user has not set the variable)
QUIET_ENV = {
    "VLLM_LOGGING_STREAM": "ext://sys.stderr",   # default ext://sys.stdout: our terminal
    "VLLM_LOGGING_LEVEL": "INFO",                # it goes to the file: keep the start-up facts
}


def quiet_env(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set :data:`QUIET_ENV` in ``env`` (``os.environ``) where unset; returns what was set."""
    env = os.environ if env is None else env
    applied = {k: v for k, v in QUIET_ENV.items() if k not in env}
    env.update(applied)
    return applied


class EngineOutput:
    """Where third-party output goes during a run: the file ``path`` (created on first use).

    ``EngineOutput.for_run(out, rank)`` picks ``out/engine.log`` (``engine-rank-0000R.log`` on
    other ranks) or a new temporary file when ``out`` is None."""

    def __init__(self, path: str | os.PathLike, fd: int = 2):
        self.path = Path(path)
        self._fd = fd
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None
        self._log: int | None = None
        self._stderr = None

    @classmethod
    def for_run(cls, out: Path | None, rank: int = 0) -> "EngineOutput":
        if out is None:
            fd, name = tempfile.mkstemp(prefix="socius-engine-", suffix=".log")
            os.close(fd)
            return cls(name)
        return cls(Path(out) / ("engine.log" if rank == 0 else f"engine-rank-{rank:05d}.log"))

    def prepare(self) -> dict[str, str]:
        """Set the environment the engine reads at start (:func:`quiet_env`); returns what was set."""
        return quiet_env()

    @contextlib.contextmanager
    def redirect(self) -> Iterator[None]:
        """Inside the block, file descriptor 2 (standard error) writes to the log file."""
        self._enter()
        try:
            yield
        finally:
            self._exit()

    def _enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._flush()
                self._log = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self._saved = os.dup(self._fd)
                os.dup2(self._log, self._fd)
                if self._fd == 2 and sys.__stderr__ is not None:
                    self._stderr, sys.stderr = sys.stderr, sys.__stderr__
            self._depth += 1

    def _exit(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._flush()
                os.dup2(self._saved, self._fd)
                os.close(self._saved)
                os.close(self._log)
                self._saved = self._log = None
                if self._stderr is not None:
                    sys.stderr, self._stderr = self._stderr, None

    def _flush(self) -> None:
        for stream in (sys.stderr, sys.__stderr__):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the log ("" when it does not exist)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
