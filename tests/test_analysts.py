"""The analysts' toolkit: layers and cases as GeoDataFrames with filters, readable case columns, and
exports to every format read back with pyogrio (rows, columns, CRS, values, attribution)."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import CRS
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

import gridmap
from gridmap.cases.reports import submit_report
from gridmap.cases.schemas import ActionRequest, ReportInput
from gridmap.cases.service import act
from gridmap.cli import app
from gridmap.demo.users import demo_users
from gridmap.io.cases import read_cases
from gridmap.io.exceptions import ExportFailed
from gridmap.io.export import LAYERS, export_layer, read_layer
from gridmap.io.files import SHAPEFILE_NAMES
from gridmap.users.service import current_user
from tests.test_hotspots import insert_cases

TAIPEI = ZoneInfo("Asia/Taipei")
STATION = (121.5170, 25.0460)  # an A-class grid: 暴露垃圾 → HW, 4 working hours


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=TAIPEI)


@pytest.fixture
def loop(session, tmp_path):
    """A case taken through the whole loop (Thursday 8 October 2026, before a holiday and a weekend) and
    one still open; returns their numbers."""
    demo_users(session=session)
    people = {r: current_user(session=session, name=f"demo-{r.replace('_', '-')}")
              for r in ("inspector", "acceptor", "shift_lead", "dispatcher", "department")}
    session.execute(text("INSERT INTO photo (sha256, media_type, size, width, height) VALUES "
                         "(repeat('a', 64), 'image/jpeg', 1, 1, 1) ON CONFLICT DO NOTHING"))

    def report(lon, now):
        return submit_report(session=session, user=people["inspector"], report=ReportInput(
            x=lon, y=STATION[1], class_code="20102", description="暴露垃圾 3 袋", accuracy=5.0), uploads=[],
            key=f"analyst-{lon}", photo_dir=tmp_path, photo_max_bytes=10_000_000, now=now).case

    case = report(STATION[0], at(8, 15))
    for role, action, moment, body in [
            ("acceptor", "accept", at(8, 15, 5), {}), ("shift_lead", "file", at(8, 15, 10), {"confirm": True}),
            ("dispatcher", "dispatch", at(8, 16), {}), ("department", "handle", at(12, 10, 30), {"photos": ["a" * 64]}),
            ("inspector", "check", at(12, 10, 50), {"passed": True}), ("shift_lead", "close", at(12, 11, 5), {})]:
        act(session=session, user=people[role], number=case.number, action=action,
            request=ActionRequest(version=case.version, **body), now=moment)
    still_open = report(STATION[0] + 0.003, at(20, 9))
    return case.number, still_open.number


def test_layers_with_filters_in_the_crs_asked_for(session):
    grids = read_layer(session=session, name="unit_grid", district="630050")
    expected = session.execute(text("SELECT count(*) FROM unit_grid g JOIN community c ON c.id = g.community_id "
                                    "WHERE g.valid_to IS NULL AND left(c.code, 6) = '630050'")).scalar()
    assert len(grids) == expected > 0 and grids.crs.to_epsg() == 4326
    assert len(gridmap.read_layer("unit_grid", session=session, district="中正區")) == expected  # by name too
    for asked in ("EPSG:3826", 3826, "3826"):
        assert read_layer(session=session, name="district", crs=asked).crs.to_epsg() == 3826
    assert read_layer(session=session, name="district", crs="cgcs2000").crs.to_epsg() == 4490
    roads = read_layer(session=session, name="road", district="630050")
    district = read_layer(session=session, name="district", district="630050").geometry.iloc[0]
    assert len(roads) and roads.intersects(district).all()
    assert len(roads) < len(read_layer(session=session, name="road"))
    # a box in lon/lat, and the same place as a box in metres (TWD97)
    box = (121.51, 25.04, 121.52, 25.05)
    inside = read_layer(session=session, name="unit_grid", bbox=box, where="area_class = 'A'")
    assert len(inside) and inside.intersects(shapely.box(*box)).all() and (inside["area_class"] == "A").all()
    metric_box = (303500, 2770000, 304500, 2771000)
    metric = read_layer(session=session, name="unit_grid", bbox=metric_box, bbox_crs="EPSG:3826", crs=3826)
    assert len(metric) and metric.intersects(shapely.box(*metric_box)).all()
    assert metric["area_m2"].sum() == pytest.approx(metric.area.sum(), rel=0.002)


def test_bad_filters_say_what_is_wrong(session):
    cases = [
        (dict(name="lamps"), "unknown layer 'lamps'"), (dict(name="road", crs="EPSG:999999"), "unknown CRS"),
        (dict(name="road", crs="gcj02"), "phone input systems"), (dict(name="road", district="Atlantis"), "no district"),
        (dict(name="road", bbox="1,2,3"), "four numbers"), (dict(name="road", bbox=(2, 0, 1, 1)), "xmin < xmax"),
        (dict(name="road", period="2026-10"), "filter cases and case_events only"),
        (dict(name="cases", period="2026-13"), "month must be in 1..12"),
        (dict(name="cases", status="lost"), "unknown status 'lost'"),
        (dict(name="cases", department="NOPE"), "unknown department 'NOPE'"),
        (dict(name="cases", class_code="0102"), "write 10102 or 20102"),
        (dict(name="cases", source="fax"), "unknown source 'fax'"),
        (dict(name="cases", period="2026-10", period_field="updated_at"), "period_field 'updated_at'"),
        (dict(name="road", where="lanes > 2; DROP TABLE road"), "without ';'"),
    ]
    for arguments, message in cases:
        with pytest.raises(ExportFailed, match=message.replace("(", r"\(").replace(".", r"\.")):
            read_layer(session=session, **arguments)
    with pytest.raises(ExportFailed, match='column "nosuch" does not exist'):
        read_layer(session=session, name="road", where="nosuch = 1")
    assert session.execute(text("SELECT count(*) FROM district")).scalar() == 12  # the transaction lives on


def test_cases_with_readable_columns_and_filters(session, loop):
    closed, still_open = loop
    frame = read_cases(session=session, period="2026-10", now=at(20, 12))
    assert {closed, still_open} <= set(frame["number"]) and "evidence" not in frame.columns
    row = frame.set_index("number").loc[closed]
    hw = session.execute(text("SELECT name FROM department WHERE code = 'HW'")).scalar()
    assert (row["class_name"], row["class_name_en"], row["department"], row["department_name"]) == (
        "暴露垃圾", "Exposed garbage", "HW", hw)
    assert (row["status"], row["status_zh"], row["status_en"], row["source_zh"]) == (
        "closed", "已结案", "closed", "监督员上报")
    assert row["reported_at"] == at(8, 15) and str(row["reported_at"].tz) == "Asia/Taipei"
    # dispatched Thursday 16:00, handled Monday 10:30: 1.5 h + 2 h of working time (holiday and weekend skipped)
    assert row["disposal_hours"] == pytest.approx(3.5) and row["disposal_limit_hours"] == pytest.approx(4.0)
    assert row["handled_on_time"] and row["closed_on_time"] and row["district_name"] == "中正區"
    waiting = frame.set_index("number").loc[still_open]
    assert waiting["status_zh"] == "待受理" and pd.isna(waiting["handled_on_time"]) and waiting["overdue"]
    # filters
    mine = {closed, still_open}
    assert set(read_cases(session=session, period="2026-10", status="closed")["number"]) & mine == {closed}
    assert set(read_cases(session=session, period="2026-10", status="open")["number"]) & mine == {still_open}
    assert set(read_cases(session=session, period="2026-10-12", period_field="closed_at")["number"]) & mine == {closed}
    assert set(read_cases(session=session, period="2026-W42", department="HW")["number"]) & mine == set()
    assert set(read_cases(session=session, period="2026-10", department="HW")["number"]) & mine == {closed}
    assert not set(read_cases(session=session, period="2026-10", source="hotline")["number"]) & mine
    assert mine <= set(read_cases(session=session, period="2026-Q4", class_code="20102", district="630050")["number"])
    evidence = read_layer(session=session, name="cases", period="2026-10", with_evidence=True)
    assert json.loads(evidence.set_index("number").loc[closed, "evidence"])["department"]["code"] == "HW"


def test_case_events_as_a_table_or_on_the_case_point(session, loop):
    closed, _ = loop
    events = read_layer(session=session, name="case_events", period="2026-10")
    mine = events[events["number"] == closed]
    assert isinstance(events, pd.DataFrame) and not isinstance(events, gpd.GeoDataFrame)
    assert mine["action"].tolist() == ["report", "accept", "file", "dispatch", "handle", "check", "close"]
    handle = mine.set_index("action").loc["handle"]
    assert handle["on_time"] and handle["due_at"] == at(12, 11) and handle["actor_role"] == "department"
    filing = json.loads(mine.set_index("action").loc["file", "data"])
    assert "evidence" not in filing and filing["proposed"] == "HW"  # the big routing evidence only when asked
    full = read_layer(session=session, name="case_events", period="2026-10", with_evidence=True)
    assert "evidence" in json.loads(full.set_index(["number", "action"]).loc[(closed, "file"), "data"])
    placed = read_layer(session=session, name="case_events", status="closed", with_geometry=True, crs=3826)
    assert isinstance(placed, gpd.GeoDataFrame) and placed.crs.to_epsg() == 3826
    assert set(placed["number"]) >= {closed} and (placed["case_status"] == "closed").all()


def same_crs(found: CRS, epsg: int) -> bool:
    """GeoJSON says OGC:CRS84 for lon/lat, a Shapefile's .prj has no EPSG code in it: compare what they mean."""
    return found.to_epsg() == epsg or (epsg == 4326 and found.equals(CRS.from_user_input("OGC:CRS84"))) \
        or found.equals(CRS.from_epsg(epsg), ignore_axis_order=True)


