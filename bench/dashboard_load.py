"""First load of the supervisor's map dashboard in headless Chromium, on the demo city.

Run: ``.venv/bin/python bench/dashboard_load.py [--loads 10] [--width 1600 --height 1000]`` after
``make setup``. It starts the app (uvicorn, one worker, on a free loopback port) on the developer's
database — ``GRIDMAP_DATABASE_URL`` or the embedded cluster, which holds the demo city — or uses
``--base-url`` of a running one, logs in as ``demo-supervisor`` through the API (creating the demo users
if their log-in fails) and, in a fresh browser context each time (empty HTTP cache, the session cookie and
token already set, as right after the log-in form), opens ``/`` and waits for the page's
``window.gridmapReady``: the dashboard sets it once the unit-grid tiles of the first view are drawn and the
cases are on the map. The time is the page's own clock (``performance.now()`` at that moment, counted from
the navigation's start). All outside network is blocked, as in the tests. It prints min, p50, p95 and max
over the loads, with when the cases and the grid tiles arrived. Target: p50 ≤ 2 s.

The first load after the server starts also builds the page (folium, ≈0.4 s, then cached): it is run
once as a warm-up and reported separately.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
from common import start_server, stop_server
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOGIN = {"username": "demo-supervisor", "password": "supervisor-demo"}
TOKEN_KEY = "gridmap.dashboard.token"  # api/static/dashboard.js
TARGET_SECONDS = 2.0




def log_in(base_url: str) -> str:
    """The supervisor's token; creates the demo users (as `make setup` does) when the log-in fails."""
    reply = httpx.post(f"{base_url}/api/v1/auth/token", data=LOGIN)
    if reply.status_code == 401:
        from sqlalchemy.orm import Session

        from gridmap.config import load_settings
        from gridmap.db.engine import database_url, make_engine
        from gridmap.demo.users import demo_users

        engine = make_engine(database_url(load_settings().database))
        with Session(engine) as session:
            demo_users(session=session)
            session.commit()
        engine.dispose()
        reply = httpx.post(f"{base_url}/api/v1/auth/token", data=LOGIN)
    return reply.raise_for_status().json()["access_token"]


def one_load(browser, base_url: str, token: str, viewport: dict) -> dict:
    """Open the dashboard in a fresh context; return the page's timings (ms since navigation start)."""
    context = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Taipei")
    outside: list[str] = []
    errors: list[str] = []

    def route(request_route) -> None:
        if urlsplit(request_route.request.url).hostname in ("127.0.0.1", "localhost"):
            request_route.continue_()
        else:
            outside.append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    context.add_cookies([{"name": "gridmap_session", "value": token, "url": base_url}])
    context.add_init_script(f"sessionStorage.setItem({TOKEN_KEY!r}, {token!r})")
    page = context.new_page()
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        page.goto(f"{base_url}/")
        page.wait_for_function("window.gridmapReady === true", timeout=60_000)
        timings = page.evaluate("GridmapDashboard.state.timings")
        drawn = page.evaluate("GridmapDashboard.counts()")
    finally:
        context.close()
    if outside or errors:
        raise RuntimeError(f"the page reached outside ({outside}) or logged errors ({errors})")
    return {**timings, "grid_features": drawn["unit_grid"], "cases_drawn": drawn["cases"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--base-url", help="a running gridmap (default: start one on the developer's database)")
    first_load(parser.parse_args())


def first_load(args: argparse.Namespace) -> bool:
    """Measure and print; True when the target is met (also run by bench/tiles.py)."""
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.base_url:
            base_url = args.base_url.rstrip("/")
        else:
            server, base_url = start_server(Path(tmp) / "uvicorn.log")  # on the developer's database
        try:
            return run(base_url, args)
        finally:
            if server is not None:
                stop_server(server)


def run(base_url: str, args: argparse.Namespace) -> bool:
    token = log_in(base_url)
    viewport = {"width": args.width, "height": args.height}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            warm = one_load(browser, base_url, token, viewport)
            loads = [one_load(browser, base_url, token, viewport) for _ in range(args.loads)]
        finally:
            browser.close()
    ready = np.array([load["ready"] for load in loads]) / 1000
    cases = np.array([load["cases"] for load in loads]) / 1000
    grids = np.array([load.get("grids", load["ready"]) for load in loads]) / 1000
    print(f"dashboard first load, {args.loads} fresh contexts, {args.width}×{args.height} px, {base_url}")
    print(f"  first view: {loads[-1]['grid_features']:,} unit-grid features drawn, {loads[-1]['cases_drawn']:,} cases")
    print(f"  warm-up (builds the page once): {warm['ready'] / 1000:.2f} s")
    for name, values in (("ready (grids drawn and cases on the map)", ready), ("cases on the map", cases),
                         ("grid tiles drawn", grids)):
        print(f"  {name:<42} min {values.min():.2f}  p50 {np.percentile(values, 50):.2f}  "
              f"p95 {np.percentile(values, 95):.2f}  max {values.max():.2f} s")
    met = bool(np.percentile(ready, 50) <= TARGET_SECONDS)
    print(f"  target p50 ≤ {TARGET_SECONDS:.0f} s: {'met' if met else 'NOT met'}")
    return met


if __name__ == "__main__":
    main()
