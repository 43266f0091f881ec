"""Read layers into GeoDataFrames and write them to files that open cleanly in QGIS.

Codes are text columns named ``code`` (parents as ``district_code``, ``community_code`` …); geometries
come out in EPSG:4326 unless another CRS is asked for; the attribution of the sources the rows came
from travels with the file (GeoPackage metadata, GeoJSON description, else a sidecar text file).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.db.base import STORAGE_SRID
from gridmap.io.exceptions import ExportFailed
from gridmap.territory.service import attributions

LAYER_SQL = {
    "district": "SELECT code, name, name_en, source_code, source, geom FROM district ORDER BY code",
    "street": """SELECT s.code, s.name, s.name_en, d.code AS district_code, s.source_code, s.source, s.geom
                 FROM street s JOIN district d ON d.id = s.district_id ORDER BY s.code""",
    "community": """SELECT c.code, c.name, c.name_en, d.code AS district_code, s.code AS street_code,
                           c.source_code, c.source, c.geom
                    FROM community c JOIN district d ON d.id = c.district_id
                    LEFT JOIN street s ON s.id = c.street_id ORDER BY c.code""",
    "unit_grid": """SELECT g.code, c.code AS community_code, g.area_class,
                           dep.code AS responsible_department_code, g.valid_from, g.valid_to, g.source,
                           ST_Area(g.geom::geography) AS area_m2, g.geom
                    FROM unit_grid g JOIN community c ON c.id = g.community_id
                    LEFT JOIN department dep ON dep.id = g.responsible_department_id
                    WHERE g.valid_to IS NULL ORDER BY g.code""",
    "duty_grid": """SELECT dg.code, dg.name, d.code AS district_code, count(m.unit_grid_code) AS unit_grids,
                           (SELECT string_agg(i.code, ',' ORDER BY i.code) FROM duty_grid_inspector di
                              JOIN inspector i ON i.id = di.inspector_id WHERE di.duty_grid_id = dg.id) AS inspectors,
                           -- cells meet along edges up to float noise: a ~1 cm precision grid merges them
                           ST_Multi(ST_Union(g.geom, 1e-7)) AS geom
                    FROM duty_grid dg LEFT JOIN district d ON d.id = dg.district_id
                    LEFT JOIN duty_grid_member m ON m.duty_grid_id = dg.id
                    LEFT JOIN unit_grid g ON g.code = m.unit_grid_code AND g.valid_to IS NULL
                    GROUP BY dg.id, d.code ORDER BY dg.code""",
    "road": """SELECT r.code, r.name, r.name_en, r.source_class, r.grade_code, rg.name AS grade_name,
                      m.code AS maintenance_department_code, c.code AS cleaning_department_code, r.lanes,
                      ST_Length(r.geom::geography) AS length_m, r.source, r.geom
               FROM road r JOIN road_grade rg ON rg.code = r.grade_code
               LEFT JOIN department m ON m.id = r.maintenance_department_id
               LEFT JOIN department c ON c.id = r.cleaning_department_id ORDER BY r.code""",
    "component": """SELECT p.code, p.class_code, cc.name AS class_name, p.name,
                           cd.code AS competent_department_code, od.code AS owner_department_code,
                           md.code AS maintainer_department_code, p.status, p.survey_date, p.change_date,
                           p.source, p.source_id, p.version, p.geom
                    FROM component p JOIN component_class cc ON cc.code = p.class_code
                    LEFT JOIN department cd ON cd.id = p.competent_department_id
                    LEFT JOIN department od ON od.id = p.owner_department_id
                    LEFT JOIN department md ON md.id = p.maintainer_department_id ORDER BY p.code""",
    "department": """SELECT dep.code, dep.name, dep.name_en, dep.kind, d.code AS district_code,
                            s.code AS street_code, dep.phone, dep.note
                     FROM department dep LEFT JOIN district d ON d.id = dep.district_id
                     LEFT JOIN street s ON s.id = dep.street_id ORDER BY dep.code""",
}

DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile",
           ".fgb": "FlatGeobuf", ".csv": "CSV"}
PARQUET = {".parquet", ".geoparquet"}


def read_layer(*, session: Session, name: str, crs: str | int | None = None) -> gpd.GeoDataFrame | pd.DataFrame:
    """Return layer ``name`` as a GeoDataFrame in ``crs`` (EPSG:4326 by default); ``department`` has no geometry."""
    if name not in LAYER_SQL:
        raise ExportFailed(f"unknown layer {name!r}; layers: {', '.join(LAYER_SQL)}")
    connection = session.connection()
    if name == "department":
        return pd.read_sql(text(LAYER_SQL[name]), connection)
    frame = gpd.read_postgis(text(LAYER_SQL[name]), connection, geom_col="geom", crs=STORAGE_SRID)
    return frame.to_crs(crs) if crs is not None else frame


def export_layer(*, session: Session, name: str, path: Path, crs: str | int | None = None) -> int:
    """Write layer ``name`` to ``path`` (format from the suffix); return the number of rows written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DRIVERS and suffix not in PARQUET:
        raise ExportFailed(f"{path}: unsupported format {suffix!r}; use {', '.join([*DRIVERS, *PARQUET])}")
    frame = read_layer(session=session, name=name, crs=crs)
    sources = set(frame["source"].dropna()) if "source" in frame else set()
    credit = " | ".join(attributions(session=session, codes=sources))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    if suffix in PARQUET:
        frame.to_parquet(path)
        _sidecar(path, credit)
        return len(frame)
    driver = DRIVERS[suffix]
    options: dict = {}
    if driver == "GPKG" and credit:
        options["metadata"] = {"attribution": credit}
    if driver == "GeoJSON" and credit:
        options["layer_options"] = {"DESCRIPTION": credit}
    if driver == "CSV" and isinstance(frame, gpd.GeoDataFrame):
        options["layer_options"] = {"GEOMETRY": "AS_WKT"}
    pyogrio.write_dataframe(frame, path, driver=driver, layer=name, **options)
    if driver not in ("GPKG", "GeoJSON"):
        _sidecar(path, credit)
    return len(frame)


def _sidecar(path: Path, credit: str) -> None:
    if credit:
        path.with_name(path.name + ".attribution.txt").write_text(credit + "\n", encoding="utf-8")


def layer_geojson(
    *, session: Session, name: str, bbox: tuple[float, float, float, float] | None = None, limit: int = 5000
) -> str:
    """Return layer ``name`` as a GeoJSON FeatureCollection text (EPSG:4326), optionally within ``bbox``."""
    if name not in LAYER_SQL or name == "department":
        raise ExportFailed(f"unknown map layer {name!r}; layers: {', '.join(k for k in LAYER_SQL if k != 'department')}")
    where = "WHERE layer.geom && ST_MakeEnvelope(:xmin, :ymin, :xmax, :ymax, 4326)" if bbox else ""
    params = dict(zip(("xmin", "ymin", "xmax", "ymax"), bbox)) if bbox else {}
    sql = f"""
        SELECT json_build_object('type', 'FeatureCollection',
                                 'features', coalesce(json_agg(ST_AsGeoJSON(t.*, 'geom', 7)::json), '[]'::json))::text
        FROM (SELECT * FROM ({LAYER_SQL[name]}) AS layer {where} LIMIT :limit) AS t"""
    return session.execute(text(sql), {**params, "limit": limit}).scalar_one()
