"""The report and case API: log-in, the role × endpoint matrix, idempotent retries (also racing each
other), photos checked by content and size (and large ones holding up no other request), and bad input
answered with a 4xx that says what to fix."""

from __future__ import annotations

import gc
import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from api.main import create_app
from gridmap.cases.photos import store_photo
from gridmap.config import CaseSettings, DatabaseSettings, Settings
from gridmap.demo.users import demo_users
from gridmap.routing.layers import STAMP_SQL, held_stamp
from gridmap.users.service import create_user
from tests.conftest import _admin, clone_database, drop_database, logged_in
from tests.test_serve import ROOT, free_port

ROLES = ("inspector", "acceptor", "shift_lead", "dispatcher", "department", "supervisor", "analyst", "admin")
STATION = {"x": "121.5190", "y": "25.0450", "crs": "wgs84", "accuracy": "6", "class_code": "20102"}


@pytest.fixture(scope="module")
def api_url(db_url, demo_reports):
    url = clone_database(db_url, "api" + uuid.uuid4().hex[:4])
    engine = create_engine(url)
    with Session(engine) as session:
        demo_users(session=session)
        session.commit()
    engine.dispose()
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def client(api_url, tmp_path_factory):
    settings = Settings(database=DatabaseSettings(database_url=api_url),
                        cases=CaseSettings(photo_dir=tmp_path_factory.mktemp("photos"), photo_max_mb=0.2))
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def tokens(client):
    found = {}
    for role in ROLES:  # the API tests authenticate with the bearer token only (logged_in drops the cookie)
        name = role.replace("_", "-")
        found[role] = logged_in(client, {"username": f"demo-{name}", "password": f"{name}-demo"})
    return found


def jpeg(size=(64, 48), exif_gps=None) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, "olive")
    exif = Image.Exif()
    if exif_gps:
        lon, lat = exif_gps
        exif[0x8825] = {1: "N", 2: (int(lat), int(lat * 60 % 60), round(lat * 3600 % 60, 2)),
                        3: "E", 4: (int(lon), int(lon * 60 % 60), round(lon * 3600 % 60, 2))}
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def send(client, headers, fields=None, photos=(), key=None):
    files = [("photos", (name, data, "image/jpeg")) for name, data in photos]
    return client.post("/api/v1/reports", data=STATION | {"description": f"d-{uuid.uuid4()}"} | (fields or {}),
                       files=files or None, headers=headers | {"Idempotency-Key": key or str(uuid.uuid4())})


def test_log_in_and_who_am_i(client, tokens):
    assert client.get("/api/v1/users/me", headers=tokens["department"]).json()["department"] == "HW"
    wrong = client.post("/api/v1/auth/token", data={"username": "demo-inspector", "password": "nope-nope"})
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.json()["detail"]
    assert client.get("/api/v1/cases").status_code == 401
    bogus = client.get("/api/v1/cases", headers={"Authorization": "Bearer not-a-token"})
    assert bogus.status_code == 401 and "log in again" in bogus.json()["detail"]
    # a report checks its token along with its first statements: refused the same way, before its fix or class
    assert send(client, {}).status_code == 401
    for fields in ({}, {"crs": "mars"}, {"class_code": "29999"}):
        refused = send(client, {"Authorization": "Bearer not-a-token"}, fields)
        assert refused.status_code == 401 and "log in again" in refused.json()["detail"], fields
        assert fields == {} or send(client, tokens["inspector"], fields).status_code == 422  # logged in


def test_guessing_passwords_is_slowed_down(client, api_url):
    """Five failed log-ins for a name lock it for the rest of 15 minutes (even with the right password; other
    users log in as before); a success forgets the failures. Thirty from one address lock that address."""
    def log_in(name: str, password: str, through=client):
        return through.post("/api/v1/auth/token", data={"username": name, "password": password})

    engine = create_engine(api_url)
    with Session(engine) as session:
        create_user(session=session, name="guessed", role="analyst", password="right-password")
        session.commit()
    for _ in range(5):
        assert log_in("guessed", "wrong-guess").status_code == 401
    locked = log_in("guessed", "right-password")
    assert locked.status_code == 429 and "too many failed log-ins for user 'guessed'" in locked.json()["detail"]
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert log_in("demo-analyst", "analyst-demo").status_code == 200
    with engine.begin() as conn:  # a quarter of an hour later
        conn.execute(text("UPDATE login_failure SET at = at - interval '15 minutes' WHERE user_name = 'guessed'"))
    assert log_in("guessed", "right-password").status_code == 200
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM login_failure WHERE user_name = 'guessed'")).scalar() == 0
    engine.dispose()
    elsewhere = TestClient(client.app, client=("10.9.8.7", 4000))  # the same app (its lifespan runs already)
    for n in range(30):
        log_in(f"nobody-{n}", "wrong-guess", elsewhere)
    refused = log_in("demo-analyst", "analyst-demo", elsewhere)
    assert refused.status_code == 429 and "address 10.9.8.7" in refused.json()["detail"]
    assert log_in("demo-analyst", "analyst-demo").status_code == 200
    client.cookies.clear()  # the log-ins' session cookie: the other tests send their own credentials


