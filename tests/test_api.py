"""The API over the demo city: OpenAPI page, health, the log-in every other route needs, layers, catalogue, rules,
and clear 4xx errors."""

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from gridmap.config import DatabaseSettings, Settings
from tests.conftest import logged_in

#: the city's reference data: method, a request's path, its route's path, a body
REFERENCE = [("GET", "/api/v1/layers", "/api/v1/layers", None),
             ("GET", "/api/v1/layers/district", "/api/v1/layers/{name}", None),
             ("GET", "/api/v1/catalogue/event?q=0104", "/api/v1/catalogue/{case_type}", None),
             ("GET", "/api/v1/departments", "/api/v1/departments", None),
             ("GET", "/api/v1/rules/match?case_type=event&class_code=0102", "/api/v1/rules/match", None),
             ("POST", "/api/v1/assign", "/api/v1/assign",
              {"x": 121.5435, "y": 25.0416, "accuracy": 8, "class_code": "20102"})]


@pytest.fixture(scope="module")
def client(db_url, demo_reports, reader):
    """The API as a logged-in analyst (any role reads the city's reference data); :func:`anonymous` sends a
    request without the log-in."""
    app = create_app(Settings(database=DatabaseSettings(database_url=db_url)))
    with TestClient(app) as client:
        client.headers.update(logged_in(client, reader))
        yield client


def anonymous(client: TestClient, method: str, path: str, **kwargs):
    request = client.build_request(method, path, **kwargs)
    del request.headers["Authorization"]
    return client.send(request)


def test_every_api_route_but_the_log_in_and_health_needs_a_log_in(client):
    """As the OpenAPI page describes them (a route added later is held to it too)."""
    paths = client.get("/openapi.json").json()["paths"]
    open_routes = {f"{method.upper()} {path}" for path, operations in paths.items()
                   for method, operation in operations.items() if not operation.get("security")}
    assert open_routes == {"GET /api/v1/health", "POST /api/v1/auth/token"}
    assert {f"{method} {route}" for method, _, route, _ in REFERENCE} <= {
        f"{method.upper()} {path}" for path, operations in paths.items() for method in operations}


@pytest.mark.parametrize("method, path, route, body", REFERENCE)
def test_reference_data_is_for_logged_in_users(client, method, path, route, body):
    """Layers, catalogue, departments, rules and the routing preview answer a request without a log-in (or
    with a bad token) 401, saying how to log in, and the logged-in user 200."""
    assert client.request(method, path, json=body).status_code == 200
    for reply in (anonymous(client, method, path, json=body),
                  client.request(method, path, json=body, headers={"Authorization": "Bearer no-such-token"})):
        assert reply.status_code == 401 and "log in" in reply.json()["detail"], reply.text


def test_docs_and_health(client):
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "gridmap"
    assert client.get("/api/v1/health").json()["status"] == "ok"


def test_landing_page_shows_the_city_and_its_attribution(client):
    """The landing page is open to all; its links to the layers open for a logged-in user."""
    import re

    page = anonymous(client, "GET", "/about").text
    assert "臺北市" in page and "OpenStreetMap" in page and "/docs" in page and "log" in page
    links = re.findall(r'href="(/api/[^"]+)"', page)
    assert len(links) == 8 and all(client.get(link).status_code == 200 for link in links)


def test_layer_counts_and_geojson(client):
    counts = client.get("/api/v1/layers").json()
    assert counts["district"] == 12 and counts["community"] == 456
    districts = client.get("/api/v1/layers/district")
    assert districts.headers["content-type"].startswith("application/geo+json")
    features = districts.json()["features"]
    assert len(features) == 12 and {"code", "name"} <= set(features[0]["properties"])
    # a small box around Taipei Main Station holds some bus stops but not all components
    box = client.get("/api/v1/layers/component", params={"bbox": "121.510,25.040,121.525,25.052", "limit": 50000})
    inside = box.json()["features"]
    assert 0 < len(inside) < counts["component"]
    assert all(121.510 <= f["geometry"]["coordinates"][0] <= 121.525 for f in inside)
    assert len(client.get("/api/v1/layers/road", params={"limit": 7}).json()["features"]) == 7


@pytest.mark.parametrize("params, status, words", [
    ({"bbox": "a,b,c,d"}, 422, "four numbers"),
    ({"bbox": "121.6,25,121.5,25.1"}, 422, "min < max"),
    ({"limit": 0}, 422, "greater than or equal"),
])
def test_bad_layer_queries_get_a_reason(client, params, status, words):
    response = client.get("/api/v1/layers/component", params=params)
    assert response.status_code == status and words in response.text


def test_unknown_layer_is_404_with_the_list(client):
    response = client.get("/api/v1/layers/lamps")
    assert response.status_code == 404 and "district" in response.json()["detail"]


def test_catalogue_search_by_chinese_name_and_code(client):
    lamps = client.get("/api/v1/catalogue/component", params={"q": "路灯"}).json()
    assert {c["code"] for c in lamps} == {"0106", "0118"}
    assert client.get("/api/v1/catalogue/event", params={"q": "0104"}).json()[0]["name"] == "道路不洁"
    assert client.get("/api/v1/catalogue/vehicle").status_code == 422


