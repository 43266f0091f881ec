"""The inspector's mobile page /report in a phone-sized Chromium: log in, locate, pick a class, preview, send;
offline (or when the answer is lost) the report waits in the queue and is filed exactly once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page, Route, expect
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from gridmap.demo.users import DemoUser, demo_users
from tests.browser import new_context, token

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FIX = {"longitude": 121.5155, "latitude": 25.0455, "accuracy": 12}  # near Taipei Main Station, 中正區
PHONE = dict(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True,
             locale="zh-CN", timezone_id="Asia/Taipei", geolocation=FIX, permissions=["geolocation"])
CASE_NUMBER = re.compile(r"^\d{14}$")  # yyyymmdd + six digits



@pytest.fixture(scope="module")
def inspector(live_engine: Engine) -> DemoUser:
    """The demo inspector (patrols 中正區), committed so that the live server sees it."""
    with Session(live_engine) as session:
        user = next(u for u in demo_users(session=session) if u.role == "inspector")
        session.commit()
    return user


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "street.jpg"
    Image.new("RGB", (96, 64), (120, 110, 90)).save(path, "JPEG", quality=80)
    return path


@pytest.fixture
def phone(chromium, live_server: str, inspector: DemoUser) -> Iterator[tuple[Page, object]]:
    """A logged-in page on a phone-sized, located, guarded context, and its guard."""
    context, watch = new_context(chromium, **PHONE)
    try:
        page = context.new_page()
        page.goto(f"{live_server}/report")
        page.get_by_label("用户名").fill(inspector.name)
        page.get_by_label("密码").fill(inspector.password)
        page.get_by_role("button", name="登录").click()
        expect(page.locator("#who")).to_contain_text(inspector.name)
        yield page, watch
    finally:
        context.close()


def cases_described(engine: Engine, description: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(text("SELECT count(*) FROM case_file WHERE description = :d"), {"d": description})


def fill_report(page: Page, description: str, photo: Path) -> None:
    """Pick 暴露垃圾 (event 0102) through the catalogue search, describe it and attach a photo."""
    page.get_by_label("搜索事件或部件类别").fill("垃圾")
    page.locator("#class-results button").filter(has_text="暴露垃圾").filter(has_text="事件 0102").click()
    expect(page.locator("#class-picked")).to_contain_text("暴露垃圾")
    page.get_by_label("问题描述").fill(description)
    page.get_by_label("照片", exact=True).set_input_files(photo)
    expect(page.locator("#photo-count")).to_have_text("已选 1 张照片")


def expected_department(live_server: str, inspector: DemoUser) -> str:
    bearer = {"Authorization": f"Bearer {token(live_server, inspector)}"}
    decision = httpx.post(f"{live_server}/api/v1/assign", headers=bearer, json={
        "x": FIX["longitude"], "y": FIX["latitude"], "crs": "wgs84", "accuracy": FIX["accuracy"],
        "class_code": "0102", "case_type": "event"}).json()
    assert decision["department"], decision
    names = {d["code"]: d["name"] for d in httpx.get(f"{live_server}/api/v1/departments", headers=bearer).json()}
    return names[decision["department"]]


def test_report_online_then_offline_files_each_report_once(phone, live_server, live_engine, photo, inspector):
    page, watch = phone
    expect(page.locator("#fix")).to_have_text("经度 121.515500，纬度 25.045500")
    expect(page.locator("#fix-accuracy")).to_have_text("精度 ±12 米")

    fill_report(page, "report page test: online", photo)
    preview = page.locator("#preview")
    expect(preview).to_contain_text("将派往")
    expect(preview).to_contain_text(expected_department(live_server, inspector))
    expect(preview).to_contain_text("单元网格")
    page.get_by_role("button", name="发送上报").click()
    number = page.locator("#case-number")
    expect(number).to_have_text(CASE_NUMBER)
    first = number.inner_text()
    expect(page.locator("#receipt")).to_contain_text("派遣依据")
    assert cases_described(live_engine, "report page test: online") == 1
    expect(page.get_by_label("问题描述")).to_have_value("")  # the form is free for the next report

    # offline: the report is kept on the phone (photo as a blob in IndexedDB) and nothing reaches the server
    description = "report page test: sent offline, filed once"
    fill_report(page, description, photo)
    page.context.set_offline(True)
    expect(page.locator("#net")).to_be_visible()
    page.get_by_role("button", name="发送上报").click()
    expect(page.locator("#queue-status")).to_contain_text("已排队（1 条待发送）")
    assert cases_described(live_engine, description) == 0

    # back online: the `online` event resends it with the same key
    page.context.set_offline(False)
    expect(number).not_to_have_text(first)
    expect(number).to_have_text(CASE_NUMBER)
    expect(page.locator("#queue-panel")).to_be_hidden()
    page.locator("#retry").evaluate("button => button.click()")  # another pass (hidden button): nothing to send
    page.wait_for_timeout(300)
    assert cases_described(live_engine, description) == 1

    # the receipt on top, the next report with its preview below
    fill_report(page, "report page test: screenshot", photo)
    expect(page.locator("#preview")).to_contain_text("处置部门")
    page.evaluate("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "report.png", full_page=True)

    # the English switch relabels everything, and is remembered
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("button", name="Send report")).to_be_visible()
    expect(page.locator("#fix-accuracy")).to_have_text("Accuracy ±12 m")
    expect(page.locator("#receipt h2")).to_have_text("Reported: case number")
    page.reload()
    expect(page.get_by_role("button", name="中文")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("button", name="发送上报")).to_be_visible()
    watch.check()


def test_a_lost_answer_is_retried_with_the_same_key_and_replayed(phone, live_engine, photo):
    page, watch = phone
    keys: list[str] = []

    def lose_first_answer(route: Route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fetch()  # the server files the case ...
            route.abort("connectionreset")  # ... and the phone never hears of it
        else:
            route.continue_()

    page.route("**/api/v1/reports", lose_first_answer)
    description = "report page test: the answer was lost"
    fill_report(page, description, photo)
    expect(page.locator("#preview")).to_contain_text("处置部门")
    page.get_by_role("button", name="发送上报").click()
    expect(page.locator("#queue-status")).to_contain_text("已排队（1 条待发送）")
    assert cases_described(live_engine, description) == 1

    page.get_by_role("button", name="立即重试").click()
    expect(page.locator("#case-number")).to_have_text(CASE_NUMBER)
    expect(page.locator("#receipt")).to_contain_text("重发")
    expect(page.locator("#queue-panel")).to_be_hidden()
    assert len(keys) == 2 and keys[0] == keys[1]
    assert cases_described(live_engine, description) == 1
    # the dropped connection is the only thing the browser may complain about
    assert [p for p in watch.problems() if "ERR_CONNECTION_RESET" not in p] == []

