"""Routing on the Taipei demo city: each rule family, each coordinate system, ambiguity, bad input,
and the batch path giving exactly the single path's answers."""

import json
from collections import Counter

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

import gridmap
from api.main import create_app
from gridmap.config import DatabaseSettings, Settings
from gridmap.crs import gcj02_to_bd09, wgs84_to_gcj02
from gridmap.routing.exceptions import BadReport, OutsideServiceArea, UnknownClass
from gridmap.db.engine import driver_connection
from gridmap.routing.layers import STAMP_SQL, forget_city, refresh_city, stamp_query
from gridmap.routing.service import assign_one
from tests.conftest import logged_in

COMPARED = ["unit_grid", "duty_grid", "road_id", "road_grade", "component_id", "component_version", "department",
            "rule", "time_limit", "time_limit_unit", "ambiguous", "ambiguity_reason"]


def lonlat(session, sql: str, **params) -> tuple[float, float]:
    return tuple(session.execute(text(f"SELECT ST_X(p), ST_Y(p) FROM ({sql}) AS t(p)"), params).one())


def on_road(session, grade: str) -> tuple[float, float]:
    """The middle of the longest road of ``grade`` in 中正區 (630050)."""
    return lonlat(session, """SELECT ST_LineInterpolatePoint(ST_GeometryN(r.geom, 1), 0.5) FROM road r
        JOIN district d ON ST_Within(ST_LineInterpolatePoint(ST_GeometryN(r.geom, 1), 0.5), d.geom)
        WHERE r.grade_code = :g AND d.code = '630050' ORDER BY ST_Length(r.geom) DESC, r.code LIMIT 1""", g=grade)


def in_grid(session, area_class: str) -> tuple[float, float]:
    """A point well inside a unit grid of ``area_class`` in 中正區, away from roads."""
    return lonlat(session, """SELECT ST_PointOnSurface(g.geom) FROM unit_grid g WHERE g.valid_to IS NULL
        AND g.area_class = :a AND left(g.code, 6) = '630050'
        AND NOT EXISTS (SELECT 1 FROM road r WHERE ST_DWithin(r.geom::geography, ST_PointOnSurface(g.geom)::geography, 40))
        ORDER BY g.code LIMIT 1""", a=area_class)


def test_road_bound_events_go_to_the_road_unit(session):
    lon, lat = on_road(session, "grade2")
    decision = assign_one(session=session, x=lon, y=lat, accuracy=5, class_code="20104")
    assert decision["road_grade"] == "grade2" and decision["road_distance_m"] < 0.01
    assert decision["department"] == "HW-630050" and decision["rule"] == "E-0104"
    lon, lat = on_road(session, "special")
    assert assign_one(session=session, x=lon, y=lat, accuracy=5, class_code="20104")["department"] == "HW"


def test_a_rule_changed_in_the_transaction_is_used_at_once(session):
    """The reference tables are cached between decisions, but never past a change to them."""
    lon, lat = on_road(session, "grade2")
    assert assign_one(session=session, x=lon, y=lat, accuracy=5, class_code="20104")["rule"] == "E-0104"
    session.execute(text("DELETE FROM responsibility_rule WHERE code = 'E-0104'"))
    decision = assign_one(session=session, x=lon, y=lat, accuracy=5, class_code="20104")
    assert (decision["rule"], decision["department"]) == ("E-ANY", "JD-630050")


def test_a_change_rolled_back_never_lends_its_cached_rules_to_a_later_one(engine, demo_reports):
    """A decision caches the rules as its transaction sees them; once that transaction is rolled back, a
    later transaction's change must not find that copy under its own stamp."""
    with Session(engine) as first:
        lon, lat = on_road(first, "grade2")
        first.execute(text("DELETE FROM responsibility_rule WHERE code = 'E-0104'"))
        assert assign_one(session=first, x=lon, y=lat, accuracy=5, class_code="20104")["rule"] == "E-ANY"
        first.rollback()
    with Session(engine) as second:
        second.execute(text("UPDATE department SET name = name WHERE code = 'HW'"))
        assert assign_one(session=second, x=lon, y=lat, accuracy=5, class_code="20104")["rule"] == "E-0104"
        second.rollback()


