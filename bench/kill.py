"""kill -9 anywhere: runs killed at random moments resume to the uninterrupted run's final hash.

Each kill starts ``socius run … --snapshot-every 1 --out D`` (one process, or
``mpiexec -n 2 python -m mpi4py -m socius.app run …``), sends SIGKILL to its
whole process group after a random delay — ticks, snapshot writes, the
response-log flush and start-up are all hit in proportion to the time they
take — then checks that the latest snapshot left in ``D`` (if any) reads, and
resumes with ``--resume D`` (on the same number of ranks). Every resume must
end with the state hash of an uninterrupted run. ::

    python -m socius.bench.kill --kills 50            # CI: ~50 kills, single process and 2 ranks
    python -m socius.bench.kill --kills 4 --ranks 1   # a quick look

One JSON line of counts: ``{"bench": "kill", "kills_requested": 50, "kills": …, "resumed_same_hash": …,
"unreadable_snapshots": 0, "killed_mid_write": …, "no_snapshot_yet": …, "by_ranks": …, "agents", "steps",
"wall_s", "peak_rss_mb", "load_avg", "ok"}`` (``kills``: runs that were still going when killed; a run that
ended first is counted apart and not as a kill); exits 1 if fewer than ``--kills`` kills landed, any resume
missed the hash or a snapshot was unreadable.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from socius.bench.common import peak_rss_mb


def mpiexec() -> str | None:
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def clean_env() -> dict:
    """This environment without the variables of an MPI job we may run inside."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PMI_", "PMIX_", "MPI_LOCAL", "HYDRA_", "OMPI_", "MPIR_", "MV2_"))}


def command(ranks: int, run_args: list[str]) -> list[str]:
    if ranks == 1:
        return [sys.executable, "-m", "socius.app", "run", *run_args]
    return [mpiexec(), "-n", str(ranks), sys.executable, "-m", "mpi4py", "-m", "socius.app", "run", *run_args]


def run_to_end(ranks: int, run_args: list[str], timeout_s: float = 600) -> tuple[int, str]:
    """Run to the end: (exit code, the ``state_hash: …`` line's hash or "")."""
    p = subprocess.run(command(ranks, run_args), capture_output=True, text=True, env=clean_env(), timeout=timeout_s)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("state_hash: ")]
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-3000:])
    return p.returncode, lines[-1].split(": ", 1)[1] if lines else ""


