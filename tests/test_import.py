"""Importers: formats, CRS, mapping, upsert, bad rows, strict mode, repairs, component versions."""

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from gridmap.io.exceptions import ImportFailed, ImportRejected
from gridmap.io.importer import import_layer

DATA = Path(__file__).resolve().parents[1] / "data" / "taipei"


def some_components(session, n=5) -> gpd.GeoDataFrame:
    """n real demo components (bus stops in 中正區) as a GeoDataFrame, with new codes in the 0203 range."""
    frame = gpd.read_file(DATA / "components" / "bus_stops.geojson")
    frame = frame[frame["code"].fillna("").str.startswith("630050")].head(n).reset_index(drop=True)
    frame["code"] = [f"6300500203{900000 + i:06d}" for i in range(n)]
    return frame


def scalar(session, sql: str, **params):
    return session.execute(text(sql), params).scalar_one()


# Shapefiles cut field names to 10 characters; the importer still finds what it needs (code, class).
@pytest.mark.filterwarnings("ignore:Column names longer", "ignore:Normalized/laundered", "ignore:Field .* created")
@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp", ".fgb", ".parquet", ".csv"])
def test_every_format_imports_and_a_second_import_changes_nothing(session, tmp_path, suffix):
    frame = some_components(session)
    path = tmp_path / f"components{suffix}"
    if suffix == ".csv":
        pd.DataFrame(frame.drop(columns="geometry")).assign(x=frame.geometry.x, y=frame.geometry.y).to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_file(path)
    first = import_layer(session=session, layer="component", data=path)
    assert (first.rows_read, first.inserted, first.updated, first.rejected) == (5, 5, 0, [])
    second = import_layer(session=session, layer="component", data=path)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 5)
    assert scalar(session, "SELECT count(*) FROM component WHERE code LIKE '63005002039%'") == 5


def test_a_geodataframe_imports_directly(session):
    report = import_layer(session=session, layer="component", data=some_components(session, 3))
    assert report.inserted == 3


def test_source_crs_is_reprojected_and_can_be_overridden(session, tmp_path):
    frame = some_components(session, 2)
    path = tmp_path / "twd97.gpkg"
    frame.to_crs(3826).to_file(path)
    import_layer(session=session, layer="component", data=path)
    stored = shapely.from_wkt(session.execute(text(
        "SELECT ST_AsText(geom) FROM component WHERE code = :c"), {"c": frame["code"][0]}).scalar_one())
    assert stored.distance(frame.geometry[0]) < 1e-7
    # the same metric coordinates wrongly labelled as WGS84, corrected with --crs
    mislabelled = gpd.GeoDataFrame(frame.drop(columns="geometry"), geometry=list(frame.to_crs(3826).geometry), crs=4326)
    mislabelled.to_file(tmp_path / "mislabelled.geojson")
    with pytest.raises(ImportFailed):  # far outside the territory, all rows rejected → strict fails
        import_layer(session=session, layer="component", data=tmp_path / "mislabelled.geojson", strict=True)
    report = import_layer(session=session, layer="component", data=tmp_path / "mislabelled.geojson", crs="EPSG:3826")
    assert report.unchanged == 2 and any("overridden by --crs" in note for note in report.notes)


def test_a_file_without_crs_needs_one(session, tmp_path):
    frame = some_components(session, 2).to_crs(3826)
    csv = tmp_path / "metric.csv"
    pd.DataFrame(frame.drop(columns="geometry")).assign(x=frame.geometry.x, y=frame.geometry.y).to_csv(csv, index=False)
    with pytest.raises(ImportFailed, match="declares no CRS"):
        import_layer(session=session, layer="component", data=csv)
    assert import_layer(session=session, layer="component", data=csv, crs="EPSG:3826").inserted == 2


def test_column_mapping_from_raw_names(session, tmp_path):
    frame = some_components(session, 2).rename(columns={"code": "ID", "name": "NAME"})
    frame.to_file(tmp_path / "raw.geojson")
    with pytest.raises(ImportFailed, match="--map code=COLUMN"):
        import_layer(session=session, layer="component", data=tmp_path / "raw.geojson")
    with pytest.raises(ImportFailed, match="no column"):
        import_layer(session=session, layer="component", data=tmp_path / "raw.geojson", mapping={"code": "NOPE"})
    report = import_layer(session=session, layer="component", data=tmp_path / "raw.geojson",
                          mapping={"code": "ID", "name": "NAME"})
    assert report.inserted == 2
    assert scalar(session, "SELECT name FROM component WHERE code = :c", c=frame["ID"][0]) == frame["NAME"][0]


def bad_rows_csv(session, tmp_path) -> Path:
    frame = some_components(session, 6)
    rows = pd.DataFrame(frame.drop(columns="geometry")).assign(x=frame.geometry.x, y=frame.geometry.y).astype(str)
    rows.loc[1, "code"] = "63005002039"  # too short
    rows.loc[2, "class_code"] = "9999"  # unknown class
    rows.loc[3, "survey_date"] = "2023-13-45"  # not a date
    rows.loc[4, "x"] = "east of the station"  # not a number
    rows.loc[5, "maintainer_department_code"] = "NOBODY"  # unknown department
    path = tmp_path / "bad.csv"
    rows.to_csv(path, index=False)
    return path


