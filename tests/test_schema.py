"""The schema is made by the migrations, matches the models, and measures in metres."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from gridmap.crs import gauss_kruger_epsg, metric_crs
from gridmap.db.migrate import include_object
from gridmap.db.models import Base


def test_migrations_match_the_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object, "compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_every_geometry_is_stored_in_wgs84(session):
    srids = session.execute(text("SELECT f_table_name, srid FROM geometry_columns")).all()
    assert srids and {srid for _table, srid in srids} == {4326}


def test_district_areas_come_out_in_square_metres(session):
    """The official AREA of each district (m², in the raw data) against ours, geodesic and projected."""
    import json
    from pathlib import Path

    districts = Path(__file__).resolve().parents[1] / "data/taipei/districts.geojson"
    features = json.loads(districts.read_text(encoding="utf-8"))["features"]
    official = {f["properties"]["code"]: f["properties"]["official_area_m2"] for f in features}
    rows = session.execute(text("""
        SELECT d.code, ST_Area(d.geom::geography), ST_Area(ST_Transform(d.geom, c.metric_srid))
        FROM district d CROSS JOIN city c""")).all()
    assert len(rows) == 12
    for code, geodesic, projected in rows:
        assert geodesic == pytest.approx(official[code], rel=0.005)
        assert projected == pytest.approx(geodesic, rel=0.001)
    assert sum(r[1] for r in rows) == pytest.approx(sum(official.values()), rel=0.005)


def test_distances_come_out_in_metres(session):
    """Taipei Main Station to Taipei 101, by PostGIS geography, in the metric CRS, and by pyproj's geodesic."""
    from pyproj import Geod, Transformer

    a, b = (121.5170, 25.0478), (121.5645, 25.0340)
    geodesic = Geod(ellps="WGS84").inv(*a, *b)[2]
    metres = session.execute(text("""
        SELECT ST_Distance(ST_SetSRID(ST_MakePoint(:ax, :ay), 4326)::geography,
                           ST_SetSRID(ST_MakePoint(:bx, :by), 4326)::geography)"""),
        dict(ax=a[0], ay=a[1], bx=b[0], by=b[1])).scalar_one()
    assert metres == pytest.approx(geodesic, abs=0.5)
    crs = metric_crs(session=session)
    assert crs.to_epsg() == 3826 and crs.axis_info[0].unit_name == "metre"
    to_metric = Transformer.from_crs(4326, crs, always_xy=True)
    (ax, ay), (bx, by) = to_metric.transform(*a), to_metric.transform(*b)
    assert ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 == pytest.approx(geodesic, rel=0.001)


def test_gauss_kruger_zone_rule():
    assert gauss_kruger_epsg(114.2) == 4547
    assert gauss_kruger_epsg(117.0) == 4548
    assert gauss_kruger_epsg(121.4) == 4549
    with pytest.raises(ValueError):
        gauss_kruger_epsg(10.0)


def test_the_embedded_cluster_makes_a_commit_durable_before_it_returns(session):
    """A report the API acknowledged (201) survives a crash of the machine: the embedded cluster waits for
    the commit's WAL to reach the disk (a server given by GRIDMAP_DATABASE_URL is its operator's to set)."""
    import os

    setting = session.execute(text("SHOW synchronous_commit")).scalar()
    assert setting == "on" or os.environ.get("GRIDMAP_DATABASE_URL"), setting
