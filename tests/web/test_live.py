"""The live dashboard (``socius run --ui``): a run fed to :class:`LiveRun` at each tick boundary and steered
through the API; interventions reproduced by ``--replay`` and ``--resume``; interviews out of band."""
from __future__ import annotations

import threading
import time

import pytest

from .conftest import TOKEN

SET = {"set": "Profile.occupation", "value": "astronaut", "where": "Profile.age >= 60"}


def _social(agents=300):
    from socius.app.config import build_config
    from socius.app.registry import get_scenario
    sc = get_scenario("social")
    return sc, build_config(sc.config, {"agents": agents})


def _wait(cond, what, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def live(tmp_path):
    """A 6-tick social run (300 agents, mock engine) paused at the boundary after tick 2, served live."""
    from fastapi.testclient import TestClient

    from socius.app.engines import EngineChoice
    from socius.app.run import run_scenario
    from socius.web.api import create_app
    from socius.web.live import LiveRun

    sc, cfg = _social()
    out = tmp_path / "live"
    from socius.app.config import config_dict
    src = LiveRun(out, sc, 6, snapshot_every=2,
                  meta={"seed": 1, "config": config_dict(cfg), "engine": {"kind": "mock", "config": {}}})
    done = {}

    def prog(w, total):
        if w.tick == 2:
            src._resume.clear()
        src.boundary(w, total)

    def target():
        res = run_scenario(sc, cfg, seed=1, ticks=6, out=out, snapshot_every=2, progress=prog,
                           engine=EngineChoice("mock"))
        src.finish(res.world, res.state_hash)
        done["res"] = res
    th = threading.Thread(target=target, daemon=True)
    th.start()
    client = TestClient(create_app({"live": src}, TOKEN))
    client.cookies.set("socius_token", TOKEN)
    _wait(lambda: src.live()["status"] == "paused", "the pause at tick 2")
    yield src, client, th, done, out
    src.resume()
    th.join(60)


def _finish(src, th, done):
    assert src.resume()["paused"] is False
    th.join(120)
    assert not th.is_alive()
    return done["res"]


def test_live_endpoints_need_the_token(live):
    from fastapi.testclient import TestClient
    from socius.web.api import create_app
    src, client, *_ = live
    anon = TestClient(create_app({"live": src}, TOKEN))
    for method, path in (("get", "live"), ("post", "interventions"), ("post", "pause"), ("post", "interview")):
        assert getattr(anon, method)(f"/api/runs/live/{path}").status_code == 401


def test_live_overview_metrics_and_pipeline(live):
    src, client, *_ = live
    info = client.get("/api/runs/live").json()
    assert info["live"] and info["tick"] == 2 and info["ticks"] == 6 and info["status"] == "paused"
    assert info["ticks_per_s"] > 0 and info["eta_s"] > 0
    met = client.get("/api/runs/live/metrics").json()["columns"]
    assert met and all(len(v) == 2 for v in met.values())
    dec = client.get("/api/runs/live/decisions").json()["columns"]
    assert dec["tick"] == [0, 1] and all(r > 0 for r in dec["requests"])


def test_bad_interventions_get_400_and_change_nothing(live):
    src, client, *_ = live
    for body, needle in (({**SET, "where": "Profile.age >>= 3"}, "where"),
                         ({**SET, "where": "Nope.x == 1"}, "Nope"),
                         ({**SET, "set": "Profile.nothing"}, "nothing"),
                         ({"set": "Profile.age", "value": "old"}, "string"),
                         ({"set": "Profile.age", "value": 2.5}, "integers"),
                         ({**SET, "colour": 1}, "colour")):
        r = client.post("/api/runs/live/interventions", json=body)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["detail"], r.json()
    assert client.get("/api/runs/live/interventions").json()["interventions"] == []
    assert not (src.path / "interventions.jsonl").exists()


def test_intervention_applies_at_the_next_tick_and_replay_and_resume_reproduce_it(live, tmp_path):
    from socius.app.engines import EngineChoice
    from socius.app.run import run_scenario
    from socius.web.steer import Reapply
    src, client, th, done, out = live
    r = client.post("/api/runs/live/interventions", json=SET)
    assert r.status_code == 200, r.text
    row = r.json()
    assert row["status"] == "scheduled" and row["tick"] == 2 and row["matched"] > 0
    before = client.get("/api/runs/live/agents", params={"where": "Profile.occupation == 'astronaut'"}).json()
    assert before["total"] == 0  # not before the next tick
    src.resume()
    _wait(lambda: src.live()["tick"] >= 3, "tick 3")
    _wait(lambda: client.get("/api/runs/live/agents", params={"where": "Profile.occupation == 'astronaut'"})
          .json()["total"] == row["matched"], "the intervention in the copy of tick 3")
    res = _finish(src, th, done)
    recorded = client.get("/api/runs/live/interventions").json()["interventions"]
    assert [(x["boundary"], x["set"]) for x in recorded] == [(2, "Profile.occupation")]

    sc, cfg = _social()
    hook = Reapply(out, tmp_path / "replay")
    replayed = run_scenario(sc, cfg, seed=1, ticks=6, out=tmp_path / "replay",
                            progress=lambda w, t: hook(w), engine=EngineChoice("mock", replay=out))
    assert replayed.state_hash == res.state_hash
    for at in (2, 4):
        hook = Reapply(out, tmp_path / f"resume{at}")
        resumed = run_scenario(sc, cfg, seed=1, ticks=6, out=tmp_path / f"resume{at}", engine=EngineChoice("mock"),
                               resume=out / "snapshots" / f"tick-{at:08d}.socius", progress=lambda w, t: hook(w))
        assert resumed.state_hash == res.state_hash, at
    plain = run_scenario(sc, cfg, seed=1, ticks=6, out=None, engine=EngineChoice("mock"))
    assert plain.state_hash != res.state_hash  # the intervention mattered


def test_interview_leaves_the_state_hash_unchanged(live):
    src, client, *_ = live
    ids = client.get("/api/runs/live/agents", params={"limit": 2}).json()["ids"]
    r = client.post("/api/runs/live/interview", json={"ids": ids, "question": "How was your week?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state_hash_unchanged"] is True and len(body["answers"]) == 2 and body["tick"] == 2
    bad = client.post("/api/runs/live/interview", json={"ids": ids, "question": ""})
    assert bad.status_code == 400 and "question" in bad.json()["detail"]
    assert client.post("/api/runs/live/interview", json={"ids": [10**9], "question": "hi"}).status_code == 400


def test_snapshot_now_pause_and_fork(live, tmp_path):
    src, client, th, done, out = live
    snap = client.post("/api/runs/live/snapshot").json()
    assert snap["tick"] == 2 and (out / "snapshots" / "tick-00000002.socius").is_file()
    bad = client.post("/api/runs/live/fork", json={"at": 3})
    assert bad.status_code == 400 and "kept ticks: 2" in bad.json()["detail"]
    fork = client.post("/api/runs/live/fork", json={"at": 2, "out": str(tmp_path / "fork"), "steps": 3}).json()
    _wait(lambda: client.get("/api/runs/live/forks").json()["forks"][0]["status"] != "running", "the fork", 120)
    job = client.get("/api/runs/live/forks").json()["forks"][0]
    assert job["status"] == "finished", job
    assert fork["out"] == str(tmp_path / "fork") and (tmp_path / "fork" / "run.json").is_file()
    _finish(src, th, done)
    assert client.post("/api/runs/live/pause").status_code == 409
    assert client.post("/api/runs/live/interventions", json=SET).status_code == 409


def test_a_run_served_from_files_cannot_be_steered(client):
    r = client.post("/api/runs/social/interventions", json=SET)
    assert r.status_code == 409 and "--ui" in r.json()["detail"]


def test_a_copy_taken_while_paused_keeps_the_copy_owed_to_an_intervention(live):
    """An intervention asks for a world copy at the tick it takes effect; a copy taken earlier (while
    paused at the boundary) must not cancel it."""
    src, client, th, done, out = live
    copied = []
    take = src._copy
    src._copy = lambda w: (copied.append(int(w.tick)), take(w))[1]
    src.min_copy_s = 0.0  # copies are due at once while paused
    assert client.post("/api/runs/live/interventions", json=SET).json()["status"] == "scheduled"
    before = len(copied)
    src._want_copy = True  # the page asks again: a copy at tick 2, while paused, after the intervention
    _wait(lambda: len(copied) > before, "a copy while paused")
    assert copied[-1] == 2
    src.min_copy_s = 1e9  # from now on only an owed copy is taken
    _finish(src, th, done)
    assert 3 in copied, copied  # the tick the intervention took effect
