"""``mpiexec -n 2 socius run social --ui``: rank 0 serves a read-only live view (tick, metrics, the pipeline of
every rank, one row per rank, agents from the snapshots); steering answers 409 naming MPI."""
from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from .live_proc import dashboard_url

pytestmark = pytest.mark.slow


def test_rank_0_serves_the_run_of_two_ranks(tmp_path):
    pytest.importorskip("mpi4py", reason="needs mpi4py")
    from socius.bench.kill import clean_env, command, mpiexec
    if mpiexec() is None:
        pytest.skip("needs mpiexec")
    eng = tmp_path / "engine.json"
    eng.write_text(json.dumps({"per_request_s": 0.05}))  # slow ticks: time to look
    out = tmp_path / "run"
    proc = subprocess.Popen(command(2, ["social", "--agents", "600", "--steps", "30", "--engine", "mock",
                                        "--engine-config", str(eng), "--ui", "--port", "0", "--out", str(out),
                                        "--snapshot-every", "2", "--ui-exit", "--quiet", "--seed", "1"]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env())
    try:
        url, seen = dashboard_url(proc)
        assert url is not None, "".join(seen)
        assert sum(line.startswith("dashboard: open") for line in seen) == 1  # rank 0 only
        base, token = url.split("/?token=")
        api = httpx.Client(base_url=f"{base}/api/runs", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        rows = []
        end = time.monotonic() + 120
        while len(rows) < 2 and time.monotonic() < end:
            rows = api.get("/run/ranks").json()["ranks"]
            time.sleep(0.3)
        assert [r["rank"] for r in rows] == [0, 1] and sum(r["entities"] for r in rows) == 600
        info = api.get("/run").json()
        assert info["live"] and info["ranks"] == 2 and info["tick"] >= 2 and info["entities"] == 600
        assert len(api.get("/run/metrics").json()["columns"]["tick"]) >= 2
        assert sum(api.get("/run/decisions").json()["columns"]["agents"]) > 0
        assert api.get("/run/agents", params={"limit": 5}).json()["total"] == 600  # from snapshot.ranks/
        r = api.post("/run/interventions", json={"set": "Profile.age", "value": 1})
        assert r.status_code == 409 and "MPI ranks" in r.json()["detail"]
        assert api.post("/run/pause").status_code == 409
        assert proc.wait(180) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    tail = proc.stdout.read()
    assert "state_hash:" in tail