def test_every_change_to_the_reference_tables_changes_their_stamp(session):
    """The cache's stamp (the city row's reference_version, bumped by statement triggers) moves with any
    insert, update or delete on the rules, departments or catalogue, and with a change to the city."""
    def stamp():
        return tuple(session.execute(text(STAMP_SQL)).one())

    changes = [
        "UPDATE department SET name = name || ' ' WHERE code = 'HW'",
        "UPDATE responsibility_rule SET note = 'checked' WHERE code = 'E-0104'",
        "INSERT INTO event_class (code, road_bound, major_code, name, name_en, is_local, filing_condition, limit_a, "
        "limit_b, limit_c, limit_unit) SELECT '0199', road_bound, major_code, name, name_en, is_local, "
        "filing_condition, limit_a, limit_b, limit_c, limit_unit FROM event_class WHERE code = '0102'",
        "DELETE FROM event_class WHERE code = '0199'",
        "UPDATE component_class SET name = name WHERE code = '0118'",
        "DELETE FROM responsibility_rule WHERE code = 'E-0104'",
        "UPDATE city SET updated_at = now() + interval '1 second'",
        "UPDATE department SET name = name WHERE false",  # a statement that changes no row counts too
    ]
    seen = [stamp()]
    for change in changes:
        session.execute(text(change))
        seen.append(stamp())
        assert seen[-1] != seen[-2], change
    assert len(set(seen)) == len(seen)
    session.execute(text("SELECT code FROM department"))
    assert stamp() == seen[-1], "reading changes nothing"


def test_every_change_to_the_layers_changes_their_stamp(session):
    """The city in memory's stamp (the city row's layers_version, migration 0006) moves with any change to a
    table the decision's layers are read from, TRUNCATE included."""
    def stamp():
        return tuple(session.execute(text(STAMP_SQL)).one())

    seen = [stamp()]
    for table in ("unit_grid", "community", "street", "district", "duty_grid", "duty_grid_member", "road", "component"):
        column = "unit_grid_code" if table == "duty_grid_member" else "code"
        session.execute(text(f"UPDATE {table} SET {column} = {column} WHERE false"))  # no row changed: counts too
        seen.append(stamp())
        assert seen[-1] != seen[-2], table
    session.execute(text("TRUNCATE duty_grid_member"))  # rolled back with the test's transaction
    assert stamp() != seen[-1]


def statements_sent(session) -> list[str]:
    """The SQL of every statement the single path sends from now on (to the session's driver connection)."""
    connection, sent = driver_connection(session), []
    execute = connection.execute
    connection.execute = lambda *args, **kwargs: sent.append(args[0]) or execute(*args, **kwargs)
    return sent


def test_the_city_in_memory_decides_as_the_database_search(session):
    """A server holds the city's layers in memory (refresh_city) and reads only their stamp for a report: every
    field and the evidence equal the database search's, for every kind of fix; a change to the layers, even one
    not committed yet, is decided from the database until they are loaded again."""
    points = sample_points(session, 150)

    def decisions():
        decided = []
        for row in points.itertuples(index=False):
            accuracy = None if np.isnan(row.accuracy) else row.accuracy
            try:
                decided.append(assign_one(session=session, x=row.x, y=row.y, accuracy=accuracy, class_code=row[2]))
            except BadReport as error:
                decided.append(str(error))
        return decided

    forget_city(session)
    searched = decisions()
    code, lon, lat = bus_stop(session)
    try:
        assert stamp_query(session) is None and refresh_city(session) and not refresh_city(session)
        sent = statements_sent(session)
        assert decisions() == searched and len(sent) == len(points) and set(sent) == {STAMP_SQL}
        assert sum(isinstance(d, dict) for d in searched) > 300 and any(isinstance(d, str) for d in searched)
        # the bus stop's maintainer changes in this transaction: the stamp says so, and the database is searched
        assert assign_one(session=session, x=lon, y=lat, accuracy=5, class_code="10203")["department"] == "GJ"
        session.execute(text("UPDATE component SET maintainer_department_id = (SELECT id FROM department "
                             "WHERE code = 'HW') WHERE code = :c"), {"c": code})
        del sent[:]
        assert assign_one(session=session, x=lon, y=lat, accuracy=5, class_code="10203")["department"] == "HW"
        assert sent[0] == STAMP_SQL and len(sent) == 2  # the stamp, then the search
        assert refresh_city(session)  # loaded again as this transaction sees them: from memory again
        del sent[:]
        assert assign_one(session=session, x=lon, y=lat, accuracy=5, class_code="10203")["department"] == "HW"
        assert sent == [STAMP_SQL]
    finally:
        del driver_connection(session).execute
        forget_city(session)


