"""Third-party output goes to the engine log, ours to the terminal (``app/quiet.py``, ``app/engines.py``).

Each redirection test runs in a child interpreter whose standard streams are
pipes, so what reached the "terminal" is exactly what the pipes caught.
"""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from socius.app.engines import EngineChoice, engine_header, engine_lines, quiet_output
from socius.app.quiet import QUIET_ENV, EngineOutput, quiet_env

CHILD = textwrap.dedent("""
    import logging, os, subprocess, sys, warnings
    from socius.app.quiet import EngineOutput
    out = EngineOutput(sys.argv[1])
    print("ours: before", flush=True)
    with out.redirect():
        with out.redirect():                                    # nested: one redirection
            print("ours: inside", flush=True)                   # standard output is never redirected
            sys.stderr.write("python stderr inside\\n")
            warnings.warn("a third-party warning")
            logging.getLogger("vllm").warning("a vllm log line")
            os.write(2, b"fd2 inside (C++ style)\\n")
            subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('child stderr\\\\n')"])
        sys.stderr.write("still inside\\n")
    sys.stderr.write("ours: stderr after\\n")
    print("ours: after", flush=True)
""")


def run_child(log: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(log)], capture_output=True, text=True, timeout=120)


def test_redirect_sends_fd2_of_us_and_our_children_to_the_log(tmp_path):
    log = tmp_path / "run" / "engine.log"                     # the folder is made on first use
    proc = run_child(log)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["ours: before", "ours: inside", "ours: after"]
    assert proc.stderr == "ours: stderr after\n"              # the terminal is back after the block
    text = log.read_text()
    for line in ("python stderr inside", "a third-party warning", "a vllm log line", "fd2 inside (C++ style)",
                 "child stderr", "still inside"):
        assert line in text, (line, text)
    assert "ours:" not in text


PROXY = textwrap.dedent('''
    import logging, sys, warnings
    from socius.app.quiet import EngineOutput

    class Proxy:                      # what a live rich display puts in sys.stderr: it prints to the terminal
        def write(self, text):
            sys.stdout.write("proxy: " + text)
        def flush(self):
            sys.stdout.flush()

    sys.stderr = proxy = Proxy()
    out = EngineOutput(sys.argv[1])
    with out.redirect():
        log = logging.getLogger("thirdparty")
        log.addHandler(logging.StreamHandler())        # bound to sys.stderr now, as vLLM's is at import
        warnings.warn("a warning inside")
        log.warning("a log line inside")
    assert sys.stderr is proxy
    print("ours", flush=True)
''')


