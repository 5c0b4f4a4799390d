"""Helpers shared by the benchmarks: peak memory, JSON lines, medians, subprocess cases."""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (and, if asked, of its finished children), in MiB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if children:
        kb = max(kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return round(kb / 1024.0, 1)


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def median(xs) -> float:
    return float(statistics.median(xs))


def run_case(module: str, args: list[str], env: dict | None = None) -> list[dict]:
    """Run one case in a fresh interpreter (so peak RSS is the case's own; ``env``: its environment,
    default this one's); returns its JSON lines."""
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{module} {' '.join(args)} failed with exit code {proc.returncode}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