def test_events_go_to_the_locality_or_the_department_the_rules_name(session):
    lon, lat = in_grid(session, "B")
    decision = assign_one(session=session, x=lon, y=lat, accuracy=5, class_code="0102", case_type="event")
    assert (decision["department"], decision["rule"]) == ("JD-630050", "E-0102")  # 先属地: the district office
    assert decision["time_limit"] == 8 and decision["time_limit_unit"] == "hour"  # 0102, area class B
    road_event = assign_one(session=session, x=lon, y=lat, accuracy=5, class_code="20104")
    assert road_event["road_id"] is None and road_event["rule"] == "E-ANY"  # no road near: falls back, says so
    assert [r["resolvable"] for r in road_event["evidence"]["rules"]] == [False, True]


def test_a_district_rule_beats_the_class_rule(session):
    xinyi = lonlat(session, "SELECT ST_PointOnSurface(geom) FROM district WHERE code = '630020'")
    decision = assign_one(session=session, x=xinyi[0], y=xinyi[1], class_code="20505")
    assert (decision["district"], decision["department"], decision["rule"]) == ("630020", "ZF", "E-0505-XY")


def bus_stop(session, offset: int = 0) -> tuple[str, float, float]:
    return tuple(session.execute(text("""SELECT code, ST_X(geom), ST_Y(geom) FROM component
        WHERE class_code = '0203' AND left(code, 6) = '630050' ORDER BY code OFFSET :o LIMIT 1"""), {"o": offset}).one())


def test_component_cases_go_to_the_maintainer_first(session):
    code, lon, lat = bus_stop(session)
    decision = assign_one(session=session, x=lon + 0.00005, y=lat, accuracy=5, class_code="10203")
    assert decision["component_id"] == code and 4 < decision["component_distance_m"] < 6
    assert (decision["department"], decision["rule"]) == ("GJ", "先属主: component_maintainer")
    picked = assign_one(session=session, x=lon + 0.0003, y=lat, accuracy=5, class_code="0203",
                        case_type="component", component_id=code)
    assert picked["component_id"] == code and picked["component_version"] == 1


def test_a_component_case_without_a_component_goes_by_the_rules(session):
    lon, lat = in_grid(session, "B")
    decision = assign_one(session=session, x=lon, y=lat, accuracy=5, class_code="0118")  # 路灯: component only
    assert decision["case_type"] == "component" and decision["component_id"] is None
    assert (decision["department"], decision["rule"]) == ("LD", "C-0118")


def test_gcj02_and_bd09_fixes_land_where_the_wgs84_fix_does(session):
    lon, lat = on_road(session, "grade1")
    wgs = assign_one(session=session, x=lon, y=lat, accuracy=5, class_code="20104")
    glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    assert shapely.Point(lon, lat).distance(shapely.Point(glon, glat)) > 0.002  # hundreds of metres apart
    gcj = assign_one(session=session, x=glon, y=glat, crs="gcj02", accuracy=5, class_code="20104")
    blon, blat = (float(v) for v in gcj02_to_bd09(glon, glat))
    bd = assign_one(session=session, x=blon, y=blat, crs="bd09", accuracy=5, class_code="20104")
    assert {k: gcj[k] for k in COMPARED} == {k: wgs[k] for k in COMPARED} == {k: bd[k] for k in COMPARED}
    assert abs(gcj["lon"] - lon) < 1e-8 and abs(gcj["lat"] - lat) < 1e-8