def test_report_answers_with_the_case_the_department_and_why(client, tokens, api_url):
    reply = send(client, tokens["inspector"], photos=[("pile.jpg", jpeg(exif_gps=(121.60, 25.10)))])
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["number"].startswith("20") and body["status"] == "reported" and not body["replayed"]
    assert body["department"] == "HW" and body["department_name"] == "环境保护局"
    assert body["disposal_time_limit"] == "4 working hours from dispatch" and body["acceptance_deadline"]
    assert any(line["step"] == "department" for line in body["routing"]) and body["evidence"]["unit_grid"]
    assert body["flags"][0]["kind"] == "photo_far"  # EXIF says ≈ 11 km away
    case = client.get(f"/api/v1/cases/{body['number']}", headers=tokens["supervisor"]).json()
    sha = case["photos"][0]
    assert client.get(f"/api/v1/photos/{sha}?thumbnail=true", headers=tokens["supervisor"]).headers[
        "content-type"] == "image/jpeg"
    assert client.get(f"/api/v1/photos/{sha}").status_code == 401
    with client.app.state.held.autocommit() as held:  # the connection the process holds for the reports
        filed_on = held.info.backend_pid
    engine = create_engine(api_url)
    with engine.connect() as conn:  # the photo's row, filed with the case: what EXIF said, by whom
        row = conn.execute(text("SELECT p.media_type, p.width, round(p.lon::numeric, 2), u.name FROM photo p "
                                "JOIN app_user u ON u.id = p.uploaded_by WHERE p.sha256 = :sha"), {"sha": sha}).one()
        last = conn.execute(text("SELECT query FROM pg_stat_activity WHERE pid = :pid"), {"pid": filed_on}).scalar()
    engine.dispose()
    assert tuple(row) == ("image/jpeg", 64, Decimal("121.60"), "demo-inspector")
    assert "INSERT INTO photo" in last  # the report was filed there


def test_the_server_decides_from_the_city_in_memory_and_keeps_it_current(client, tokens, api_url, monkeypatch):
    """At start the server loads the city's layers in the background (reports search the database meanwhile);
    a change committed to them is loaded within seconds, and reports decided after it go by it."""
    import api.main

    monkeypatch.setattr(api.main, "CITY_CHECK_SECONDS", 0.2)
    engine = create_engine(api_url)
    try:
        with Session(engine) as session:
            stop = session.execute(text("SELECT code, ST_X(geom), ST_Y(geom) FROM component WHERE class_code = "
                                        "'0203' AND left(code, 6) = '630050' ORDER BY code LIMIT 1")).one()
            at = {"x": f"{stop[1]:.7f}", "y": f"{stop[2]:.7f}", "class_code": "10203", "accuracy": "5"}
            assert until(lambda: held_stamp(session) == stamp_now(session)), "the city was never loaded"
            assert send(client, tokens["inspector"], at).json()["department"] == "GJ"  # its maintainer
            session.execute(text("UPDATE component SET maintainer_department_id = (SELECT id FROM department "
                                 "WHERE code = 'HW') WHERE code = :c"), {"c": stop[0]})
            session.commit()
            # at once, whether the server has loaded the change yet (then from memory) or not (then searched)
            assert send(client, tokens["inspector"], at).json()["department"] == "HW"
            assert until(lambda: held_stamp(session) == stamp_now(session)), "the change was never loaded"
            assert send(client, tokens["inspector"], at).json()["department"] == "HW"  # from memory
            session.execute(text("UPDATE component SET maintainer_department_id = (SELECT id FROM department "
                                 "WHERE code = 'GJ') WHERE code = :c"), {"c": stop[0]})
            session.commit()
    finally:
        engine.dispose()


def test_a_server_stopped_while_it_loads_the_city_leaves_no_connection_open(scratch_url):
    """Stopping waits for a load under way, which gives its connection back, and closes the one held for the
    reports: the database can then be copied or dropped at once (as the tests do with theirs)."""
    app = create_app(Settings(database=DatabaseSettings(database_url=scratch_url)))
    with TestClient(app):
        with app.state.held.autocommit():  # the connection for the reports, opened by the first
            pass  # stopped at once: its first load of the city is under way
    with _admin(scratch_url) as admin:
        assert admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                             (make_url(scratch_url).database,)).fetchone()[0] == 0


