"""The gridmap command, run as a user runs it, against a private copy of the demo database."""

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.io.export import LAYER_SQL

runner = CliRunner()


def gridmap(url: str, *args: str):
    return runner.invoke(app, list(args), env={"GRIDMAP_DATABASE_URL": url, "COLUMNS": "200"})


def count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


def test_db_url_prints_the_url_in_use(scratch_url):
    result = gridmap(scratch_url, "db", "url")
    assert result.exit_code == 0 and result.stdout.strip() == scratch_url


def test_import_reports_a_bad_row_and_strict_imports_nothing(scratch_url, tmp_path):
    frame = gpd.read_file("data/taipei/components/cctv.geojson").head(3)
    frame["code"] = [f"{c[:10]}9{c[11:]}" for c in frame["code"]]  # new codes
    frame.loc[1, "status"] = "stolen"
    path = tmp_path / "cctv.gpkg"
    frame.to_file(path)
    before = count(scratch_url, "SELECT count(*) FROM component")

    strict = gridmap(scratch_url, "import", "component", str(path), "--strict")
    assert strict.exit_code == 1
    assert "row 2, field status" in strict.stdout and "nothing was imported" in strict.stderr
    assert count(scratch_url, "SELECT count(*) FROM component") == before

    lenient = gridmap(scratch_url, "import", "component", str(path), "--rejects", str(tmp_path / "rejects.txt"))
    assert lenient.exit_code == 0, lenient.stdout
    assert count(scratch_url, "SELECT count(*) FROM component") == before + 2
    assert "row 2, field status: must be one of 完好" in (tmp_path / "rejects.txt").read_text()

    again = gridmap(scratch_url, "import", "component", str(path))
    assert count(scratch_url, "SELECT count(*) FROM component") == before + 2
    assert "unchanged" in again.stdout


def test_import_with_a_column_mapping_from_the_raw_village_file(scratch_url, tmp_path):
    raw = gpd.read_file("data/taipei/villages.geojson").head(4)
    raw = raw.rename(columns={"code": "VCODE", "name": "VNAME"})
    raw.to_file(tmp_path / "villages.fgb")
    (tmp_path / "map.yaml").write_text("columns:\n  code: VCODE\n")
    result = gridmap(scratch_url, "import", "community", str(tmp_path / "villages.fgb"),
                     "--mapping", str(tmp_path / "map.yaml"), "--map", "name=VNAME")
    assert result.exit_code == 0, result.stdout
    assert "unchanged" in result.stdout
    bad = gridmap(scratch_url, "import", "community", str(tmp_path / "villages.fgb"), "--map", "code")
    assert bad.exit_code == 1 and "expected FIELD=COLUMN" in bad.stderr


@pytest.mark.parametrize("layer", sorted(LAYER_SQL))
def test_export_every_layer_to_geopackage_and_geojson(scratch_url, tmp_path, layer):
    for suffix in (".gpkg", ".geojson"):
        path = tmp_path / f"{layer}{suffix}"
        result = gridmap(scratch_url, "export", layer, str(path))
        assert result.exit_code == 0, result.stdout + result.stderr
        info = pyogrio.read_info(path)
        frame = pyogrio.read_dataframe(path)
        assert len(frame) == info["features"] == count(scratch_url, f"SELECT count(*) FROM ({LAYER_SQL[layer]}) t")
        if len(frame) or suffix == ".gpkg":  # an empty GeoJSON cannot carry its columns
            assert "code" in frame.columns and frame["code"].map(type).eq(str).all()
        if layer != "department" and len(frame):
            assert info["crs"] in ("EPSG:4326", "OGC:CRS84")


def test_exported_files_carry_the_attribution(scratch_url, tmp_path):
    assert gridmap(scratch_url, "export", "road", str(tmp_path / "road.gpkg")).exit_code == 0
    assert "OpenStreetMap" in pyogrio.read_info(tmp_path / "road.gpkg")["layer_metadata"]["attribution"]
    assert gridmap(scratch_url, "export", "district", str(tmp_path / "district.geojson")).exit_code == 0
    assert "臺北市政府" in (tmp_path / "district.geojson").read_text(encoding="utf-8")


def test_export_in_another_crs_and_format(scratch_url, tmp_path):
    result = gridmap(scratch_url, "export", "district", str(tmp_path / "d.parquet"), "--crs", "EPSG:3826")
    assert result.exit_code == 0
    frame = gpd.read_parquet(tmp_path / "d.parquet")
    assert frame.crs.to_epsg() == 3826 and len(frame) == 12
    assert frame.area.sum() == pytest.approx(268.6e6, rel=0.01)
    assert "臺北市政府" in (tmp_path / "d.parquet.attribution.txt").read_text()
    csv = tmp_path / "c.csv"
    assert gridmap(scratch_url, "export", "component", str(csv)).exit_code == 0
    assert pd.read_csv(csv, dtype=str)["code"].str.fullmatch(r"[0-9]{16}").all()


def test_export_refuses_unknown_layer_and_format(scratch_url, tmp_path):
    assert "unknown layer" in gridmap(scratch_url, "export", "lamps", str(tmp_path / "x.gpkg")).stderr
    assert "unsupported format" in gridmap(scratch_url, "export", "road", str(tmp_path / "x.xlsx")).stderr