def test_a_fix_on_a_shared_edge_goes_to_the_lowest_code(session):
    lon, lat, first = session.execute(text("""
        SELECT ST_X(p), ST_Y(p), least(a.code, b.code) FROM unit_grid a JOIN unit_grid b
          ON a.code < b.code AND left(a.code, 12) = left(b.code, 12) AND ST_Touches(a.geom, b.geom),
        LATERAL (SELECT ST_LineInterpolatePoint(ST_GeometryN(ST_LineMerge(ST_Intersection(a.geom, b.geom)), 1), 0.5) AS p) x
        WHERE a.valid_to IS NULL AND b.valid_to IS NULL AND left(a.code, 12) = '630050000001'
          AND GeometryType(ST_Intersection(a.geom, b.geom)) LIKE '%LINESTRING' LIMIT 1""")).one()
    decision = assign_one(session=session, x=lon, y=lat, class_code="20102")
    assert decision["unit_grid"] == first
    assert "lowest code wins" in decision["evidence"]["unit_grid"]["how"]


def test_ambiguity_at_a_district_boundary(session):
    lon, lat = lonlat(session, """SELECT ST_LineInterpolatePoint(ST_GeometryN(ST_LineMerge(ST_Intersection(
        ST_Boundary(a.geom), ST_Boundary(b.geom))), 1), 0.5)
        FROM district a, district b WHERE a.code = '630050' AND b.code = '630030'""")
    decision = assign_one(session=session, x=lon, y=lat, accuracy=30, class_code="20102")
    assert decision["ambiguous"] and "responsible body is JD-6300" in decision["ambiguity_reason"]
    sharp = assign_one(session=session, x=lon, y=lat, accuracy=0, class_code="20102")
    assert not sharp["ambiguous"]


def test_ambiguity_between_two_components(session):
    (a, alon, alat), (b, blon, blat) = session.execute(text("""
        SELECT p.code, ST_X(p.geom), ST_Y(p.geom) FROM component p JOIN component q ON q.class_code = p.class_code
          AND q.code > p.code AND ST_DWithin(p.geom::geography, q.geom::geography, 30)
          AND NOT ST_DWithin(p.geom::geography, q.geom::geography, 5)
        WHERE p.class_code = '0203' ORDER BY p.code LIMIT 1""")).one(), (None, None, None)
    other = session.execute(text("""SELECT q.code, ST_X(q.geom), ST_Y(q.geom) FROM component q, component p
        WHERE p.code = :a AND q.class_code = p.class_code AND q.code > p.code
          AND ST_DWithin(p.geom::geography, q.geom::geography, 30) AND NOT ST_DWithin(p.geom::geography, q.geom::geography, 5)
        ORDER BY q.code LIMIT 1"""), {"a": a}).one()
    b, blon, blat = other
    decision = assign_one(session=session, x=(alon + blon) / 2, y=(alat + blat) / 2, accuracy=5, class_code="10203")
    assert decision["ambiguous"] and "two components are nearly equally close" in decision["ambiguity_reason"]
    assert decision["component_id"] in (a, b)


def test_poor_accuracy_is_flagged(session):
    lon, lat = in_grid(session, "B")
    assert "too poor" in assign_one(session=session, x=lon, y=lat, accuracy=35, class_code="0118")["ambiguity_reason"]
    assert not assign_one(session=session, x=lon, y=lat, accuracy=15, class_code="0118")["ambiguous"]


