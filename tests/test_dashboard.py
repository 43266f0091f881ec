"""The supervisor's map dashboard at / in the system Chromium with all outside network blocked: log in, every
layer draws features, filters change the map and the table without a reload, a case popup acts on its case,
the table's actions follow the role (dispatch preselects the proposed department), new cases appear live."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from gridmap.demo.users import DemoUser, demo_users
from gridmap.maps.assets import RemoteAsset, check_local, localise
from gridmap.maps.context import dashboard_context
from gridmap.maps.dashboard import SCRIPT, render_dashboard
from tests.browser import new_context, token

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DESKTOP = dict(viewport={"width": 1600, "height": 1000}, locale="zh-CN", timezone_id="Asia/Taipei")
# around Taipei Main Station, ≥ 100 m apart so that no report is merged into another
REPORTS = [(121.5152, 25.0433, "20102"), (121.5163, 25.0447, "20102"), (121.5176, 25.0459, "20102"),
           (121.5187, 25.0436, "20104"), (121.5168, 25.0466, "20103")]
VIEW = (25.0450, 121.5170, 16)
OVERLAYS_OFF_AT_START = ("社区界", "责任网格", "部件", "案件热力图")
LAYER_KEYS = {"district", "community", "unit_grid", "duty_grid", "road", "component", "heat", "cases"}



@pytest.fixture(scope="module")
def users(live_engine: Engine) -> dict[str, DemoUser]:
    with Session(live_engine) as session:
        created = demo_users(session=session)
        session.commit()
    return {user.role: user for user in created}


def report(live_server: str, inspector: str, x: float, y: float, class_code: str) -> dict:
    reply = httpx.post(f"{live_server}/api/v1/reports", data={
        "x": x, "y": y, "crs": "wgs84", "accuracy": 8, "class_code": class_code, "description": "dashboard test"},
        headers={"Authorization": f"Bearer {inspector}", "Idempotency-Key": str(uuid.uuid4())}, timeout=30)
    case = reply.raise_for_status().json()
    assert case["merged_into"] is None, case
    return {"number": case["number"], "class_code": class_code[1:], "lon": x, "lat": y, "unit_grid": case["unit_grid"]}


@pytest.fixture(scope="module")
def cases(live_server: str, users: dict[str, DemoUser]) -> list[dict]:
    inspector = token(live_server, users["inspector"])
    return [report(live_server, inspector, x, y, class_code) for x, y, class_code in REPORTS]


def status_of(engine: Engine, number: str) -> tuple[str, str | None]:
    with engine.connect() as connection:
        return tuple(connection.execute(text("SELECT status, department FROM case_file WHERE number = :n"),
                                        {"n": number}).one())


def mapped_cases(live_server: str, bearer: str, **filters) -> int:
    reply = httpx.get(f"{live_server}/api/v1/cases.geojson", params=filters, headers={"Authorization": f"Bearer {bearer}"})
    return len(reply.raise_for_status().json()["features"])


def open_dashboard(chromium, live_server: str, user: DemoUser):
    """Log in on / in a fresh guarded desktop context; return (context, page, guard) once the map has drawn."""
    context, watch = new_context(chromium, **DESKTOP)
    page = context.new_page()
    page.goto(f"{live_server}/")
    page.get_by_label("用户名").fill(user.name)
    page.get_by_label("密码").fill(user.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_function("window.gridmapReady === true")
    expect(page.locator("#who")).to_contain_text(user.name)
    return context, page, watch


def show(page: Page, lat: float, lon: float, zoom: int) -> None:
    page.evaluate("([lat, lon, zoom]) => { const map = GridmapDashboard.state.map; map.closePopup(); "
                  "map.setView([lat, lon], zoom, {animate: false}); }", [lat, lon, zoom])


def markers(page: Page) -> int:
    return page.locator("path.gm-case").count()


def wait_for_markers(page: Page, count: int) -> None:
    page.wait_for_function("n => document.querySelectorAll('path.gm-case').length === n", arg=count)


def test_supervisor_sees_every_layer_filters_and_acts_from_a_popup(chromium, live_server, live_engine, users, cases):
    supervisor = token(live_server, users["supervisor"])
    context, page, watch = open_dashboard(chromium, live_server, users["supervisor"])
    try:
        expect(page.locator(".leaflet-control-attribution")).to_contain_text("OpenStreetMap")
        expect(page.locator("#gm-credits")).to_contain_text("data.taipei")
        expect(page.locator("#h-open")).to_have_text(re.compile(r"^\d+$"))

        # every layer draws features: boundaries (GeoJSON), tiles (grids, duty grids, roads, components), cases, heat
        show(page, *VIEW)
        for name in OVERLAYS_OFF_AT_START:
            page.locator(".leaflet-control-layers label", has_text=name).locator("input").check()
        page.wait_for_function("Object.values(GridmapDashboard.counts()).every(n => n > 0)")
        drawn = page.evaluate("GridmapDashboard.counts()")
        assert set(drawn) == LAYER_KEYS, drawn  # Taipei has no street level, so no street layer
        assert drawn["district"] == 12 and drawn["community"] == 456
        assert drawn["cases"] == markers(page) >= len(cases) and drawn["heat"] == drawn["cases"]
        assert page.locator(".leaflet-tile-container canvas").count() > 0
        # the choropleth knows the open cases of each grid
        assert page.evaluate("code => GridmapDashboard.state.gridOpen[code]", cases[0]["unit_grid"]) >= 1

        # a filter changes what the map and the table show, without a reload
        page.evaluate("window.notReloaded = true")
        everything = markers(page)
        page.select_option("#f-class", "0104")
        expected = mapped_cases(live_server, supervisor, class_code="0104", open_only="true")
        wait_for_markers(page, expected)
        assert 1 <= expected < everything
        expect(page.locator("#table-total")).to_have_text(f"共 {expected} 件")
        page.get_by_role("button", name="清除").click()
        wait_for_markers(page, everything)
        assert page.evaluate("window.notReloaded") is True

        # a case popup: class, time, department, deadline and light, routing evidence, the supervisor's actions
        shown = cases[0]
        show(page, shown["lat"], shown["lon"], 17)
        page.locator(f"path.gm-case-{shown['number']}").click()
        popup = page.locator(".leaflet-popup-content")
        expect(popup).to_contain_text(shown["number"])
        expect(popup).to_contain_text("暴露垃圾")
        expect(popup).to_contain_text("阶段时限")
        expect(popup.locator(".gm-evidence")).to_contain_text("网格")
        expect(popup.get_by_role("button", name="作废")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "dashboard.png")

        # acting from a popup changes the case; the map and the table follow
        voided = cases[4]
        show(page, voided["lat"], voided["lon"], 17)
        page.locator(f"path.gm-case-{voided['number']}").click()
        page.locator(".leaflet-popup-content").get_by_role("button", name="作废").click()
        dialog = page.locator("#action-dialog")
        expect(dialog).to_be_visible()
        dialog.locator("textarea[name=reason]").fill("dashboard test: reported twice")
        dialog.get_by_role("button", name="确定").click()
        expect(page.locator(f"path.gm-case-{voided['number']}")).to_have_count(0)
        expect(page.locator(f"#case-table tr[data-number='{voided['number']}']")).to_have_count(0)
        assert status_of(live_engine, voided["number"])[0] == "voided"
        page.select_option("#f-status", "all")  # closed cases are optional: grey
        page.select_option("#f-class", "0103")
        expect(page.locator(f"path.gm-case-{voided['number']}")).to_have_attribute("fill", "#8c8c8c")
        expect(page.locator(f"#case-table tr[data-number='{voided['number']}'] .gm-status")).to_have_text("已作废")

        # English on the switch
        page.locator("#lang").click()
        expect(page.locator("#gm-top h1")).to_contain_text("City management command centre")
        expect(page.locator(".leaflet-control-layers")).to_contain_text("Unit grids")
        page.locator("#lang").click()
        watch.check()
    finally:
        context.close()


def test_roles_act_from_the_table_and_dispatch_preselects_the_proposed_department(chromium, live_server, live_engine,
                                                                                   users, cases):
    case = cases[1]
    context, page, watch = open_dashboard(chromium, live_server, users["acceptor"])
    try:
        page.select_option("#f-status", "reported")
        row = page.locator(f"#case-table tr[data-number='{case['number']}']")
        row.get_by_role("button", name="受理", exact=True).click()
        page.locator("#action-dialog").get_by_role("button", name="确定").click()
        expect(row).to_have_count(0)
        assert status_of(live_engine, case["number"])[0] == "accepted"
        watch.check()
    finally:
        context.close()

    shift_lead = token(live_server, users["shift_lead"])
    detail = httpx.get(f"{live_server}/api/v1/cases/{case['number']}", headers={"Authorization": f"Bearer {shift_lead}"}).json()
    httpx.post(f"{live_server}/api/v1/cases/{case['number']}/file", json={"version": detail["version"], "confirm": True},
               headers={"Authorization": f"Bearer {shift_lead}"}).raise_for_status()

    context, page, watch = open_dashboard(chromium, live_server, users["dispatcher"])
    try:
        page.select_option("#f-status", "filed")
        page.locator(f"#case-table tr[data-number='{case['number']}']").get_by_role("button", name="派遣", exact=True).click()
        chosen = page.locator("#action-dialog select[name=department]")
        expect(chosen).to_have_value(detail["proposed_department"])
        page.locator("#action-dialog").get_by_role("button", name="确定").click()
        expect(page.locator(f"#case-table tr[data-number='{case['number']}']")).to_have_count(0)
        assert status_of(live_engine, case["number"]) == ("dispatched", detail["proposed_department"])
        watch.check()
    finally:
        context.close()


def test_new_cases_appear_without_a_reload(chromium, live_server, users, cases):
    context, page, watch = open_dashboard(chromium, live_server, users["supervisor"])
    try:
        page.evaluate("window.notReloaded = true")
        before = markers(page)
        new = report(live_server, token(live_server, users["inspector"]), 121.5141, 25.0458, "20102")
        expect(page.locator(f"path.gm-case-{new['number']}")).to_have_count(1, timeout=15_000)
        assert markers(page) == before + 1 and page.evaluate("window.notReloaded") is True
        expect(page.locator(f"#case-table tr[data-number='{new['number']}']")).to_have_count(1)
        watch.check()
    finally:
        context.close()


def test_without_a_session_the_page_is_a_log_in_and_every_asset_is_local(live_server, users):
    anonymous = httpx.get(f"{live_server}/")
    assert anonymous.status_code == 200 and 'id="login-form"' in anonymous.text and "folium-map" not in anonymous.text
    assert "OpenStreetMap" in anonymous.text
    client = httpx.Client(base_url=live_server)
    client.post("/api/v1/auth/token", data={"username": users["supervisor"].name,
                                            "password": users["supervisor"].password}).raise_for_status()
    page = client.get("/").text
    assert "folium-map" in page and "OpenStreetMap" in page and "data.taipei" in page
    assets = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', page)
    assert {"/static/vendor/leaflet/dist/leaflet.js", SCRIPT} <= set(assets)
    for url in assets:
        if not url.startswith("data:"):
            assert url.startswith("/static/") and client.get(url).status_code == 200, url


def test_folium_assets_are_rewritten_or_refused(session):
    import folium
    from folium.plugins import MarkerCluster

    plain = localise(folium.Map(tiles=None))
    assert "http" not in "".join(url for _, url in plain.default_js + plain.default_css)
    assert folium.Map.default_js[0][1].startswith("https://")  # folium's own lists are left alone
    check_local(plain.get_root().render())
    with pytest.raises(RemoteAsset, match="MarkerCluster"):
        localise(folium.Map(tiles=None).add_child(MarkerCluster()))
    with pytest.raises(RemoteAsset, match="unpkg.com"):
        check_local('<script src="https://unpkg.com/x.js"></script>')

    context = dashboard_context(session=session)
    page = render_dashboard(context, tiles="https://tiles.example.org/{z}/{x}/{y}.png", tiles_attribution="Example Tiles Ltd")
    assert "https://tiles.example.org/{z}/{x}/{y}.png" in page and "Example Tiles Ltd" in page
    assert "L.tileLayer" not in render_dashboard(context)  # no base map: a plain background
