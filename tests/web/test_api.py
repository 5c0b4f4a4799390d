"""Every /api/ route on a small mock run: auth, values, bad input (clear 4xx), labels written whole or not at all."""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from socius.correct import LabelStore, load_replies
from socius.web.api import STATIC

from .conftest import TOKEN, make_client

ROUTES = ["runs", "runs/social", "runs/social/metrics", "runs/social/decisions", "runs/social/agents/columns",
          "runs/social/agents", "runs/social/agents/histogram?column=Profile.age", "runs/social/agents/4",
          "runs/social/labels", "runs/social/labels/queue?name=ada"]


@pytest.mark.parametrize("route", ROUTES)
def test_every_api_route_needs_the_token(run_dir, route):
    anon = make_client(run_dir, auth=False)
    r = anon.get(f"/api/{route}")
    assert r.status_code == 401 and "token" in r.json()["detail"]
    assert anon.get(f"/api/{route}", headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}).status_code == 401
    assert anon.get(f"/api/{route}", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert anon.post("/api/runs/social/labels", json={}).status_code == 401


def test_token_url_sets_the_cookie_and_drops_the_token(run_dir):
    anon = make_client(run_dir, auth=False)
    r = anon.get(f"/?token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"socius_token={TOKEN}") and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert anon.get("/api/runs").status_code == 200  # the client kept the cookie
    assert make_client(run_dir, auth=False).get("/?token=nope").status_code == 401
    page = anon.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_static_assets_ship_without_a_cdn(client):
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    for asset in ("/static/app.js", "/static/style.css", "/static/vendor/uPlot.iife.min.js",
                  "/static/vendor/uPlot.min.css"):
        assert client.get(asset).status_code == 200
    assert "MIT" in (STATIC / "vendor" / "uPlot.LICENSE").read_text()


def test_runs_and_run_info(client, run_dir):
    runs = client.get("/api/runs").json()
    assert [r["name"] for r in runs] == ["social"]
    info = client.get("/api/runs/social").json()
    assert info["tick"] == 3 and info["status"] == "finished" and info["scenario"] == "social"
    assert info["run"]["state_hash"] == info["state_hash"] and info["snapshot_tick"] == 3
    assert client.get("/api/runs/nope").status_code == 404


def test_metrics_are_the_parquet_columns(client, run_dir):
    got = client.get("/api/runs/social/metrics").json()["columns"]
    want = pq.read_table(run_dir / "metrics.parquet").to_pydict()
    assert got.keys() == want.keys()
    assert got["tick"] == want["tick"] and got["aware"] == want["aware"]


def test_decisions_per_tick(client, run_dir):
    got = client.get("/api/runs/social/decisions").json()["columns"]
    raw = pq.read_table(run_dir / "decisions.parquet").to_pydict()
    assert got["tick"] == sorted(set(raw["tick"]))
    assert sum(got["requests"]) == sum(raw["requests"]) and sum(got["prompt_tokens"]) == sum(raw["prompt_tokens"])
    tick = np.array(raw["tick"])
    own = [np.sum(np.array(raw["our_s"])[tick == k]) for k in got["tick"]]   # the pipeline's own time, per tick
    assert np.allclose(got["own_s"], own) and got["engine_s"] == raw["engine_s"]
    assert np.allclose(got["dedup_ratio"], np.divide(got["agents"], got["requests"]))
    for k in ("ok", "extracted", "fallback", "failed"):
        assert k in got


def test_agents_filter_sort_page(client, mock_run):
    from socius.correct.sampling import run_world
    from socius.systems import find_agents

    world = run_world(mock_run)
    prof = next(c for c in world.component_types() if c.__name__ == "Profile")
    cols = client.get("/api/runs/social/agents/columns").json()
    assert cols["agents"] == 300 and {"name": "Profile.age", "kind": "scalar", "dtype": "int32", "numeric": True} \
        in cols["columns"]
    where = "Profile.age >= 40 and Mood.emotion == 1"
    want = find_agents(world, ["Profile.age >= 40", "Mood.emotion == 1"])
    page = client.get("/api/runs/social/agents", params={"where": where, "sort": "Profile.age", "desc": "true",
                                                         "limit": 7, "offset": 2,
                                                         "columns": "Profile.age,Profile.name"}).json()
    assert page["total"] == want.shape[0] > 9
    ages = world.get(prof, "age", want)
    order = np.lexsort((want, -ages))
    assert page["ids"] == want[order][2:9].tolist()
    assert page["columns"]["Profile.age"] == ages[order][2:9].tolist()
    assert set(page["columns"]) == {"Profile.age", "Profile.name"}


@pytest.mark.parametrize("params, message", [
    ({"where": "Profile.agee >= 60"}, "has no scalar or string column 'agee'"),
    ({"where": "Profile.age >= sixty"}, "is not a literal"),
    ({"where": "Nobody.x == 1"}, "no component named 'Nobody'"),
    ({"where": "Profile.age >= 'x'"}, "cannot compare"),
    ({"sort": "Profile.nope"}, "no column 'Profile.nope'"),
    ({"limit": 100000}, "limit"),
])
def test_bad_agent_queries_are_400_with_the_message(client, params, message):
    r = client.get("/api/runs/social/agents", params=params)
    assert r.status_code == 400 and message in r.json()["detail"]


def test_text_search(client):
    page = client.get("/api/runs/social/agents", params={"q": "NURSE", "columns": "Profile.occupation",
                                                         "limit": 500}).json()
    assert page["total"] > 0 and all("nurse" in v.lower() for v in page["columns"]["Profile.occupation"])


def test_histogram(client):
    h = client.get("/api/runs/social/agents/histogram", params={"column": "Profile.age",
                                                               "where": "Profile.age < 30"}).json()
    total = client.get("/api/runs/social/agents", params={"where": "Profile.age < 30", "limit": 1}).json()["total"]
    assert sum(h["counts"]) == h["total"] == total and h["edges"][-1] < 30
    r = client.get("/api/runs/social/agents/histogram", params={"column": "Profile.name"})
    assert r.status_code == 400 and "not a numeric column" in r.json()["detail"]


def test_agent_page(client, mock_run):
    replies = load_replies(mock_run)
    entity = int(replies.column("entity")[0].as_py())
    a = client.get(f"/api/runs/social/agents/{entity}").json()
    assert a["id"] == entity and {"Profile", "Mood", "Follows"} <= set(a["components"])
    assert isinstance(a["components"]["Follows"]["ids"], list)
    mine = replies.filter(pc.equal(replies.column("entity"), entity))
    assert len(a["decisions"]) == mine.num_rows > 0
    assert {d["completion"] for d in a["decisions"]} == set(mine.column("completion").to_pylist())
    assert [d["tick"] for d in a["decisions"]] == sorted((d["tick"] for d in a["decisions"]), reverse=True)
    r = client.get("/api/runs/social/agents/99999")
    assert r.status_code == 404 and "no agent 99999" in r.json()["detail"]


def test_label_queue_post_and_store(client, run_dir):
    q = client.get("/api/runs/social/labels/queue", params={"name": "ada", "k": 3}).json()
    items = q["items"]
    assert len(items) == 3 and all(re.fullmatch(r"[0-9a-f]{16}", i["reply_id"]) for i in items)
    assert str(items[0]["entity"]) in q["profiles"]
    body = {"name": "ada", "labels": [{"reply": items[0]["reply_id"], "score": 2},
                                      {"reply": items[1]["reply_id"], "revision": "I would share it."},
                                      {"reply": items[2]["reply_id"], "score": 5, "rationale": "fits"}]}
    r = client.post("/api/runs/social/labels", json=body)
    assert r.status_code == 200 and r.json()["written"] == 3
    store = LabelStore(run_dir).read()
    assert store.num_rows == 3 and set(store.column("source").to_pylist()) == {"human:ada"}
    by_reply = dict(zip(store.column("completion").to_pylist(), store.column("score").to_pylist()))
    assert by_reply[items[0]["completion"]] == 2 and by_reply[items[2]["completion"]] == 5
    assert store.column("revision").to_pylist()[1] == "I would share it."
    again = client.get("/api/runs/social/labels/queue", params={"name": "ada", "k": 500}).json()["items"]
    assert not {i["reply_id"] for i in items} & {i["reply_id"] for i in again}  # labelled ones leave the queue
    other = client.get("/api/runs/social/labels/queue", params={"name": "bob", "k": 3}).json()["items"]
    assert [i["reply_id"] for i in other] == [i["reply_id"] for i in items]  # same seed, same order
    summary = client.get("/api/runs/social/labels").json()
    assert summary["total"] == 3 and summary["by_source"] == {"human:ada": 3}


@pytest.mark.parametrize("bad, message", [
    ({"score": 9}, "score: must be an integer 1..5"),
    ({"score": True}, "score: must be an integer 1..5"),
    ({"score": "4"}, "score: must be an integer 1..5"),
    ({"score": None}, "give a score (1..5) or a revision"),
    ({"reply": "0123456789abcdef", "score": 3}, "no logged reply with id"),
    ({"reply": "<script>", "score": 3}, "must be a reply id"),
    ({"score": 3, "extra": 1}, "unknown fields"),
])
def test_bad_labels_are_400_and_nothing_is_written(client, run_dir, bad, message):
    items = client.get("/api/runs/social/labels/queue", params={"name": "ada", "k": 2}).json()["items"]
    good = {"reply": items[0]["reply_id"], "score": 4}
    wrong = {"reply": items[1]["reply_id"], **bad}
    r = client.post("/api/runs/social/labels", json={"name": "ada", "labels": [good, wrong]})
    assert r.status_code == 400 and message in r.json()["detail"]
    assert LabelStore(run_dir).read().num_rows == 0  # the good label of the batch was not written either


@pytest.mark.parametrize("body, message", [
    ({"name": "a b", "labels": [{"reply": "0" * 16, "score": 1}]}, "name 'a b'"),
    ({"name": "ada", "labels": []}, "non-empty list"),
    ([1, 2], "JSON object"),
])
def test_bad_label_bodies(client, body, message):
    r = client.post("/api/runs/social/labels", json=body)
    assert r.status_code == 400 and message in r.json()["detail"]
    r = client.post("/api/runs/social/labels", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]


def test_duplicate_replies_and_bad_queue_params(client):
    items = client.get("/api/runs/social/labels/queue", params={"name": "ada", "k": 1}).json()["items"]
    dup = {"reply": items[0]["reply_id"], "score": 3}
    r = client.post("/api/runs/social/labels", json={"name": "ada", "labels": [dup, dup]})
    assert r.status_code == 400 and "twice" in r.json()["detail"]
    r = client.get("/api/runs/social/labels/queue", params={"name": "ada", "policy": "bogus"})
    assert r.status_code == 400 and "unknown policy" in r.json()["detail"]
    r = client.get("/api/runs/social/labels/queue", params={"name": "ada", "policy": "outcome-first,cap:1"})
    assert r.status_code == 200 and len({i["entity"] for i in r.json()["items"]}) == len(r.json()["items"])


def test_cross_origin_post_is_refused(client):
    r = client.post("/api/runs/social/labels", json={}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-origin" in r.json()["detail"]


def test_agent_text_is_returned_raw_and_the_page_renders_it_as_text(run_dir):
    """XSS: an agent's post containing <script> comes back as the same characters, and app.js never
    puts data into the page as HTML."""
    evil = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    f = sorted((run_dir / "responses").glob("tick-*.parquet"))[0]
    t = pq.read_table(f)
    comps = t.column("completions").to_pylist()
    comps[0] = [evil] * len(comps[0])
    t = t.set_column(t.column_names.index("completions"), "completions",
                     pa.array(comps, t.schema.field("completions").type))
    pq.write_table(t, f)
    entity = t.column("first_entity")[0].as_py()
    client = make_client(run_dir)
    decisions = client.get(f"/api/runs/social/agents/{entity}").json()["decisions"]
    assert evil in [d["completion"] for d in decisions]
    js = (STATIC / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, f"app.js uses {sink}"
    assert "e.append(kid instanceof Node ? kid : String(kid))" in js  # strings become text nodes