@pytest.mark.parametrize("kwargs, error, words", [
    ({"x": 120.0, "y": 23.0, "class_code": "20102"}, OutsideServiceArea, "outside the city's territory"),
    ({"x": 121.52, "y": 25.04, "class_code": "0101"}, UnknownClass, "both a component and an event class"),
    ({"x": 121.52, "y": 25.04, "class_code": "29999"}, UnknownClass, "unknown event class 9999"),
    ({"x": 121.52, "y": 25.04, "class_code": "20102", "crs": "mars"}, BadReport, "unknown coordinate system"),
    ({"x": 25.04, "y": 121.52, "class_code": "20102"}, BadReport, "swapped"),
    ({"x": 121.52, "y": 25.04, "class_code": "10203", "component_id": "6300500203999999"}, BadReport, "does not exist"),
    ({"x": 121.52, "y": 25.04, "class_code": "20102", "accuracy": float("inf")}, BadReport, "number of metres"),
])
def test_bad_reports_are_refused_with_a_reason(session, kwargs, error, words):
    with pytest.raises(error, match=words):
        assign_one(session=session, **kwargs)


def test_a_picked_component_of_another_class_is_refused(session):
    code, lon, lat = bus_stop(session)
    with pytest.raises(BadReport, match="is of class 0203, not 0210"):
        assign_one(session=session, x=lon, y=lat, class_code="10210", component_id=code)