def test_a_stderr_proxy_does_not_leak_third_party_output(tmp_path):
    log = tmp_path / "engine.log"
    proc = subprocess.run([sys.executable, "-c", PROXY, str(log)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ours\n"
    assert "a warning inside" in log.read_text() and "a log line inside" in log.read_text()


def test_the_log_is_appended_to(tmp_path):
    log = tmp_path / "engine.log"
    run_child(log)
    run_child(log)
    assert log.read_text().count("child stderr") == 2


def test_tail(tmp_path):
    out = EngineOutput(tmp_path / "engine.log")
    assert out.tail() == ""
    out.path.write_text("".join(f"line {i}\n" for i in range(100)))
    assert out.tail(3).splitlines() == ["line 97", "line 98", "line 99"]


def test_quiet_env_sets_only_what_is_unset():
    env = {"VLLM_LOGGING_LEVEL": "DEBUG"}
    applied = quiet_env(env)
    assert env["VLLM_LOGGING_LEVEL"] == "DEBUG" and "VLLM_LOGGING_LEVEL" not in applied
    assert env["VLLM_LOGGING_STREAM"] == QUIET_ENV["VLLM_LOGGING_STREAM"] == "ext://sys.stderr"


def test_log_paths(tmp_path):
    assert EngineOutput.for_run(tmp_path).path == tmp_path / "engine.log"
    assert EngineOutput.for_run(tmp_path, rank=3).path == tmp_path / "engine-rank-00003.log"
    temp = EngineOutput.for_run(None).path
    try:
        assert temp.name.startswith("socius-engine-") and temp.suffix == ".log" and temp.exists()
    finally:
        temp.unlink()


@pytest.mark.parametrize("choice,verbose,quiet", [
    (EngineChoice("local"), False, True),
    (EngineChoice("vllm", {"model": "m"}), False, True),
    (EngineChoice("local"), True, False),                      # --verbose: the terminal
    (EngineChoice("mock"), False, False),                      # nothing third-party to hide
    (EngineChoice("openai"), False, False),
    (EngineChoice("mock", {"models": {"big": {"kind": "local"}}}), False, True),
    (EngineChoice("local", replay=Path("somewhere")), False, False),
    (None, False, False),
])
def test_which_runs_are_quiet(tmp_path, monkeypatch, choice, verbose, quiet):
    monkeypatch.setattr("socius.app.quiet.quiet_env", lambda env=None: {})   # leave os.environ alone
    out = quiet_output(choice, tmp_path, 0, verbose)
    assert (out is not None) == quiet
    if quiet:
        assert choice.output is out and out.path == tmp_path / "engine.log"


def test_header_names_the_local_dtype_and_why(tmp_path, monkeypatch):
    monkeypatch.setattr("socius.app.quiet.quiet_env", lambda env=None: {})
    monkeypatch.setattr("socius.llm.engines.local.cpu_flags", lambda env=None: frozenset({"avx2", "fma"}))
    lines = engine_lines(EngineChoice("local"), tmp_path)
    assert lines[0] == ("engine: local, float32: CPU lacks avx512_bf16/amx_bf16 (AVX2 only): "
                        "bf16 would fall back to slow kernels")
    assert lines[1].startswith(f"engine log: {tmp_path / 'engine.log'}")
    assert engine_header(EngineChoice("local", {"dtype": "bfloat16"})).startswith(
        "engine: local, bfloat16: set by the engine config")
    assert engine_lines(EngineChoice("local"), tmp_path, verbose=True) == [lines[0]]


def _guess():
    from socius.app.config import build_config
    from socius.app.registry import get_scenario

    scenario = get_scenario("guess")
    return scenario, build_config(scenario.config, {"agents": 10})


def test_the_resource_gets_the_progress_printer(tmp_path):
    from socius.app.engines import llm_resource

    scenario, cfg = _guess()
    printer = object()
    llm = llm_resource(scenario, cfg, 1, EngineChoice("mock", progress=printer), None)
    assert llm.progress is printer


def test_an_engine_that_fails_to_start_names_its_log(tmp_path, monkeypatch):
    import os

    from socius.app.engines import llm_resource
    from socius.errors import EngineSetupError
    from socius.llm.engines import factory

    def broken(kind, **kw):
        os.write(2, b"RuntimeError: the root cause, from the engine's child\n")
        raise RuntimeError("Engine core initialization failed. See root cause above.")
    monkeypatch.setattr(factory, "make_engine", broken)
    scenario, cfg = _guess()
    choice = EngineChoice("local", output=EngineOutput(tmp_path / "engine.log"))
    with pytest.raises(EngineSetupError) as e:
        llm_resource(scenario, cfg, 1, choice, None)
    assert "did not start" in str(e.value) and "the root cause, from the engine's child" in str(e.value)
    assert str(tmp_path / "engine.log") in str(e.value)


def test_engines_call_inside_the_redirection(tmp_path, monkeypatch):
    from socius.app.engines import llm_resource
    from socius.llm.engines import factory

    class Engine:
        name, progress = "fake", None

        def __init__(self):
            import contextlib
            self.around_call = contextlib.nullcontext

        def generate(self, batch):
            return "answered"

        def close(self):
            pass
    monkeypatch.setattr(factory, "make_engine", lambda kind, **kw: Engine())
    scenario, cfg = _guess()
    out = EngineOutput(tmp_path / "engine.log")
    llm = llm_resource(scenario, cfg, 1, EngineChoice("local", output=out), None)
    assert llm.engines[""].around_call == out.redirect
    assert llm.engines[""].generate(None) == "answered"


def test_a_dead_engine_names_its_log(tmp_path, monkeypatch):
    from socius.app.engines import llm_resource
    from socius.errors import EngineSetupError
    from socius.llm.engines import factory

    class Dying:
        name, progress = "fake", None

        def __init__(self):
            import contextlib
            self.around_call = contextlib.nullcontext

        def generate(self, batch):
            raise RuntimeError("the vLLM engine died: EngineCore encountered an issue")

        def close(self):
            pass
    monkeypatch.setattr(factory, "make_engine", lambda kind, **kw: Dying())
    scenario, cfg = _guess()
    out = EngineOutput(tmp_path / "engine.log")
    out.path.write_text("Illegal instruction in the worker\n")
    llm = llm_resource(scenario, cfg, 1, EngineChoice("local", output=out), None)
    with pytest.raises(EngineSetupError, match="Illegal instruction in the worker"):
        llm.engines[""].generate(None)


PROFILE_CHILD = textwrap.dedent("""
    import contextlib, os, sys, time
    from socius.llm import MockEngine
    from socius.llm.engines import factory

    class Noisy(MockEngine):  # an in-process engine as vLLM is: third-party output on fd 2, progress reports
        around_call = staticmethod(contextlib.nullcontext)   # the run sets its redirection here
        progress = None
        slow = True

        def generate(self, batch):
            with self.around_call():
                os.write(2, b"third-party noise\\n")
                if self.slow and self.progress is not None:   # the first call lasts past the 2-s threshold
                    Noisy.slow = False
                    self.progress(len(batch) // 2, len(batch))
                    time.sleep(2.6)
                return super().generate(batch)

    factory.make_engine = lambda kind, **kw: Noisy(kw["policy"], seed=kw["seed"])
    from socius.app.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.parametrize("verbose", [False, True])
def test_profile_is_quiet_and_shows_engine_progress(tmp_path, verbose):
    out = tmp_path / "prof"
    argv = ["profile", "guess", "--agents", "20", "--ticks", "1", "--engine", "local", "--out", str(out)]
    env = {**__import__("os").environ, "SOCIUS_CACHE": str(tmp_path / "cache")}
    p = subprocess.run([sys.executable, "-c", PROFILE_CHILD, *argv, *(["--verbose"] if verbose else [])],
                       capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / "profile.json").is_file()
    assert "engine: local" in p.stderr                                   # the header, as socius run prints it
    assert re.search(r"^guess answer: \d+/\d+ requests, [23] s$", p.stderr, re.M)  # the long call's progress
    if verbose:
        assert "third-party noise" in p.stderr and not (out / "engine.log").exists()
    else:
        assert "third-party noise" not in p.stderr + p.stdout
        assert f"engine log: {out / 'engine.log'}" in p.stderr
        assert "third-party noise" in (out / "engine.log").read_text()
