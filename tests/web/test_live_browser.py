"""End to end in a real Chromium against a live ``socius run social --ui``: the tick counter advances, a chart
grows, agents filter, an agent page, an intervention seen in the next tick's state, an interview, three labels
in the label store. Screenshots land in the test's tmp folder."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from .live_proc import dashboard_url, stop
from .test_browser import browser, label_three  # noqa: F401 - browser: the fixture

pytestmark = pytest.mark.browser


@pytest.fixture
def live_run(tmp_path):
    pytest.importorskip("fastapi", reason="the dashboard needs the `ui` extra")
    eng = tmp_path / "engine.json"
    eng.write_text(json.dumps({"per_request_s": 0.25}))  # slow ticks: time to look and steer
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "socius.app", "run", "social", "--agents", "2000", "--steps", "40",
                             "--engine", "mock", "--engine-config", str(eng), "--ui", "--port", "0", "--out", str(out),
                             "--quiet", "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    url, seen = dashboard_url(proc)
    if url is None:
        proc.kill()
        pytest.fail("no dashboard URL printed:\n" + "".join(seen))
    try:
        yield url, out
    finally:
        stop(proc)


def test_live_dashboard_end_to_end(browser, live_run, tmp_path):  # noqa: F811
    from socius.correct import LabelStore
    browser, sync_api = browser
    expect = sync_api.expect
    url, out = live_run
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.click("#runs tr.row")
    page.wait_for_selector("#live")
    first = int(page.locator("#tick").text_content())
    expect(page.locator("#tick")).not_to_have_text(str(first), timeout=30000)
    page.wait_for_selector("#metrics .chart canvas", timeout=30000)
    expect(page.locator("#agents")).to_have_text("2,000")
    api = f"/api/runs/{out.name}"
    base = url.split("/?")[0]
    n1 = len(page.request.get(base + api + "/metrics").json()["columns"]["tick"])
    page.wait_for_timeout(2500)
    n2 = len(page.request.get(base + api + "/metrics").json()["columns"]["tick"])
    assert n2 > n1 > 0  # the chart's data grows
    page.screenshot(path=str(shots / "overview.png"), full_page=True)
    page.click("#pause")
    expect(page.locator("#run-status")).to_have_text("paused", timeout=30000)

    page.click("nav >> text=agents")
    page.wait_for_selector("#agent-table")
    page.fill("#where", "Profile.age >= 60")
    page.press("#where", "Enter")
    expect(page.locator("#total")).not_to_have_text(re.compile(r"^2000 agents"))
    page.fill("#iv-set", "Profile.occupation")
    page.fill("#iv-value", "astronaut")
    page.click("#iv-apply")
    expect(page.locator("#iv-msg")).to_have_text(re.compile(r"^scheduled: \d+ agents"), timeout=30000)
    matched = int(page.locator("#iv-msg").text_content().split()[1])
    page.screenshot(path=str(shots / "intervene.png"), full_page=True)
    page.fill("#where", "Profile.occupation == 'nurse'")  # a filter that is not empty
    page.press("#where", "Enter")

    page.click("nav >> text=overview")
    page.click("#pause")  # resume
    paused_at = int(page.locator("#tick").text_content())
    expect(page.locator("#tick")).not_to_have_text(str(paused_at), timeout=30000)
    page.click("nav >> text=agents")
    astronauts = f"#/run/{out.name}/agents?where=" + "Profile.occupation+%3D%3D+%27astronaut%27"
    page.goto(url.split("?")[0] + astronauts)
    for _ in range(60):  # the next tick's copy of the world shows it
        page.wait_for_selector("#total")
        if page.locator("#total").text_content().startswith(f"{matched} agents"):
            break
        page.wait_for_timeout(500)
        page.reload()  # the same address: a reload asks again
    assert page.locator("#total").text_content().startswith(f"{matched} agents")
    assert set(page.locator("#agent-table tr.row td").all_text_contents()) & {"astronaut"}
    page.screenshot(path=str(shots / "agents.png"), full_page=True)
    base = url.split("/?")[0]
    assert page.request.post(base + api + "/pause").json()["paused"]  # keep it live for the interview

    page.locator("#agent-table tr.row").first.click()
    page.wait_for_selector("#components")
    page.fill("#question", "How was your week?")
    page.click("#ask")
    expect(page.locator("#answer")).not_to_have_text("…", timeout=60000)
    assert page.locator("#answer").get_attribute("data-tick") is not None, page.locator("#answer").text_content()
    page.screenshot(path=str(shots / "agent.png"), full_page=True)

    label_three(page, expect)
    page.screenshot(path=str(shots / "label.png"), full_page=True)
    assert not errors, errors
    labels = LabelStore(out).read()
    assert labels.num_rows == 3 and sorted(labels.column("score").to_pylist()) == [2, 4, 5]
    rows = [json.loads(x) for x in (out / "interventions.jsonl").read_text().splitlines()]
    assert [(r["set"], r["value"], r["matched"]) for r in rows] == [("Profile.occupation", "astronaut", matched)]
    assert len(list(shots.glob("*.png"))) == 5
