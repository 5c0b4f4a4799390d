"""What a running run writes for the dashboard as it goes: ``metrics.parquet`` and ``decisions.parquet`` at
every snapshot and every few seconds (a killed run keeps them, ``socius serve`` charts a running run), and
under MPI one figures file per rank (``ranks/rank-*.json``) that the overview lists."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from .conftest import TOKEN


def _social(agents=200):
    from socius.app.config import build_config
    from socius.app.registry import get_scenario
    sc = get_scenario("social")
    return sc, build_config(sc.config, {"agents": agents})


def test_the_tables_are_written_at_every_snapshot_while_the_run_goes(tmp_path):
    from socius.app.engines import EngineChoice
    from socius.app.run import run_scenario
    from socius.web.runs import RunFiles
    sc, cfg = _social()
    out, seen = tmp_path / "run", {}

    def progress(w, total):  # at boundary k the files hold what the last snapshot (tick 2j <= k - 1) wrote
        if w.tick in (3, 5):
            src = RunFiles(out)
            seen[w.tick] = (pq.read_table(out / "metrics.parquet").num_rows,
                            sorted(set(pq.read_table(out / "decisions.parquet").column("tick").to_pylist())),
                            src.metrics().num_rows, src.info()["status"])
    res = run_scenario(sc, cfg, seed=1, ticks=6, out=out, snapshot_every=2, progress=progress,
                       engine=EngineChoice("mock"))
    assert seen[3][:3] == (2, [0, 1], 2) and seen[5][:3] == (4, [0, 1, 2, 3], 4)
    assert seen[3][3] == "running"
    plain = run_scenario(sc, cfg, seed=1, ticks=6, out=None, engine=EngineChoice("mock"))
    assert res.state_hash == plain.state_hash  # writing the tables changes nothing in the world


def test_between_snapshots_the_tables_follow_the_clock(tmp_path, monkeypatch):
    from socius.app import run as run_module
    from socius.app.engines import EngineChoice
    from socius.llm import DecisionStats
    sc, cfg = _social()
    out, rows = tmp_path / "run", {}
    monkeypatch.setattr(run_module, "TABLES_EVERY_S", 0.0)  # every boundary

    def progress(w, total):
        if (out / "metrics.parquet").exists():
            rows[w.tick] = pq.read_table(out / "metrics.parquet").num_rows
    res = run_module.run_scenario(sc, cfg, seed=1, ticks=5, out=out, progress=progress, engine=EngineChoice("mock"))
    assert rows == {k: k - 1 for k in range(2, 6)}
    written = pq.read_table(out / "decisions.parquet")  # appended chunk by chunk: the same rows as at once
    whole = res.world.resource(DecisionStats).table()
    assert written.num_rows == whole.num_rows
    for c in whole.column_names:
        assert written.column(c).to_pylist() == whole.column(c).to_pylist(), c


def test_write_decisions_appends_only_new_rows_and_tolerates_new_columns(tmp_path):
    from socius.app.run import write_decisions
    from socius.ecs import World
    from socius.llm import DecisionStats
    w = World()
    stats = DecisionStats()
    w.insert_resource(stats)
    done = {}
    stats.rows += [{"tick": 0, "decision": "a", "requests": 2}]
    write_decisions(w, tmp_path, None, done)
    first = done["table"]
    stats.rows += [{"tick": 1, "decision": "a", "requests": 3, "fail_timeout": 1}]
    write_decisions(w, tmp_path, None, done)
    t = pq.read_table(tmp_path / "decisions.parquet")
    assert done["table"].slice(0, 1).column("requests").to_pylist() == first.column("requests").to_pylist()
    assert t.column("requests").to_pylist() == [2, 3] and t.column("fail_timeout").to_pylist() == [None, 1]


def test_two_ranks_write_their_figures_and_the_overview_lists_them(tmp_path):
    from fastapi.testclient import TestClient

    from socius.app.engines import EngineChoice
    from socius.app.run import run_scenario
    from socius.mpi import run_ranks
    from socius.web.api import create_app
    from socius.web.runs import RunFiles
    sc, cfg = _social(300)
    out = tmp_path / "two"

    def job(ctx):
        return run_scenario(sc, cfg, seed=1, ticks=4, out=out, snapshot_every=2, engine=EngineChoice("mock"),
                            ranks=ctx).state_hash
    hashes = run_ranks(2, job)
    rows = RunFiles(out).ranks()
    assert [r["rank"] for r in rows] == [0, 1] and sum(r["entities"] for r in rows) == 300
    for r in rows:
        assert r["ticks"] == 4 and r["tick"] == 4 and r["tick_s"] > 0 and r["route_bytes"] > 0
        assert set(r["comm_s"]) == {"halo", "route", "reduce"}
        assert r["busy_s"] == pytest.approx(r["tick_s"] - sum(r["comm_s"].values()))
    client = TestClient(create_app({"two": RunFiles(out)}, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"})
    assert client.get("/api/runs/two/ranks").json()["ranks"] == rows
    dec = client.get("/api/runs/two/decisions").json()
    per_rank = [pq.read_table(f) for f in sorted((out / "decisions").glob("rank-*.parquet"))]
    assert len(per_rank) == 2 and sum(dec["columns"]["requests"]) == sum(sum(t.column("requests").to_pylist())
                                                                         for t in per_rank)
    one = run_scenario(sc, cfg, seed=1, ticks=4, out=tmp_path / "one", engine=EngineChoice("mock"))
    assert hashes == [one.state_hash] * 2 and RunFiles(tmp_path / "one").ranks() == []


def test_a_live_view_over_mpi_ranks_is_read_only(tmp_path):
    from fastapi.testclient import TestClient

    from socius.web.api import create_app
    from socius.web.live import LiveRun
    sc, _ = _social()
    src = LiveRun(tmp_path / "mpi", sc, 10, ranks=2, meta={"seed": 1})
    (tmp_path / "mpi" / "ranks").mkdir()
    (tmp_path / "mpi" / "ranks" / "rank-00001.json").write_text(json.dumps({"rank": 1, "entities": 5}))
    client = TestClient(create_app({"mpi": src}, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"})
    for path, body in (("interventions", {"set": "Profile.age", "value": 1}), ("pause", None),
                       ("snapshot", None), ("interview", {"ids": [1], "question": "hi"})):
        r = client.post(f"/api/runs/mpi/{path}", json=body)
        assert r.status_code == 409 and "MPI ranks" in r.json()["detail"], (path, r.text)
    info = client.get("/api/runs/mpi").json()
    assert info["ranks"] == 2 and info["seed"] == 1 and info["live"]
    assert client.get("/api/runs/mpi/ranks").json()["ranks"] == [{"rank": 1, "entities": 5}]
    assert client.get("/api/runs/mpi/agents").status_code == 404  # no snapshot yet: named, not a 500
