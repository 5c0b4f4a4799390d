"""End to end in a real Chromium (Debian's package, driven by Playwright): overview chart, agents filter,
agent page, labelling three replies with the keyboard. Screenshots land in the test's tmp folder."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")
    if not Path(CHROMIUM).is_file():
        pytest.skip("needs Debian's chromium (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b, sync_api
        finally:
            b.close()


def test_dashboard_end_to_end(browser, run_dir, tmp_path):
    """The page runs under its own Content-Security-Policy (no eval), so waits use locators only."""
    from socius.correct import LabelStore
    from socius.web.runs import discover_runs
    from socius.web.server import DashboardThread

    browser, sync_api = browser
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with DashboardThread(discover_runs([run_dir])) as dash:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        expect = sync_api.expect
        page.goto(dash.url)
        assert "token=" not in page.url  # the one-time URL set the cookie and was dropped
        page.click("#runs tr.row")
        page.wait_for_selector("#metrics .chart canvas")
        assert page.locator("#metrics .chart").count() >= 5
        assert page.locator("#tick").text_content() == "3"
        page.wait_for_selector("#decisions .chart canvas")
        expect(page.locator("#tokens")).to_have_text(re.compile(r"^[1-9][0-9,]*$"))  # the cost so far, in tokens
        assert page.locator("#cost").get_attribute("title").startswith("no price")
        assert page.locator("#ranks-table").count() == 0  # a run on one rank has no per-rank rows
        page.screenshot(path=str(shots / "overview.png"), full_page=True)

        page.click("nav >> text=agents")
        page.wait_for_selector("#agent-table")
        page.fill("#where", "Profile.age >= 50")
        page.press("#where", "Enter")
        expect(page.locator("#total")).not_to_have_text(re.compile(r"^300 agents"))
        page.wait_for_selector("[data-chart=histogram] canvas")
        total = int(page.locator("#total").text_content().split()[0])
        assert 0 < total < 300
        ages = page.locator("#agent-table tr.row td:nth-child(3)").all_text_contents()
        assert ages and all(int(a) >= 50 for a in ages)
        page.screenshot(path=str(shots / "agents.png"), full_page=True)

        first = page.locator("#agent-table tr.row").first
        agent_id = first.get_attribute("data-id")
        first.click()
        page.wait_for_selector("#components")
        assert page.locator("h1").first.text_content().startswith(f"Agent {agent_id}")
        assert page.locator("#components h2", has_text="Profile").count() == 1
        page.screenshot(path=str(shots / "agent.png"), full_page=True)

        label_three(page, expect)
        page.screenshot(path=str(shots / "label.png"), full_page=True)
        assert not errors, errors
    labels = LabelStore(run_dir).read()
    assert labels.num_rows == 3 and sorted(labels.column("score").to_pylist()) == [2, 4, 5]
    assert set(labels.column("source").to_pylist()) == {"human:ada"}
    assert len(list(shots.glob("*.png"))) == 4


def label_three(page, expect) -> None:
    """On the labelling page: as labeller ``ada``, score three replies 4, 2, 5 by keyboard, each saved."""
    page.click("nav >> text=label")
    page.fill("#labeller", "ada")
    page.click("#load")
    for score in ("4", "2", "5"):
        page.wait_for_selector("#item")
        reply = page.locator("#item").get_attribute("data-reply")
        page.locator("body").click(position={"x": 5, "y": 5})  # keys go to the page, not a text box
        page.keyboard.press(score)
        page.keyboard.press("Enter")
        expect(page.locator("#item")).not_to_have_attribute("data-reply", reply)
    expect(page.locator("#saved")).to_have_text("3 saved")


def test_per_rank_rows_on_the_overview(browser, tmp_path):
    """A run over two ranks (threads standing in for MPI) served from its files: one row per rank."""
    from socius.app.config import build_config
    from socius.app.engines import EngineChoice
    from socius.app.registry import get_scenario
    from socius.app.run import run_scenario
    from socius.mpi import run_ranks
    from socius.web.runs import discover_runs
    from socius.web.server import DashboardThread

    sc = get_scenario("social")
    cfg = build_config(sc.config, {"agents": 300})
    out = tmp_path / "two"
    run_ranks(2, lambda ctx: run_scenario(sc, cfg, seed=1, ticks=3, out=out, snapshot_every=3,
                                          engine=EngineChoice("mock"), ranks=ctx))
    browser, sync_api = browser
    with DashboardThread(discover_runs([out])) as dash:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(dash.url)
        page.click("#runs tr.row")
        page.wait_for_selector("#ranks-table")
        rows = page.locator("#ranks-table tr[data-rank]")
        assert rows.count() == 2
        entities = [int(rows.nth(i).locator("td").nth(2).text_content()) for i in range(2)]
        assert sum(entities) == 300
        page.screenshot(path=str(tmp_path / "ranks.png"), full_page=True)
