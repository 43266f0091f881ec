"""Vector tiles of the demo city: properties that exist in the database, clustered components whose counts
add up, high-grade roads only at low zoom, empty tiles at sea, clear 4xx errors, ETag and 304."""

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.main import create_app
from gridmap.config import DatabaseSettings, Settings
from gridmap.maps.tiles import LAYERS, BadTile, UnknownLayer, tile, tile_index
from gridmap.users.service import create_user

CENTRAL_TAIPEI = (121.515, 25.045)  # Taipei Main Station
AT_SEA = (122.3, 24.2)  # the Pacific east of Yilan

UNIT_GRID_PROPERTIES = {"code", "community_code", "community_name", "duty_grid_code", "area_class",
                        "responsible_department_code"}
COMPONENT_PROPERTIES = {"code", "class_code", "class_name", "status", "owner_department_code",
                        "maintainer_department_code", "competent_department_code"}


def features(content: bytes, layer: str) -> list[dict]:
    return mapbox_vector_tile.decode(content)[layer]["features"] if content else []


def in_envelope(session, table: str, z: int, x: int, y: int, margin: float = 0.0) -> set[str]:
    """Codes of the rows of ``table`` whose geometry meets the tile's envelope (computed apart from tile())."""
    return set(session.execute(text(f"""
        SELECT code FROM {table}
        WHERE ST_Intersects(geom, ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326))"""),
        {"z": z, "x": x, "y": y, "margin": margin}).scalars())


@pytest.fixture(scope="module")
def client(db_url, demo_reports, engine):
    with Session(engine) as session:
        create_user(session=session, name="tiles-reader", role="analyst", password="tiles-reader", replace=True)
        session.commit()
    app = create_app(Settings(database=DatabaseSettings(database_url=db_url)))
    with TestClient(app) as client:
        assert client.get("/tiles/unit_grid/16/54880/28048.pbf").status_code == 401  # behind the log-in
        client.post("/api/v1/auth/token", data={"username": "tiles-reader", "password": "tiles-reader"})
        yield client  # the session cookie authenticates the tile GETs, as in the browser


@pytest.mark.parametrize("z", [13, 16])
def test_unit_grids_over_central_taipei_carry_codes_that_exist(session, z):
    x, y = tile_index(*CENTRAL_TAIPEI, z)
    grids = features(tile(session=session, layer="unit_grid", z=z, x=x, y=y), "unit_grid")
    assert grids and all(set(grid["properties"]) == UNIT_GRID_PROPERTIES for grid in grids)
    rows = {row.code: row for row in session.execute(text("""
        SELECT g.code, c.code AS community_code, c.name AS community_name, dg.code AS duty_grid_code, g.area_class
        FROM unit_grid g JOIN community c ON c.id = g.community_id
        JOIN duty_grid_member m ON m.unit_grid_code = g.code JOIN duty_grid dg ON dg.id = m.duty_grid_id
        WHERE g.valid_to IS NULL"""))}
    for grid in grids:
        props = grid["properties"]
        row = rows[props["code"]]
        assert (props["community_code"], props["community_name"], props["duty_grid_code"], props["area_class"]) == (
            row.community_code, row.community_name, row.duty_grid_code, row.area_class)
        assert props["responsible_department_code"].startswith("JD-")
    # every grid meeting the tile itself is drawn (the buffer adds a few beyond its edges)
    assert in_envelope(session, "unit_grid", z, x, y) <= {grid["properties"]["code"] for grid in grids}


def test_duty_grids_are_the_union_of_their_unit_grids(session):
    z = 16
    x, y = tile_index(*CENTRAL_TAIPEI, z)
    duty = features(tile(session=session, layer="duty_grid", z=z, x=x, y=y), "duty_grid")
    grids = features(tile(session=session, layer="unit_grid", z=z, x=x, y=y), "unit_grid")
    assert duty and all(set(d["properties"]) == {"code", "name"} for d in duty)
    assert {d["properties"]["code"] for d in duty} == {g["properties"]["duty_grid_code"] for g in grids}
    assert all(d["geometry"]["type"] in ("Polygon", "MultiPolygon") for d in duty)


def test_components_are_clustered_below_zoom_15_with_counts_that_add_up(session):
    z = 13
    x, y = tile_index(*CENTRAL_TAIPEI, z)
    clusters = features(tile(session=session, layer="component", z=z, x=x, y=y), "component")
    assert clusters and all(set(c["properties"]) == {"count"} for c in clusters)
    assert all(c["geometry"]["type"] == "Point" for c in clusters)
    assert len(clusters) <= 64 and any(c["properties"]["count"] > 1 for c in clusters)
    assert sum(c["properties"]["count"] for c in clusters) == len(in_envelope(session, "component", z, x, y))
    # the four tiles one zoom deeper hold the same components
    deeper = sum(c["properties"]["count"] for dx in (0, 1) for dy in (0, 1)
                 for c in features(tile(session=session, layer="component", z=z + 1, x=2 * x + dx, y=2 * y + dy),
                                   "component"))
    assert deeper == sum(c["properties"]["count"] for c in clusters)