FORMATS = [".gpkg", ".geojson", ".shp", ".fgb", ".csv", ".parquet"]


def read_back(path):
    """The file as a GIS reads it: pyogrio (GDAL), or pyarrow for GeoParquet (this GDAL has no Parquet driver)."""
    if path.suffix == ".parquet":
        return gpd.read_parquet(path), gpd.read_parquet(path).crs
    info = pyogrio.read_info(path)
    return pyogrio.read_dataframe(path), CRS.from_user_input(info["crs"]) if info["crs"] else None


@pytest.mark.parametrize("suffix", FORMATS)
def test_cases_export_to_every_format_and_read_back(session, loop, tmp_path, suffix):
    closed, _ = loop
    crs = 3826 if suffix in (".gpkg", ".shp", ".csv") else None
    path = tmp_path / f"cases{suffix}"
    result = export_layer(session=session, name="cases", path=path, crs=crs, period="2026-10")
    expected = read_cases(session=session, period="2026-10", crs=crs)
    frame, found_crs = read_back(path)
    assert len(frame) == result.rows == len(expected) >= 2
    assert same_crs(found_crs, crs or 4326)
    names = {c: SHAPEFILE_NAMES.get(c, c) if suffix == ".shp" else c for c in expected.columns if c != "geom"}
    assert max(map(len, names.values())) <= 10 or suffix != ".shp"
    extra = {"WKT", "x", "y"} if suffix == ".csv" else set()
    assert set(frame.columns) - {"geometry", "geom"} == set(names.values()) | extra
    row = frame.set_index(names["number"]).loc[closed]
    source = expected.set_index("number").loc[closed]
    assert row[names["class_name"]] == "暴露垃圾" and row[names["department_name"]] == source["department_name"]
    assert float(row[names["disposal_hours"]]) == pytest.approx(3.5)
    stamp = row[names["reported_at"]]
    if suffix in (".shp", ".csv"):  # no datetime type (or GDAL's own form): ISO 8601 text
        assert stamp == "2026-10-08T15:00:00+08:00"
    else:
        assert pd.Timestamp(stamp) == at(8, 15)
    assert str(row[names["handled_on_time"]]).lower() in ("true", "1", "1.0")
    point = shapely.from_wkt(row["WKT"]) if suffix == ".csv" else row.get("geometry", row.get("geom"))
    assert point.distance(source.geom) < 0.01
    if suffix == ".csv":
        assert float(row["x"]) == pytest.approx(source.geom.x, abs=0.01)
    credit = ("OpenStreetMap", "臺北市政府")
    if suffix == ".gpkg":
        assert all(c in pyogrio.read_info(path)["layer_metadata"]["attribution"] for c in credit)
    elif suffix == ".geojson":
        assert all(c in path.read_text(encoding="utf-8") for c in credit)
    else:
        assert all(c in path.with_name(path.name + ".attribution.txt").read_text(encoding="utf-8") for c in credit)
    if suffix == ".shp":
        assert path.with_suffix(".cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
        assert any("ISO 8601" in n for n in result.notes) and any("reported_at → reported" in n for n in result.notes)


@pytest.mark.parametrize("suffix", FORMATS)
def test_grids_with_dates_export_to_every_format(session, tmp_path, suffix):
    path = tmp_path / f"grids{suffix}"
    result = export_layer(session=session, name="unit_grid", path=path, district="630050")
    frame, found_crs = read_back(path)
    expected = read_layer(session=session, name="unit_grid", district="630050")
    assert len(frame) == result.rows == len(expected) and same_crs(found_crs, 4326)
    key = "code"
    merged = frame.set_index(key).loc[expected["code"]]
    assert merged["area_m2"].astype(float).round(3).tolist() == expected["area_m2"].round(3).tolist()
    valid_from = merged["valid_from"].iloc[0]
    assert str(valid_from)[:10] == expected["valid_from"].iloc[0].isoformat()
    if suffix in (".gpkg", ".geojson", ".shp"):  # real dates, not text
        assert pyogrio.read_info(path)["dtypes"][list(pyogrio.read_info(path)["fields"]).index("valid_from")] \
            == "datetime64[D]"


def test_shapefile_short_names_fit_and_are_unique_in_every_layer(session):
    for name in LAYERS:
        frame = read_cases(session=session, period="2026") if name == "cases" else read_layer(session=session, name=name)
        short = [SHAPEFILE_NAMES.get(c, c) for c in frame.columns if c != "geom"]
        assert len(set(short)) == len(short) and max(map(len, short)) <= 10, name


def test_export_command_with_filters_and_clear_errors(scratch_url, tmp_path):
    engine = create_engine(scratch_url)
    try:
        with engine.begin() as connection:
            insert_cases(connection, [STATION], [at(6, 9), at(7, 9)], status="closed", prefix="X")
            insert_cases(connection, [STATION], [at(7, 10)], prefix="Y")
            insert_cases(connection, [STATION], [datetime(2026, 11, 2, 9, tzinfo=TAIPEI)], prefix="Z")
    finally:
        engine.dispose()
    runner = CliRunner()
    env = {"GRIDMAP_DATABASE_URL": scratch_url, "COLUMNS": "200"}

    def gridmap_(*args):
        return runner.invoke(app, [str(a) for a in args], env=env)

    out = tmp_path / "closed.shp"
    result = gridmap_("export", "cases", out, "--period", "2026-10", "--status", "closed", "--crs", "EPSG:3826")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "2 cases rows" in result.stdout and "EPSG:3826" in result.stdout and "ISO 8601" in result.stdout
    frame = pyogrio.read_dataframe(out)
    assert len(frame) == 2 and set(frame["status_zh"]) == {"已结案"} and set(frame["reported"].str[:10]) == {
        "2026-10-06", "2026-10-07"}
    result = gridmap_("export", "cases", tmp_path / "oct.csv", "--period", "2026-10", "--class", "20102",
                      "--district", "中正區", "--where", "status = 'reported'")
    assert result.exit_code == 0 and "1 cases rows" in result.stdout
    csv = pd.read_csv(tmp_path / "oct.csv", dtype=str)
    assert csv["class_name"].tolist() == ["暴露垃圾"] and csv["reported_at"].tolist() == ["2026-10-07T10:00:00+08:00"]
    assert (tmp_path / "oct.prj").exists()
    result = gridmap_("export", "case_events", tmp_path / "events.gpkg", "--period", "2026-10")
    assert result.exit_code == 0 and "0 case_events rows" in result.stdout  # inserted cases have no events
    for args, message in [(("--period", "2026-13"), "month must be in 1..12"),
                          (("--status", "lost"), "unknown status 'lost'"),
                          (("--where", "nosuch = 1"), 'column "nosuch" does not exist')]:
        bad = gridmap_("export", "cases", tmp_path / "bad.gpkg", *args)
        assert bad.exit_code == 1 and message in " ".join(bad.stderr.split()), bad.stderr
        assert "Traceback" not in bad.stdout + bad.stderr
    bad = gridmap_("export", "road", tmp_path / "r.gpkg", "--status", "closed")
    assert bad.exit_code == 1 and "--status: only for cases" in bad.stderr
    bad = gridmap_("export", "department", tmp_path / "d.shp")
    assert bad.exit_code == 1 and "has no geometry" in bad.stderr


def test_top_level_functions_open_their_own_session(db_url, demo_reports, monkeypatch):
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", db_url)
    districts = gridmap.read_layer("district", crs=3826)
    assert len(districts) == 12 and districts.crs.to_epsg() == 3826
    cases = gridmap.read_cases(period="2026-10")
    assert isinstance(cases, gpd.GeoDataFrame) and {"class_name", "status_zh", "handled_on_time"} <= set(cases.columns)
