"""The Taipei demo city: everything in the source files is imported or explicitly reported."""

import json
from pathlib import Path

from sqlalchemy import text

from gridmap.demo.service import DEFAULT_MANIFEST, demo_steps
from gridmap.departments.service import uncovered_classes

DATA = DEFAULT_MANIFEST.parent


def count(session, table: str) -> int:
    return session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def features_in(file: str) -> int:
    return len(json.loads((DATA / file).read_text(encoding="utf-8"))["features"])


def test_territory_counts(session):
    assert count(session, "district") == 12
    assert count(session, "community") == 456
    assert session.execute(text("SELECT count(*) FROM community WHERE street_id IS NOT NULL")).scalar_one() == 0


def test_every_road_and_component_is_imported_or_reported(session, demo_reports):
    by_file = {Path(r.file).name: r for r in demo_reports}
    for step in demo_steps():
        if step["layer"] not in ("road", "component"):
            continue
        report = by_file[Path(step["file"]).name]
        assert report.rows_read == features_in(step["file"])
        assert report.accounted == report.rows_read, report.summary()
        assert {issue.reason for issue in report.rejected} <= {"outside the city's territory"}
    roads = [r for r in demo_reports if r.layer == "road"]
    components = [r for r in demo_reports if r.layer == "component"]
    assert count(session, "road") == sum(r.inserted for r in roads)
    assert count(session, "component") == sum(r.inserted for r in components)
    assert count(session, "component_version") == count(session, "component")
    # the one rain-sewer station without a location is reported as skipped, not lost
    sewer = next(r for r in components if "rain_sewer" in r.file)
    assert [issue.row for issue in sewer.skipped_empty] == [
        i + 1 for i, f in enumerate(json.loads((DATA / "components/rain_sewer_stations.geojson").read_text())["features"])
        if f["geometry"] is None
    ]


def test_invalid_village_polygons_are_repaired_and_said_so(demo_reports):
    villages = next(r for r in demo_reports if r.layer == "community")
    assert villages.repaired, "the raw village layer has invalid polygons"
    assert all("make_valid" in issue.reason for issue in villages.repaired)


def test_every_catalogue_class_has_a_rule(session):
    assert uncovered_classes(session=session) == []


def test_attribution_is_recorded_with_the_data(session):
    sources = set(session.execute(text("SELECT DISTINCT source FROM road")).scalars())
    assert sources == {"osm"}
    credit = session.execute(text("SELECT attribution FROM data_source WHERE code = 'osm'")).scalar_one()
    assert "OpenStreetMap" in credit


def test_reloading_the_demo_changes_nothing(session):
    from gridmap.demo.service import load_demo

    before = {t: count(session, t) for t in ("district", "community", "road", "component", "component_version")}
    reports = load_demo(session=session)
    assert sum(r.inserted + r.updated for r in reports) == 0
    assert {t: count(session, t) for t in before} == before
    assert load_demo(session=session, if_empty=True) == []