def test_components_are_single_points_from_zoom_15(session):
    z = 16
    x, y = tile_index(*CENTRAL_TAIPEI, z)
    points = features(tile(session=session, layer="component", z=z, x=x, y=y), "component")
    assert points and all(set(p["properties"]) == COMPONENT_PROPERTIES for p in points)
    assert all(p["geometry"]["type"] == "Point" for p in points)
    codes = {p["properties"]["code"] for p in points}
    assert len(codes) == len(points)
    assert in_envelope(session, "component", z, x, y) <= codes <= in_envelope(session, "component", z, x, y, 1 / 16)
    names = dict(session.execute(text("SELECT code, name FROM component_class")).all())
    assert all(names[p["properties"]["class_code"]] == p["properties"]["class_name"] for p in points)


def test_low_zoom_road_tiles_hold_only_the_high_grades(session):
    x, y = tile_index(*CENTRAL_TAIPEI, 12)
    roads = features(tile(session=session, layer="road", z=12, x=x, y=y), "road")
    assert roads and all(set(r["properties"]) <= {"code", "name", "grade_code"} for r in roads)
    assert {r["properties"]["grade_code"] for r in roads} == {"special", "grade1", "grade2"}
    # a grade-3 road shows at zoom 15, not in the zoom-12 tile around it
    code, lon, lat = session.execute(text("""
        SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_LineInterpolatePoint(ST_GeometryN(geom, 1), 0.5) AS p
        FROM road WHERE grade_code = 'grade3' ORDER BY code LIMIT 1) AS r""")).one()

    def codes_at(z):
        x, y = tile_index(lon, lat, z)
        return {r["properties"]["code"] for r in features(tile(session=session, layer="road", z=z, x=x, y=y), "road")}

    assert code in codes_at(15) and code not in codes_at(12)


@pytest.mark.parametrize("layer", list(LAYERS))
def test_tiles_below_the_minimum_zoom_are_empty(session, layer):
    def over_taipei(z):
        x, y = tile_index(*CENTRAL_TAIPEI, z)
        return tile(session=session, layer=layer, z=z, x=x, y=y)

    z = LAYERS[layer].min_zoom
    assert z > 0 and over_taipei(z) != b"" and over_taipei(z - 1) == b""


@pytest.mark.parametrize("layer", list(LAYERS))
def test_a_tile_at_sea_is_empty(session, layer):
    for z in (14, 16):
        x, y = tile_index(*AT_SEA, z)
        assert tile(session=session, layer=layer, z=z, x=x, y=y) == b""


@pytest.mark.parametrize("layer, table, z", [("unit_grid", "unit_grid", 16), ("component", "component", 16)])
def test_tiles_select_rows_through_the_gist_index(session, layer, table, z):
    from gridmap.maps import tiles

    statement = {"unit_grid": tiles.UNIT_GRID, "component": tiles.COMPONENT_POINTS}[layer]
    x, y = tile_index(*CENTRAL_TAIPEI, z)
    params = {"z": z, "x": x, "y": y, "extent": 4096, "buffer": 256, "margin": 1 / 16, "tolerance": 1e-7}
    plan = "\n".join(session.execute(text("EXPLAIN " + statement), params).scalars())
    assert f"ix_{table}_geom" in plan


def test_bad_layer_and_tile_addresses_raise_domain_errors(session):
    with pytest.raises(UnknownLayer, match="unit_grid, duty_grid, road, component"):
        tile(session=session, layer="lamps", z=1, x=0, y=0)
    for z, x, y in [(23, 0, 0), (-1, 0, 0), (3, 8, 0), (3, 0, -1)]:
        with pytest.raises(BadTile):
            tile(session=session, layer="road", z=z, x=x, y=y)


def test_tile_route_serves_mvt_with_cache_headers_and_304(client):
    x, y = tile_index(*CENTRAL_TAIPEI, 16)
    response = client.get(f"/tiles/unit_grid/16/{x}/{y}.pbf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert "max-age=60" in response.headers["cache-control"]
    assert "stale-while-revalidate" in response.headers["cache-control"]
    etag = response.headers["etag"]
    assert etag.startswith('"') and features(response.content, "unit_grid")
    again = client.get(f"/tiles/unit_grid/16/{x}/{y}.pbf", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = client.get(f"/tiles/unit_grid/16/{x}/{y}.pbf", headers={"If-None-Match": '"stale", W/' + etag})
    assert other.status_code == 304
    changed = client.get(f"/tiles/unit_grid/16/{x}/{y}.pbf", headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200 and changed.content == response.content


def test_empty_tile_is_200_with_an_empty_body(client):
    x, y = tile_index(*AT_SEA, 14)
    response = client.get(f"/tiles/component/14/{x}/{y}.pbf")
    assert response.status_code == 200 and response.content == b"" and "etag" in response.headers


def test_unknown_tile_layer_is_404_with_the_list(client):
    response = client.get("/tiles/lamps/14/13722/7014.pbf")
    assert response.status_code == 404
    assert all(name in response.json()["detail"] for name in LAYERS)


@pytest.mark.parametrize("path, words", [
    ("/tiles/road/23/0/0.pbf", "zoom must lie within 0…22"),
    ("/tiles/road/3/8/0.pbf", "x and y must lie within 0…7"),
    ("/tiles/road/3/0/-1.pbf", "x and y must lie within 0…7"),
    ("/tiles/road/3/a/0.pbf", "integer"),
])
def test_bad_tile_address_is_422_with_a_reason(client, path, words):
    response = client.get(path)
    assert response.status_code == 422 and words in response.text
