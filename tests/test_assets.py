"""Front-end packages are served by the app itself (no CDN), and the browser guard catches a page that needs one."""

import logging

import httpx
import pytest
from fastapi import FastAPI

from api.assets import mount_assets
from tests.browser import new_context


def test_leaflet_is_served_from_node_modules_and_nothing_else_is(live_server):
    script = httpx.get(f"{live_server}/static/vendor/leaflet/dist/leaflet.js")
    assert script.status_code == 200 and "max-age" in script.headers["cache-control"]
    assert "javascript" in script.headers["content-type"]
    assert httpx.get(f"{live_server}/static/vendor/.package-lock.json").status_code == 404
    assert httpx.get(f"{live_server}/static/vendor/leaflet/%2E%2E/.package-lock.json").status_code == 404


def test_leaflet_runs_in_the_browser(page, live_server):
    dist = f"{live_server}/static/vendor/leaflet/dist"
    page.set_content(f"""<!doctype html><link rel="stylesheet" href="{dist}/leaflet.css">
<script src="{dist}/leaflet.js"></script><div id="map" style="height:200px"></div>""")
    assert page.evaluate("window.L.version") == "1.9.4"
    page.evaluate("L.map('map').setView([25.046, 121.517], 14)")
    # z-index 200 comes from leaflet.css only: the stylesheet was served too
    assert page.evaluate("getComputedStyle(document.querySelector('.leaflet-tile-pane')).zIndex") == "200"


def test_the_guard_catches_a_cdn_reference_and_console_errors(chromium, live_server):
    context, watch = new_context(chromium)
    try:
        context.new_page().set_content("""<script src="https://unpkg.com/leaflet@1.9.4/dist/leaflet.js"></script>
<script>console.error("boom")</script>""")
        with pytest.raises(AssertionError, match="unpkg.com") as raised:
            watch.check()
    finally:
        context.close()
    assert watch.outside_requests == ["https://unpkg.com/leaflet@1.9.4/dist/leaflet.js"]
    assert "boom" in str(raised.value)


def test_the_app_starts_without_node_modules_and_says_how_to_install_them(tmp_path, caplog):
    app = FastAPI()
    with caplog.at_level(logging.WARNING, logger="api.assets"):
        mount_assets(app, tmp_path)
    assert "leaflet" in caplog.text and "npm ci" in caplog.text
    assert [route.path for route in app.routes if route.path.startswith("/static/")] == ["/static/app"]