def sample_points(session, n: int = 450) -> pd.DataFrame:
    """Points of every kind: random, on grid edges and corners, exactly on roads, between two components."""
    rng = np.random.default_rng(42)
    random = rng.uniform([121.50, 25.02], [121.58, 25.07], (n, 2))
    edges = session.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_DumpPoints(geom)).geom AS p
        FROM unit_grid WHERE valid_to IS NULL AND left(code, 9) = '630050000' ORDER BY code LIMIT 40) t""")).all()
    mids = session.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(
        ST_GeometryN(ST_Boundary(geom), 1), 0.37) AS p FROM unit_grid WHERE valid_to IS NULL
        AND left(code, 6) = '630030' ORDER BY code LIMIT :n) t"""), {"n": n // 3}).all()
    roads = session.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(ST_GeometryN(geom, 1),
        0.5) AS p FROM road ORDER BY code LIMIT :n) t"""), {"n": n // 2}).all()
    between = session.execute(text("""SELECT (ST_X(p.geom) + ST_X(q.geom)) / 2, (ST_Y(p.geom) + ST_Y(q.geom)) / 2
        FROM component p JOIN component q ON q.class_code = p.class_code AND q.code > p.code
          AND ST_DWithin(p.geom, q.geom, 0.0004) WHERE p.class_code IN ('0203', '0210') ORDER BY p.code LIMIT :n"""),
        {"n": n // 2}).all()
    xy = np.vstack([random, np.array(edges, float)[: n], np.array(mids, float), np.array(roads, float),
                    np.array(between, float)])
    classes = rng.choice(["20102", "20104", "20406", "20505", "10203", "10210", "0118", "10136"], len(xy))
    accuracy = rng.choice([np.nan, 0, 5, 12, 30, 60], len(xy))
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "class": classes, "accuracy": accuracy})


def test_batch_gives_the_single_answers(session):
    points = sample_points(session)
    assert len(points) > 1000
    gcj = points.iloc[::5].copy()
    gcj["x"], gcj["y"] = wgs84_to_gcj02(gcj["x"].to_numpy(), gcj["y"].to_numpy())
    for frame, crs in ((points, "wgs84"), (gcj, "gcj02")):
        batch = gridmap.assign(frame, session=session, crs=crs)
        assert len(batch) == len(frame) and batch["error"].notna().sum() < len(frame) / 3
        # accuracy circles reaching other bodies' grids (the batch spares the search where none can be) are among them
        assert batch["evidence"].str.contains("other_grids_in_accuracy").sum() >= 20
        for row, decided in zip(frame.itertuples(index=False), batch.itertuples(index=False)):
            accuracy = None if np.isnan(row.accuracy) else row.accuracy
            try:
                single = assign_one(session=session, x=row.x, y=row.y, crs=crs, accuracy=accuracy, class_code=row[2])
            except BadReport as error:
                assert decided.error == str(error)
                continue
            got = {k: getattr(decided, k) for k in COMPARED}
            got = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in got.items()}
            assert got == {k: single[k] for k in COMPARED}, (row, got, single)
            assert json.loads(decided.evidence) == single["evidence"], row  # the same reasons, to the decimetre


AMBIGUITIES = {"circle": "accuracy circle", "roads": "two roads", "components": "two components", "poor": "too poor"}


def test_the_single_fix_steps_give_the_column_answers(session):
    """The report API decides a fix step by step (routing/single.py): every field and the evidence equal the
    column path's on the same features, for every kind of fix; the fixes it leaves to the column path are
    the ones on shared edges."""
    from gridmap.routing.decide import decide_columns
    from gridmap.routing.layers import layers_near
    from gridmap.routing.service import minor_class, plain, prepare_one
    from gridmap.routing.single import decide_one

    seen = Counter()
    for row in sample_points(session, 300).itertuples(index=False):
        accuracy = None if np.isnan(row.accuracy) else row.accuracy
        ref, layers = layers_near(session=session, lon=row.x, lat=row.y, accuracy_m=accuracy,
                                  class_code=minor_class(row[2]), component_id=None)
        prepared = prepare_one(row.x, row.y, accuracy, row[2], None, None, ref)
        if prepared["input_error"][0]:
            continue
        one = decide_one(*(float(prepared[name][0]) for name in ("x", "y", "accuracy")), prepared["case_type"][0],
                         prepared["class_code"][0], layers, ref)
        columns = {name: plain(values[0].as_py() if isinstance(values, pa.Array) else values[0])
                   for name, values in decide_columns(prepared, layers, ref).items()}
        if one is None:
            assert "shared edge" in json.loads(columns["evidence"])["unit_grid"]["how"], row
            seen["left to the columns"] += 1
        elif one["error"]:
            assert one == {"error": columns["error"]}, row
            seen["outside"] += 1
        else:
            columns["evidence"] = json.loads(columns["evidence"])
            assert {k: (v, type(v)) for k, v in one.items()} == {k: (v, type(v)) for k, v in columns.items()}, row
            seen.update(kind for kind, words in AMBIGUITIES.items() if words in (one["ambiguity_reason"] or ""))
            seen["decided"] += 1
    assert seen["decided"] > 400 and seen["left to the columns"] > 100 and seen["outside"] > 0, seen
    assert all(seen[kind] for kind in AMBIGUITIES), seen


def test_one_number_is_rounded_as_numpy_rounds_a_column():
    from gridmap.routing.single import rounded

    rng = np.random.default_rng(7)
    values = np.concatenate([rng.uniform(-1e6, 1e6, 20_000), np.round(rng.uniform(0, 1000, 20_000), 3) + 0.005,
                             [0.125, 0.375, 2.5, 1e300, np.inf, np.nan, 5e-324]])
    for decimals in (1, 2):
        assert np.array_equal(np.array([rounded(float(v), decimals) for v in values]), np.round(values, decimals),
                              equal_nan=True)


def test_the_assign_command_reads_and_writes_files(scratch_url, tmp_path):
    from typer.testing import CliRunner

    from gridmap.cli import app

    lon, lat = 121.5435, 25.0416
    glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    pd.DataFrame({"x": [glon, 120.0], "y": [glat, 23.0], "class": ["20102", "20102"], "accuracy": [8, 8]}).to_csv(
        tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(app, ["assign", str(tmp_path / "in.csv"), str(tmp_path / "out.gpkg"), "--crs", "gcj02"],
                                env={"GRIDMAP_DATABASE_URL": scratch_url})
    assert result.exit_code == 0, result.stdout
    out = gpd.read_file(tmp_path / "out.gpkg")
    assert {"unit_grid", "road_id", "road_grade", "component_id", "department", "time_limit", "ambiguous",
            "ambiguity_reason", "evidence"} <= set(out.columns)
    assert out["unit_grid"][0].startswith("630030") and "territory" in out["error"][1]
    assert abs(out.geometry.x[0] - lon) < 1e-7


def test_the_api_previews_a_decision(db_url, demo_reports, reader):
    with TestClient(create_app(Settings(database=DatabaseSettings(database_url=db_url)))) as client:
        client.headers.update(logged_in(client, reader))
        good = client.post("/api/v1/assign", json={"x": 121.5435, "y": 25.0416, "accuracy": 8, "class_code": "20102"})
        assert good.status_code == 200 and good.json()["department"] == "HW"
        assert good.json()["evidence"]["department"]["by"] == "E-0102-A"
        outside = client.post("/api/v1/assign", json={"x": 120.0, "y": 23.0, "class_code": "20102"})
        assert outside.status_code == 422 and "territory" in outside.json()["detail"]
        wrong = client.post("/api/v1/assign", json={"x": "east", "y": 25.0, "class_code": "20102"})
        assert wrong.status_code == 422
        assert client.post("/api/v1/assign", json={"x": 121.5, "y": 25.0, "class_code": "2010"}).status_code == 422


def test_batch_input_with_case_type_and_picked_component_keeps_one_column_each(session, tmp_path):
    """The input's ``case_type`` and ``component_id`` are replaced by the decision's (a GeoPackage refuses
    duplicate column names)."""
    lamp, lon, lat = session.execute(text(
        "SELECT code, ST_X(geom), ST_Y(geom) FROM component WHERE class_code = '0320' ORDER BY code LIMIT 1")).one()
    frame = pd.DataFrame({"x": [lon, 121.5170], "y": [lat, 25.0460], "class": ["0320", "20102"],
                          "case_type": ["component", None], "component_id": [lamp, None], "accuracy": [5.0, 10.0]})
    out = gridmap.assign(frame, session=session, crs="wgs84")
    assert out.columns.is_unique
    assert out["component_id"].iloc[0] == lamp and pd.isna(out["component_id"].iloc[1])
    assert list(out["case_type"]) == ["component", "event"]
    out.to_file(tmp_path / "decided.gpkg")


def test_the_single_path_reads_in_one_statement_what_the_batch_path_reads(session):
    """Near one fix, one round trip gives the same columns, values and projected geometries as the whole
    layers (also when a layer has nothing near: far outside the city), and the reference tables' stamp."""
    from gridmap.routing.layers import Reference, layers_near, load_layers

    lamp, lon, lat = session.execute(text(
        "SELECT code, ST_X(geom), ST_Y(geom) FROM component WHERE class_code = '0203' ORDER BY code LIMIT 1")).one()
    statements = []
    connection = session.connection().connection.driver_connection  # the single path's statement goes there
    execute = connection.execute
    connection.execute = lambda *args, **kwargs: statements.append(args[0]) or execute(*args, **kwargs)
    try:
        ref, near = layers_near(session=session, lon=lon, lat=lat, accuracy_m=60, class_code="0203", component_id=lamp)
        _, nothing = layers_near(session=session, lon=120.0, lat=23.0, accuracy_m=60, class_code="0203", component_id=None)
    finally:
        del connection.execute
    assert len(statements) == 2 and ref is Reference.current(session)
    whole = load_layers(session=session, metric=ref.metric, class_codes=["0203"])
    for name in ("grids", "roads", "components"):
        found, every = getattr(near, name), getattr(whole, name)
        assert list(found) == list(every.columns) == list(getattr(nothing, name)), name
        assert len(found["code"]) > 0 and len(getattr(nothing, name)["code"]) == 0, name
        rows = every.set_index("code").loc[found["code"]].reset_index()
        for column in found:
            expected = list(rows[column])
            if column == "geom":
                assert all(shapely.equals_exact(a, b, 1e-9) for a, b in zip(found[column], expected)), name
            else:
                assert [None if pd.isna(v) else v for v in found[column]] == \
                       [None if pd.isna(v) else v for v in expected], (name, column)
    assert lamp in near.components["code"]
