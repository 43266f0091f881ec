"""Unit and duty grids of the Taipei demo city: checks, codes, versioned regeneration, duty grids, imports."""

from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.crs import metric_crs
from gridmap.io.importer import import_layer
from gridmap.territory.checks import check_unit_grids
from gridmap.territory.duty import import_duty_grids
from gridmap.territory.generate import GridOptions, community_blocks
from gridmap.territory.grids import current_cells, generate_unit_grids, scope_communities

DISTRICT = "630050"  # 中正區, fully covered by the OSM roads


def rows(session, sql: str, **params):
    return session.execute(text(sql), params).all()


def value(session, sql: str, **params):
    return session.execute(text(sql), params).scalar_one()


@pytest.fixture
def village(session) -> str:
    """The 中正區 village with the most main-road length: a good place to change roads."""
    return value(session, """
        SELECT c.code FROM community c JOIN road r ON ST_Intersects(c.geom, r.geom)
        WHERE c.code LIKE '630050%' AND r.grade_code IN ('grade1', 'grade2')
        GROUP BY c.code ORDER BY sum(ST_Length(ST_Intersection(c.geom, r.geom)::geography)) DESC, c.code LIMIT 1""")


def test_the_demo_city_has_sound_grids(session):
    result = check_unit_grids(session=session, district=DISTRICT)
    assert result.hard_violations == {}
    totals = result.totals()
    assert totals["gap m²"] < 1 and totals["overlap m²"] < 1
    assert 5_000 < result.areas["50%"] < 15_000  # 万米: about 10,000 m²
    assert result.outside_duty_grids == 0
    city = value(session, "SELECT count(*) FROM unit_grid WHERE valid_to IS NULL")
    assert 15_000 < city < 30_000


def test_codes_are_community_code_and_sequence(session):
    wrong = value(session, """SELECT count(*) FROM unit_grid g JOIN community c ON c.id = g.community_id
                              WHERE g.code !~ '^[0-9]{15}$' OR left(g.code, 12) <> c.code""")
    assert wrong == 0
    first = rows(session, """SELECT right(code, 3)::int FROM unit_grid WHERE valid_to IS NULL
                             AND left(code, 12) = '630050000001' ORDER BY code""")
    assert [n for (n,) in first] == list(range(1, len(first) + 1))


def test_every_grid_has_a_street_office_and_area_class(session):
    missing = value(session, "SELECT count(*) FROM unit_grid WHERE valid_to IS NULL AND responsible_department_id IS NULL")
    assert missing == 0
    classes = dict(rows(session, "SELECT area_class, count(*) FROM unit_grid WHERE valid_to IS NULL GROUP BY 1"))
    assert set(classes) == {"A", "B", "C"}
    office = value(session, """SELECT d.code FROM unit_grid g JOIN department d ON d.id = g.responsible_department_id
                               WHERE g.code = '630050000001001'""")
    assert office == "JD-630050"


def test_regenerating_after_a_road_change_keeps_unchanged_codes_and_versions_the_rest(session, village):
    crs = metric_crs(session=session)
    before = current_cells(session=session, community_codes=[village], crs=crs)
    members_before = value(session, "SELECT count(*) FROM duty_grid_member WHERE left(unit_grid_code, 12) = :v",
                           v=village)
    # a new lane straight across the village, west to east through its middle
    shape = scope_communities(session=session, community=village, crs=crs).geometry.iloc[0]
    minx, miny, maxx, maxy = shape.bounds
    middle = (miny + maxy) / 2
    lane = gpd.GeoDataFrame({"code": ["test-lane"], "grade_code": ["grade4"]},
                            geometry=[shapely.LineString([(minx - 10, middle), (maxx + 10, middle)])], crs=crs)
    import_layer(session=session, layer="road", data=lane)
    result = generate_unit_grids(session=session, community=village, as_of=date(2030, 1, 1))
    assert result.retired > 0 and result.created > 0 and result.kept > 0
    after = current_cells(session=session, community_codes=[village], crs=crs)
    # cells of the blocks the lane does not cross are cut as before and keep their codes
    roads = gpd.read_postgis(text("SELECT geom FROM road WHERE code <> 'test-lane'"), session.connection(),
                             geom_col="geom", crs=4326).to_crs(crs).geometry.values
    blocks, _ = community_blocks(shape, roads, GridOptions().snap_tolerance)
    crossed = blocks[shapely.intersects(blocks, lane.geometry.iloc[0])]
    untouched = before[~before.intersects(shapely.union_all(crossed).buffer(-1))]
    assert len(untouched) > 0 and set(untouched["code"]) <= set(after["code"])
    retired = rows(session, "SELECT code, valid_to FROM unit_grid WHERE left(code, 12) = :v AND valid_to IS NOT NULL",
                   v=village)
    assert len(retired) == result.retired and {d for _c, d in retired} == {date(2030, 1, 1)}
    new_codes = set(after["code"]) - set(before["code"])
    assert len(new_codes) == result.created and not new_codes & set(before["code"])
    assert max(int(c[-3:]) for c in new_codes) > max(int(c[-3:]) for c in before["code"])
    assert shapely.area(shapely.symmetric_difference(shapely.union_all(after.geometry.values), shape)) < 1.0
    # the new cells took over the duty grids of the cells they replace
    members_after = value(session, """SELECT count(*) FROM duty_grid_member m JOIN unit_grid g
                                      ON g.code = m.unit_grid_code AND g.valid_to IS NULL WHERE left(g.code, 12) = :v""",
                          v=village)
    assert members_after == len(after) and members_before == len(before)
    # nothing changed since: a second run keeps everything
    again = generate_unit_grids(session=session, community=village, as_of=date(2030, 2, 1))
    assert (again.kept, again.created, again.retired) == (len(after), 0, 0)