def start_and_kill(ranks: int, run_args: list[str], delay_s: float) -> bool:
    """Start a run and SIGKILL its process group after ``delay_s``; True if it was still running."""
    p = subprocess.Popen(command(ranks, run_args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=clean_env(), start_new_session=True)
    try:
        p.wait(timeout=delay_s)
        return False  # it finished first
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        return True


def inspect(out: Path) -> dict:
    """What a kill left: the latest snapshot's tick (None: none yet), whether it reads, temp files left."""
    from socius.app.run import find_snapshot
    from socius.mpi.snapshot import snapshot_info

    temps = [p.name for p in out.rglob("*") if ".tmp" in p.name or p.name.startswith(".")] if out.exists() else []
    try:
        snap = find_snapshot(out) if out.exists() else None
        tick = None if snap is None else int(snapshot_info(snap)["tick"])
        return {"tick": tick, "readable": True, "temps": temps}
    except Exception as e:  # noqa: BLE001 - any failure to read is what we count
        return {"tick": None, "readable": False, "error": f"{type(e).__name__}: {e}", "temps": temps}


def campaign(kills: int, ranks_list: list[int], run_args: list[str], work: Path, seed: int = 0,
             log=sys.stderr) -> dict:
    """``kills`` kill-and-resume rounds spread over ``ranks_list``; the counts (see the module docstring)."""
    rng = random.Random(seed)
    ref_dir = work / "reference"
    t0 = time.perf_counter()
    rc, ref = run_to_end(1, [*run_args, "--out", str(ref_dir), "--quiet"])
    ref_s = time.perf_counter() - t0
    assert rc == 0 and ref, f"the uninterrupted run failed (exit {rc})"
    counts = {"bench": "kill", "kills": 0, "finished_before_kill": 0, "resumed_same_hash": 0, "resume_failed": 0,
              "hash_differs": 0, "unreadable_snapshots": 0, "no_snapshot_yet": 0, "killed_mid_write": 0,
              "by_ranks": {}, "reference_s": round(ref_s, 2), "reference_hash": ref}
    durations = {1: ref_s}
    i = -1
    while counts["kills"] < kills and i < 2 * kills:
        i += 1
        ranks = ranks_list[i % len(ranks_list)]
        if ranks not in durations:
            t1 = time.perf_counter()
            rc, h = run_to_end(ranks, [*run_args, "--out", str(work / f"ref-{ranks}"), "--quiet"])
            durations[ranks] = time.perf_counter() - t1
            assert rc == 0 and h == ref, f"an uninterrupted run on {ranks} ranks gave {h!r}, not {ref}"
        out = work / f"kill-{i:03d}"
        args = [*run_args, "--snapshot-every", "1", "--out", str(out), "--quiet"]
        killed = start_and_kill(ranks, args, rng.uniform(0.35, 0.97) * durations[ranks])
        if not killed:
            counts["finished_before_kill"] += 1
        counts["kills"] += killed
        seen = inspect(out)
        counts["unreadable_snapshots"] += not seen["readable"]
        counts["no_snapshot_yet"] += seen["readable"] and seen["tick"] is None
        counts["killed_mid_write"] += bool(seen["temps"])
        resume = ["--resume", str(out)] if seen["tick"] is not None else []
        rc, h = run_to_end(ranks, [*args, *resume])
        ok = rc == 0 and h == ref
        counts["resumed_same_hash"] += ok
        counts["resume_failed"] += rc != 0
        counts["hash_differs"] += rc == 0 and h != ref
        per = counts["by_ranks"].setdefault(str(ranks), {"kills": 0, "resumed_same_hash": 0})
        per["kills"] += killed
        per["resumed_same_hash"] += ok
        print(f"kill {i}: ranks={ranks} killed={killed} snapshot_tick={seen['tick']} temps={len(seen['temps'])} "
              f"resume rc={rc} same_hash={ok}" + ("" if seen["readable"] else f" UNREADABLE {seen['error']}"),
              file=log, flush=True)
        if ok:
            shutil.rmtree(out, ignore_errors=True)
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m socius.bench.kill", description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--ranks", default="1,2", help="comma-separated rank counts to alternate (default 1,2)")
    p.add_argument("--scenario", default="guess")
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--tick-s", type=float, default=0.3, help="mock engine latency per LLM call (s)")
    a = p.parse_args(argv)
    ranks = [int(r) for r in a.ranks.split(",")]
    if any(r > 1 for r in ranks) and mpiexec() is None:
        print("no mpiexec: the 2-rank kills need the mpi extra (pip install -e '.[mpi]')", file=sys.stderr)
        return 1
    t0, load = time.perf_counter(), [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        slow = Path(tmp) / "engine.toml"  # ticks take a while, so kills land in them rather than in start-up
        slow.write_text(f"per_request_s = {a.tick_s}\n")
        run_args = [a.scenario, "--agents", str(a.agents), "--steps", str(a.steps), "--seed", "1", "--engine", "mock",
                    "--engine-config", str(slow)]
        counts = campaign(a.kills, ranks, run_args, Path(tmp), seed=a.seed)
    load.append(os.getloadavg()[0])
    counts.update(kills_requested=a.kills, scenario=a.scenario, agents=a.agents, steps=a.steps,
                  wall_s=round(time.perf_counter() - t0, 1), peak_rss_mb=peak_rss_mb(children=True), load_avg=load)
    counts["ok"] = (counts["kills"] >= a.kills and counts["resume_failed"] + counts["hash_differs"] == 0
                    and counts["unreadable_snapshots"] == 0)
    print(json.dumps(counts), flush=True)
    return 0 if counts["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