def test_bad_rows_are_reported_precisely_and_the_rest_goes_in(session, tmp_path):
    path = bad_rows_csv(session, tmp_path)
    report = import_layer(session=session, layer="component", data=path)
    found = {(issue.row, issue.field) for issue in report.rejected}
    assert found == {(2, "code"), (3, "class_code"), (4, "survey_date"), (5, "x"), (6, "maintainer_department_code")}
    assert report.inserted == 1 and report.accounted == report.rows_read == 6
    described = report.rejected[0].describe(report.file)
    assert str(path) in described and "row 2" in described and "field code" in described


def test_strict_import_with_a_bad_row_imports_nothing(session, tmp_path):
    path = bad_rows_csv(session, tmp_path)
    before = scalar(session, "SELECT count(*) FROM component")
    with pytest.raises(ImportRejected) as failure:
        import_layer(session=session, layer="component", data=path, strict=True)
    assert len(failure.value.report.rejected) == 5
    assert scalar(session, "SELECT count(*) FROM component") == before


def test_duplicate_codes_in_one_file_are_rejected(session):
    frame = some_components(session, 3)
    frame.loc[2, "code"] = frame.loc[0, "code"]
    report = import_layer(session=session, layer="component", data=frame)
    assert [(i.row, i.reason) for i in report.rejected] == [(3, "duplicate code, first used at row 1")]


def test_invalid_geometry_is_repaired_empty_skipped_outside_rejected(session):
    bowtie = shapely.Polygon([(121.50, 25.04), (121.51, 25.05), (121.51, 25.04), (121.50, 25.05)])
    frame = gpd.GeoDataFrame(
        {"code": ["630050000901", "630050000902", "630050000903"], "name": ["甲里", "乙里", "丙里"]},
        geometry=[bowtie, None, shapely.box(120.0, 22.0, 120.01, 22.01)], crs=4326,
    )
    report = import_layer(session=session, layer="community", data=frame)
    assert [i.row for i in report.repaired] == [1] and "Self-intersection" in report.repaired[0].reason
    assert [i.row for i in report.skipped_empty] == [2]
    # communities are not checked against the territory (they make it), so the third goes in
    assert report.inserted == 2
    roads = gpd.GeoDataFrame({"code": ["far-away"], "grade_code": ["grade4"]},
                             geometry=[shapely.LineString([(120.0, 22.0), (120.01, 22.01)])], crs=4326)
    report = import_layer(session=session, layer="road", data=roads)
    assert [(i.row, i.reason) for i in report.rejected] == [(1, "outside the city's territory")]
    assert len(report.outside_territory) == 1


def test_wrong_geometry_type_is_rejected(session):
    frame = some_components(session, 1)
    frame.geometry = [frame.geometry[0].buffer(0.001)]
    report = import_layer(session=session, layer="component", data=frame)
    assert report.rejected[0].reason == "a Polygon where layer component needs a Point"


def test_changing_a_component_keeps_its_old_version(session):
    frame = some_components(session, 1)
    import_layer(session=session, layer="component", data=frame)
    frame.loc[0, "status"] = "damaged"  # English aliases are accepted
    frame.geometry = [shapely.Point(frame.geometry[0].x + 0.0001, frame.geometry[0].y)]
    report = import_layer(session=session, layer="component", data=frame)
    assert report.updated == 1
    versions = session.execute(text("""
        SELECT v.version, v.status, v.valid_to IS NULL AS current, ST_X(v.geom)
        FROM component_version v JOIN component c ON c.id = v.component_id
        WHERE c.code = :c ORDER BY v.version"""), {"c": frame["code"][0]}).all()
    assert [(v, s, cur) for v, s, cur, _x in versions] == [(1, "完好", False), (2, "破损", True)]
    assert versions[1][3] == pytest.approx(versions[0][3] + 0.0001)
    assert scalar(session, "SELECT version FROM component WHERE code = :c", c=frame["code"][0]) == 2


def test_unknown_layer_and_unreadable_file(session, tmp_path):
    with pytest.raises(ImportFailed, match="unknown layer"):
        import_layer(session=session, layer="lamp_posts", data=tmp_path / "x.csv")
    with pytest.raises(ImportFailed, match="no such file"):
        import_layer(session=session, layer="component", data=tmp_path / "missing.geojson")
    (tmp_path / "broken.geojson").write_text("{not json")
    with pytest.raises(ImportFailed, match="cannot be read"):
        import_layer(session=session, layer="component", data=tmp_path / "broken.geojson")


def test_an_update_keeps_what_the_file_does_not_give(session):
    frame = some_components(session, 2)
    import_layer(session=session, layer="component", data=frame, source="taipei-open-data")
    partial = frame[["code", "name", "geometry"]].copy()
    partial.loc[0, "name"] = "新站名"
    report = import_layer(session=session, layer="component", data=partial)
    assert (report.updated, report.unchanged) == (1, 1)
    row = session.execute(text("SELECT name, source, maintainer_department_id IS NOT NULL FROM component "
                               "WHERE code = :c"), {"c": frame["code"][0]}).one()
    assert tuple(row) == ("新站名", "taipei-open-data", True)