def stamp_now(session) -> tuple:
    session.rollback()  # a new snapshot: what is committed now
    return tuple(session.execute(text(STAMP_SQL)).one())


def until(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_retry_returns_the_original_case_and_a_reused_key_is_refused(client, tokens, api_url):
    key, fields = str(uuid.uuid4()), {"description": "retry me"}
    first = send(client, tokens["inspector"], fields, key=key)
    again = send(client, tokens["inspector"], fields, key=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["number"] == first.json()["number"] and again.json()["replayed"]
    other = send(client, tokens["inspector"], {"description": "something else"}, key=key)
    assert other.status_code == 422 and "different report" in other.json()["detail"]
    # five copies of one request racing each other: one case
    key, fields = str(uuid.uuid4()), {"description": "racing copies", "x": "121.5190"}
    with ThreadPoolExecutor(5) as pool:
        replies = list(pool.map(lambda _: send(client, tokens["inspector"], fields, key=key), range(5)))
    assert sorted(r.status_code for r in replies) == [200, 200, 200, 200, 201]
    assert len({r.json()["number"] for r in replies}) == 1
    engine = create_engine(api_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_file WHERE description = 'racing copies'")).scalar() == 1
    engine.dispose()


@pytest.mark.parametrize("fields, photos, key, status, words", [
    ({"class_code": None}, (), None, 422, "class_code"),
    ({"x": "east"}, (), None, 422, "valid number"),
    ({"y": "95"}, (), None, 422, "latitude"),
    ({"x": "0", "y": "0"}, (), None, 422, "outside"),
    ({"class_code": "29999"}, (), None, 422, "unknown"),
    ({"crs": "EPSG:99999"}, (), None, 422, "EPSG"),
    ({"accuracy": "-3"}, (), None, 422, "greater than or equal"),
    ({"captured_at": "2031-01-01T00:00:00+08:00"}, (), None, 422, "future"),
    ({"captured_at": "2026-11-20T09:00:00"}, (), None, 422, "time zone"),
    ({}, [("x.jpg", b"this is not a photo at all")], None, 422, "not a JPEG, PNG, WebP or HEIC"),
    ({}, [("big.jpg", jpeg((1200, 1200)) + b"\0" * 300_000)], None, 413, "MB"),
    ({}, (), "short", 422, "Idempotency-Key"),
    ({"photos": "see the attachment"}, (), None, 422, "photos must be files"),
])
def test_bad_reports_are_refused_with_a_reason(client, tokens, fields, photos, key, status, words):
    fields = {k: v for k, v in fields.items() if v is not None} | \
        ({"class_code": ""} if fields.get("class_code", 1) is None else {})
    reply = send(client, tokens["inspector"], fields, photos, key=key)
    assert reply.status_code == status, reply.text
    assert words.lower() in reply.text.lower()


def test_missing_idempotency_key_is_refused(client, tokens):
    reply = client.post("/api/v1/reports", data=STATION, headers=tokens["inspector"])
    assert reply.status_code == 422 and "Idempotency-Key" in reply.text


def test_role_matrix(client, tokens):
    """Each role against each endpoint: who may do what is enforced everywhere."""
    number = send(client, tokens["inspector"], {"x": "121.5150"}).json()["number"]  # a B grid: 中正區公所
    version = client.get(f"/api/v1/cases/{number}", headers=tokens["supervisor"]).json()["version"]
    call = {
        "list cases": lambda h: client.get("/api/v1/cases", headers=h),
        "overdue": lambda h: client.get("/api/v1/cases/overdue", headers=h),
        "read case": lambda h: client.get(f"/api/v1/cases/{number}", headers=h),
        "report": lambda h: send(client, h, {"x": str(121.515 + uuid.uuid4().int % 100 / 100_000)}),
        "hotline": lambda h: client.post("/api/v1/cases/hotline", headers=h, json={
            "lon": 121.5160, "lat": 25.0440, "class_code": "20102", "caller": "test"}),
        "void": lambda h: client.post(f"/api/v1/cases/{number}/void", headers=h,
                                      json={"version": version, "reason": "matrix"}),
        # the city's reference data: every role reads it (and no one without a log-in, below)
        "layer": lambda h: client.get("/api/v1/layers/district", headers=h),
        "catalogue": lambda h: client.get("/api/v1/catalogue/event", params={"q": "垃圾"}, headers=h),
        "departments": lambda h: client.get("/api/v1/departments", headers=h),
        "rules": lambda h: client.get("/api/v1/rules/match", params={"case_type": "event", "class_code": "0102"},
                                      headers=h),
        "preview": lambda h: client.post("/api/v1/assign", headers=h, json={
            "x": 121.5160, "y": 25.0440, "class_code": "20102"}),
    }
    readers = {"inspector", "acceptor", "shift_lead", "dispatcher", "supervisor", "analyst"}
    expected = {
        "list cases": {r: 200 for r in readers | {"department"}} | {"admin": 403},
        "overdue": {r: 200 for r in readers | {"department"}} | {"admin": 403},
        "read case": {r: 200 for r in readers} | {"department": 404, "admin": 403},
        "report": {"inspector": 201, "acceptor": 201} | {r: 403 for r in ROLES if r not in ("inspector", "acceptor")},
        "hotline": {"acceptor": 201} | {r: 403 for r in ROLES if r != "acceptor"},
        # void: acceptor, shift lead or supervisor; the acceptor goes last (a void ends the case)
        "void": {r: 403 for r in ROLES if r not in ("acceptor", "shift_lead", "supervisor")}
        | {"shift_lead": 200},
    } | {what: dict.fromkeys(ROLES, 200) for what in ("layer", "catalogue", "departments", "rules", "preview")}
    order = [r for r in ROLES if r != "acceptor"] + ["acceptor"]
    got = {what: {role: call[what](tokens[role]).status_code for role in order if role in expected[what]}
           for what in call}
    assert got == expected
    assert call["void"](tokens["acceptor"]).status_code == 409  # stale version: the shift lead voided it
    assert {what: call[what]({}).status_code for what in call} == dict.fromkeys(call, 401)


def test_hotline_call_by_road_name_and_component(client, tokens):
    reply = client.post("/api/v1/cases/hotline", headers=tokens["acceptor"],
                        json={"road_name": "no such road", "class_code": "20102"})
    assert reply.status_code == 422 and "no road named" in reply.json()["detail"]
    reply = client.post("/api/v1/cases/hotline", headers=tokens["acceptor"], json={"class_code": "20102"})
    assert reply.status_code == 422 and "road_name" in reply.json()["detail"]


def test_illegal_action_is_409_with_the_reason(client, tokens):
    number = send(client, tokens["inspector"], {"x": "121.5140"}).json()["number"]
    reply = client.post(f"/api/v1/cases/{number}/close", headers=tokens["shift_lead"], json={"version": 1})
    assert reply.status_code == 409 and "needs a case that is checked" in reply.json()["detail"]
    assert client.post(f"/api/v1/cases/{number}/fly", headers=tokens["shift_lead"], json={"version": 1}).status_code == 422


def test_the_session_cookie_reads_but_never_acts(client, tokens):
    reply = client.post("/api/v1/auth/token", data={"username": "demo-dispatcher", "password": "dispatcher-demo"})
    cookie = reply.cookies.get("gridmap_session")
    assert cookie and "httponly" in reply.headers["set-cookie"].lower()
    client.cookies.clear()
    jar = {"Cookie": f"gridmap_session={cookie}"}
    assert client.get("/api/v1/cases", headers=jar).status_code == 200
    assert client.post("/api/v1/cases/hotline", headers=jar, json={"lon": 121.516, "lat": 25.044,
                                                                    "class_code": "20102"}).status_code == 401
    inspector = client.post("/api/v1/auth/token", data={"username": "demo-inspector", "password": "inspector-demo"})
    client.cookies.clear()
    report = send(client, {"Cookie": f"gridmap_session={inspector.cookies.get('gridmap_session')}"})
    assert report.status_code == 401 and "log in first" in report.json()["detail"]
    assert send(client, {"Authorization": "Bearer not-a-token"}).status_code == 401
    bearer = {"Authorization": f"Bearer {reply.json()['access_token']}"}
    assert client.post("/api/v1/auth/logout", headers=bearer).status_code == 204
    assert client.get("/api/v1/cases", headers=bearer).status_code == 401
    client.cookies.clear()


def test_map_and_headline_figures(client, tokens):
    number = send(client, tokens["inspector"], {"x": "121.5186"}).json()["number"]
    geo = client.get("/api/v1/cases.geojson", params={"open_only": True}, headers=tokens["supervisor"])
    assert geo.headers["content-type"].startswith("application/geo+json")
    feature = next(f for f in geo.json()["features"] if f["id"] == number)
    assert feature["geometry"]["coordinates"][0] == pytest.approx(121.5186, abs=1e-6)
    assert feature["properties"]["light"] in ("green", "yellow", "red") and "actions" in feature["properties"]
    by_class = client.get("/api/v1/cases.geojson", params={"class_code": "0104"}, headers=tokens["supervisor"])
    assert all(f["properties"]["class_code"] == "0104" for f in by_class.json()["features"])
    theirs = client.get("/api/v1/cases.geojson", headers=tokens["department"]).json()["features"]
    assert all(f["properties"]["department"] == "HW" for f in theirs)  # a department sees its own only
    head = client.get("/api/v1/stats/headline", headers=tokens["supervisor"]).json()
    assert head["reports_today"] >= 1 and head["open"] >= 1 and "on_time_disposal_rate" in head
    grids = client.get("/api/v1/stats/grids", params={"metric": "open"}, headers=tokens["supervisor"]).json()
    assert sum(g["value"] for g in grids) == head["open"]
    bad = client.get("/api/v1/stats/grids", params={"date_from": "2026-11-02", "date_to": "2026-11-01"},
                     headers=tokens["supervisor"])
    assert bad.status_code == 422 and "before" in bad.json()["detail"]
    assert client.get("/api/v1/stats/headline", headers=tokens["admin"]).status_code == 403


def test_a_report_with_large_photos_holds_up_no_other_request(api_url, tmp_path):
    """Checking, shrinking and writing a phone's photos takes a served report tens of milliseconds; the
    worker's other requests are answered meanwhile (the photos' work is not done on its event loop)."""
    batches = [[], []]  # a first to warm the worker up with (its memory grown to a report this size), the one timed
    for shade in range(10):  # 48 MP each, a phone's top setting
        buffer = io.BytesIO()
        Image.new("RGB", (8000, 6000), (90 + shade, 110, 40)).save(buffer, "JPEG", quality=80)
        batches[shade % 2].append(("photos", (f"street-{shade}.jpg", buffer.getvalue(), "image/jpeg")))
    photos = batches[1]
    started = time.perf_counter()
    for _, (_, data, _) in photos:
        store_photo(data, directory=tmp_path / "alone", max_bytes=2**21)
    alone = time.perf_counter() - started  # what the server does with them, timed on this machine now
    port = free_port()
    env = os.environ | {"GRIDMAP_DATABASE_URL": api_url, "GRIDMAP_PHOTO_DIR": str(tmp_path / "photos"),
                        "GRIDMAP_PHOTO_MAX_MB": "2"}
    server = subprocess.Popen([sys.executable, "-m", "api.serve", "--port", str(port), "--workers", "1"], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client, ThreadPoolExecutor(1) as pool:
            assert until(lambda: _answers(client), 90), server.stdout.read() if server.poll() is not None else ""
            reply = client.post("/api/v1/auth/token", data={"username": "demo-inspector", "password": "inspector-demo"})
            headers = {"Authorization": f"Bearer {reply.json()['access_token']}"}
            requests = [_raw(client.build_request("POST", "/api/v1/reports", data=STATION | {"description": f"{n}"},
                                                  files=batch, headers=headers | {"Idempotency-Key": str(uuid.uuid4())}))
                        for n, batch in enumerate(batches)]
            assert _post_raw(port, requests[0]).startswith(b"HTTP/1.1 201 ")  # all started, the city loaded
            request = requests[1]
            gc.collect()
            gc.disable()  # this process's own pauses (its heap holds the demo city) are not the server's
            try:
                filing = pool.submit(_post_raw, port, request)
                answered = [time.perf_counter()]
                while not filing.done():
                    assert client.get("/api/v1/no-such-page").status_code == 404
                    answered.append(time.perf_counter())
            finally:
                gc.enable()
            assert filing.result().startswith(b"HTTP/1.1 201 "), filing.result()
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.communicate(timeout=60)
    gaps = [later - earlier for earlier, later in zip(answered, answered[1:])]
    # on the event loop, the photos held every other request up for longer than they take here alone
    assert len(gaps) > 5 and max(gaps) < alone / 2, (len(gaps), max(gaps), alone)


def _raw(request: httpx.Request) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in request.headers.items())
    return f"{request.method} {request.url.raw_path.decode()} HTTP/1.1\r\n{head}\r\n".encode() + request.read()


def _post_raw(port: int, request: bytes) -> bytes:
    """Send ``request`` (its bytes) on a socket of its own and return the answer's first bytes: handed to the
    kernel whole, the upload takes none of this process's interpreter lock from the thread sending the probes."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        return sock.recv(4096)


def _answers(client) -> bool:
    try:
        return client.get("/api/v1/health").status_code == 200
    except httpx.TransportError:
        return False