def test_the_check_finds_gaps_overlaps_crossings_and_bad_codes(session, village):
    crs = metric_crs(session=session)
    cells = current_cells(session=session, community_codes=[village], crs=crs)
    session.execute(text("DELETE FROM duty_grid_member WHERE left(unit_grid_code, 12) = :v"), {"v": village})
    session.execute(text("DELETE FROM unit_grid WHERE left(code, 12) = :v"), {"v": village})
    official = cells.iloc[1:].copy()  # the first cell is missing: a gap
    official.loc[official.index[0], official.geometry.name] = official.geometry.iloc[0].buffer(30)  # overlaps, crosses
    official = gpd.GeoDataFrame({"code": official["code"]}, geometry=official.geometry.values, crs=crs)
    report = import_layer(session=session, layer="unit_grid", data=official)
    assert report.inserted == len(official)
    session.execute(text("UPDATE unit_grid SET code = '630050000002998' WHERE code = :c"),
                    {"c": official["code"].iloc[-1]})  # a code naming another community
    result = check_unit_grids(session=session, community=village)
    problems = " ".join(result.hard_violations[village])
    assert "gaps" in problems and "overlaps" in problems and "crossing the community boundary" in problems
    assert "misplaced codes: ['630050000002998']" in problems
    gap = result.communities[0].gap_locations[0]
    assert 121.4 < gap[0] < 121.7 and 24.9 < gap[1] < 25.3


def test_every_unit_grid_is_in_exactly_one_duty_grid(session):
    assert value(session, """SELECT count(*) FROM unit_grid g WHERE g.valid_to IS NULL AND NOT EXISTS
                             (SELECT 1 FROM duty_grid_member m WHERE m.unit_grid_code = g.code)""") == 0
    sizes = [n for (n,) in rows(session, "SELECT count(*) FROM duty_grid_member GROUP BY duty_grid_id")]
    assert 8 < np.median(sizes) < 25


def test_duty_grids_can_be_imported_and_edited(session, tmp_path):
    codes = [c for (c,) in rows(session, "SELECT code FROM unit_grid WHERE valid_to IS NULL "
                                         "AND left(code, 12) = '630050000001' ORDER BY code LIMIT 3")]
    table = pd.DataFrame({
        "unit_grid_code": [codes[0], codes[1], codes[1], "630050000001999"],
        "duty_grid_code": ["ZZ-01", "ZZ-01", "ZZ-02", "ZZ-01"],
        "duty_grid_name": ["测试责任网格", None, None, None],
        "inspectors": ["JCY001;JCY002", None, None, None],
    })
    table.to_csv(tmp_path / "duty.csv", index=False)
    report = import_duty_grids(session=session, path=tmp_path / "duty.csv")
    assert [(i.row, i.field) for i in report.rejected] == [(3, "unit_grid_code"), (4, "unit_grid_code")]
    assert "exactly one duty grid" in report.rejected[0].reason
    moved = rows(session, """SELECT m.unit_grid_code, d.code, d.name FROM duty_grid_member m
                             JOIN duty_grid d ON d.id = m.duty_grid_id WHERE d.code = 'ZZ-01' ORDER BY 1""")
    assert [(g, d) for g, d, _n in moved] == [(codes[0], "ZZ-01"), (codes[1], "ZZ-01")]
    assert moved[0][2] == "测试责任网格"
    inspectors = rows(session, """SELECT i.code FROM duty_grid_inspector di JOIN inspector i ON i.id = di.inspector_id
                                  JOIN duty_grid d ON d.id = di.duty_grid_id WHERE d.code = 'ZZ-01' ORDER BY 1""")
    assert [c for (c,) in inspectors] == ["JCY001", "JCY002"]


def test_grids_check_command_on_the_whole_city(scratch_url, tmp_path):
    runner = CliRunner()
    env = {"GRIDMAP_DATABASE_URL": scratch_url, "COLUMNS": "200"}
    result = runner.invoke(app, ["grids", "check", "--json", str(tmp_path / "check.json")], env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "no hard rule broken" in result.stdout and "main-road length inside cells" in result.stdout
    assert (tmp_path / "check.json").stat().st_size > 1000
    one = runner.invoke(app, ["grids", "check", "--community", "630050000001"], env=env)
    assert one.exit_code == 0 and "│ communities" in one.stdout
    unknown = runner.invoke(app, ["grids", "check", "--district", "999999"], env=env)
    assert unknown.exit_code == 1 and "no community in scope" in unknown.stderr