def test_rules_match_and_departments(client):
    rules = client.get("/api/v1/rules/match", params={"case_type": "event", "class_code": "0102", "area_class": "A"})
    assert rules.json()[0]["department_code"] == "HW"
    assert client.get("/api/v1/rules/match", params={"case_type": "event", "class_code": "12"}).status_code == 422
    departments = client.get("/api/v1/departments").json()
    assert {"SZ", "HW", "JD-630010"} <= {d["code"] for d in departments}


def test_a_pooled_connection_the_server_dropped_is_replaced_without_a_ping_per_request(engine, demo_reports):
    from sqlalchemy import text

    from gridmap.db.engine import make_engine

    pooled = make_engine(engine.url.render_as_string(hide_password=False), connections=1)
    pings, ping = [], pooled.dialect.do_ping
    pooled.dialect.do_ping = lambda connection: pings.append(1) or ping(connection)
    try:
        with pooled.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        for _ in range(3):  # healthy: taken as it is, without a round trip
            with pooled.connect() as conn:
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == first
        assert pings == []
        with engine.connect() as other:  # another client ends the pooled connection's backend
            assert other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": first}).scalar_one()
        with pooled.connect() as conn:  # noticed when taken from the pool, and replaced
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
        assert pings == [1]
    finally:
        pooled.dispose()



def test_the_held_connection_is_kept_replaced_when_dropped_and_lent_to_one_thread_at_a_time(engine, demo_reports):
    """A process's held connection (the reports') is the same backend use after use, in autocommit, outside
    the pool; one the server dropped, or an error broke, is replaced; a second thread meanwhile gets one of
    the pool's; closed, it is gone."""
    from concurrent.futures import ThreadPoolExecutor

    import psycopg
    from sqlalchemy import text

    from gridmap.db.engine import HeldConnection, make_engine

    pooled = make_engine(engine.url.render_as_string(hide_password=False), connections=1)
    held = HeldConnection(pooled)

    def backend(connection) -> int:
        return connection.execute("SELECT pg_backend_pid()").fetchone()[0]

    def in_another_thread() -> int:
        with held.autocommit() as connection:
            return backend(connection)

    try:
        with held.autocommit() as connection:
            first, kept = backend(connection), connection
            assert connection.autocommit
            with ThreadPoolExecutor(1) as other:  # meanwhile, another thread files on a connection of the pool
                lent = other.submit(in_another_thread).result()
                with pooled.connect() as conn:  # the pool's one, given back out of autocommit
                    assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == lent != first
                    assert conn.connection.driver_connection.autocommit is False
        for _ in range(2):
            with held.autocommit() as connection:
                assert connection is kept and backend(connection) == first
        assert pooled.pool.checkedout() == 0  # not the pool's
        with engine.connect() as other:  # another client ends the held connection's backend
            assert other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": first}).scalar_one()
        with held.autocommit() as connection:  # noticed before the next use, and replaced
            second = backend(connection)
        assert second != first and kept.closed
        with pytest.raises(psycopg.OperationalError), held.autocommit() as connection:
            connection.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # breaks it in the middle of a use
        with held.autocommit() as connection:
            assert backend(connection) not in (first, second)
            kept = connection
        held.close()
        assert kept.closed
    finally:
        held.close()
        pooled.dispose()

def test_the_shortcut_answers_as_the_route_would_and_leaves_the_rest_to_it():
    """Shortcut sends its one method and path straight to the endpoint, whose errors the app's handlers answer
    as behind the router; an error without a handler is the server-error middleware's 500; other methods
    and paths are routed as ever. The app sends the reports so, their route still registered (and described)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse

    from api.shortcut import Shortcut

    class Refused(Exception):
        pass

    async def endpoint(request: Request):
        if request.query_params.get("fail") == "handled":
            raise Refused("no such thing")
        if request.query_params.get("fail") == "unhandled":
            raise RuntimeError("a bug")
        return PlainTextResponse(f"shortcut {request.method} {(await request.body()).decode()}")

    async def refused(_request: Request, error: Refused) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(error)})

    app = FastAPI()
    app.add_exception_handler(Refused, refused)
    app.add_api_route("/things", lambda: PlainTextResponse("router"), methods=["POST", "GET"])
    app.add_middleware(Shortcut, method="POST", path="/things", endpoint=endpoint)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/things", content=b"body").text == "shortcut POST body"
        assert client.get("/things").text == "router"
        assert client.post("/things/", follow_redirects=False).status_code == 307  # exactly its path: routed
        answer = client.post("/things?fail=handled")
        assert answer.status_code == 409 and answer.json() == {"detail": "no such thing"}
        assert client.post("/things?fail=unhandled").status_code == 500
    report = create_app(Settings(database=DatabaseSettings(database_url="postgresql+psycopg://nobody@127.0.0.1:9/x")))
    shortcuts = [m for m in report.user_middleware if m.cls is Shortcut]
    assert [(m.kwargs["method"], m.kwargs["path"]) for m in shortcuts] == [("POST", "/api/v1/reports")]
    assert "post" in report.openapi()["paths"]["/api/v1/reports"]
