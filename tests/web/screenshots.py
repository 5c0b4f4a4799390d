"""Make the README's dashboard screenshots from a live run (not a test: run it by hand).

::

    python -m socius.tests.web.screenshots --agents 100000 --out docs/img

Starts ``socius run social --agents N --engine mock --ui`` in a subprocess, opens the printed URL in
Debian's Chromium (Playwright, as the browser tests do), waits until ``--ticks-before`` ticks have run,
then saves the run overview as ``dashboard.png`` and a filtered, sorted agents page as
``dashboard-agents.png`` (the visible window, 1400 × 900; reduced to a 256-colour palette when a file
would exceed 300 KB). Stops the run with Ctrl-C (SIGINT) when done.
"""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from socius.tests.web.live_proc import dashboard_url, stop

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
MAX_BYTES = 300 * 1024


def save_png(page, path: Path) -> int:
    """A screenshot of the window at ``path`` (palette PNG if the full-colour one is over MAX_BYTES); bytes."""
    from PIL import Image
    raw = page.screenshot(full_page=False)
    if len(raw) > MAX_BYTES:
        img = Image.open(io.BytesIO(raw)).convert("RGB").quantize(256)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
        raw = buf.getvalue()
    path.write_bytes(raw)
    return len(raw)


def start_run(agents: int, steps: int, cwd: Path, name: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "socius.app", "run", "social", "--agents", str(agents),
                             "--steps", str(steps), "--engine", "mock", "--ui", "--port", "0", "--out", f"runs/{name}",
                             "--snapshot-every", "10", "--quiet", "--seed", "1"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    url, _ = dashboard_url(proc, 300)
    if url is not None:
        return proc, url
    proc.kill()
    raise SystemExit("the run printed no dashboard URL")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=100_000)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--ticks-before", type=int, default=15, help="ticks to wait for before the overview shot")
    p.add_argument("--out", type=Path, default=Path("docs/img"))
    args = p.parse_args(argv)
    from playwright.sync_api import expect, sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        name = f"social-{args.agents // 1000}k"
        proc, url = start_run(args.agents, args.steps, Path(d), name)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(url)
                page.click("#runs tr.row")
                page.wait_for_selector("#live")
                end = time.monotonic() + 600
                while int(page.locator("#tick").text_content() or 0) < args.ticks_before:
                    if time.monotonic() > end:
                        raise SystemExit("the run is too slow for the screenshot")
                    page.wait_for_timeout(1000)
                page.wait_for_selector("#decisions .chart canvas")
                expect(page.locator("#tokens")).not_to_have_text("—")
                page.wait_for_timeout(2500)  # one more poll: the charts drawn at the latest tick
                print(f"dashboard.png: {save_png(page, args.out / 'dashboard.png')} bytes")
                base = url.split("/?")[0]
                page.goto(base + f"/#/run/{name}/agents?" + "where=Profile.age+%3E%3D+60&sort=Mood.attitude"
                          "&desc=1&offset=0&limit=10&q=&hist=Mood.attitude&columns=Profile.name,Profile.age,"
                          "Profile.occupation,Profile.trait,Mood.emotion,Mood.attitude,Mood.aware_since,Action.kind")
                page.wait_for_selector("#agent-table")
                page.wait_for_selector("[data-chart=histogram] canvas")
                print(f"dashboard-agents.png: {save_png(page, args.out / 'dashboard-agents.png')} bytes")
                browser.close()
        finally:
            stop(proc)


if __name__ == "__main__":
    main(sys.argv[1:])
